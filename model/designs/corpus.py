"""The bug corpus: each historical bug as a `<id>-broken` / `<id>-fixed` pair of designs.

Each pair is a small delta on the base the bug belongs to (traces/scenarios/corpus/README.md):

- B1  05f65b5c7090 "shm: wait for pins to be released when sealing": broken drops the
      memfd_wait_for_pins() rule of memfd_add_seals(); fixed is mainline.
- B2  05d351102dbe "mm, memfd: fix COW issue on MAP_PRIVATE and F_SEAL_FUTURE_WRITE mappings":
      mainline plus a model of fork() of a private mapping (`with_cow`); broken clears
      VM_MAYWRITE on *private* mappings of a FUTURE_WRITE-sealed shmem file, so
      is_cow_mapping() is false and fork() leaves the anonymous page writable in both.
- B3  22247efd822e "mm/hugetlb: fix F_SEAL_FUTURE_WRITE": broken has hugetlbfs_file_mmap()
      ignore F_SEAL_FUTURE_WRITE (no EPERM, VM_MAYWRITE kept); fixed is mainline.
- B5  5535be309971 "mm/gup: fix FOLL_FORCE COW security issue and remove FOLL_COW"
      (CVE-2022-2590): broken lets a FOLL_FORCE write (/proc/self/mem) through a read-only
      private shmem mapping land in the page cache, the outcome of the race with
      UFFDIO_CONTINUE (abstracted: the model has no userfaultfd, so the race's winning
      interleaving is the only one); fixed is mainline.
- B9  e8e17ee90eaf/28464bbb2ddc/158978945f31 (6.7): broken is memfd@5.17, whose
      mapping_map_writable() refused every VM_SHARED mapping of a WRITE-sealed file; fixed is
      memfd@5.17 with mainline's memfd_check_seals_mmap() rule.
- B12 3b041514cb6e "memfd: deny writeable mappings when implying SEAL_WRITE": broken checks
      mapping_deny_writable()/memfd_wait_for_pins() against the *requested* seals, before the
      F_SEAL_EXEC implication; fixed is mainline.
- B15 (unreported): broken is mainline (hugetlbfs_setattr() ignores F_SEAL_EXEC); fixed is the
      one-rule patch making hugetlbfs_setattr() check it as shmem_setattr() does.
- G1  "KVM: Make KVM_MEM_GUEST_MEMFD mutually exclusive with KVM_MEM_READONLY": broken is
      guest_memfd@6.8-rc, fixed is guest_memfd.
- L1  00d0b372374f "liveupdate: prevent double management of files": broken is memfd+luo
      without luo_preserve_file()'s EBUSY (no luo_preserved_files xarray: one memfd preserved
      in two sessions); fixed is memfd+luo. Source-read: no kernel here has CONFIG_LIVEUPDATE.

Each design's only property family is `corpus-<id>` (properties/corpus.py registers the pair's
property there), so `shmemcheck check` runs exactly the pair's property on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

# the designs the corpus derives from register first, so `shmemcheck list` shows the corpus last
from model.designs import (  # noqa: F401
    get,
    guest_memfd,
    memfd_517,
    memfd_luo,
    register,
    v5_inaccessible,
)
from model.designs.memfd import (
    CHG_MAP,
    MAPK,
    PR_RO,
    PR_RW,
    SH_RO,
    SH_RO_MW,
    SH_RW,
    SHARED,
    adds_write,
    have_map,
    past_eof,
    pins,
    prot_writes,
    writable_maps,
    write_sealed,
)
from model.lang import (
    Action,
    Design,
    E,
    Field,
    If,
    Param,
    boolean,
    fail,
    nat,
    ok,
    requires,
    signal,
)
from model.lang.action import Rule, as_updates
from model.lang.callspec import C, MapRef
from model.lang.schema import StateView
from model.vocab import F_SEAL_EXEC, F_SEAL_FUTURE_WRITE, F_SEAL_WRITE

BUGS = ("B1", "B2", "B3", "B5", "B9", "B12", "B15", "G1", "L1")

#: effect bit of the B2 designs: a store through a private mapping reached another process
CHG_PEER = 8


def family(bug: str) -> str:
    """The property family of bug `bug`'s two designs."""
    return f"corpus-{bug}"


