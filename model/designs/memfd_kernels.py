"""memfd/shmem on the other kernels this project boots under QEMU (traces/kernels.py): one
design per kernel series, each a delta on the 6.18 design (`memfd`) that claims its kernel
(`Design.kernel`), so `shmemcheck conform --design memfd@6.1` runs on the fetched 6.1 guest.

Each delta holds what conformance on that kernel found to differ from 6.18 (NOTES.md, "Other
kernels"), with the upstream commit that made the difference:

- memfd@6.1 (6.1.192): no MFD_NOEXEC_SEAL / MFD_EXEC / vm.memfd_noexec (105ff5339f49
  "mm/memfd: add MFD_NOEXEC_SEAL and MFD_EXEC", v6.3) and no F_SEAL_EXEC (6fd7353829ca
  "mm/memfd: add F_SEAL_EXEC", v6.3): memfd_create() refuses the two flags with EINVAL (6.1's
  `flags & ~(unsigned int)MFD_ALL_FLAGS`, before sanitize_flags() existed), F_ADD_SEALS
  refuses 0x20 (`seals & ~F_ALL_SEALS`), fchmod() has no exec-seal check, every memfd is 0777
  and there is no vm.memfd_noexec (noexec_scope is 0). These are the rules
  of memfd@5.17 (memfd_517.py `PRE_EXEC_EDITS`, shared, not copied). Unlike 5.17, 6.1.192 has
  the 6.7 series of bug-history B9 (e8e17ee90eaf "mm: drop the assumption that VM_SHARED always
  implies writable", 28464bbb2ddc, 158978945f31; backported to 5.4-6.6 stable in 2025): a
  read-only shared mapping of a write-sealed memfd is allowed and MADV_REMOVE takes a
  VM_SHARED|VM_MAYWRITE mapping, as on 6.18 — so memfd@6.1 is 6.18's mmap/madvise rules with
  5.17's pre-6.3 rules, not memfd@5.17 plus fixes (5.17 also carries the shmem flags word,
  a source-read abstraction whose actions — SysV, reclaim, migration — no trace can run).
- memfd@6.12 (6.12.118), memfd@7.2 (7.2.13), memfd@7.3-rc (7.3-rc7): the 6.18 rules but one,
  found by the scenario library run as a selftest in their guests (`export --selftest`; the
  conformance scope's writes never cross a chunk): a pwrite crossing i_size of a GROW-sealed
  file is refused chunk by chunk in 2 MiB chunks, not 4 KiB ones (pwrite of 8192 bytes at 0 on a
  6144-byte file: EPERM where the 6.18.44 machine writes 4096; of 2105344 at 0 on 2101248 bytes:
  2097152). generic_perform_write() copies in chunks of mapping_max_folio_size(): these builds'
  shmem mappings take large folios (PMD-sized), the 6.18.44 machine's do not; which one a kernel
  has is its configuration's, not its version's (memfd.grow_seal_rules). The chunk is from
  9aac777aaf94 "filemap: Convert generic_perform_write() to support large folios" (v6.11);
  whether the shmem mapping takes large folios follows the shmem huge setting since "tmpfs:
  don't enable large folios if not supported" (Kefeng Wang, 2024, Fixes: 9aac777aaf94). On
  6.12.118 that includes 3b041514cb6e (bug-history B12: F_SEAL_EXEC's implied F_SEAL_WRITE is
  EBUSY with a writable mapping), the 6.12.9 fix of B10 (read-only shared mappings of write-
  sealed memfds), and the two hugetlbfs findings (B15: fchmod of an exec-sealed hugetlbfs memfd;
  mmap growing a GROW-sealed file), as on 6.18. memfd@7.2 and memfd@7.3-rc also write
  /proc/self/mem without FOLL_FORCE: their Debian configs set CONFIG_PROC_MEM_FORCE_PTRACE
  (a configuration, like the write chunk; found by the corpus's B5 trace on 7.2.13), so a
  write through a mapping without VM_WRITE is EIO there. FS_IOC_FSSETXATTR (probed bit by
  bit, one trace per xflag on shmem and on hugetlbfs, on each guest): 6.12.118 checks the
  xflags as 6.1.192 does (no FS_XFLAGS_MASK, no read-only xflags: both came with v6.17's
  file_getattr/file_setattr), 7.3-rc7 as 7.2.13 does.
"""

from __future__ import annotations

from collections.abc import Callable

from model.designs import get, register
from model.designs.memfd import PR_RO, PR_RW, SH_RW, WRITE_PATHS
from model.designs.memfd_517 import PRE_EXEC_EDITS
from model.designs.memfd_fsflags import (
    XFLAG_RDONLY,
    XFLAGS_MASK,
    file_xflags_mask_rule,
    has_fsx_rule,
    xflags_mask_rule,
)
from model.designs.memfd_rw import grow_seal_rules, written
from model.lang import Design, E, fail
from model.lang.action import Action, Rule
from model.lang.schema import StateView
from model.vocab import HPAGE_SIZE

