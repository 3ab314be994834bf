"""What the explicit search of the memfd design leaves to replay: rules no explored value
reaches and actions it never takes (tests/test_explicit.py checks that every other rule fires;
tests/test_bytes.py and the decision tables judge these).
"""

from __future__ import annotations

#: rules no explored value reaches at grain 1 (near LLONG_MAX or 2^64, or a sub-page write
#: crossing i_size: grain 2): replay and the decision tables decide them (tests/test_bytes.py)
REPLAY_ONLY = (("pwrite", "pos_overflow"), ("pwrite", "grow_seal_short"),
               # the search's descriptions are O_RDONLY or O_RDWR, without O_APPEND (an
               # O_WRONLY or O_APPEND one is the trace's handle table's: Action.from_desc)
               ("splice_write", "o_append"),
               ("splice_write", "pos_overflow"), ("splice_write", "grow_seal_short"),
               # copy_file_range explores no flags, no negative offset and none near
               # s_maxbytes
               ("copy_file_range", "flags"), ("copy_file_range", "wraps"),
               ("copy_file_range", "efbig"), ("copy_file_range", "negative_pos"),
               ("copy_file_range", "grow_seal_short"),
               # pwritev2/preadv2 explore offset 0, no flags and RWF_NOWAIT; their argument
               # checks (a negative offset, unknown or contradictory flags) refuse before
               # anything is read, and are decided by replay and the decision table IOV's rows
               ("pwritev2", "negative_pos"), ("pwritev2", "pos_overflow"),
               ("pwritev2", "unsupported_flags"), ("pwritev2", "append_noappend"),
               ("pwritev2", "noappend_append_only"), ("pwritev2", "grow_seal_short"),
               ("preadv2", "negative_pos"), ("preadv2", "fmode_read"), ("preadv2", "zero_len"),
               ("preadv2", "pos_overflow"), ("preadv2", "unsupported_flags"),
               ("preadv2", "append_noappend"), ("preadv2", "noappend_append_only"),
               ("pwritev", "negative_pos"), ("pwritev", "fmode_write"),
               ("pwritev", "zero_len"), ("pwritev", "pos_overflow"),
               ("pwritev", "grow_seal_short"),
               ("preadv", "negative_pos"), ("preadv", "fmode_read"), ("preadv", "zero_len"),
               ("preadv", "pos_overflow"), ("pread", "fmode_read"), ("pread", "pos_overflow"),
               ("fallocate", "efbig"),
               # a mapping is explored one page long: a zero length is replay's
               ("mmap", "zero_len"), ("mmap", "fmode_read"),
               # a mapping the search makes maps the file from offset 0 (memfd_pages.py
               # MMAP_OFF): hugetlbfs's refusal of a page-aligned offset that is not
               # huge-aligned is replay's and tests/test_mmap_offset.py's
               ("mmap", "hugetlb_pgoff"),
               ("mprotect", "zero_len"), ("munmap", "zero_len"),
               # mremap explores lengths that keep a mapping one page long and the known
               # flags: growing, shrinking, lengths past the mapping and unknown flags are
               # replay's and tests/test_mremap.py's
               ("mremap", "unknown_flags"), ("mremap", "dontunmap_past_vma"),
               ("mremap", "shrink"), ("mremap", "past_vma"), ("mremap", "grow"),
               ("madvise_remove", "len_wraps"), ("madvise", "unknown_advice"),
               ("madvise", "len_wraps"),
               # FS_IOC_FSSETXATTR explores project id 0 only
               ("fs_setxattr", "projid_invalid"),
               # file_setattr/file_getattr explore "", usize 24 and AT_EMPTY_PATH, and of the
               # xflags those that set a flag and one outside the mask: their other argument
               # checks, and the ioctl's refusals (explored there), are replay's (decision
               # table: tests/test_file_attr.py)
               *(("file_setattr", r) for r in ("at_flags", "usize_big", "usize_small",
                                                "empty_path", "null_path", "projid_invalid",
                                                "extszinherit", "has_fsx", "unsupported")),
               *(("file_getattr", r) for r in ("at_flags", "usize_big", "usize_small",
                                                "empty_path", "null_path")))

#: actions the search never takes: their f_pos is the trace's (Action.fpos), so a write,
#: read or lseek is judged by replay and the decision tables; pwrite64/pread64 explore the
#: same rules (vfs_write_rules(), vfs_read_rules()) at every offset of the grid. exec's
#: write count is the trace's too (Action.writers; tests/test_exec.py). io_uring's write and
#: read are pwrite64's and pread64's rules with the descriptor's check first
REPLAY_ACTIONS = ("write", "read", "writev", "readv", "lseek", "pwritev2_fpos", "preadv2_fpos",
                  "sendfile",
                  "exec", "uring_write", "uring_read", "setfl", "getfl",
                  "fioclex", "fionbio", "ioctl_notty")