#: the /dev/shm calls (model/designs/memfd_open.py): every corpus bug is a memfd's, and a
#: second way to make the file would only widen each pair's search
TMPFS_CALLS = ("shm_create", "shm_open", "unlink")


def _pair(d: Design, bug: str) -> Design:
    """`d` as a corpus design: its only property family is the pair's; no tmpfs calls."""
    return replace(d, families=(family(bug),),
                   actions=tuple(a for a in d.actions if a.name not in TMPFS_CALLS))


def _derive(base: str, name: str, doc: str, **delta: object) -> Design:
    bug = name.split("-")[0]
    return _pair(get(base).derive(name, doc, **delta), bug)  # type: ignore[arg-type]


# ---- B1: F_SEAL_WRITE without memfd_wait_for_pins() ---------------------------------------
@register("B1-broken")
def b1_broken() -> Design:
    return _derive("memfd", "B1-broken", "mainline without memfd_wait_for_pins(): F_SEAL_WRITE "
                   "ignores held page references (the 2014 review of the sealing series)",
                   edit={"fcntl_add_seals": lambda a: a.drop_rule("wait_for_pins")})


@register("B1-fixed")
def b1_fixed() -> Design:
    return _derive("memfd", "B1-fixed", "mainline (05f65b5c7090: wait for pins when sealing)",
                   kernel="6.18")


# ---- B2: fork() of a private mapping of a FUTURE_WRITE-sealed file ----------------------------
COW_FIELDS = (
    Field("pr_nomw", boolean(), "the private writable mapping lacks VM_MAYWRITE "
          "(!is_cow_mapping())", ghost=True),
    Field("pr_anon", boolean(), "the private writable mapping has its own anonymous copy of "
          "the page (the parent stored through it: a COW fault)", ghost=True),
    Field("cow_shared", boolean(), "parent and child map that anonymous page writable, not "
          "write-protected (fork() of a non-COW mapping)", ghost=True),
    Field("forked", boolean(), "the process has forked a child holding a copy of its "
          "private writable mapping (one fork per model)", ghost=True),
)


def _forget_private(s: StateView, gone: E) -> dict[str, E]:
    """The private writable mapping's ghost state, reset where `gone` holds."""
    return {"pr_nomw": If(gone, 0, s.pr_nomw), "pr_anon": If(gone, 0, s.pr_anon),
            "cow_shared": If(gone, 0, s.cow_shared)}


def _zapped(s: StateView) -> dict[str, E]:
    """truncate_pagecache() -> unmap_mapping_range(..., even_cows=1) zaps private COW pages
    past the new end: the one modelled page goes when the file shrinks to 0. (An amendment:
    `s.size` is the size the rule leaves; a private copy exists only while size > 0.)"""
    z = s.size == 0
    return {"pr_anon": If(z, 0, s.pr_anon), "cow_shared": If(z, 0, s.cow_shared)}


def _one_private_rw(s: StateView, share: E, prot: E) -> Rule:
    return requires(~((share != SHARED) & prot_writes(prot) & (s.map_pr_rw > 0)),
                    label="one_private_rw",
                    why="the B2 designs hold one private writable mapping at a time, so the "
                        "ghost VM_MAYWRITE of `the` private mapping is exact")


def _peer_store(s: StateView, m: E, off: E) -> Rule:
    return ok(0, when=(m == PR_RW) & s.cow_shared, label="peer_store", effects=CHG_PEER,
              pr_anon=1, why="the private page fork() left writable in both processes: the "
                             "other process sees the store")


def _private_copy(s: StateView, m: E, off: E) -> dict[str, E]:
    """A store through the private writable mapping leaves an anonymous copy (COW fault)."""
    return {"pr_anon": If(m == PR_RW, 1, s.pr_anon)}


