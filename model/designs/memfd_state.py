"""The memfd design's state: the inode fields, the handle kinds counted per kind (a counter
abstraction; NOTES.md "Abstractions"), the effects, and small helpers over them that the
rule bodies share (model/designs/memfd.py, and the designs derived from it).
"""

from __future__ import annotations

from model.designs.memfd_data import DATA_FIELDS
from model.designs.memfd_pages import GPAGE_SIZE, hpage
from model.lang import (
    E,
    Field,
    If,
    Rule,
    Schema,
    boolean,
    enum,
    fail,
    false,
    nat,
    nat_bytes,
    requires,
    word,
)
from model.lang.schema import StateView
from model.vocab import (
    F_SEAL_FUTURE_WRITE,
    F_SEAL_GROW,
    F_SEAL_SHRINK,
    F_SEAL_WRITE,
    FS_APPEND_FL,
    FS_IMMUTABLE_FL,
    FS_NOATIME_FL,
    FS_NODUMP_FL,
    HPAGE_SIZE,
    PAGE_SIZE,
    SEALS,
    render_flags,
)

F_ALL_SEALS = 0x3F
WX_SEALS = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE

#: shmem's inode flags (chattr): SHMEM_FL_USER_MODIFIABLE less FS_CASEFOLD_FL (directories only)
SHMEM_FSFLAGS = {"FS_IMMUTABLE_FL": FS_IMMUTABLE_FL, "FS_APPEND_FL": FS_APPEND_FL,
                 "FS_NODUMP_FL": FS_NODUMP_FL, "FS_NOATIME_FL": FS_NOATIME_FL}

#: the state chattr adds, each field with its FS_*_FL bit of info->fsflags (a design without
#: FS_IOC_SETFLAGS drops these and the actions)
FSFLAG_BITS = (("s_immutable", FS_IMMUTABLE_FL), ("s_append", FS_APPEND_FL),
               ("s_nodump", FS_NODUMP_FL), ("s_noatime", FS_NOATIME_FL))
FSFLAG_FIELDS = tuple(f for f, _ in FSFLAG_BITS)
#: the fields only FS_IOC_GETFLAGS reads (a design short of state bits drops them with it)
GETFLAGS_ONLY = ("s_nodump", "s_noatime")

# Handle kinds. The order of each enum is the order of its counter fields below.
FD_KINDS = ("rw", "ro")  # open file descriptions with / without FMODE_WRITE
MAP_KINDS = ("sh_rw", "sh_ro_mw", "sh_ro", "pr_ro", "pr_rw")
PIN_KINDS = ("ref", "gup")
RW, RO = 0, 1
SH_RW, SH_RO_MW, SH_RO, PR_RO, PR_RW = range(5)
REF, GUP = 0, 1

MAP_DOC = {
    "sh_rw": "MAP_SHARED, PROT_READ|PROT_WRITE (VM_SHARED|VM_MAYWRITE|VM_WRITE)",
    "sh_ro_mw": "MAP_SHARED, PROT_READ, VM_MAYWRITE kept (upgradable by mprotect)",
    "sh_ro": "MAP_SHARED, PROT_READ without VM_MAYWRITE (O_RDONLY fd, or write-sealed file)",
    "pr_ro": "MAP_PRIVATE, PROT_READ",
    "pr_rw": "MAP_PRIVATE, PROT_READ|PROT_WRITE (copy-on-write)",
}

EFFECTS = ("CHG_FD", "CHG_MAP", "CHG_DMA")
CHG_FD, CHG_MAP, CHG_DMA = 1, 2, 4  # file content changed through: an fd, a mapping, a pin


FD_FIELDS = [f"fd_{k}" for k in FD_KINDS]
MAP_FIELDS = [f"map_{k}" for k in MAP_KINDS]
PIN_FIELDS = [f"pin_{k}" for k in PIN_KINDS]

