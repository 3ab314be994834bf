"""memfd/shmem as Linux 5.17 behaved when PATCH v5 01/13 was posted (March 2022), as a delta on
the 6.18 design, plus the shmem inode flags word (kernel-semantics.md §4.1).

The delta: no F_SEAL_EXEC, MFD_NOEXEC_SEAL, MFD_EXEC or vm.memfd_noexec (all 6.3); before 6.7
every VM_SHARED mapping of an O_RDWR description counted in i_mmap_writable, so once F_SEAL_WRITE
made it negative, mapping_map_writable() refused even read-only shared mappings (bug-history
B9); F_SEAL_EXEC's W^X implication did not exist.

The flags word: `info->flags` holds VM_NORESERVE and VM_LOCKED. Every path that sets, clears or
reads them is an action or a rule here: shmem_file_setup() from memfd_create (VM_NORESERVE),
tmpfs creation (VM_NORESERVE), SysV shmget() (VM_NORESERVE only with SHM_NORESERVE and
overcommit != never), shmctl(SHM_LOCK/SHM_UNLOCK) through shmem_lock() (VM_LOCKED, unevictable
mapping), the accounting of shmem_acct_size()/shmem_reacct_size() (readers of VM_NORESERVE), and
shmem_writepage() under reclaim (reader of VM_LOCKED). Which field and bit each flag lives in is
the schema's *layout*, so Kirill's proposal (v5_flags.py) is a change of layout.
"""

from __future__ import annotations

from collections.abc import Callable

from model.designs import get, register
from model.designs.memfd import (
    FD_FIELDS,
    HUGE_LOG_1G,
    MAP_FIELDS,
    SH_RO,
    SH_RO_MW,
    SH_RW,
    SHARED,
    bump,
    pins,
    prot_writes,
    writable_maps,
    write_sealed,
)
from model.designs.memfd_open import EX_RDWR
from model.designs.memfd_state import FSFLAG_FIELDS
from model.lang import Action, Design, E, Field, If, Param, boolean, enum, fail, ok, requires, word
from model.lang.action import Rule, as_updates
from model.lang.callspec import C, Choice, Flags
from model.lang.expr import bv
from model.lang.schema import StateView
from model.vocab import (
    F_SEAL_FUTURE_WRITE,
    F_SEAL_SEAL,
    F_SEAL_WRITE,
    MFD_ALLOW_SEALING,
    MFD_CLOEXEC,
    MFD_HUGE_MASK,
    MFD_HUGE_SHIFT,
    MFD_HUGETLB,
    PAGE_SIZE,
    SEALS,
)

VM_LOCKED = 0x00002000
VM_NORESERVE = 0x00200000
F_ALL_SEALS_517 = 0x1F
MFD_ALL_FLAGS_517 = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB
MFD_FLAGS_517 = {"MFD_CLOEXEC": MFD_CLOEXEC, "MFD_ALLOW_SEALING": MFD_ALLOW_SEALING,
                 "MFD_HUGETLB": MFD_HUGETLB}
SEALS_517 = {k: v for k, v in SEALS.items() if k != "F_SEAL_EXEC"}


def with_vocabulary(a: Action, param: str, family: dict[str, int]) -> Action:
    """The same action printing (and parsing) `param` with another uapi's flag names."""
    from dataclasses import replace as dc_replace

    args = tuple(dc_replace(x, family=family) if isinstance(x, Flags) and x.param == param
                 else x for x in a.args)
    return dc_replace(a, args=args)

ORIGINS = ("none", "memfd", "tmpfs", "sysv")
O_NONE, O_MEMFD, O_TMPFS, O_SYSV = range(4)

FLAG_FIELDS = (
    Field("origin", enum(*ORIGINS), "how the inode was created: memfd_create(), a tmpfs "
          "open(O_CREAT) or SysV shmget(); only a SysV segment has a shmid for shmctl()"),
    Field("iflags", word(22, {"VM_LOCKED": VM_LOCKED, "VM_NORESERVE": VM_NORESERVE}),
          "shmem_inode_info.flags (VM_* values up to 6.18)"),
    Field("unevictable", boolean(), "mapping_set_unevictable(): AS_UNEVICTABLE"),
    Field("unmovable", boolean(), "the mapping's gfp mask lacks __GFP_MOVABLE"),
    Field("commit_full", boolean(), "vm.overcommit_memory=2 and the commit limit reached: "
          "up-front accounting fails (an environment choice of the initial state)"),
)
LAYOUT_VM = {"NORESERVE": ("iflags", VM_NORESERVE), "LOCKED": ("iflags", VM_LOCKED)}