def fork_body(s: StateView) -> list[Rule]:
    """fork() -> dup_mmap() -> copy_page_range() -> copy_present_pte(): the anonymous page of
    a private mapping is write-protected in both processes only if is_cow_mapping()."""
    return [
        requires(s.exists & (s.map_pr_rw > 0) & ~s.forked, label="has_private_rw",
                 why="fork is modelled for a process holding a private writable mapping"),
        ok(0, forked=1, cow_shared=If(s.pr_anon & s.pr_nomw, 1, 0)),
    ]


def child_store_body(s: StateView, m: E) -> list[Rule]:
    """The child stores through its copy of the private writable mapping."""
    return [
        requires(s.forked & (m == PR_RW), label="child_has_map",
                 why="the child's copy of the parent's private writable mapping"),
        have_map(s, m),
        signal("SIGBUS", when=past_eof(s), label="past_eof"),
        ok(0, effects=If(s.cow_shared, CHG_PEER, 0),
           why="a COW fault gives the child its own page, unless the PTE was left writable"),
    ]


COW_ACTIONS = (
    Action("fork", (), lambda s: fork_body(s), "fork", (), "fork the process (a child "
           "inherits the mappings)"),
    Action("child_store", (Param("m", MAPK, (PR_RW,)),), child_store_body, "child_store",
           (MapRef("m"), C("0")), "the child stores one byte through its copy of a mapping"),
)


def _private_mprotect(s: StateView, m: E) -> Rule:
    return requires((m == SH_RW) | (m == SH_RO_MW) | (m == SH_RO), label="shared_only",
                    why="mprotect of private mappings is left out of the B2 designs (it would "
                        "move the ghost VM_MAYWRITE between private kinds)")


def with_cow(d: Design, name: str, doc: str,
             mmap: Callable[[Action], Action] = lambda a: a) -> Design:
    """`d` with fork() of a private writable mapping and the child's stores (bug B2); `mmap`
    is a further delta on the mmap action."""
    return d.derive(
        name, doc, fields=COW_FIELDS, add=COW_ACTIONS, effects=("CHG_PEER",),
        # their fork is `fork` above (one private writable mapping, its ghost COW state);
        # mainline's per-mapping fork_vma would make a second one
        drop=("fork_vma",),
        edit={
            "mmap": lambda a: mmap(a.insert_rule(_one_private_rw, before="have_fd")),
            "mprotect": lambda a: a.insert_rule(_private_mprotect, after="have_map"),
            "store": lambda a: a.insert_rule(_peer_store, before="ok")
            .amend_rule("ok", _private_copy),
            "munmap": lambda a: a.amend_rule("ok", lambda s, m: _forget_private(s, m == PR_RW)),
            "ftruncate": lambda a: a.amend_rule("ok", _zapped),
            "reopen": lambda a: a.amend_rule("ok", _zapped),
        })


def _b2_maywrite(s: StateView, share: E, prot: E) -> dict[str, E]:
    """Before 05d351102dbe shmem_mmap() cleared VM_MAYWRITE on every mapping of a
    FUTURE_WRITE-sealed file, private ones included (hugetlbfs did not look: bug B3)."""
    private_rw = (share != SHARED) & prot_writes(prot)
    return {"pr_nomw": If(private_rw & ~s.hugetlb & s.seals.has(F_SEAL_FUTURE_WRITE), 1,
                          s.pr_nomw)}


@register("B2-broken")
def b2_broken() -> Design:
    return _pair(with_cow(get("memfd"), "B2-broken", "mainline + fork, with ab3948f58ff8's "
                          "shmem_mmap(): F_SEAL_FUTURE_WRITE clears VM_MAYWRITE on private "
                          "mappings too", mmap=lambda a: a.amend_rule("ok", _b2_maywrite)),
                 "B2")


@register("B2-fixed")
def b2_fixed() -> Design:
    return _pair(with_cow(get("memfd"), "B2-fixed", "mainline + fork (05d351102dbe: "
                          "VM_MAYWRITE cleared on shared mappings only)"), "B2")


