"""mmap(), mprotect() and munmap() of a memfd (mm/mmap.c do_mmap(), mm/mprotect.c
do_mprotect_pkey(), mm/vma.c do_vmi_munmap(), fs/hugetlbfs/inode.c hugetlbfs_file_mmap(), 6.18;
kernel-semantics.md §3.1): the protections, the mapping kinds they make, and the rule bodies
model/designs/memfd.py makes actions. A mapping's length and file offset are its mmap's
parameters, kept by a trace's handle table (NOTES.md "Mappings").
"""

from __future__ import annotations

from model.designs.memfd_pages import (
    MAP_PAGES_HUGE,
    MAP_PAGES_SHMEM,
    MAX_LFS_FILESIZE,
    hpage,
    pages_bytes,
    unaligned,
)
from model.designs.memfd_state import (
    MAP_FIELDS,
    PR_RO,
    PR_RW,
    RW,
    SH_RO,
    SH_RO_MW,
    SH_RW,
    append_only,
    bump,
    have_fd,
    have_map,
    write_sealed,
)
from model.lang import E, If, Rule, fail, ok, requires
from model.lang.action import as_updates
from model.lang.callspec import Choice
from model.lang.schema import StateView
from model.vocab import PAGE_SIZE

#: mmap()/mprotect() protections: PROT_WRITE alone is the PROT_READ|PROT_WRITE kind on x86-64
#: (a write-only page is readable: calc_vm_prot_bits() sets VM_WRITE, and a read fault checks
#: vma_is_accessible(), VM_READ|VM_WRITE|VM_EXEC); explored: PROT_R and PROT_RW
PROT_R, PROT_RW, PROT_W = 0, 1, 2
PROT_TEXT = {PROT_R: "PROT_READ", PROT_RW: "PROT_READ|PROT_WRITE", PROT_W: "PROT_WRITE"}
#: PROT_EXEC beside them adds VM_EXEC, which no rule reads: neither shm_mnt nor hugetlbfs's
#: internal mount is noexec (do_mmap()'s path_noexec() passes, VM_MAYEXEC stays for
#: mprotect()), and MFD_NOEXEC_SEAL/F_SEAL_EXEC govern the mode's x bits, not mappings
#: (probed on 6.18.44, tests/test_prot_exec.py). PROT_EXEC alone is not accepted: x86-64 with
#: PKU gives it an execute-only key (arch_override_mprotect_pkey()), so loads depend on the CPU
PROT = Choice("prot", PROT_TEXT, extra=("PROT_EXEC",))


def prot_writes(prot: E) -> E:
    """The protection has PROT_WRITE (VM_WRITE)."""
    return (prot == PROT_RW) | (prot == PROT_W)


def offset_fine(s: StateView, moff: E) -> E:
    """An mmap() offset every mapping may have (for properties): a multiple of the file's page,
    far below MAX_LFS_FILESIZE."""
    return ~unaligned(s, moff) & (moff < (1 << 62))


#: mmap()'s MAP_SHARED and MAP_PRIVATE
SHARED, PRIVATE = 0, 1


def mmap_body(s: StateView, fd: E, share: E, prot: E, npages: E, moff: E,
              fmode_read: E) -> list[Rule]:
    """do_mmap() of npages pages at file offset moff (sys_mmap(): an offset that is not
    page-aligned is EINVAL; len 0: EINVAL; file_mmap_ok(): an end past MAX_LFS_FILESIZE is
    EOVERFLOW; any mapping needs FMODE_READ: an O_WRONLY description's is EACCES),
    memfd_check_seals_mmap(), mmap_region(), hugetlbfs_file_mmap() (§3.1; the order probed on
    6.18.44, tests/test_decision_tables.py MMAP_OFF)."""
    shared = share == SHARED
    w = prot_writes(prot)
    shared_vma = shared & (fd == RW)  # !FMODE_WRITE strips VM_SHARED|VM_MAYWRITE
    kind = If(~shared, If(w, PR_RW, PR_RO),
              If(w, SH_RW, If(shared_vma & ~write_sealed(s), SH_RO_MW, SH_RO)))
    length = pages_bytes(s, npages)  # ksys_mmap_pgoff() aligns it to the huge page
    end = moff + length
    grows = s.hugetlb & w & (s.size < end)
    return [
        have_fd(s, fd),
        fail("EINVAL", when=(moff % PAGE_SIZE) != 0, label="unaligned_off",
             why="sys_mmap() (x86-64): off & ~PAGE_MASK"),
        fail("EINVAL", when=npages == 0, label="zero_len", why="do_mmap(): !len"),
        requires(npages <= If(s.hugetlb, MAP_PAGES_HUGE, MAP_PAGES_SHMEM), label="map_limit",
                 why="a longer mapping succeeds or fails (ENOMEM) by the machine's address "
                     "space or hugetlb pool, which the model does not hold"),
        # pgoff > (MAX_LFS_FILESIZE - len) >> PAGE_SHIFT, with off and len multiples of
        # PAGE_SIZE and MAX_LFS_FILESIZE = 2^63 - 1: exactly off > MAX_LFS_FILESIZE - len (no
        # division for the solvers; off + len would wrap in the search's int64)
        fail("EOVERFLOW", when=moff > MAX_LFS_FILESIZE - length, label="off_overflow",
             why="file_mmap_ok(): pgoff > (MAX_LFS_FILESIZE - len) >> PAGE_SHIFT"),
        fail("EACCES", when=shared & w & (fd != RW), label="shared_write_needs_fmode_write",
             why="do_mmap(): MAP_SHARED with PROT_WRITE on a file without FMODE_WRITE"),
        fail("EACCES", when=shared_vma & append_only(s), label="append_only",
             why="do_mmap(): MAP_SHARED of an IS_APPEND file through an FMODE_WRITE one"),
        fail("EACCES", unless=fmode_read, label="fmode_read",
             why="do_mmap(): MAP_PRIVATE (and MAP_SHARED falling through) without FMODE_READ"),
        fail("EPERM", when=shared_vma & w & write_sealed(s), label="write_seal",
             why="memfd_check_seals_mmap(): new shared writable mapping of a write-sealed file"),
        fail("EINVAL", when=s.hugetlb & unaligned(s, moff), label="hugetlb_pgoff",
             why="hugetlbfs_file_mmap(): vm_pgoff not a multiple of the huge page"),
        requires(~s.hugetlb | (end <= hpage(s) * MAP_PAGES_HUGE), label="hugetlb_reserve",
                 why="hugetlb_reserve_pages() takes the pool's pages for the file's pages "
                     "the mapping covers (ENOMEM when too few are free): the model holds no "
                     "pool, and replay reserves pages for the file's first MAP_PAGES_HUGE"),
        ok(0, size=If(grows, end, s.size), hpage0_cached=If(grows, 0, s.hpage0_cached),
           **as_updates(bump(s, MAP_FIELDS, kind, +1)),
           why="hugetlbfs_file_mmap() raises i_size to the mapping's end (its offset plus its "
               "length) for VM_WRITE mappings, shared or private, without looking at "
               "F_SEAL_GROW (probed on 6.18.44)"),
    ]