SCHEMA = Schema((
    Field("noexec_scope", nat(fixed=2), "vm.memfd_noexec of the caller's pid namespace "
          "(pidns_memfd_noexec_scope()); read only by memfd_create, so it is reset to 0 once "
          "the inode exists (a dead-variable reduction)"),
    Field("hstate_1g", boolean(), "the machine has a 1 GiB hstate (x86-64 with "
          "X86_FEATURE_GBPAGES: hugetlb_add_hstate(PUD_SHIFT - PAGE_SHIFT)); 2 MiB, the default "
          "one, always exists. Read only by memfd_create, so reset to 0 once the inode exists, "
          "as noexec_scope is"),
    Field("exists", boolean(), "memfd_create has succeeded (one inode per model)"),
    Field("hugetlb", boolean(), "hugetlbfs-backed (MFD_HUGETLB)"),
    Field("linked", boolean(), "the inode has a name on /dev/shm: created by open(O_CREAT) "
          "there (a tmpfs file, shmem_mknod()) and not unlinked since; a memfd never has one"),
    Field("huge_1g", boolean(), "a hugetlbfs file of the 1 GiB hstate (MFD_HUGE_1GB): its page, "
          "in every size computation, is 1 GiB (else 2 MiB); 0 on shmem"),
    Field("seals", word(6, SEALS), "shmem_inode_info.seals / hugetlbfs_inode_info.seals"),
    Field("mode", word(9), "i_mode & 0777"),
    Field("s_immutable", boolean(), "S_IMMUTABLE in i_flags: FS_IMMUTABLE_FL set by "
          "FS_IOC_SETFLAGS (shmem_fileattr_set() -> shmem_set_inode_flags())"),
    Field("s_append", boolean(), "S_APPEND in i_flags: FS_APPEND_FL set by FS_IOC_SETFLAGS"),
    Field("s_nodump", boolean(), "FS_NODUMP_FL in shmem_inode_info.fsflags: only "
          "FS_IOC_GETFLAGS reads it (so the search, which computes no outputs, elides it)"),
    Field("s_noatime", boolean(), "FS_NOATIME_FL in shmem_inode_info.fsflags (S_NOATIME): "
          "only FS_IOC_GETFLAGS reads it; the model has no atime"),
    Field("size", nat_bytes("pages", ("hugetlb", "huge_1g"),
                                   (PAGE_SIZE, HPAGE_SIZE, GPAGE_SIZE), grain="grain"),
          "i_size in bytes (at most MAX_LFS_FILESIZE, shmem's and hugetlbfs's s_maxbytes)"),
    *(Field(n, nat("fds"), f"open descriptions, {k}", handle=("fd", k))
      for n, k in zip(FD_FIELDS, FD_KINDS, strict=True)),
    *(Field(n, nat("maps"), MAP_DOC[k], handle=("map", k))
      for n, k in zip(MAP_FIELDS, MAP_KINDS, strict=True)),
    Field("pin_ref", nat("pins"), "page references held by vmsplice into a pipe",
          handle=("pin", "ref")),
    Field("pin_gup", nat("pins"), "long-term FOLL_WRITE pins (io_uring fixed buffer, O_DIRECT)",
          handle=("pin", "gup")),
    Field("created_noexec", boolean(), "created with (effective) MFD_NOEXEC_SEAL", ghost=True),
    Field("hpage0_cached", boolean(), "hugetlbfs, size below one huge page: page 0 is in the "
          "page cache all the same (fallocate put it there, with KEEP_SIZE or up to a size "
          "inside the page). hugetlb faults map a cached page without looking at i_size "
          "(found by conformance testing on 6.18.44); an uncached one faults in only if its "
          "index is below i_size >> HPAGE_SHIFT (hugetlb_no_page()). Kept at 0 whenever "
          "size >= one huge page, where no rule reads it (a canonical form: fewer states, "
          "same behaviour)"),
    *DATA_FIELDS,
))

FD = enum(*FD_KINDS)
MAPK = enum(*MAP_KINDS)
PINK = enum(*PIN_KINDS)
#: every descriptor kind, every mapping kind (an enum parameter's whole domain)
FD_ALL = tuple(range(len(FD_KINDS)))
MAP_ALL = tuple(range(len(MAP_KINDS)))


# ---- small helpers over the counter abstraction -------------------------------------------
def count(s: StateView, fields: list[str], kind: E) -> E:
    """The counter of the handle kind `kind` (an enum parameter)."""
    out: E = s[fields[-1]]
    for i in range(len(fields) - 2, -1, -1):
        out = If(kind == i, s[fields[i]], out)
    return out