#: the kernel series each design claims -> what conformance on it found (the design's doc)
SAME_AS_618 = {
    "6.12": "6.12.118: the 6.18 rules, with 2 MiB write chunks, no FOLL_FORCE write into "
            "a read-only hugetlb mapping and 6.1's FS_IOC_FSSETXATTR (no xflag masks), and no "
            "file_getattr/file_setattr (6.17)",
    "7.2": "7.2.13: the 6.18 rules, with 2 MiB write chunks, /proc/self/mem writes "
           "without FOLL_FORCE (CONFIG_PROC_MEM_FORCE_PTRACE) and three more read-only xflags",
    "7.3-rc": "7.3-rc7: the 6.18 rules, with 2 MiB write chunks, /proc/self/mem writes "
              "without FOLL_FORCE (CONFIG_PROC_MEM_FORCE_PTRACE) and 7.2's read-only xflags",
}
#: the series whose Debian build sets CONFIG_PROC_MEM_FORCE_PTRACE=y (6.1.192 and 6.12.118
#: have CONFIG_PROC_MEM_ALWAYS_FORCE=y, as the 6.18.44 machine does; read from their configs)
PROC_MEM_FORCE_PTRACE = ("7.2", "7.3-rc")


def _no_foll_force(s: StateView, m: E, off: E) -> Rule:
    """fs/proc/base.c proc_mem_foll_force() (41e8149c8892 "proc: add config & param to block
    forcing mem writes", v6.12): with CONFIG_PROC_MEM_FORCE_PTRACE, mem_rw() asks for
    FOLL_FORCE only when the caller is the task's ptracer, which a process writing its own
    /proc/self/mem is not; without FOLL_FORCE, check_vma_flags() refuses a write to a VMA
    without VM_WRITE (EFAULT; mem_rw(): nothing copied, EIO). Found by conformance on 7.2.13."""
    return fail("EIO", unless=(m == SH_RW) | (m == PR_RW), label="no_foll_force",
                why="proc_mem_foll_force(): PROC_MEM_FORCE_PTRACE, not ptraced: no FOLL_FORCE")


def _pmd_write_chunks(a: Action) -> Action:
    """A write path (pwrite, splice, copy_file_range, sendfile, pwritev[2]: the same
    shmem_write_begin()) under F_SEAL_GROW in PMD-sized chunks (memfd_rw.grow_seal_rules),
    where memfd_rw.written() says its data lands."""
    def rule(s: StateView, i: int, p: dict[str, E]) -> Rule:
        off, n, piece = written(s, p)
        return grow_seal_rules(s, off, n, HPAGE_SIZE, piece)[i]

    for i, label in enumerate(("grow_seal", "grow_seal_short")):
        a = a.replace_rule(label, lambda s, i=i, **p: rule(s, i, p))
    return a


def _rwf_supported(mask: int, since: str) -> Callable[[Action], Action]:
    """pwritev2()/preadv2() on a kernel whose RWF_SUPPORTED is `mask` (`since`: the flags it
    lacks, with the release that added them)."""
    def rule(s: StateView, flags: E) -> Rule:
        return fail("EOPNOTSUPP", when=(flags & ~mask) != 0, label="unsupported_flags",
                    why=f"kiocb_set_rw_flags(): flags & ~RWF_SUPPORTED ({mask:#x}: {since})")
    return lambda a: a.replace_rule("unsupported_flags", rule)


#: RWF_SUPPORTED by series (include/linux/fs.h): RWF_NOAPPEND is v6.9, RWF_ATOMIC v6.11,
#: RWF_DONTCACHE v6.14, RWF_NOSIGNAL v6.16 (source-read; 6.1 checked on 6.1.192)
RWF_61 = _rwf_supported(0x1F, "no RWF_NOAPPEND (6.9), RWF_ATOMIC (6.11), RWF_DONTCACHE "
                        "(6.14) or RWF_NOSIGNAL (6.16)")
RWF_612 = _rwf_supported(0x7F, "no RWF_DONTCACHE (6.14) or RWF_NOSIGNAL (6.16)")


def _xflags_61(a: Action) -> Action:
    """FS_IOC_FSSETXATTR on 6.1.192 and 6.12.118 (probed bit by bit on each): no
    FS_XFLAGS_MASK check (an unknown xflag on hugetlbfs is ENOTTY, not EOPNOTSUPP) and no
    FS_XFLAG_RDONLY_MASK (PREALLOC and HASATTR are EOPNOTSUPP on shmem, fileattr_has_fsx()):
    both came with v6.17's file_getattr/file_setattr."""
    return a.drop_rule("xflags_mask").replace_rule("has_fsx", has_fsx_rule(0))


#: FS_XFLAG_VERITY and two more bits above it that 7.2.13 takes as read-only xflags
#: (probed: in its FS_XFLAGS_MASK, since hugetlbfs is ENOTTY, and ignored on shmem)
XFLAGS_72 = 0xE0000


