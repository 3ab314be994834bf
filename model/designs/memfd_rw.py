"""The write and read paths of the memfd design through a descriptor: pwrite64, splice into
the file, pwritev2/preadv2 and pread64 (fs/read_write.c, fs/splice.c, then
shmem_file_write_iter()/shmem_file_read_iter(); kernel-semantics.md §3). Each path's own
checks come first, in the kernel's order; the seals of shmem_write_begin() are one list,
`write_iter_rules`, that every write path ends with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from model.designs.memfd_data import fills, seek_rules
from model.designs.memfd_pages import LOFF, MAX_LFS_FILESIZE, SIZE, _byte_param
from model.designs.memfd_state import (
    CHG_FD,
    FD,
    FD_ALL,
    FD_FIELDS,
    RW,
    append_only,
    count,
    have_fd,
    immutable,
    write_sealed,
)
from model.lang import Action, E, If, Param, Rule, boolean, fail, ok, requires, word
from model.lang.action import as_updates
from model.lang.callspec import Fd, Num, Ptr
from model.lang.expr import BOOL, BV, const
from model.lang.schema import StateView
from model.vocab import (
    F_SEAL_GROW,
    PAGE_SIZE,
    RWF_APPEND,
    RWF_ATOMIC,
    RWF_DONTCACHE,
    RWF_NOAPPEND,
    RWF_NOWAIT,
    RWF_SUPPORTED_6_18,
)

#: The largest pwrite64 count the model judges: the executor materialises the buffer the
#: trace's data describes (traces/kernel.py _MAX_BUF); a larger count's outcome depends on
#: what lies beyond a buffer (EFAULT or a short write), which is not the model's.
MAX_WRITE_COUNT = 64 << 20


def count_param(domain: tuple[int, ...], doc: str = "count, in bytes (size_t)", *,
                reads: bool = False, symbolic_domain: bool = False) -> Param:
    """A byte count `len` of a write or read path, judged up to MAX_WRITE_COUNT: beyond it a
    write's outcome depends on the memory past the executor's buffer, and a read would
    overrun that buffer (outside the model, with that reason). `symbolic_domain`: the
    symbolic engines take the explored counts only (Param.symbolic_domain)."""
    why = "the executor's buffer" if reads else \
        "the outcome depends on the memory past the executor's buffer"
    p = _byte_param("len", SIZE, domain, doc, MAX_WRITE_COUNT,
                    f"more than {MAX_WRITE_COUNT} bytes: {why}")
    return replace(p, symbolic_domain=symbolic_domain)


#: Action.from_desc of a call on descriptor `fd`: its description's FMODE_READ, O_APPEND
DESC_READ = (("fmode_read", "fd", "read"),)
DESC_APPEND = (("o_append", "fd", "append"),)


def fmode_read_param(name: str = "fmode_read") -> Param:
    """Whether the descriptor's open file description has FMODE_READ (it was not opened
    O_WRONLY): bound from the trace's handle table (Action.from_desc). The search and the
    symbolic engines take readable descriptions only, as their opens are (NOTES.md
    "Descriptions")."""
    return Param(name, boolean(), (1,), "FMODE_READ of the description (the handle table)",
                 symbolic_domain=True)


def o_append_param(name: str = "o_append") -> Param:
    """Whether the descriptor's open file description has O_APPEND (IOCB_APPEND for its
    writes, iocb_flags()): bound from the handle table, as fmode_read_param()."""
    return Param(name, boolean(), (0,), "O_APPEND of the description (the handle table)",
                 symbolic_domain=True)


def appends(flags: E | None, o_append: E | None) -> E | None:
    """The write has IOCB_APPEND: the description's O_APPEND (iocb_flags()) unless
    RWF_NOAPPEND clears it, or RWF_APPEND (kiocb_set_rw_flags()); None: it cannot."""
    out: E | None = None
    if o_append is not None:
        out = o_append if flags is None else o_append & ~flags.has(RWF_NOAPPEND)
    if flags is not None:
        out = flags.has(RWF_APPEND) if out is None else out | flags.has(RWF_APPEND)
    return out


def appends_now(p: Mapping[str, int]) -> bool:
    """appends() of a step's concrete parameters (Action.appends: where f_pos ends)."""
    e = appends(const(p["flags"], BV(32)) if "flags" in p else None,
                const(p["o_append"], BOOL) if "o_append" in p else None)
    return e is not None and bool(e.val)


#: the internal pipe of do_splice_direct(): PIPE_DEF_BUFFERS page-sized buffers, so one
#: fill by shmem_file_splice_read() carries at most 64 KiB (less the first page's offset)
SPLICE_PIPE = 16 * PAGE_SIZE


