"""PATCH v5 01/13 "mm/memfd: Introduce MFD_INACCESSIBLE flag" (Kirill A. Shutemov, posted by
Chao Peng, 10 Mar 2022) on memfd@5.17, read from the patch text (message
20220310140911.50924-2-chao.p.peng@linux.intel.com), and Kirill's flags-word variant.

Every rule below is a hunk of the patch, at the position the hunk puts it:
- memfd_create: MFD_INACCESSIBLE = 0x0008 joins MFD_ALL_FLAGS; with MFD_ALLOW_SEALING -> EINVAL
  (before the name is read); shmem_file_setup_xflags() stores SHM_F_INACCESSIBLE in the new
  `xflags` word -- only on the shmem branch: with MFD_HUGETLB the file stays accessible, yet
  the `else if (flags & MFD_INACCESSIBLE)` branch still makes it unmovable, unevictable and
  F_SEAL_SEAL-sealed (the hugetlb quirk of kernel-semantics.md §5.2);
- shmem_setattr(): after the seal checks, an inaccessible file with oldsize != 0 -> EPERM
  (even for the same size), then a size that is not PAGE_ALIGNED -> EINVAL;
- shmem_writepage(): inaccessible -> redirty; shmem_mmap(): inaccessible -> EPERM after
  seal_check_future_write(); shmem_write_begin(): EPERM after the seal checks;
- shmem_file_read_iter(): EPERM after the `index > end_index` test, so a read at or before
  EOF (even of an empty file) fails and only a read past EOF returns 0;
- shmem_fallocate(): a hole punch with an offset or length not PAGE_ALIGNED -> EINVAL, first
  in the PUNCH_HOLE branch (before the seal check).

The KVM side: from patch 03/13 "mm/shmem: Support memfile_notifier" (read): every shmem inode
has a notifier list (shmem_get_notifier_list() tests only shmem_mapping(), not
SHM_F_INACCESSIBLE), get_lock_pfn() is shmem_getpage(SGP_NOALLOC) (EINVAL past i_size); a hole
punch runs the invalidate callback. KVM's own memslot checks (patches 05-13) were not read: KVM
is modelled as registering on any shmem memfd (EOPNOTSUPP for hugetlbfs, which has no backing
store), mapping page 0 into the guest and writing it. See NOTES.md.
"""

from __future__ import annotations

from model.designs import get, register
from model.designs.memfd_517 import MFD_FLAGS_517, RECLAIM_REDIRTIED, with_vocabulary
from model.designs.memfd_open import truncates
from model.lang import Action, Design, E, Field, If, Param, Rule, boolean, fail, ok, requires, word
from model.lang.expr import bv
from model.lang.schema import StateView
from model.vocab import (
    FALLOC_FL_PUNCH_HOLE,
    MFD_ALLOW_SEALING,
    MFD_CLOEXEC,
    MFD_HUGE_MASK,
    MFD_HUGE_SHIFT,
    MFD_HUGETLB,
    MFD_INACCESSIBLE_V5,
    PAGE_SIZE,
)

MFD_INACCESSIBLE = MFD_INACCESSIBLE_V5
MFD_ALL_FLAGS_V5 = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_INACCESSIBLE
SHM_F_INACCESSIBLE = 0x0001
MFD_FLAGS_V5 = {**MFD_FLAGS_517, "MFD_INACCESSIBLE": MFD_INACCESSIBLE}

V5_FIELDS = (
    Field("xflags", word(1, {"SHM_F_INACCESSIBLE": SHM_F_INACCESSIBLE}),
          "shmem_inode_info.xflags (new in v5)"),
    Field("created_inaccessible", boolean(), "memfd_create() was given MFD_INACCESSIBLE",
          ghost=True),
    Field("kvm_notifier", boolean(), "KVM registered a memfile_notifier on the inode"),
    Field("kvm_mapped", boolean(), "KVM maps page 0 into the guest (pfn obtained through "
          "memfile_pfn_ops); dropped by the invalidate callback"),
)
LAYOUT_V5 = {"INACCESSIBLE": ("xflags", SHM_F_INACCESSIBLE)}
CHG_KVM = 8  # effect: the guest wrote the file's memory through KVM's mapping


def inacc(s: StateView, site: str) -> E:
    return s.flag("INACCESSIBLE", site=site)


def create_flags_v5(s: StateView, flags: E) -> Rule:
    allowed = If(flags.has(MFD_HUGETLB),
                 bv(MFD_ALL_FLAGS_V5 | (MFD_HUGE_MASK << MFD_HUGE_SHIFT), 32),
                 bv(MFD_ALL_FLAGS_V5, 32))
    return fail("EINVAL", when=(flags & ~allowed) != 0, label="unknown_flags",
                why="memfd_create(): bits outside MFD_ALL_FLAGS (now with MFD_INACCESSIBLE)")