RECLAIM_SWAPPED, RECLAIM_REDIRTIED, RECLAIM_UNEVICTABLE = 0, 1, 2
LRU_EVICTABLE, LRU_UNEVICTABLE = 0, 1
MIGRATED, MIGRATE_REFUSED = 0, 1


# ---- the 5.17 delta on mainline ------------------------------------------------------------
def create_flags_517(s: StateView, flags: E) -> Rule:
    allowed = If(flags.has(MFD_HUGETLB),
                 bv(MFD_ALL_FLAGS_517 | (MFD_HUGE_MASK << MFD_HUGE_SHIFT), 32),
                 bv(MFD_ALL_FLAGS_517, 32))
    return fail("EINVAL", when=(flags & ~allowed) != 0, label="unknown_flags",
                why="memfd_create(): bits outside MFD_ALL_FLAGS (no NOEXEC_SEAL/EXEC before 6.3)")


def create_ok_517(s: StateView, flags: E) -> Rule:
    giga = flags.has(MFD_HUGETLB) & ((flags & (MFD_HUGE_MASK << MFD_HUGE_SHIFT))
                                     == HUGE_LOG_1G << MFD_HUGE_SHIFT)
    return ok(0, exists=1, hugetlb=If(flags.has(MFD_HUGETLB), 1, 0), fd_rw=1, mode=0o777,
              huge_1g=If(giga, 1, 0), hstate_1g=0,
              seals=If(flags.has(MFD_ALLOW_SEALING), 0, F_SEAL_SEAL), origin=O_MEMFD,
              **as_updates(s.with_flag("NORESERVE", True, site="shmem_file_setup")),
              why="shmem_file_setup(name, 0, VM_NORESERVE); F_SEAL_SEAL unless ALLOW_SEALING")


def add_seals_bits_517(s: StateView, seals: E) -> Rule:
    return fail("EINVAL", when=(seals & ~F_ALL_SEALS_517) != 0, label="invalid_bits",
                why="seals & ~F_ALL_SEALS (no F_SEAL_EXEC before 6.3)")


def adds_write_517(s: StateView, seals: E) -> E:
    return seals.has(F_SEAL_WRITE) & ~s.seals.has(F_SEAL_WRITE)


def mmap_seal_517(s: StateView, fd: E, share: E, prot: E) -> Rule:
    """mmap_region(): mapping_map_writable() for every VM_SHARED mapping (EPERM once
    F_SEAL_WRITE made i_mmap_writable negative), then shmem_mmap()'s
    seal_check_future_write()."""
    shared_vma = (share == SHARED) & (fd == 0)
    future = prot_writes(prot) & s.seals.has(F_SEAL_FUTURE_WRITE)
    return fail("EPERM", when=shared_vma & (s.seals.has(F_SEAL_WRITE) | future),
                label="write_seal", why="pre-6.7: any VM_SHARED mapping of a WRITE-sealed file")


# ---- the flags-word paths -------------------------------------------------------------------
def shmget_body(s: StateView, noreserve: E) -> list[Rule]:
    """newseg(): VM_NORESERVE only for SHM_NORESERVE when overcommit is not "never", then
    shmem_kernel_file_setup() -> shmem_acct_size() pre-accounts the whole segment otherwise."""
    nores = (noreserve == 1) & ~s.commit_full  # commit_full models overcommit_memory=2
    return [requires(~s.exists, label="one_inode"),
            fail("ENOMEM", when=~nores & s.commit_full, label="acct_size",
                 why="shmem_acct_size(): !VM_NORESERVE and the commit limit is reached"),
            ok(0, exists=1, origin=O_SYSV, size=PAGE_SIZE, seals=F_SEAL_SEAL,
               **as_updates(s.with_flag("NORESERVE", nores, site="newseg")))]


def shmctl_body(s: StateView, cmd: E) -> list[Rule]:
    """shmctl(SHM_LOCK/SHM_UNLOCK) -> shmem_lock(): user_shm_lock() charge (root: always),
    VM_LOCKED and mapping_set_unevictable(), or the reverse."""
    lock = cmd == 0
    locked = s.flag("LOCKED", site="shmem_lock")
    return [
        requires(s.origin == O_SYSV, label="has_shmid",
                 why="only a SysV segment has a shmid: a memfd can never be SHM_LOCKed"),
        ok(0, when=lock & ~locked, label="lock", unevictable=1,
           **as_updates(s.with_flag("LOCKED", True, site="shmem_lock"))),
        ok(0, when=~lock & locked, label="unlock", unevictable=0,
           **as_updates(s.with_flag("LOCKED", False, site="shmem_lock"))),
        ok(0, label="no_change"),
    ]


