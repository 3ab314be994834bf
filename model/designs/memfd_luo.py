"""The seed's flags word as it landed, and what it landed for: memfd preservation across a
live update (issue 18). Source-read: no kernel available here has CONFIG_LIVEUPDATE.

`memfd+flags` -- the memfd design (6.18 rules) with shmem's inode flags word and every path
that writes or reads it (memfd_517.with_flags_word: memfd_create, tmpfs, SysV shmget/shmctl,
accounting, reclaim), laid out as 6ff1610ced56 "mm: shmem: use SHMEM_F_* flags instead of
VM_* flags" (Pratyush Yadav, v6.19) has it: SHMEM_F_NORESERVE BIT(0), SHMEM_F_LOCKED BIT(1)
in shmem_inode_info.flags, where 6.18 kept VM_NORESERVE and VM_LOCKED ("No functional changes
intended": examples/flags-as-6.18.py is the 6.18 layout, and `shmemcheck diff` compares them).
memfd_create() -> memfd_alloc_file() -> shmem_file_setup(name, 0, VM_NORESERVE) ->
__shmem_get_inode(): info->flags = SHMEM_F_NORESERVE.

`memfd+luo` -- memfd+flags plus e165e2a2577b "mm: shmem: allow freezing inode mapping"
(SHMEM_F_MAPPING_FROZEN BIT(2), set and cleared only by shmem_freeze() from mm/memfd_luo.c)
and b3749f174d68 "mm: memfd_luo: allow preserving memfd" with the fixes through 7.1, read
from linux-mm's mm/memfd_luo.c (fb2257f1, seals preserved) and kernel/liveupdate/luo_file.c:

- preserve (LIVEUPDATE_SESSION_PRESERVE_FD): luo_preserve_file(): no handler for a hugetlbfs
  file (memfd_luo_can_preserve(): shmem_file() && !i_nlink) -> ENOENT; the inode already
  managed by LUO (00d0b372374f "liveupdate: prevent double management of files": xa_insert()
  of memfd_luo_get_id(), the inode) -> EBUSY; then memfd_luo_preserve(): inode_lock,
  shmem_freeze(true), the seals checked against MEMFD_LUO_ALL_SEALS (every seal there is:
  unreachable), more than UINT_MAX pages -> EFBIG (the integer-overflow fix), then
  memfd_pin_folios() pins every page up to i_size, filling holes; an error unfreezes;
- while preserved: SHMEM_F_MAPPING_FROZEN refuses any size change in shmem_setattr() (after
  the seal checks), a write past i_size in shmem_write_begin() (after the seal checks) and
  every fallocate() mode in shmem_fallocate() (after its mode check; MADV_REMOVE included);
  the pins make F_SEAL_WRITE's memfd_wait_for_pins() give up (EBUSY; inferred from the code);
- closing the session before the reboot runs memfd_luo_unpreserve(): unfreeze, unpin;
- reboot(LINUX_REBOOT_CMD_KEXEC) serializes (memfd_luo_freeze() records f_pos) and the next
  kernel starts: every descriptor, mapping and pin of the old one is gone; the inode's size,
  seals and pages are what the preservation holds;
- retrieve (LIVEUPDATE_SESSION_RETRIEVE_FD): memfd_luo_retrieve(): memfd_alloc_file("",
  MFD_ALLOW_SEALING) -- mode 0777 (shmem_get_inode(S_IRWXUGO)), SHMEM_F_NORESERVE, O_RDWR --
  then memfd_add_seals(file, ser->seals) -- the seals recorded at preserve time
  (memfd_luo_freeze() records only f_pos: a seal added after the preserve is lost) -- which
  widens F_SEAL_EXEC to SHRINK|GROW|WRITE|FUTURE_WRITE on a mode with an x bit, then
  i_size_write(ser->size), then the folios;
- finish (LIVEUPDATE_SESSION_FINISH): LUO lets go of the file (or discards the folios of one
  never retrieved).

One inode, one preservation (one session); f_pos, tokens, session names and the folios'
dirty/uptodate flags are not modelled (NOTES.md LIMITATIONS).
"""

from __future__ import annotations

from typing import Any