# ---- B3: hugetlbfs_file_mmap() ignored F_SEAL_FUTURE_WRITE -------------------------------------
def _b3_sealed(s: StateView) -> E:
    """What the mmap path checked before 22247efd822e: F_SEAL_WRITE everywhere (through
    i_mmap_writable), F_SEAL_FUTURE_WRITE in shmem_mmap() only."""
    return s.seals.has(F_SEAL_WRITE) | (~s.hugetlb & s.seals.has(F_SEAL_FUTURE_WRITE))


def _b3_write_seal(s: StateView, fd: E, share: E, prot: E) -> Rule:
    shared_vma = (share == SHARED) & (fd == 0)
    return fail("EPERM", when=shared_vma & prot_writes(prot) & _b3_sealed(s), label="write_seal",
                why="shmem_mmap()'s seal_check_future_write(); hugetlbfs_file_mmap() none")


def _b3_maywrite(s: StateView, fd: E, share: E, prot: E) -> dict[str, E]:
    """hugetlbfs_file_mmap() did not clear VM_MAYWRITE on a read-only shared map of a
    FUTURE_WRITE-sealed file: it counts as `sh_ro_mw` (upgradable), not `sh_ro`. An amendment
    of mainline's ok rule: `s.map_*` are the counts after that rule added the mapping."""
    kept = ((share == SHARED) & (fd == 0) & ~prot_writes(prot) & s.hugetlb
            & s.seals.has(F_SEAL_FUTURE_WRITE) & ~s.seals.has(F_SEAL_WRITE))
    return {"map_sh_ro": If(kept, s.map_sh_ro - 1, s.map_sh_ro),
            "map_sh_ro_mw": If(kept, s.map_sh_ro_mw + 1, s.map_sh_ro_mw)}


@register("B3-broken")
def b3_broken() -> Design:
    return _derive("memfd", "B3-broken", "mainline with hugetlbfs_file_mmap() ignoring "
                   "F_SEAL_FUTURE_WRITE (v5.1 until 22247efd822e, v5.13-rc2)",
                   edit={"mmap": lambda a: a.replace_rule("write_seal", _b3_write_seal)
                         .amend_rule("ok", _b3_maywrite)})


@register("B3-fixed")
def b3_fixed() -> Design:
    return _derive("memfd", "B3-fixed", "mainline (22247efd822e: seal_check_future_write() for "
                   "hugetlbfs too; memfd_check_seals_mmap() since 6.13)", kernel="6.18")


# ---- B9: F_SEAL_WRITE refused read-only shared mappings before 6.7 ----------------------------
def _b9_write_seal(s: StateView, fd: E, share: E, prot: E) -> Rule:
    shared_vma = (share == SHARED) & (fd == 0)
    return fail("EPERM", when=shared_vma & prot_writes(prot) & write_sealed(s), label="write_seal",
                why="6.7: only VM_SHARED|VM_MAYWRITE counts in i_mmap_writable, and a RO "
                    "shared map of a write-sealed file loses VM_MAYWRITE")


@register("B9-broken")
def b9_broken() -> Design:
    return _derive("memfd@5.17", "B9-broken", "memfd@5.17: mapping_map_writable() for every "
                   "VM_SHARED mapping refuses read-only ones once F_SEAL_WRITE is set")


@register("B9-fixed")
def b9_fixed() -> Design:
    return _derive("memfd@5.17", "B9-fixed", "memfd@5.17 with the 6.7 series (e8e17ee90eaf, "
                   "28464bbb2ddc, 158978945f31): read-only shared maps of WRITE-sealed files",
                   edit={"mmap": lambda a: a.replace_rule("write_seal", _b9_write_seal)})


# ---- B12: F_SEAL_EXEC's implied F_SEAL_WRITE skipped the mapping and pin checks ---------------
def _b12_deny(s: StateView, seals: E) -> Rule:
    return fail("EBUSY", when=adds_write(s, seals) & (writable_maps(s) > 0),
                label="deny_writable", why="mapping_deny_writable(), for the requested seals "
                "only: the EXEC implication came after it (c4f75bc8bd6b)")


def _b12_pins(s: StateView, seals: E) -> Rule:
    return fail("EBUSY", when=adds_write(s, seals) & (pins(s) > 0), label="wait_for_pins",
                why="memfd_wait_for_pins(), for the requested seals only")