def bump(s: StateView, fields: list[str], kind: E, delta: int) -> dict[str, E]:
    """Updates adding `delta` to the counter of kind `kind`."""
    return {f: If(kind == i, s[f] + delta if delta > 0 else s[f] - (-delta), s[f])
            for i, f in enumerate(fields)}


def writable_maps(s: StateView) -> E:
    """i_mmap_writable's positive part: VMAs that are VM_SHARED and VM_MAYWRITE."""
    return s.map_sh_rw + s.map_sh_ro_mw


def pins(s: StateView) -> E:
    return s.pin_ref + s.pin_gup


def past_eof(s: StateView) -> E:
    """An access to page 0 faults past EOF. shmem_fault() -> shmem_get_folio_gfp() checks i_size
    on every fault: index 0 is past EOF iff (0 << PAGE_SHIFT) >= i_size, i.e. size == 0.
    hugetlb_fault() checks only when it must allocate (hugetlb_no_page(): idx >= i_size >>
    huge_page_shift(), i.e. size < one huge page for page 0), so a page already in the page
    cache is mapped even beyond i_size."""
    return If(s.hugetlb, (s.size < hpage(s)) & ~s.hpage0_cached, s.size == 0)


def immutable(s: StateView) -> E:
    """IS_IMMUTABLE(inode): FS_IMMUTABLE_FL (shmem_set_inode_flags() sets S_IMMUTABLE); never
    in a design without chattr (`FSFLAG_FIELDS` dropped: shmem before 6.0)."""
    return s.s_immutable if hasattr(s, "s_immutable") else false


def append_only(s: StateView) -> E:
    """IS_APPEND(inode): FS_APPEND_FL (shmem_set_inode_flags() sets S_APPEND); never in a
    design without chattr."""
    return s.s_append if hasattr(s, "s_append") else false


def fsflags_cleared(s: StateView) -> dict[str, E | int]:
    """The updates of a new inode: no chattr flag (none in a design without chattr)."""
    return {f: 0 for f in FSFLAG_FIELDS if hasattr(s, f)}


def fallocate_fsflags(s: StateView, removes: E) -> list[Rule]:
    """vfs_fallocate() after its FMODE_WRITE check: on an append-only inode only preallocation
    (mode 0 or KEEP_SIZE) is allowed, on an immutable one nothing; both EPERM. Shared by
    fallocate() and madvise(MADV_REMOVE) (a PUNCH_HOLE|KEEP_SIZE through the VMA's file)."""
    return [fail("EPERM", when=removes & append_only(s), label="append_only",
                 why="vfs_fallocate(): (mode & ~FALLOC_FL_KEEP_SIZE) && IS_APPEND(inode)"),
            fail("EPERM", when=immutable(s), label="immutable",
                 why="vfs_fallocate(): IS_IMMUTABLE(inode)")]


def write_sealed(s: StateView) -> E:
    return s.seals.has(F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)


def have_fd(s: StateView, fd: E) -> Rule:
    return requires(count(s, FD_FIELDS, fd) > 0, label="have_fd",
                    why="the caller holds a descriptor of this kind")


def have_map(s: StateView, m: E) -> Rule:
    return requires(count(s, MAP_FIELDS, m) > 0, label="have_map")


def punch_write_seal(s: StateView, punch: E | None = None) -> Rule:
    """shmem_fallocate()/hugetlbfs_punch_hole(): a hole may not be punched under F_SEAL_WRITE or
    F_SEAL_FUTURE_WRITE (EPERM); shared by fallocate(PUNCH_HOLE) and madvise(MADV_REMOVE)."""
    sealed = write_sealed(s)
    return fail("EPERM", when=sealed if punch is None else punch & sealed, label="punch_write_seal",
                why="shmem_fallocate(): punching a hole needs no WRITE/FUTURE_WRITE")


def pinned_page0_kept(s: StateView, truncates_page0: E) -> Rule:
    return requires(~(truncates_page0 & (pins(s) > 0)), label="pins_not_truncated",
                    why="truncating a pinned page is not modelled (NOTES.md LIMITATIONS)")


def seals_note(v: int) -> str | None:
    return "seals " + render_flags(v, SEALS) if v > 0 else None