def within_piece(at: E, npages: E, mpages: E) -> Rule:
    """The range lies inside one piece of the mapping (NOTES.md "VMA splits")."""
    return requires(at + npages <= mpages, label="within_piece",
                    why="a range past the end of the mapping's piece reaches another piece of "
                        "it, an unmapped hole or the caller's other memory, which the model "
                        "does not hold")


def piece_counts(at: E, npages: E, mpages: E) -> tuple[E, E]:
    """(the range covers the whole piece, the range leaves a part on each side of it)."""
    return (at == 0) & (npages == mpages), (at > 0) & (at + npages < mpages)


def mprotect_body(s: StateView, m: E, prot: E, npages: E, mpages: E, at: E) -> list[Rule]:
    """do_mprotect_pkey() over pages at..at+npages of a mapping's piece (len 0: nothing to do),
    mprotect_fixup(): adding PROT_WRITE needs VM_MAYWRITE; a new protection for part of a
    VMA splits it (vma_modify_flags(): the part keeps its side's VMA, the range gets one of
    its own), one equal to the old changes nothing (newflags == oldflags)."""
    w = prot_writes(prot)
    new = If(m == SH_RW, If(w, SH_RW, SH_RO_MW),
             If(m == SH_RO_MW, If(w, SH_RW, SH_RO_MW),
                If(m == SH_RO, SH_RO, If(w, PR_RW, PR_RO))))
    whole, middle = piece_counts(at, npages, mpages)
    # the old kind keeps the parts on either side of the range (none when the protection is
    # the one it has: then -1 and +1 cancel); the range becomes the new kind. Over a whole
    # piece `keeps` is 0, and the terms are the retagging's alone (the symbolic engines take
    # whole one-page mappings, where `whole` folds to true)
    keeps = If(whole | (new == m), 0, If(middle, 2, 1))
    moves = {f: If(m == i, s[f] - 1 + keeps, s[f]) for i, f in enumerate(MAP_FIELDS)}
    after = {f: If(new == i, moves[f] + 1, moves[f]) for i, f in enumerate(MAP_FIELDS)}
    return [
        have_map(s, m),
        ok(0, when=npages == 0, label="zero_len", why="do_mprotect_pkey(): !len"),
        within_piece(at, npages, mpages),
        fail("EACCES", when=w & (m == SH_RO), label="no_maywrite",
             why="mprotect_fixup(): VM_MAYWRITE cleared (O_RDONLY fd or write seal)"),
        ok(0, **as_updates(after)),
    ]


def munmap_body(s: StateView, m: E, npages: E, mpages: E, at: E) -> list[Rule]:
    """do_vmi_munmap() of pages at..at+npages of a mapping's piece (len 0: EINVAL): the whole
    piece's VMA goes; a part in its middle splits it in two (vms_gather_munmap_vmas():
    __split_vma() at both ends), a part at one end leaves one VMA."""
    whole, middle = piece_counts(at, npages, mpages)
    return [have_map(s, m),
            fail("EINVAL", when=npages == 0, label="zero_len",
                 why="do_vmi_munmap(): PAGE_ALIGN(len) == 0"),
            within_piece(at, npages, mpages),
            ok(0, **as_updates({f: If(m == i, If(whole, s[f] - 1, If(middle, s[f] + 1, s[f])),
                                      s[f]) for i, f in enumerate(MAP_FIELDS)}))]


__all__ = ["PRIVATE", "PROT", "PROT_R", "PROT_RW", "PROT_TEXT", "PROT_W", "SHARED", "mmap_body",
           "mprotect_body", "munmap_body", "offset_fine", "piece_counts", "prot_writes",
           "within_piece"]