def create_no_sealing(s: StateView, flags: E) -> Rule:
    return fail("EINVAL", when=flags.has_all(MFD_INACCESSIBLE | MFD_ALLOW_SEALING),
                label="inaccessible_sealing",
                why="memfd_create(): MFD_INACCESSIBLE with MFD_ALLOW_SEALING")


def create_ok_v5(s: StateView, flags: E) -> dict[str, E | int]:
    """The memfd_create() hunks that run after the file exists."""
    i = flags.has(MFD_INACCESSIBLE)
    shmem = ~flags.has(MFD_HUGETLB)
    upd: dict[str, E | int] = {"unevictable": If(i, 1, 0), "unmovable": If(i, 1, 0),
                               "created_inaccessible": If(i, 1, 0)}
    upd.update(s.with_flag("INACCESSIBLE", i & shmem, site="shmem_file_setup_xflags"))
    return upd


def setattr_rule(s: StateView, len: E) -> Rule:  # noqa: A002
    return fail("EPERM", when=inacc(s, "shmem_setattr") & (s.size > 0),
                label="inaccessible_resize",
                why="shmem_setattr(): SHM_F_INACCESSIBLE and oldsize != 0")


def setattr_align_rule(s: StateView, len: E) -> Rule:  # noqa: A002
    return fail("EINVAL", when=inacc(s, "shmem_setattr") & (len % PAGE_SIZE != 0),
                label="inaccessible_unaligned",
                why="shmem_setattr(): SHM_F_INACCESSIBLE and !PAGE_ALIGNED(newsize)")


def punch_align_rule(s: StateView, mode: E, off: E, len: E) -> Rule:  # noqa: A002
    return fail("EINVAL", when=mode.has(FALLOC_FL_PUNCH_HOLE) & inacc(s, "shmem_fallocate")
                & ((off % PAGE_SIZE != 0) | (len % PAGE_SIZE != 0)),
                label="inaccessible_unaligned_punch",
                why="shmem_fallocate(): SHM_F_INACCESSIBLE hole punch not PAGE_ALIGNED")


def otrunc_rule(s: StateView, how: E) -> Rule:
    return fail("EPERM", when=truncates(how) & inacc(s, "shmem_setattr") & (s.size > 0),
                label="inaccessible_resize", why="O_TRUNC -> shmem_setattr()")


def mmap_rule(s: StateView) -> Rule:
    return fail("EPERM", when=inacc(s, "shmem_mmap"), label="inaccessible",
                why="shmem_mmap(): SHM_F_INACCESSIBLE")


def write_rule(s: StateView) -> Rule:
    return fail("EPERM", when=inacc(s, "shmem_write_begin"), label="inaccessible",
                why="shmem_write_begin(): SHM_F_INACCESSIBLE, after the seal checks")


def read_rules_past_eof(s: StateView, off: E) -> Rule:
    return ok(0, when=off // PAGE_SIZE > s.size // PAGE_SIZE, label="past_end_index",
              why="shmem_file_read_iter(): index > end_index (pos and i_size >> PAGE_SHIFT)")


def read_rule(s: StateView) -> Rule:
    return fail("EPERM", when=inacc(s, "shmem_file_read_iter"), label="inaccessible",
                why="shmem_file_read_iter(): after the index > end_index test")


def writepage_rule(s: StateView) -> Rule:
    return ok(RECLAIM_REDIRTIED, when=inacc(s, "writepage"), label="redirty_inaccessible",
              why="shmem_writepage(): SHM_F_INACCESSIBLE -> redirty")


def punch_invalidates(s: StateView, mode: E, off: E, len: E) -> dict[str, E | int]:  # noqa: A002
    """A hole over page 0 runs the notifier's invalidate: KVM drops its mapping. The hole
    touches page 0 iff it starts in it (off < PAGE_SIZE: a partial page is zeroed, which the
    model counts as touching it; an inaccessible file's hole is page-aligned, so off == 0)."""
    return {"kvm_mapped": If(mode.has(FALLOC_FL_PUNCH_HOLE) & (off < PAGE_SIZE), 0, s.kvm_mapped)}


# ---- the KVM side (memfile_notifier) -----------------------------------------------------
def register_body(s: StateView) -> list[Rule]:
    return [requires(s.exists & (s.origin == 1) & ~s.kvm_notifier, label="memfd_unbound"),
            fail("EOPNOTSUPP", when=s.hugetlb, label="unsupported_inode",
                 why="memfile_register_notifier(): no backing store for hugetlbfs"),
            ok(0, kvm_notifier=1)]