from model.designs import get, register
from model.designs.memfd import (
    FD,
    FD_FIELDS,
    MAP_FIELDS,
    PIN_FIELDS,
    RW,
    SCHEMA,
    WRITE_PATHS,
    WX_SEALS,
    P,
    adds_write,
    have_fd,
    implied_seals,
    pins,
)
from model.designs.memfd_517 import O_MEMFD, with_flags_word
from model.designs.memfd_data import fills
from model.designs.memfd_open import open_how, truncates
from model.designs.memfd_rw import write_begin_refusal, written
from model.designs.memfd_state import FD_ALL, GETFLAGS_ONLY, fsflags_cleared
from model.lang import Action, Design, E, Field, If, boolean, enum, fail, nat, ok, requires, word
from model.lang.action import Rule, as_updates
from model.lang.callspec import C, Fd
from model.lang.schema import StateView
from model.vocab import F_SEAL_EXEC, F_SEAL_GROW, PAGE_SIZE, SEALS

SHMEM_F_NORESERVE, SHMEM_F_LOCKED, SHMEM_F_MAPPING_FROZEN = 0x1, 0x2, 0x4
SHMEM_F = {"SHMEM_F_NORESERVE": SHMEM_F_NORESERVE, "SHMEM_F_LOCKED": SHMEM_F_LOCKED}
IFLAGS_SHMEM_F = Field("iflags", word(2, SHMEM_F),
                       "shmem_inode_info.flags: SHMEM_F_* bits (6ff1610ced56, v6.19)")
LAYOUT_SHMEM_F = {"NORESERVE": ("iflags", SHMEM_F_NORESERVE),
                  "LOCKED": ("iflags", SHMEM_F_LOCKED)}


def create_ok_flags(s: StateView) -> dict[str, E | int]:
    """memfd_alloc_file() -> shmem_file_setup(name, 0, VM_NORESERVE) -> __shmem_get_inode():
    info->flags = SHMEM_F_NORESERVE."""
    return {"origin": O_MEMFD, **s.with_flag("NORESERVE", True, site="__shmem_get_inode")}


def with_mainline_flags(base: Design, name: str, doc: str) -> Design:
    """The flags-word paths on a mainline memfd design, memfd_create() setting NORESERVE."""
    d = with_flags_word(base, name, doc)
    return d.derive(name, doc, kernel=None, fields=(IFLAGS_SHMEM_F,), layout=LAYOUT_SHMEM_F,
                    edit={"memfd_create": lambda a: a.amend_rule("ok", create_ok_flags)})


@register("memfd+flags", on_request=True)
def build_flags() -> Design:
    return with_mainline_flags(
        get("memfd"), "memfd+flags",
        "memfd (6.18 rules) with shmem's inode flags word as v6.19 lays it out (SHMEM_F_*)")


# ---- memfd+luo ------------------------------------------------------------------------------
LIVE, KEXEC, RETRIEVED, DISCARDED = 0, 1, 2, 3
UINT_MAX = (1 << 32) - 1
IFLAGS_FROZEN = Field("iflags", word(3, {**SHMEM_F, "SHMEM_F_MAPPING_FROZEN":
                                         SHMEM_F_MAPPING_FROZEN}),
                      "shmem_inode_info.flags: SHMEM_F_* bits, MAPPING_FROZEN included")
LUO_FIELDS = (
    IFLAGS_FROZEN,
    Field("luo_n", nat(fixed=1), "preservations of the inode held by LUO sessions: at most "
          "one since 00d0b372374f (a second is EBUSY)"),
    Field("luo_phase", enum("live", "kexec", "retrieved", "discarded"), "live: the kernel "
          "that preserved it runs (or the file was retrieved and finished); kexec: the next "
          "kernel runs and the file is not retrieved yet; retrieved: retrieved, not finished "
          "(LUO still manages the inode); discarded: finished without a retrieve"),
    Field("luo_pin", boolean(), "memfd_pin_folios() pins of the preservation (every page up to "
          "i_size, holes filled)"),
    Field("luo_seals", word(6, SEALS), "ser->seals: the seal word when preserved (what the "
          "next kernel re-applies; memfd_luo_freeze() records only f_pos); 0 once the "
          "serialization is gone (unpreserve, retrieve, finish), so that states differing "
          "only in a dead copy are one state"),
    Field("luo_mode", word(9), "i_mode & 0777 when preserved (not preserved by LUO); 0 once "
          "the serialization is gone, as luo_seals", ghost=True),
)