def reclaim_body(s: StateView, lru: E) -> list[Rule]:
    """Memory reclaim meets a page of the file. On the unevictable LRU it is skipped; a page
    still on an evictable LRU (it was there before the mapping became unevictable) goes to
    shmem_writepage(), which redirties VM_LOCKED pages instead of swapping them."""
    return [
        requires(s.exists & (s.size > 0) & ~s.hugetlb, label="has_shmem_page",
                 why="hugetlbfs pages are never swapped; nothing to reclaim in an empty file"),
        requires((lru == LRU_EVICTABLE) | s.unevictable, label="lru_consistent"),
        ok(RECLAIM_UNEVICTABLE, when=lru == LRU_UNEVICTABLE, label="unevictable_lru"),
        ok(RECLAIM_REDIRTIED, when=s.flag("LOCKED", site="writepage"), label="redirty_locked",
           why="shmem_writepage(): info->flags & VM_LOCKED"),
        ok(RECLAIM_SWAPPED, label="swapped"),
    ]


def migrate_body(s: StateView) -> list[Rule]:
    """Compaction/migration meets a page: unmovable allocations are never migrated."""
    return [requires(s.exists & (s.size > 0), label="has_page"),
            ok(MIGRATE_REFUSED, when=s.unmovable, label="unmovable"),
            ok(MIGRATED, label="migrated")]




RECLAIM_NOTE = {RECLAIM_SWAPPED: "swapped", RECLAIM_REDIRTIED: "redirtied",
                RECLAIM_UNEVICTABLE: "unevictable LRU"}

FLAG_ACTIONS = (
    Action("shmget", (Param("noreserve", boolean(), (0, 1)),), shmget_body, "shmget",
           (C("IPC_PRIVATE"), C("4096"),
            Choice("noreserve", {0: "IPC_CREAT|0600", 1: "IPC_CREAT|SHM_NORESERVE|0600"})),
           "create a SysV segment of one page"),
    Action("shmctl", (Param("cmd", enum("SHM_LOCK", "SHM_UNLOCK"), (0, 1)),), shmctl_body,
           "shmctl", (C("0"), Choice("cmd", {0: "SHM_LOCK", 1: "SHM_UNLOCK"}), C("NULL")),
           "SHM_LOCK / SHM_UNLOCK"),
    Action("reclaim", (Param("lru", enum("evictable", "unevictable"), (0, 1)),), reclaim_body,
           "reclaim", (Choice("lru", {0: "LRU_EVICTABLE", 1: "LRU_UNEVICTABLE"}),),
           "memory pressure reaches a page of the file",
           note=lambda v: RECLAIM_NOTE.get(v)),
    Action("migrate", (), lambda s: migrate_body(s), "migrate", (),
           "compaction tries to migrate a page of the file",
           note=lambda v: "refused: unmovable" if v == MIGRATE_REFUSED else "migrated"),
)


def with_flags_word(d: Design, name: str, doc: str) -> Design:
    """The flags-word paths added to a memfd design (used by memfd@5.17)."""
    return d.derive(
        name, doc, fields=FLAG_FIELDS, layout=LAYOUT_VM, add=FLAG_ACTIONS,
        init={"commit_full": (0, 1)}, families=("flags",),
        edit={"shm_create": lambda a: a.amend_rule("create", tmpfs_flags)})


def tmpfs_flags(s: StateView) -> dict[str, E | int]:
    """A tmpfs file's creation (memfd_open.py shm_create): shmem_mknod() ->
    __shmem_get_inode(..., VM_NORESERVE)."""
    return {"origin": O_TMPFS,
            **as_updates(s.with_flag("NORESERVE", True, site="shmem_mknod"))}