def map_pfn_body(s: StateView) -> list[Rule]:
    return [requires(s.kvm_notifier & ~s.kvm_mapped, label="registered"),
            fail("EINVAL", when=s.size == 0, label="past_eof",
                 why="shmem_get_lock_pfn() -> shmem_getpage(SGP_NOALLOC) past i_size"),
            ok(0, kvm_mapped=1)]


def guest_write_body(s: StateView) -> list[Rule]:
    return [requires(s.kvm_mapped, label="mapped"), ok(0, effects=CHG_KVM)]


KVM_ACTIONS = (
    Action("kvm_register", (), lambda s: register_body(s), "kvm_memfile_register", (),
           "KVM binds the memfd as private memory of a memslot (memfile_register_notifier)"),
    Action("kvm_map_pfn", (), lambda s: map_pfn_body(s), "kvm_map_pfn", (),
           "KVM faults page 0 into the guest through memfile_pfn_ops"),
    Action("guest_write", (), lambda s: guest_write_body(s), "guest_write", (),
           "the guest writes the page through KVM's mapping"),
)


@register("v5-inaccessible")
def build() -> Design:
    base = get("memfd@5.17")
    return base.derive(
        "v5-inaccessible", "PATCH v5 01/13 MFD_INACCESSIBLE on memfd@5.17 (+ the KVM "
        "memfile_notifier side of the series)",
        fields=V5_FIELDS, layout=LAYOUT_V5, add=KVM_ACTIONS, effects=("CHG_KVM",),
        families=("v5",),
        edit={
            "memfd_create": lambda a: with_vocabulary(
                a.replace_rule("unknown_flags", create_flags_v5)
                .insert_rule(create_no_sealing, after="unknown_flags")
                .amend_rule("ok", create_ok_v5), "flags", MFD_FLAGS_V5),
            "ftruncate": lambda a: a.insert_rule(setattr_rule, after="grow_seal")
            .insert_rule(setattr_align_rule, after="inaccessible_resize"),
            "reopen": lambda a: a.insert_rule(otrunc_rule, before="shrink_seal"),
            "mmap": lambda a: a.insert_rule(mmap_rule, after="write_seal"),
            "pwrite": lambda a: a.insert_rule(write_rule, after="grow_seal"),
            "write": lambda a: a.insert_rule(write_rule, after="grow_seal"),
            "pread": lambda a: a.insert_rule(read_rules_past_eof, before="eof")
            .insert_rule(read_rule, before="eof"),
            "read": lambda a: a.insert_rule(read_rules_past_eof, before="eof")
            .insert_rule(read_rule, before="eof"),
            # exec reads the image's first bytes at 0 (prepare_binprm() -> kernel_read() ->
            # shmem_file_read_iter()) after its permission and write-count checks: EPERM
            "exec": lambda a: a.insert_rule(read_rule, before="no_binary_format"),
            "reclaim": lambda a: a.insert_rule(writepage_rule, after="redirty_locked"),
            "fallocate": lambda a: a.amend_rule("punched", punch_invalidates)
            .insert_rule(punch_align_rule, before="punch_write_seal"),
        })


# ---- Kirill's proposal: SHM_F_* bits in info->flags ------------------------------------------
SHM_F_NORESERVE, SHM_F_LOCKED, SHM_F_INACC = 0x1, 0x2, 0x4
FLAGS_WORD = Field("iflags", word(3, {"SHM_F_NORESERVE": SHM_F_NORESERVE,
                                      "SHM_F_LOCKED": SHM_F_LOCKED,
                                      "SHM_F_INACCESSIBLE": SHM_F_INACC}),
                   "shmem_inode_info.flags holding SHM_F_* bits (Kirill, 11 Apr 2022)")
LAYOUT_FLAGS = {"NORESERVE": ("iflags", SHM_F_NORESERVE), "LOCKED": ("iflags", SHM_F_LOCKED),
                "INACCESSIBLE": ("iflags", SHM_F_INACC)}


@register("v5-flags")
def build_flags() -> Design:
    """xflags and shmem_file_setup_xflags() gone; every writer and reader uses the SHM_F_* bit
    in info->flags (the layout says where each flag lives; no rule changes)."""
    v5 = get("v5-inaccessible")
    return v5.derive("v5-flags", "v5 with SHM_F_LOCKED/NORESERVE/INACCESSIBLE in info->flags",
                     fields=(FLAGS_WORD,), drop_fields=("xflags",), layout=LAYOUT_FLAGS)


__all__ = ["CHG_KVM", "LAYOUT_FLAGS", "MFD_INACCESSIBLE", "SHM_F_LOCKED", "Param", "build",
           "build_flags"]