def frozen(s: StateView, site: str) -> E:
    return s.flag("MAPPING_FROZEN", site=site)


def managed(s: StateView) -> E:
    """The inode is in luo_preserved_files: preserved, or retrieved and not finished."""
    return (s.luo_n > 0) | (s.luo_phase == RETRIEVED)


def serialization_left(s: StateView, left: E) -> dict[str, Any]:
    """luo_seals and luo_mode once `left` preservations remain and no kexec is pending: kept
    while one does, else 0 (the serialization is freed; nothing reads a stale copy, and
    states differing only in one would be distinct states: memfd+luo had 48 M, 23 M
    without)."""
    return as_updates({f: If(left > 0, s[f], 0) for f in ("luo_seals", "luo_mode")})


def preserve_body(s: StateView, fd: E) -> list[Rule]:
    """luo_preserve_file() then memfd_luo_preserve() (see the module's docstring)."""
    return [
        have_fd(s, fd),  # none after the kexec until the retrieve, none once discarded
        fail("ENOENT", when=s.hugetlb | s.linked, label="no_handler",
             why="memfd_luo_can_preserve(): shmem_file() && !i_nlink -- false on hugetlbfs, "
                 "and for a tmpfs file until unlink() (shmem_file_setup()'s memfds have no "
                 "link: clear_nlink())"),
        fail("EBUSY", when=managed(s), label="already_managed",
             why="luo_preserve_file(): xa_insert(&luo_preserved_files, inode) finds it"),
        fail("EFBIG", when=(s.size + PAGE_SIZE - 1) // PAGE_SIZE > UINT_MAX, label="too_large",
             why="memfd_luo_preserve(): more than UINT_MAX pages; shmem_freeze(false)"),
        ok(0, luo_n=s.luo_n + 1, luo_pin=If(s.size > 0, 1, s.luo_pin), luo_mode=s.mode,
           luo_seals=s.seals, **as_updates(fills(s, 0, s.size, keep_falloc=True)),
           **as_updates(s.with_flag("MAPPING_FROZEN", True, site="shmem_freeze")),
           why="shmem_freeze(true); memfd_pin_folios() over [0, i_size); seals and size "
               "recorded in the serialization"),
    ]


def unpreserve_body(s: StateView) -> list[Rule]:
    """Closing the outgoing session: luo_file_unpreserve_files() -> memfd_luo_unpreserve():
    shmem_freeze(false), unpin_folio() of every pinned folio."""
    return [requires((s.luo_phase == LIVE) & (s.luo_n > 0), label="preserved"),
            ok(0, luo_n=s.luo_n - 1, luo_pin=0, **serialization_left(s, s.luo_n - 1),
               **as_updates(s.with_flag("MAPPING_FROZEN", False, site="shmem_freeze")))]


def kexec_body(s: StateView) -> list[Rule]:
    """reboot(LINUX_REBOOT_CMD_KEXEC): luo_session_serialize() runs memfd_luo_freeze() (f_pos),
    and the next kernel boots: the old kernel's descriptors, mappings and pins are gone."""
    gone: dict[str, E | int] = {f: 0 for f in (*FD_FIELDS, *MAP_FIELDS, *PIN_FIELDS)}
    return [requires((s.luo_phase == LIVE) & (s.luo_n > 0), label="preserved"),
            ok(0, luo_phase=KEXEC, luo_n=0, luo_pin=0,
               **as_updates(s.with_flag("MAPPING_FROZEN", False, site="next_kernel")),
               **as_updates(gone),
               why="a memfd is never SHM_LOCKed, unevictable or unmovable: nothing else of "
                   "the old kernel's inode state to drop")]