#: Before 6.3 (105ff5339f49 "mm/memfd: add MFD_NOEXEC_SEAL and MFD_EXEC", 6fd7353829ca
#: "mm/memfd: add F_SEAL_EXEC"): memfd_create() refuses MFD_NOEXEC_SEAL/MFD_EXEC as unknown
#: flags (so every memfd is 0777 and vm.memfd_noexec is never read), F_ADD_SEALS refuses
#: F_SEAL_EXEC, fchmod() checks no exec seal. With those refused, 6.18's other rules of these
#: calls give the pre-6.3 outcomes (no F_SEAL_EXEC is ever set, so nothing is implied by it).
#: Shared by memfd@5.17 and memfd@6.1 (memfd_kernels.py).
PRE_EXEC_EDITS: dict[str, Callable[[Action], Action]] = {
    "memfd_create": lambda a: with_vocabulary(
        a.replace_rule("unknown_flags", create_flags_517)
        .drop_rule("exec_and_noexec").drop_rule("noexec_enforced"), "flags", MFD_FLAGS_517),
    "fcntl_add_seals": lambda a: with_vocabulary(a, "seals", SEALS_517)
    .replace_rule("invalid_bits", add_seals_bits_517),
    "fchmod": lambda a: a.drop_rule("exec_seal"),
}


@register("memfd@5.17")
def build() -> Design:
    base = get("memfd")
    d = base.derive(
        "memfd@5.17", "memfd/shmem as in Linux 5.17, with the shmem inode flags word",
        kernel=None, init={"noexec_scope": 0},
        # FOLL_FORCE writes (/proc/self/mem) are not modelled for 5.17: 5.16-5.19 had B5
        # (CVE-2022-2590, a race with UFFDIO_CONTINUE: the corpus's B5-broken), and the
        # hugetlbfs FOLL_FORCE rules of that time were not re-read; nor were 5.17's madvise()
        # advice set (MADV_DONTNEED_LOCKED is 5.18), process_vm_writev(), splice(),
        # copy_file_range() and sendfile() into a memfd (5.19 reworked copy_file_range's splice
        # fallback) and the vectored calls (pwritev2()/preadv2()'s RWF_* set): those 6.18
        # paths are left out of the historical designs rather than assumed. tmpfs took
        # FS_IOC_SETFLAGS in 6.0 (e408e695f5f1): 5.17's shmem has no ->fileattr_set (ENOTTY),
        # dropped likewise, and file_getattr()/file_setattr() are v6.17; udmabuf
        # (memfd_pin_folios() is 6.11) likewise
        drop=("mem_write", "madvise", "vm_write", "splice_write", "copy_file_range", "sendfile",
              "udmabuf",
              "pwritev2", "preadv2", "pwritev2_fpos", "preadv2_fpos", "pwritev", "preadv",
              "writev", "readv", "fs_setflags", "fs_getflags", "fs_setxattr",
              "fs_getxattr", "file_setattr", "file_getattr",
              # the one tmpfs path the historical designs had is the creation (shmem_mknod()'s
              # VM_NORESERVE, below); the name's later life (open by name, unlink()) is
              # 6.18's, not re-read for 5.17
              "shm_open", "unlink"),
        drop_fields=FSFLAG_FIELDS,
        edit={
            "shm_create": lambda a: a.with_params(oflags=(EX_RDWR,)),
            "memfd_create": lambda a: PRE_EXEC_EDITS["memfd_create"](a)
            .replace_rule("ok", create_ok_517),
            "fcntl_add_seals": lambda a: PRE_EXEC_EDITS["fcntl_add_seals"](a)
            .replace_rule("deny_writable", lambda s, seals: fail(
                "EBUSY", when=adds_write_517(s, seals) & (writable_maps(s) > 0),
                label="deny_writable", why="mapping_deny_writable()"))
            .replace_rule("wait_for_pins", lambda s, seals: fail(
                "EBUSY", when=adds_write_517(s, seals) & (pins(s) > 0), label="wait_for_pins",
                why="memfd_wait_for_pins()"))
            .replace_rule("ok", lambda s, seals: ok(0, seals=s.seals | seals)),
            "fchmod": PRE_EXEC_EDITS["fchmod"],
            "mmap": lambda a: a.replace_rule("write_seal", mmap_seal_517),
            "madvise_remove": lambda a: a.replace_rule("not_shared_maywrite", lambda s, m: fail(
                "EACCES", unless=m == SH_RW, label="not_shared_maywrite",
                why="madvise_remove() before 6.7 (\"mm: drop the assumption that VM_SHARED "
                    "always implies writable\"): VM_SHARED and VM_WRITE")),
        })
    return with_flags_word(d, "memfd@5.17", d.doc)


__all__ = ["FD_FIELDS", "F_SEAL_FUTURE_WRITE", "MAP_FIELDS", "PAGE_SIZE", "SH_RO", "SH_RO_MW",
           "SH_RW", "bump", "write_sealed"]