#: 7.2's FS_XFLAGS_MASK and FS_XFLAG_RDONLY_MASK
MASK_72, RDONLY_72 = XFLAGS_MASK | XFLAGS_72, XFLAG_RDONLY | XFLAGS_72


def _xflags_72(a: Action) -> Action:
    """FS_IOC_FSSETXATTR on 7.2.13 and 7.3-rc7 (probed bit by bit on each): 0x20000
    (FS_XFLAG_VERITY), 0x40000 and 0x80000 are in FS_XFLAGS_MASK and FS_XFLAG_RDONLY_MASK (a
    set ignores them), which 6.18.44's mask lacks."""
    return (a.replace_rule("xflags_mask", xflags_mask_rule(MASK_72))
            .replace_rule("has_fsx", has_fsx_rule(RDONLY_72)))


def _file_xflags_72(a: Action) -> Action:
    """file_setattr() on 7.2.13 and 7.3-rc7 (probed): the same two masks as the ioctl's
    there."""
    return (a.replace_rule("xflags_mask", file_xflags_mask_rule(MASK_72))
            .replace_rule("has_fsx", has_fsx_rule(RDONLY_72)))


#: file_getattr()/file_setattr() are v6.17: 6.1.192 and 6.12.118 have neither (ENOSYS)
NO_FILE_ATTR = ("file_setattr", "file_getattr")


@register("memfd@6.1", on_request=True)
def build_61() -> Design:
    return get("memfd").derive(
        "memfd@6.1", "memfd/shmem/hugetlbfs as on Linux 6.1.192: no MFD_NOEXEC_SEAL, MFD_EXEC, "
        "vm.memfd_noexec or F_SEAL_EXEC (all 6.3); the B9 fix backported; no FOLL_FORCE "
        "write into a read-only hugetlb mapping",
        kernel="6.1", init={"noexec_scope": 0},
        edit={**PRE_EXEC_EDITS, "mem_write": _force_hugetlb, "pwritev2": RWF_61,
              "preadv2": RWF_61, "pwritev2_fpos": RWF_61, "preadv2_fpos": RWF_61,
              "fs_setxattr": _xflags_61},
        # Debian's 6.1 build has no CONFIG_UDMABUF (nothing to probe), and 6.1's udmabuf
        # pinned with shmem_read_mapping_page(), without memfd_pin_folios()'s EOF check
        drop=("udmabuf", *NO_FILE_ATTR))


def _hugetlb_no_force(s: StateView, m: E, off: E) -> Rule:
    """check_vma_flags() (mm/gup.c) from v6.0 ("hugetlb does not support
    FOLL_FORCE|FOLL_WRITE"): a FOLL_FORCE write to a hugetlb VMA without VM_WRITE is EFAULT
    (mem_rw(): EIO), private or not. Found by conformance on 6.1.192 and 6.12.118; 6.18.44
    COWs instead (memfd_access.mem_write_body)."""
    return fail("EIO", when=s.hugetlb & (m == PR_RO), label="force_hugetlb",
                why="check_vma_flags(): hugetlb does not support FOLL_FORCE|FOLL_WRITE")


def _force_hugetlb(a: Action) -> Action:
    return a.insert_rule(_hugetlb_no_force, after="force_not_cow")


def _same(series: str) -> Design:
    edit: dict[str, Callable[[Action], Action]] = dict.fromkeys(WRITE_PATHS, _pmd_write_chunks)
    if series == "6.12":
        for name in ("pwritev2", "pwritev2_fpos"):
            edit[name] = lambda a: RWF_612(_pmd_write_chunks(a))
        edit["preadv2"] = edit["preadv2_fpos"] = RWF_612
    if series in PROC_MEM_FORCE_PTRACE:
        edit["mem_write"] = lambda a: a.insert_rule(_no_foll_force, before="force_not_cow")
    else:
        edit["mem_write"] = _force_hugetlb
    # FS_IOC_FSSETXATTR's xflag masks differ by release (probed bit by bit on each guest:
    # 6.12.118 has 6.1.192's, 7.3-rc7 has 7.2.13's)
    edit["fs_setxattr"] = _xflags_61 if series == "6.12" else _xflags_72
    if series != "6.12":
        edit["file_setattr"] = _file_xflags_72
    return get("memfd").derive(f"memfd@{series}", "memfd/shmem/hugetlbfs as on Linux "
                               + SAME_AS_618[series], kernel=series, edit=edit,
                               drop=NO_FILE_ATTR if series == "6.12" else ())


@register("memfd@6.12", on_request=True)
def build_612() -> Design:
    return _same("6.12")


@register("memfd@7.2", on_request=True)
def build_72() -> Design:
    return _same("7.2")


@register("memfd@7.3-rc", on_request=True)
def build_73() -> Design:
    return _same("7.3-rc")