def retrieve_body(s: StateView) -> list[Rule]:
    """memfd_luo_retrieve(): memfd_alloc_file("", MFD_ALLOW_SEALING) (mode 0777, NORESERVE,
    seals 0, no chattr flag: a new inode), memfd_add_seals(file, ser->seals) -- which adds
    SHRINK|GROW|WRITE|FUTURE_WRITE to F_SEAL_EXEC on a mode with an x bit, and 0777 has them
    -- then i_size_write()."""
    widened = If(s.luo_seals.has(F_SEAL_EXEC), s.luo_seals | WX_SEALS, s.luo_seals)
    return [requires(s.luo_phase == KEXEC, label="next_kernel"),
            ok(0, luo_phase=RETRIEVED, fd_rw=1, mode=0o777, seals=widened, origin=O_MEMFD,
               luo_seals=0, luo_mode=0, **as_updates(fsflags_cleared(s)),
               **as_updates(s.with_flag("NORESERVE", True, site="__shmem_get_inode")))]


def finish_body(s: StateView) -> list[Rule]:
    """LIVEUPDATE_SESSION_FINISH: memfd_luo_finish() lets go of a retrieved file, or discards
    the folios of one never retrieved (the file is gone: the model's one inode is used up)."""
    return [requires((s.luo_phase == KEXEC) | (s.luo_phase == RETRIEVED), label="next_kernel"),
            ok(0, luo_phase=If(s.luo_phase == RETRIEVED, LIVE, DISCARDED),
               **serialization_left(s, s.luo_n))]


# the SHMEM_F_MAPPING_FROZEN checks, each after the checks the kernel makes before it
def setattr_frozen(s: StateView, len: E) -> Rule:  # noqa: A002
    return fail("EPERM", when=frozen(s, "shmem_setattr") & (len != s.size), label="frozen",
                why="shmem_setattr(): newsize != oldsize on a SHMEM_F_MAPPING_FROZEN inode")


def otrunc_frozen(s: StateView, how: E) -> Rule:
    return fail("EPERM", when=truncates(how) & frozen(s, "shmem_setattr") & (s.size > 0),
                label="frozen", why="O_TRUNC -> shmem_setattr(): frozen")


def write_frozen(s: StateView, off: E, len: E,  # noqa: A002
                 piece: E | None = None) -> list[Rule]:
    """shmem_write_begin(), after the seal checks: a chunk ending past i_size on a frozen inode
    is refused as F_SEAL_GROW refuses it (memfd.write_begin_refusal)."""
    return write_begin_refusal(s, off, len, PAGE_SIZE, frozen(s, "shmem_write_begin"),
                               "frozen", "shmem_write_begin(): SHMEM_F_MAPPING_FROZEN and "
                               "pos + len > i_size", piece)


def fallocate_frozen(s: StateView) -> Rule:
    """fallocate() and madvise(MADV_REMOVE) (through vfs_fallocate(PUNCH_HOLE|KEEP_SIZE))."""
    return fail("EPERM", when=frozen(s, "shmem_fallocate"), label="frozen",
                why="shmem_fallocate(): SHMEM_F_MAPPING_FROZEN, every mode")


def seal_wait_luo(s: StateView, seals: E) -> Rule:
    return fail("EBUSY", when=adds_write(s, implied_seals(s, seals)) & ((pins(s) > 0) | s.luo_pin),
                label="wait_for_pins",
                why="memfd_wait_for_pins(): extra references, the preservation's pins included")


def one_inode(s: StateView) -> Rule:
    return requires(s.luo_phase == LIVE, label="one_inode_luo",
                    why="the model holds one inode: the preserved one until it is finished")


def not_in_transit(s: StateView) -> Rule:
    return requires((s.luo_phase != KEXEC) & (s.luo_phase != DISCARDED), label="in_memory",
                    why="between the kexec and the retrieve the folios are KHO-preserved "
                        "memory, not in a page cache (and a discarded file has none)")


def _write_frozen(a: Action) -> Action:
    """Every write path meets the check where its data lands (memfd_rw.written())."""
    for i in (1, 0):
        a = a.insert_rule(lambda s, i=i, **p: write_frozen(s, *written(s, p))[i],
                          after="grow_seal_short")
    return a