def write_begin_refusal(s: StateView, off: E, len: E, chunk: int, refuses: E,  # noqa: A002
                        label: str, why: str, piece: E | None = None) -> list[Rule]:
    """A shmem_write_begin() check that refuses a chunk ending past i_size. generic_perform_write()
    copies in chunks that end at multiples of `chunk` (the mapping's largest folio: PAGE_SIZE on
    the 6.18.44 machine, whose shmem mapping has no large folios; PMD_SIZE, 2 MiB, on Debian's
    6.12, 7.2 and 7.3-rc builds, probed under QEMU: memfd_kernels.py); the first chunk refused
    ends the write: EPERM when it is the first chunk, else the bytes written before it (the
    chunk boundary at or below i_size, less off). Rules `label` and `label`_short.

    `piece`: the data comes through do_splice_direct()'s pipe (sendfile), one write_iter call
    per fill: the first carries `piece` bytes, every later one SPLICE_PIPE, and each call's
    first chunk starts where the call does, so a fill's start at or below i_size is a chunk
    start too (probed on 6.18.44: 65,536 bytes where pwrite64 writes 65,432)."""
    stop = (s.size // chunk) * chunk
    if piece is not None:
        second = off + piece
        fill = If(second <= s.size,
                  second + ((s.size - second) // SPLICE_PIPE) * SPLICE_PIPE, off)
        stop = If(fill > stop, fill, stop)
    past = refuses & (off + len > s.size)
    return [
        fail("EPERM", when=past & (stop <= off), label=label, why=why + ", first chunk"),
        ok(stop - off, when=past, label=f"{label}_short", effects=CHG_FD,
           why=why + "; generic_perform_write() returns the bytes written before it",
           **as_updates(fills(s, off, stop))),
    ]


def grow_seal_rules(s: StateView, off: E, len: E, chunk: int,  # noqa: A002
                    piece: E | None = None) -> list[Rule]:
    """F_SEAL_GROW against a write crossing i_size (write_begin_refusal)."""
    return write_begin_refusal(s, off, len, chunk, s.seals.has(F_SEAL_GROW), "grow_seal",
                               "shmem_write_begin(): GROW and pos + len > i_size", piece)


def pwrite_body(s: StateView, fd: E, off: E, len: E, o_append: E) -> list[Rule]:  # noqa: A002
    """ksys_pwrite64(), vfs_write(), rw_verify_area(), then shmem_file_write_iter():
    generic_write_checks() and generic_perform_write() -> shmem_write_begin() per page (§3);
    an O_APPEND description's write lands at i_size whatever pos says (probed on 6.18.44).
    The file is O_LARGEFILE (memfd_create(), and open() on 64-bit), so max_size is
    s_maxbytes = MAX_LFS_FILESIZE; pos + count cannot exceed it without the overflow EINVAL
    of rw_verify_area() first, so generic_write_check_limits()'s EFBIG is unreachable."""
    return [
        have_fd(s, fd),
        fail("EINVAL", when=off < 0, label="negative_pos", why="ksys_pwrite64(): pos < 0"),
        *vfs_write_rules(s, fd, off, len, o_append),
    ]


def uring_write_body(s: StateView, fd: E, off: E, len: E,  # noqa: A002
                     o_append: E) -> list[Rule]:
    """io_uring's IORING_OP_WRITE at sqe->off: io_write() -> io_rw_init_file() checks
    FMODE_WRITE (EBADF) before rw_verify_area() refuses a negative offset (EINVAL), where
    ksys_pwrite64() checks the offset first (probed on 6.18.44: an O_RDONLY description at
    offset -4096 is EBADF); then vfs_write()'s rules, the file's write_iter (hugetlbfs has
    none: EINVAL either way)."""
    rules = vfs_write_rules(s, fd, off, len, o_append)
    return [have_fd(s, fd), rules[0],
            fail("EINVAL", when=off < 0, label="negative_pos",
                 why="io_write() -> rw_verify_area(): pos < 0"), *rules[1:]]


def write_body(s: StateView, fd: E, off: E, len: E, o_append: E) -> list[Rule]:  # noqa: A002
    """ksys_write() at the description's f_pos `off` (file_ppos(); f_pos += the bytes
    written, Action.fpos): vfs_write() as pwrite64 at pos, whose only other check is pos < 0,
    which f_pos never is (vfs_setpos() refuses it). An O_APPEND description writes at i_size
    and f_pos ends at the new i_size (Action.appends)."""
    return [have_fd(s, fd), *vfs_write_rules(s, fd, off, len, o_append)]


def append_limits(s: StateView, appending: E | None, len: E) -> list[Rule]:  # noqa: A002
    """An appending write past LLONG_MAX (generic_write_check_limits() shortens it) is not
    modelled."""
    if appending is None:
        return []
    return [requires(~(appending & (s.size + len > MAX_LFS_FILESIZE)), label="append_limits",
                     why="an appending write past LLONG_MAX (generic_write_check_limits()) "
                         "is not modelled")]


def vfs_write_rules(s: StateView, fd: E, off: E, len: E,  # noqa: A002
                    o_append: E) -> list[Rule]:
    """vfs_write() at off: FMODE_WRITE, FMODE_CAN_WRITE, rw_verify_area() (at off, even
    for an O_APPEND description), then shmem_file_write_iter() at write_pos()."""
    end = off + len
    return [
        fail("EBADF", unless=fd == RW, label="fmode_write", why="vfs_write(): !FMODE_WRITE"),
        fail("EINVAL", when=s.hugetlb, label="no_write_iter",
             why="hugetlbfs has no write_iter: !FMODE_CAN_WRITE"),
        fail("EINVAL", when=end > MAX_LFS_FILESIZE, label="pos_overflow",
             why="rw_verify_area(): (loff_t)(pos + count) < 0"),
        ok(0, when=len == 0, label="zero_len",
           why="generic_write_checks(): nothing to write, before write_begin"),
        *append_limits(s, o_append, len),
        *write_iter_rules(s, write_pos(s, off, None, o_append), len),
    ]


def write_iter_rules(s: StateView, off: E, len: E,  # noqa: A002
                     piece: E | None = None) -> list[Rule]:
    """shmem_file_write_iter() for len > 0 bytes at off, once the caller's checks passed:
    generic_perform_write() -> shmem_write_begin() per page-sized chunk (the seals); `piece`:
    through a splice pipe (write_begin_refusal)."""
    end = off + len
    return [
        fail("EPERM", when=write_sealed(s), label="write_seal",
             why="shmem_write_begin(): WRITE or FUTURE_WRITE"),
        *grow_seal_rules(s, off, len, PAGE_SIZE, piece),
        ok(len, effects=CHG_FD, size=If(end > s.size, end, s.size),
           **as_updates(fills(s, off, end))),
    ]


def splice_write_body(s: StateView, fd: E, off: E, len: E,  # noqa: A002
                      o_append: E) -> list[Rule]:
    """splice() from a pipe holding len bytes into the memfd at off (probed on 6.18.44):
    the syscall returns 0 for len 0 before anything else; do_splice() checks FMODE_WRITE
    (EBADF), then O_APPEND (EINVAL), before rw_verify_area() (EINVAL: pos < 0 or pos + len
    past LLONG_MAX), unlike pwrite64; hugetlbfs has no splice_write (do_splice_from():
    EINVAL); then
    iter_file_splice_write() -> vfs_iter_write() -> shmem_file_write_iter(), as pwrite64."""
    return [
        have_fd(s, fd),
        ok(0, when=len == 0, label="zero_len", why="splice(): !len, before the descriptors"),
        fail("EBADF", unless=fd == RW, label="fmode_write", why="do_splice(): !FMODE_WRITE"),
        fail("EINVAL", when=o_append, label="o_append",
             why="do_splice(): the out file has O_APPEND"),
        fail("EINVAL", when=off < 0, label="negative_pos", why="rw_verify_area(): pos < 0"),
        fail("EINVAL", when=off + len > MAX_LFS_FILESIZE, label="pos_overflow",
             why="rw_verify_area(): (loff_t)(pos + count) < 0"),
        fail("EINVAL", when=s.hugetlb, label="no_splice_write",
             why="do_splice_from(): hugetlbfs has no splice_write"),
        *write_iter_rules(s, off, len),
    ]


def _min(a: E, b: E | int) -> E:
    return If(a < b, a, b)


def wraps_u64(pos: E, count: E) -> E:
    """pos + count < pos in unsigned 64 bits (generic_copy_file_checks() adds the loff_t pos
    to the uint64_t count): a negative pos wraps once pos + count >= 0, another once the sum
    reaches 2^64 = 2 * MAX_LFS_FILESIZE + 2, which needs a count past MAX_LFS_FILESIZE.
    Written so that the terms an explored (small) count selects stay in int64: the compiled
    explicit engine evaluates in int64 and would wrap."""
    return If(pos < 0, pos + count >= 0,
              (count > MAX_LFS_FILESIZE)
              & (count - MAX_LFS_FILESIZE - 1 > MAX_LFS_FILESIZE - pos))


def copy_count(s: StateView, off_in: E, off_out: E, len: E) -> E:  # noqa: A002
    """The count copy_file_range() copies: cut to the source's EOF (none from at or past it),
    then to s_maxbytes past off_out (generic_copy_file_checks(),
    generic_write_check_limits())."""
    src = If(off_in >= s.size, 0, _min(len, s.size - off_in))
    return If(off_out < 0, src, _min(src, MAX_LFS_FILESIZE - off_out))


def written(s: StateView, p: Mapping[str, E]) -> tuple[E, E, E | None]:
    """Where a write path's data lands, how many bytes it offers shmem_write_begin() and, for
    data through a splice pipe, the first fill's (write_begin_refusal()), from the action's
    parameters: write_pos() and len; copy_file_range's off_out and copy_count(); sendfile's
    f_pos and sendfile_count(). The deltas that edit every write path's seal rules
    (WRITE_PATHS) take it from here."""
    if "off_out" in p:
        return p["off_out"], copy_count(s, p["off_in"], p["off_out"], p["len"]), None
    if "off_in" in p:
        n = sendfile_count(s, p["off_in"], p["off"], p["len"])
        return p["off"], n, first_fill(s, p["off_in"], n)
    return write_pos(s, p["off"], p.get("flags"), p.get("o_append")), p["len"], None


def copy_file_range_body(s: StateView, fd_in: E, off_in: E, fd_out: E, off_out: E,
                         len: E, flags: E, fmode_read: E,  # noqa: A002
                         o_append: E) -> list[Rule]:
    """copy_file_range() within the memfd (both descriptors name it; probed on 6.18.44):
    vfs_copy_file_range() -> generic_copy_file_checks(): generic_file_rw_checks() (EBADF:
    the in file's FMODE_READ, the out file's FMODE_WRITE and O_APPEND), the offsets' wrap
    (EOVERFLOW), the count shortened to the source's EOF and by generic_write_check_limits()
    (EFBIG at s_maxbytes), the overlap of the two ranges of one inode (EINVAL); then
    rw_verify_area() of both (a negative pos), nothing to copy (0), and do_splice_direct():
    hugetlbfs has no splice_read (EINVAL), shmem's write_iter takes the count at off_out."""
    n = copy_count(s, off_in, off_out, len)
    return [
        have_fd(s, fd_in),
        requires(count(s, FD_FIELDS, fd_out) > 0, label="have_fd_out",
                 why="the caller holds a descriptor of this kind"),
        fail("EINVAL", when=flags != 0, label="flags",
             why="vfs_copy_file_range(): flags (COPY_FILE_SPLICE is the kernel's own)"),
        fail("EBADF", unless=(fd_out == RW) & fmode_read & ~o_append, label="fmode_write",
             why="generic_file_rw_checks(): the in file lacks FMODE_READ, or the out file "
                 "FMODE_WRITE, or it has O_APPEND"),
        fail("EPERM", when=immutable(s), label="immutable",
             why="generic_copy_file_checks(): IS_IMMUTABLE(inode_out); write_iter has no check"),
        fail("EOVERFLOW", when=wraps_u64(off_in, len) | wraps_u64(off_out, len), label="wraps",
             why="generic_copy_file_checks(): pos + count wraps"),
        fail("EFBIG", when=(off_out >= MAX_LFS_FILESIZE) & (off_out >= 0), label="efbig",
             why="generic_write_check_limits(): pos >= s_maxbytes"),
        fail("EINVAL", when=(off_out + n > off_in) & (off_out < off_in + n),
             label="overlap", why="generic_copy_file_checks(): overlapping ranges of one inode"),
        fail("EINVAL", when=(off_in < 0) | (off_out < 0), label="negative_pos",
             why="rw_verify_area(): pos < 0"),
        ok(0, when=n == 0, label="zero_count",
           why="vfs_copy_file_range(): nothing to copy (len 0, or pos_in at or past EOF)"),
        fail("EINVAL", when=s.hugetlb, label="no_splice_read",
             why="do_splice_direct() -> do_splice_read(): hugetlbfs has no splice_read"),
        *write_iter_rules(s, off_out, n),
    ]


#: rw_verify_area()'s cap on one transfer (INT_MAX & PAGE_MASK)
MAX_RW_COUNT = 0x7FFFF000


def sendfile_count(s: StateView, off_in: E, off_out: E, len: E) -> E:  # noqa: A002
    """The bytes sendfile() moves within the memfd: do_sendfile() caps the count at
    MAX_RW_COUNT; splice_direct_to_actor() reads from off_in until it has the count or meets
    i_size. When the data lands after where it is read from (off_out > off_in) and the count
    reaches past i_size, every write grows the file before the read gets there, so the read
    never meets EOF: the whole count is moved (probed on 6.18.44: 20,000 bytes from a 4,096-byte
    file written 100 bytes on)."""
    n = _min(len, MAX_RW_COUNT)
    feeds = (off_in < s.size) & (off_out > off_in) & (n > s.size - off_in)
    return If(feeds, n, If(off_in >= s.size, 0, _min(n, s.size - off_in)))


def first_fill(s: StateView, off_in: E, n: E) -> E:
    """What shmem_file_splice_read() puts in do_splice_direct()'s empty pipe first: page-sized
    buffers up to SPLICE_PIPE, the first from off_in to its page's end, and no further than
    i_size or the n bytes asked for."""
    return _min(_min(SPLICE_PIPE - off_in % PAGE_SIZE, s.size - off_in), n)


def sendfile_body(s: StateView, fd: E, off: E, fd_in: E, off_in: E, len: E,  # noqa: A002
                  fmode_read: E, o_append: E) -> list[Rule]:
    """sendfile(out_fd, in_fd, &off_in, count) within the memfd (both descriptors name it),
    the data landing at the out description's f_pos `off` (Action.fpos; probed on 6.18.44):
    do_sendfile() checks the in file's FMODE_READ (EBADF), rw_verify_area() of the read
    (EINVAL: a count past SSIZE_MAX, a negative off_in or one whose sum wraps), caps the count
    at MAX_RW_COUNT, checks the out file's FMODE_WRITE (EBADF) and rw_verify_area() of the
    write at f_pos (EINVAL); do_splice_direct() refuses an O_APPEND out file (EINVAL);
    splice_direct_to_actor() moves nothing for a count of 0; hugetlbfs has no splice_read
    (EINVAL); then sendfile_count() bytes go to shmem's write_iter at f_pos, a pipe's fill at
    a time (first_fill(); the seals of write_iter_rules()). The inode's IMMUTABLE and APPEND
    flags are not checked on this path (probed)."""
    n = sendfile_count(s, off_in, off, len)
    capped = _min(len, MAX_RW_COUNT)
    return [
        have_fd(s, fd_in),
        requires(count(s, FD_FIELDS, fd) > 0, label="have_fd_out",
                 why="the caller holds a descriptor of this kind"),
        fail("EBADF", unless=fmode_read, label="fmode_read",
             why="do_sendfile(): the in file lacks FMODE_READ"),
        fail("EINVAL", when=len > MAX_LFS_FILESIZE, label="count_signed",
             why="rw_verify_area(): (ssize_t)count < 0"),
        fail("EINVAL", when=off_in < 0, label="negative_pos", why="rw_verify_area(): pos < 0"),
        fail("EINVAL", when=off_in + len > MAX_LFS_FILESIZE, label="pos_overflow",
             why="rw_verify_area(): (loff_t)(pos + count) < 0"),
        fail("EBADF", unless=fd == RW, label="fmode_write",
             why="do_sendfile(): the out file lacks FMODE_WRITE"),
        fail("EINVAL", when=off + capped > MAX_LFS_FILESIZE, label="out_pos_overflow",
             why="rw_verify_area() of the write at f_pos: (loff_t)(pos + count) < 0"),
        fail("EINVAL", when=o_append, label="o_append",
             why="do_splice_direct(): the out file has O_APPEND"),
        ok(0, when=len == 0, label="zero_len",
           why="splice_direct_to_actor(): nothing to move"),
        fail("EINVAL", when=s.hugetlb, label="no_splice_read",
             why="vfs_splice_read(): hugetlbfs has no splice_read"),
        ok(0, when=n == 0, label="eof", why="shmem_file_splice_read(): off_in at or past EOF"),
        requires(n <= MAX_WRITE_COUNT, label="feed_limit",
                 why=f"more than {MAX_WRITE_COUNT} bytes written: memory the machine may not "
                     "have (ENOMEM and the OOM killer are not modelled)"),
        *write_iter_rules(s, off, n, first_fill(s, off_in, n)),
    ]


#: copy_file_range()'s NULL offset
COPY_NULL = ("the description's f_pos, read and advanced; the model judges copies between "
             "two given offsets ([N])")

#: explored with the source's page and the page after it, and the target at and after them:
#: EOF shortening, the overlap and the seals; flags, EFBIG, a negative or wrapping offset are
#: replay's and tests/test_copy_file_range.py's (the symbolic engines take every value)
COPY_FILE_RANGE = Action(
    "copy_file_range", (Param("fd_in", FD, (RW,)),
                        _byte_param("off_in", LOFF, (0, PAGE_SIZE), "pos_in, in bytes"),
                        Param("fd_out", FD, FD_ALL),
                        _byte_param("off_out", LOFF, (0, PAGE_SIZE), "pos_out, in bytes"),
                        _byte_param("len", SIZE, (0, PAGE_SIZE), "len, in bytes (size_t)"),
                        Param("flags", word(32), (0,)), fmode_read_param(), o_append_param()),
    copy_file_range_body, "copy_file_range",
    (Fd("fd_in"), Ptr("off_in", COPY_NULL), Fd("fd_out"), Ptr("off_out", COPY_NULL),
     Num("len"), Num("flags")),
    "copy len bytes of the file from off_in to off_out (both descriptors name it)",
    from_desc=(("fmode_read", "fd_in", "read"), ("o_append", "fd_out", "append")))


def write_pos(s: StateView, off: E, flags: E | None = None,
              o_append: E | None = None) -> E:
    """Where a write path's data lands: at i_size when it appends (appends():
    generic_write_checks_count() moves ki_pos to i_size for IOCB_APPEND), else at off (a
    delta on every write path names `flags` and `o_append` with these defaults, so one delta
    fits them all)."""
    a = appends(flags, o_append)
    return off if a is None else If(a, s.size, off)


def rwf_rules(s: StateView, flags: E, o_append: E | None = None) -> list[Rule]:
    """kiocb_set_rw_flags() (include/linux/fs.h), from do_iter_readv_writev(): unknown bits,
    then RWF_APPEND with RWF_NOAPPEND, then what the file must support: shmem and hugetlbfs
    files have no FMODE_NOWAIT, no FMODE_CAN_ATOMIC_WRITE (and a read is never atomic), no
    FOP_DONTCACHE; then RWF_NOAPPEND on an O_APPEND description (IOCB_APPEND) of an
    append-only inode (EPERM), for reads too (probed on 6.18.44)."""
    return [
        fail("EOPNOTSUPP", when=(flags & ~RWF_SUPPORTED_6_18) != 0,
             label="unsupported_flags", why="kiocb_set_rw_flags(): flags & ~RWF_SUPPORTED"),
        fail("EINVAL", when=flags.has_all(RWF_APPEND | RWF_NOAPPEND), label="append_noappend",
             why="kiocb_set_rw_flags(): RWF_APPEND and RWF_NOAPPEND"),
        fail("EOPNOTSUPP", when=(flags & (RWF_NOWAIT | RWF_ATOMIC | RWF_DONTCACHE)) != 0,
             label="file_lacks_support", why="kiocb_set_rw_flags(): RWF_NOWAIT without "
             "FMODE_NOWAIT, RWF_ATOMIC without FMODE_CAN_ATOMIC_WRITE, RWF_DONTCACHE without "
             "FOP_DONTCACHE"),
        *([fail("EPERM", when=flags.has(RWF_NOAPPEND) & o_append & append_only(s),
                label="noappend_append_only",
                why="kiocb_set_rw_flags(): RWF_NOAPPEND clears IOCB_APPEND, not on IS_APPEND")]
          if o_append is not None else []),
    ]


def f_pos_unmodelled(off: E) -> Rule:
    return requires(off != -1, label="f_pos", why="pos -1 writes or reads at the "
                    "description's f_pos (do_writev()/do_readv()), which the model does not "
                    "hold")


def vectored_write(s: StateView, fd: E, off: E, len: E,  # noqa: A002
                   flags: E | None, o_append: E, explicit: bool = True) -> list[Rule]:
    """pwritev2() (flags: its rwf_t) or pwritev() (flags None: do_pwritev() with no flags,
    and no f_pos case: pos -1 is EINVAL there) at an explicit pos, probed on 6.18.44:
    do_pwritev() (pos < 0, before the descriptor), vfs_writev() (FMODE_WRITE, FMODE_CAN_WRITE;
    an empty iovec array returns 0 before anything else), rw_verify_area() at the given pos
    (with RWF_APPEND too), kiocb_set_rw_flags(), then shmem_file_write_iter() at rwf_pos().
    Not `explicit`: writev() (do_writev()) at the description's f_pos `off`, no pos check."""
    v2 = flags is not None
    return [
        have_fd(s, fd),
        *([f_pos_unmodelled(off)] if v2 else []),
        *([fail("EINVAL", when=off < 0, label="negative_pos", why="do_pwritev(): pos < 0")]
          if explicit else []),
        fail("EBADF", unless=fd == RW, label="fmode_write", why="vfs_writev(): !FMODE_WRITE"),
        fail("EINVAL", when=s.hugetlb, label="no_write_iter",
             why="vfs_writev(): !FMODE_CAN_WRITE (hugetlbfs has no write_iter)"),
        ok(0, when=len == 0, label="zero_len",
           why="vfs_writev(): !tot_len, before rw_verify_area() and the flags"),
        fail("EINVAL", when=off + len > MAX_LFS_FILESIZE, label="pos_overflow",
             why="rw_verify_area(): (loff_t)(pos + count) < 0, at the given pos"),
        *(rwf_rules(s, flags, o_append) if flags is not None else []),
        *append_limits(s, appends(flags, o_append), len),
        *write_iter_rules(s, write_pos(s, off, flags, o_append), len),
    ]


def pwritev2_body(s: StateView, fd: E, off: E, len: E, flags: E,  # noqa: A002
                  o_append: E) -> list[Rule]:
    return vectored_write(s, fd, off, len, flags, o_append)


def pwritev_body(s: StateView, fd: E, off: E, len: E, o_append: E) -> list[Rule]:  # noqa: A002
    return vectored_write(s, fd, off, len, None, o_append)


def vectored_read(s: StateView, fd: E, off: E, len: E,  # noqa: A002
                  flags: E | None, fmode_read: E, o_append: E | None = None,
                  explicit: bool = True) -> list[Rule]:
    """preadv2() (flags: its rwf_t) or preadv() (None: no flags, pos -1 EINVAL) at an explicit
    pos: do_preadv(), vfs_readv() (FMODE_READ: EBADF, before an empty iovec array's 0;
    hugetlbfs has read_iter), rw_verify_area(), kiocb_set_rw_flags() (RWF_APPEND is accepted
    and ignored), then the bytes up to i_size (shmem_file_read_iter()/hugetlbfs_read_iter()).
    Not `explicit`: readv() (do_readv()) at the description's f_pos `off`."""
    left = s.size - off
    return [
        have_fd(s, fd),
        *([f_pos_unmodelled(off)] if flags is not None else []),
        *([fail("EINVAL", when=off < 0, label="negative_pos", why="do_preadv(): pos < 0")]
          if explicit else []),
        fail("EBADF", unless=fmode_read, label="fmode_read", why="vfs_readv(): !FMODE_READ"),
        ok(0, when=len == 0, label="zero_len", why="vfs_readv(): !tot_len"),
        fail("EINVAL", when=off + len > MAX_LFS_FILESIZE, label="pos_overflow",
             why="rw_verify_area(): (loff_t)(pos + count) < 0"),
        *(rwf_rules(s, flags, o_append) if flags is not None else []),
        ok(0, when=off >= s.size, label="eof"),
        ok(If(left < len, left, len)),
    ]


def pwritev2_fpos_body(s: StateView, fd: E, off: E, len: E,  # noqa: A002
                       flags: E, o_append: E) -> list[Rule]:
    """pwritev2() at pos -1: do_writev() with the flags, at the description's f_pos `off`
    (no pos check); an appending write (RWF_APPEND, or O_APPEND without RWF_NOAPPEND) lands
    at i_size and f_pos ends at the new i_size (Action.appends; probed on 6.18.44)."""
    return vectored_write(s, fd, off, len, flags, o_append, explicit=False)


def preadv2_fpos_body(s: StateView, fd: E, off: E, len: E,  # noqa: A002
                      flags: E, fmode_read: E, o_append: E) -> list[Rule]:
    """preadv2() at pos -1: do_readv() with the flags, at the description's f_pos `off`."""
    return vectored_read(s, fd, off, len, flags, fmode_read, o_append, explicit=False)


def writev_body(s: StateView, fd: E, off: E, len: E, o_append: E) -> list[Rule]:  # noqa: A002
    return vectored_write(s, fd, off, len, None, o_append, explicit=False)


def readv_body(s: StateView, fd: E, off: E, len: E, fmode_read: E) -> list[Rule]:  # noqa: A002
    return vectored_read(s, fd, off, len, None, fmode_read, explicit=False)


def preadv2_body(s: StateView, fd: E, off: E, len: E, flags: E,  # noqa: A002
                 fmode_read: E, o_append: E) -> list[Rule]:
    return vectored_read(s, fd, off, len, flags, fmode_read, o_append)


def preadv_body(s: StateView, fd: E, off: E, len: E, fmode_read: E) -> list[Rule]:  # noqa: A002
    return vectored_read(s, fd, off, len, None, fmode_read)


def pread_body(s: StateView, fd: E, off: E, len: E, fmode_read: E) -> list[Rule]:  # noqa: A002
    """ksys_pread64() (pos < 0 first), then vfs_read() at off: the bytes up to i_size, 0 at
    or past EOF."""
    return [have_fd(s, fd),
            fail("EINVAL", when=off < 0, label="negative_pos", why="ksys_pread64(): pos < 0"),
            *vfs_read_rules(s, off, len, fmode_read)]


def uring_read_body(s: StateView, fd: E, off: E, len: E,  # noqa: A002
                    fmode_read: E) -> list[Rule]:
    """io_uring's IORING_OP_READ of len bytes at sqe->off: io_read() -> io_rw_init_file()
    checks FMODE_READ (EBADF) before rw_verify_area()'s negative offset (EINVAL), unlike
    ksys_pread64(); then vfs_read()'s rules (probed on 6.18.44)."""
    rules = vfs_read_rules(s, off, len, fmode_read)
    return [have_fd(s, fd), rules[0],
            fail("EINVAL", when=off < 0, label="negative_pos",
                 why="io_read() -> rw_verify_area(): pos < 0"), *rules[1:]]


def read_body(s: StateView, fd: E, off: E, len: E, fmode_read: E) -> list[Rule]:  # noqa: A002
    """ksys_read() at the description's f_pos `off` (f_pos += the bytes read, Action.fpos):
    vfs_read() as pread64 at off (which is never negative)."""
    return [have_fd(s, fd), *vfs_read_rules(s, off, len, fmode_read)]


def vfs_read_rules(s: StateView, off: E, len: E | int,  # noqa: A002
                   fmode_read: E) -> list[Rule]:
    """vfs_read() at off: FMODE_READ (EBADF: an O_WRONLY description; hugetlbfs has
    read_iter); rw_verify_area(), then shmem_file_read_iter()/hugetlbfs_read_iter(): the
    bytes up to i_size, 0 for a zero count or at/past EOF."""
    left = s.size - off
    return [fail("EBADF", unless=fmode_read, label="fmode_read", why="vfs_read(): !FMODE_READ"),
            fail("EINVAL", when=off + len > MAX_LFS_FILESIZE, label="pos_overflow",
                 why="rw_verify_area(): (loff_t)(pos + count) < 0"),
            ok(0, when=(off >= s.size) | (len == 0), label="eof"),
            ok(If(left < len, left, len))]


#: lseek()'s whence (include/uapi/linux/fs.h)
SEEK_SET, SEEK_CUR, SEEK_END, SEEK_MAX = 0, 1, 2, 4


def lseek_body(s: StateView, fd: E, pos: E, off: E, whence: E) -> list[Rule]:
    """ksys_lseek() then shmem_file_llseek() (generic_file_llseek_size() with s_maxbytes
    MAX_LFS_FILESIZE and i_size) or hugetlbfs's default_llseek(): SEEK_SET off, SEEK_CUR
    f_pos + off, SEEK_END i_size + off; a result below 0 (a sum past LLONG_MAX wraps below
    0) is EINVAL (vfs_setpos()); SEEK_DATA/SEEK_HOLE as memfd_data.seek_rules() says; the
    result becomes f_pos (Action.fpos "set")."""
    new = If(whence == SEEK_SET, off, If(whence == SEEK_CUR, pos + off, s.size + off))
    seeks, found = seek_rules(s, off, whence)
    return [
        have_fd(s, fd),
        fail("EINVAL", when=whence > SEEK_MAX, label="bad_whence",
             why="ksys_lseek(): whence > SEEK_MAX"),
        *seeks,
        ok(found, when=whence > SEEK_END, label="seek_data_hole",
           why="the offset found becomes f_pos (vfs_setpos())"),
        fail("EINVAL", when=(new < 0) | (new > MAX_LFS_FILESIZE), label="bad_pos",
             why="vfs_setpos(): a negative position"),
        ok(new),
    ]


__all__ = [
    "COPY_FILE_RANGE",
    "COPY_NULL",
    "DESC_APPEND",
    "DESC_READ",
    "MAX_WRITE_COUNT",
    "appends",
    "appends_now",
    "copy_count",
    "copy_file_range_body",
    "count_param",
    "f_pos_unmodelled",
    "fmode_read_param",
    "grow_seal_rules",
    "lseek_body",
    "o_append_param",
    "pread_body",
    "preadv2_body",
    "preadv2_fpos_body",
    "preadv_body",
    "pwrite_body",
    "pwritev2_body",
    "pwritev2_fpos_body",
    "pwritev_body",
    "read_body",
    "readv_body",
    "rwf_rules",
    "splice_write_body",
    "uring_read_body",
    "uring_write_body",
    "vectored_read",
    "vectored_write",
    "vfs_read_rules",
    "vfs_write_rules",
    "write_begin_refusal",
    "write_body",
    "write_iter_rules",
    "write_pos",
    "writev_body",
    "written",
]