@register("B12-broken")
def b12_broken() -> Design:
    return _derive("memfd", "B12-broken", "mainline with F_SEAL_EXEC's W^X implication applied "
                   "after the F_SEAL_WRITE checks (c4f75bc8bd6b, v6.3, until 3b041514cb6e)",
                   edit={"fcntl_add_seals": lambda a: a.replace_rule("deny_writable", _b12_deny)
                         .replace_rule("wait_for_pins", _b12_pins)})


@register("B12-fixed")
def b12_fixed() -> Design:
    return _derive("memfd", "B12-fixed", "mainline (3b041514cb6e: deny writable mappings when "
                   "implying SEAL_WRITE)", kernel="6.18")


# ---- B5: a FOLL_FORCE write through a read-only private mapping reaches the page cache ----
def _b5_force_ok(s: StateView, m: E, off: E) -> Rule:
    return ok(1, effects=If((m == SH_RW) | ((m == PR_RO) & ~s.hugetlb), CHG_MAP, 0),
              label="ok", why="5.16-5.19: GUP's FOLL_COW accepted the dirty read-only PTE "
              "UFFDIO_CONTINUE installed for the page-cache page, and wrote into it")


@register("B5-broken")
def b5_broken() -> Design:
    return _derive("memfd", "B5-broken", "mainline with the FOLL_FORCE path of 5.16-5.19 "
                   "(9ae0f87d009c to 5535be309971): a write through /proc/self/mem into a "
                   "read-only private shmem mapping may reach the page cache (CVE-2022-2590)",
                   edit={"mem_write": lambda a: a.replace_rule("ok", _b5_force_ok)})


@register("B5-fixed")
def b5_fixed() -> Design:
    return _derive("memfd", "B5-fixed", "mainline (5535be309971: FOLL_FORCE writes only into "
                   "exclusive anonymous pages of private mappings)", kernel="6.18")


# ---- B15: hugetlbfs_setattr() ignores F_SEAL_EXEC ---------------------------------------------
def _b15_exec_seal(s: StateView, mode: E) -> Rule:
    return fail("EPERM", when=s.seals.has(F_SEAL_EXEC) & ((s.mode ^ mode) & 0o111 != 0),
                label="exec_seal", why="shmem_setattr() and, with the fix, hugetlbfs_setattr()")


@register("B15-broken")
def b15_broken() -> Design:
    return _derive("memfd", "B15-broken", "mainline: hugetlbfs_setattr() does not check "
                   "F_SEAL_EXEC (6.3 to 6.18.44)", kernel="6.18")


@register("B15-fixed")
def b15_fixed() -> Design:
    return _derive("memfd", "B15-fixed", "mainline with hugetlbfs_setattr() enforcing "
                   "F_SEAL_EXEC (the patch examples/whatif-noexec-no-fchmod-on-hugetlbfs.py "
                   "proposes)", edit={"fchmod": lambda a: a.replace_rule("exec_seal",
                                                                          _b15_exec_seal)})


# ---- G1: read-only guest_memfd memslots --------------------------------------------------------
@register("G1-broken")
def g1_broken() -> Design:
    return _derive("guest_memfd@6.8-rc", "G1-broken", "guest_memfd@6.8-rc: KVM_MEM_READONLY "
                   "memslots backed by a guest_memfd accepted (a7800aa80ea4)")


@register("G1-fixed")
def g1_fixed() -> Design:
    return _derive("guest_memfd", "G1-fixed", "guest_memfd (KVM_MEM_GUEST_MEMFD and "
                   "KVM_MEM_READONLY mutually exclusive)", kernel="6.18")


# ---- L1: one memfd preserved by two LUO sessions ------------------------------------------------
L1_FIELDS = (
    Field("luo_n", nat(fixed=2), "preservations of the inode held by LUO sessions: before "
          "00d0b372374f nothing stopped a second"),
    Field("luo_s2", boolean(), "one of them is held by a second session (SESSION2)"),
)


def _preserve2_once(s: StateView, fd: E) -> Rule:
    return requires(~s.luo_s2, label="session2_once",
                    why="the second session preserves the memfd at most once (a bound)")