LUO_ACTIONS = (
    Action("luo_preserve", (P("fd", FD, FD_ALL),), preserve_body, "ioctl",
           (C("SESSION"), C("LIVEUPDATE_SESSION_PRESERVE_FD"), Fd("fd")),
           "preserve the memfd in a LUO session"),
    Action("luo_unpreserve", (), unpreserve_body, "close", (C("SESSION"),),
           "close the session before the reboot (memfd_luo_unpreserve)"),
    Action("luo_kexec", (), kexec_body, "reboot", (C("LINUX_REBOOT_CMD_KEXEC"),),
           "kexec into the next kernel with the session preserved"),
    Action("luo_retrieve", (), retrieve_body, "ioctl",
           (C("SESSION"), C("LIVEUPDATE_SESSION_RETRIEVE_FD")),
           "retrieve the memfd in the next kernel"),
    Action("luo_finish", (), finish_body, "ioctl",
           (C("SESSION"), C("LIVEUPDATE_SESSION_FINISH")), "finish the session"),
)


#: mainline properties a preservation breaks. The liveness ones ("... permitted") state when
#: the kernel must allow a call; freezing refuses size changes and hole punches, and the
#: preservation's pins make F_SEAL_WRITE (and F_SEAL_EXEC on an executable file) wait and give
#: up: refusals those properties' preconditions do not know. The seal and W^X ones: the
#: retrieved file has the seals of the preserve (one added since is lost), F_SEAL_EXEC widened
#: on its mode 0777 (memfd_luo_retrieve(); properties/luo.py).
EXPECT_LUO = {p: "violated" for p in (
    "add-seals-permitted", "exec-seal-permitted", "pwrite-permitted", "ftruncate-permitted",
    "madvise-remove-permitted", "exec-seal-mode-fixed-shmem",
    "noexec-seal-never-executable-shmem", "seal-seal-final", "seals-only-grow")}


@register("memfd+luo", on_request=True)
def build_luo() -> Design:
    base = get("memfd+flags")
    return base.derive(
        "memfd+luo", "memfd+flags with SHMEM_F_MAPPING_FROZEN and memfd preservation across "
        "a live update (mm/memfd_luo.c, source-read)",
        kernel=None, fields=LUO_FIELDS,
        layout={"MAPPING_FROZEN": ("iflags", SHMEM_F_MAPPING_FROZEN)},
        add=LUO_ACTIONS, families=("luo",), expect=EXPECT_LUO,
        # the two bits only FS_IOC_GETFLAGS, FS_IOC_FSGETXATTR and file_getattr read: the
        # state has no room for them (64 > 63 bits at the default scope), and no luo rule
        # reads chattr's flags; and udmabuf: its pins and hole allocation were not re-read
        # against a frozen or preserved mapping
        drop=("fs_getflags", "fs_getxattr", "file_getattr", "udmabuf"),
        drop_fields=GETFLAGS_ONLY,
        edit={
            "memfd_create": lambda a: a.insert_rule(one_inode, before="one_inode"),
            "shmget": lambda a: a.insert_rule(one_inode, before="one_inode"),
            "reclaim": lambda a: a.insert_rule(not_in_transit, before="has_shmem_page"),
            "migrate": lambda a: a.insert_rule(not_in_transit, before="has_page"),
            "ftruncate": lambda a: a.insert_rule(setattr_frozen, after="grow_seal"),
            "reopen": lambda a: a.insert_rule(otrunc_frozen, after="shrink_seal"),
            "shm_open": lambda a: a.insert_rule(otrunc_frozen, after="append_only"),
            "shm_create": lambda a: a.insert_rule(one_inode, before="one_inode").insert_rule(
                lambda s, oflags: otrunc_frozen(s, open_how(oflags)), after="append_only"),
            **dict.fromkeys(WRITE_PATHS, _write_frozen),  # shmem_write_begin()
            "fallocate": lambda a: a.insert_rule(fallocate_frozen, after="unsupported_mode"),
            "madvise_remove": lambda a: a.insert_rule(fallocate_frozen,
                                                      before="punch_write_seal"),
            "fcntl_add_seals": lambda a: a.replace_rule("wait_for_pins", seal_wait_luo),
        })


__all__ = ["F_SEAL_GROW", "LAYOUT_SHMEM_F", "RW", "SCHEMA", "SHMEM_F_MAPPING_FROZEN",
           "build_flags", "build_luo", "with_mainline_flags"]