def _s2(s: StateView) -> E:
    """The second session's preservations (0 or 1)."""
    return If(s.luo_s2, 1, 0)


def _own_session(s: StateView) -> Rule:
    return requires((s.luo_phase == memfd_luo.LIVE) & (s.luo_n > _s2(s)),
                    label="preserved", why="this session holds a preservation")


def _close_session(s: StateView, left: E, more: Mapping[str, E | int] | None = None) -> Rule:
    """Closing a session: luo_file_unpreserve_files() -> memfd_luo_unpreserve() for each of its
    preservations: shmem_freeze(false) clears SHMEM_F_MAPPING_FROZEN (a bit, not a count) and
    unpin_folio() drops that preservation's own pins; `left` preservations (the other
    session's) keep theirs; the serialization's copies (luo_seals, luo_mode) go with the
    last one."""
    updates: dict[str, E | int] = {
        "luo_n": left, "luo_pin": If(left > 0, s.luo_pin, 0),
        **memfd_luo.serialization_left(s, left), **(more or {})}
    updates.update(s.with_flag("MAPPING_FROZEN", False, site="shmem_freeze"))
    return ok(0, **as_updates(updates))


def _unpreserve2_body(s: StateView) -> list[Rule]:
    return [requires((s.luo_phase == memfd_luo.LIVE) & s.luo_s2, label="preserved"),
            _close_session(s, s.luo_n - 1, {"luo_s2": 0})]


def with_two_sessions(name: str, doc: str, fixed: bool) -> Design:
    """memfd+luo with a second LUO session (SESSION2) that can preserve the memfd too; closing
    a session unpreserves that session's preservations only. `fixed`: luo_preserve_file()'s
    EBUSY for an inode already in luo_preserved_files (00d0b372374f), for either session."""
    base = get("memfd+luo")
    pres = base.action("luo_preserve")
    if not fixed:
        pres = pres.drop_rule("already_managed")
    pres2 = replace(pres, name="luo_preserve2",
                    args=(C("SESSION2"), *pres.args[1:]),
                    doc="preserve the memfd in a second LUO session")
    pres2 = pres2.insert_rule(_preserve2_once, before="have_fd").amend_rule(
        "ok", lambda s, fd: {"luo_s2": 1})
    close2 = Action("luo_unpreserve2", (), _unpreserve2_body, "close", (C("SESSION2"),),
                    "close the second session before the reboot")
    # the bug needs no mapping or pin of the process (the preservation's pins are luo_pin):
    # at memfd+luo's scope the broken design has 86.5 M states (200 s), here far fewer; nor
    # chattr, which no rule of luo reads (and whose two bits the state has no room for;
    # memfd+luo has already dropped FS_IOC_GETFLAGS and its two)
    return _derive("memfd+luo", name, doc, fields=L1_FIELDS, add=(pres2, close2),
                   drop=("fs_setflags", "fs_setxattr", "file_setattr"),
                   drop_fields=("s_immutable", "s_append"),
                   default_scope={"maps": 0, "pins": 0},
                   edit={"luo_preserve": lambda a: pres,
                         "luo_unpreserve": lambda a: a.replace_rule("preserved", _own_session)
                         .replace_rule("ok", lambda s: _close_session(s, _s2(s))),
                         "luo_kexec": lambda a: a.amend_rule("ok", lambda s: {"luo_s2": 0})})


@register("L1-broken")
def l1_broken() -> Design:
    return with_two_sessions("L1-broken", "memfd+luo with two sessions, before 00d0b372374f: "
                             "luo_preserve_file() does not look for the inode in "
                             "luo_preserved_files, so both sessions preserve the memfd, and "
                             "closing either unfreezes it", fixed=False)


@register("L1-fixed")
def l1_fixed() -> Design:
    return with_two_sessions("L1-fixed", "memfd+luo with two sessions (00d0b372374f: a second "
                             "preservation of the inode is EBUSY)", fixed=True)


__all__ = ["BUGS", "CHG_PEER", "COW_ACTIONS", "COW_FIELDS", "family", "with_cow"]
