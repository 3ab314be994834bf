"""Properties of the seed (PATCH v5 01/13 MFD_INACCESSIBLE) and of the shmem inode flags word."""

from __future__ import annotations

# effect bits and outcome codes as the designs that produce them declare them
from model.designs.memfd import CHG_FD, RW
from model.designs.memfd_517 import MIGRATED, RECLAIM_SWAPPED
from model.designs.v5_inaccessible import CHG_KVM
from model.lang.expr import E, Implies, false, true
from model.lang.schema import StateView
from model.vocab import F_SEAL_SEAL, PAGE_SIZE
from properties.catalogue import VIOLATED, prop
from properties.views import TransitionView

V5 = ("v5-inaccessible", "v5-flags")


def inacc(s: StateView) -> E:
    return s.flag("INACCESSIBLE")


@prop("inaccessible-never-sealable", "action", """No seal is ever added to an inaccessible
      file: every F_ADD_SEALS on it fails and its seal word never changes ("future sealing is
      also impossible").""", "memfd_add_seals(): F_SEAL_SEAL set at creation", family="v5")
def never_sealable(t: TransitionView) -> E:
    refused = ~t.ok if t.is_("fcntl_add_seals") else ~false
    return Implies(inacc(t.s), (t.n.seals == t.s.seals) & refused)


@prop("inaccessible-seal-seal-set", "always", """An inaccessible file carries F_SEAL_SEAL
      from creation.""", "memfd_create(): *file_seals = F_SEAL_SEAL", family="v5")
def seal_seal_set(s: StateView) -> E:
    return Implies(inacc(s), s.seals.has(F_SEAL_SEAL))


@prop("inaccessible-never-user-mappable", "action", """No user mapping of an inaccessible file
      ever exists, and read, write and mmap never transfer its content: reads return EPERM
      (or 0 past EOF), writes and every mmap EPERM.""",
      "shmem_mmap(), shmem_file_read_iter(), shmem_write_begin()", family="v5")
def never_mappable(t: TransitionView) -> E:
    maps = (t.n.map_sh_rw + t.n.map_sh_ro_mw + t.n.map_sh_ro + t.n.map_pr_ro + t.n.map_pr_rw)
    transfer = (t.out > 0) if t.is_("pread", "pwrite") else false
    return Implies(inacc(t.n), (maps == 0) & ~transfer)


@prop("inaccessible-immutable", "action", """SHM_F_INACCESSIBLE never changes once the file
      exists: no path sets or clears it after memfd_create().""",
      "only shmem_file_setup_xflags() writes it", family="v5")
def immutable(t: TransitionView) -> E:
    return Implies(t.s.exists, inacc(t.s) == inacc(t.n))


@prop("inaccessible-never-swapped", "action", """No page of an inaccessible file is ever
      swapped out, and nothing (SHM_UNLOCK included) makes its mapping evictable again.""",
      "mapping_set_unevictable() in memfd_create(); shmem_writepage() redirties",
      family="v5")
def never_swapped(t: TransitionView) -> E:
    swapped = (t.out == RECLAIM_SWAPPED) if t.is_("reclaim") else false
    return Implies(inacc(t.s), ~swapped & t.n.unevictable)


@prop("inaccessible-never-migrated", "action", """No page of an inaccessible file is ever
      migrated: its allocations are not __GFP_MOVABLE.""",
      "memfd_create(): mapping_set_gfp_mask(mapping, gfp & ~__GFP_MOVABLE)", family="v5")
def never_migrated(t: TransitionView) -> E:
    moved = (t.out == MIGRATED) if t.is_("migrate") else false
    return Implies(inacc(t.s), ~moved)


@prop("inaccessible-access-only-via-notifier", "action", """The content of an inaccessible
      file changes only through KVM's memfile_notifier mapping (or by punching a hole, which
      invalidates it): never through write(), a mapping or a pin.""",
      "shmem_write_begin(), shmem_mmap(); memfile_notifier invalidate", family="v5")
def only_via_notifier(t: TransitionView) -> E:
    allowed = CHG_KVM | (CHG_FD if t.is_("fallocate") else 0)
    return Implies(inacc(t.s), (t.eff & ~allowed) == 0)


@prop("mfd-inaccessible-honoured", "always", """A memfd created with MFD_INACCESSIBLE is
      inaccessible. Violated by v5: with MFD_HUGETLB the hugetlb branch never sets xflags, so
      the file is an ordinary accessible (but unsealable, unevictable) hugetlbfs file
      ("At this time only shmem implements this flag").""",
      "memfd_create(): shmem_file_setup_xflags() on the shmem branch only", family="v5",
      expect=dict.fromkeys(V5, VIOLATED))
def honoured(s: StateView) -> E:
    return Implies(s.created_inaccessible, inacc(s))


@prop("sometimes-inaccessible-allocated-and-punched", "sometimes-action", """An inaccessible
      file can be sized, allocated and have a hole punched (fallocate works).""",
      "shmem_fallocate()", family="v5")
def w_punch(t: TransitionView) -> E:
    return inacc(t.s) & t.fired("punched") if t.is_("fallocate") else false


@prop("sometimes-inaccessible-consumed-by-kvm", "sometimes-action", """KVM maps an inaccessible
      file's page into the guest and the guest writes it.""", "memfile_pfn_ops", family="v5")
def w_kvm(t: TransitionView) -> E:
    return inacc(t.s) & t.eff.has(CHG_KVM)


# ---- size, stores and KVM's mapping (issue 19) -------------------------------------------------
@prop("inaccessible-size-fixed-once-set", "action", """Once an inaccessible file has a size it
      never changes: the patch makes shmem_setattr() refuse any size change of an inaccessible
      file whose size is not 0 ("oldsize != 0 -> EPERM"), so the size is set once (by
      ftruncate) and KVM's view of the file never moves. Violated by v5 as modelled:
      shmem_fallocate() without FALLOC_FL_KEEP_SIZE still raises i_size past the end of the
      allocated range (`i_size_write(inode, offset + len)`), a path the patch does not
      check.""",
      "shmem_setattr(): SHM_F_INACCESSIBLE && oldsize -> -EPERM; NOT shmem_fallocate()",
      family="v5", expect=dict.fromkeys(V5, VIOLATED))
def size_fixed_once_set(t: TransitionView) -> E:
    return Implies(inacc(t.s) & (t.s.size > 0), t.n.size == t.s.size)


@prop("inaccessible-size-fixed-by-setattr", "action", """The part of the promise the patch
      keeps: no ftruncate() and no open(O_TRUNC) changes the size of an inaccessible file
      once it is not 0.""", "shmem_setattr(): SHM_F_INACCESSIBLE && oldsize -> -EPERM",
      family="v5")
def size_fixed_by_setattr(t: TransitionView) -> E:
    if not t.is_("ftruncate", "reopen"):
        return true
    return Implies(inacc(t.s) & (t.s.size > 0), t.n.size == t.s.size)


@prop("sometimes-inaccessible-size-set", "sometimes", """An inaccessible file has a non-zero
      size (the precondition of inaccessible-size-fixed-once-set).""", "shmem_setattr()",
      family="v5")
def w_size_set(s: StateView) -> E:
    return inacc(s) & (s.size > 0)


@prop("inaccessible-size-settable-once", "action", """The size of an empty inaccessible file
      can be set: ftruncate() through an O_RDWR description to a page-aligned length >= 0
      succeeds (no seal can forbid it: only F_SEAL_SEAL is ever set).""",
      "shmem_setattr(): oldsize == 0 and PAGE_ALIGNED(newsize) pass the patch's checks",
      family="v5")
def size_settable_once(t: TransitionView) -> E:
    if not t.is_("ftruncate"):
        return true
    n = t.param("len")
    pre = (inacc(t.s) & (t.s.size == 0) & (t.param("fd") == RW) & (n >= 0)
           & (n % PAGE_SIZE == 0))
    return Implies(pre, t.ok & (t.n.size == n))


@prop("sometimes-inaccessible-sized-from-empty", "sometimes-action", """ftruncate() of an
      empty inaccessible file to a non-zero page-aligned length through an O_RDWR description
      (the precondition of inaccessible-size-settable-once).""", "shmem_setattr()",
      family="v5")
def w_size_settable(t: TransitionView) -> E:
    if not t.is_("ftruncate"):
        return false
    n = t.param("len")
    return (inacc(t.s) & (t.s.size == 0) & (t.param("fd") == RW) & (n > 0)
            & (n % PAGE_SIZE == 0))


@prop("kvm-maps-only-within-eof", "action", """KVM never maps a page past EOF: the
      memfile_pfn_ops get_lock_pfn() of page 0 fails on an empty file.""",
      "shmem_get_lock_pfn() -> shmem_getpage(SGP_NOALLOC): index >= DIV_ROUND_UP(i_size, "
      "PAGE_SIZE) -> -EINVAL", family="v5")
def kvm_maps_within_eof(t: TransitionView) -> E:
    if not t.is_("kvm_map_pfn"):
        return true
    return Implies(t.ok, t.s.size > 0)


@prop("kvm-mapping-of-inaccessible-within-eof", "always", """A page KVM holds mapped from an
      inaccessible file stays within EOF: the file cannot shrink once sized, and a hole
      punch invalidates the mapping. (For an accessible file, truncation's invalidation is
      not modelled: NOTES.md.)""",
      "shmem_get_lock_pfn(); shmem_setattr() EPERM; the notifier's invalidate on punch",
      family="v5")
def kvm_mapping_within_eof(s: StateView) -> E:
    return Implies(inacc(s) & s.kvm_mapped, s.size > 0)


@prop("sometimes-kvm-map-of-empty-file", "sometimes-action", """KVM asks for page 0 of an
      empty file (the precondition of kvm-maps-only-within-eof).""", "memfile_pfn_ops",
      family="v5")
def w_kvm_empty(t: TransitionView) -> E:
    return t.s.size == 0 if t.is_("kvm_map_pfn") else false


# ---- the flags word (memfd@5.17 and the v5 designs) -----------------------------------------
@prop("memfd-never-shm-locked", "always", """A memfd (or tmpfs file) is never SHM_LOCKed:
      only a SysV segment has a shmid for shmctl(), so VM_LOCKED is set on no other inode.""",
      "shmem_lock() is called only from ipc/shm.c", family="flags")
def never_locked(s: StateView) -> E:
    return Implies(s.origin != 3, ~s.flag("LOCKED"))


@prop("locked-never-swapped", "action", """A page of a SHM_LOCKed segment is never swapped out,
      even one still on an evictable LRU when the lock was taken.""",
      "shmem_writepage(): info->flags & VM_LOCKED -> redirty", family="flags")
def locked_not_swapped(t: TransitionView) -> E:
    swapped = (t.out == RECLAIM_SWAPPED) if t.is_("reclaim") else false
    return Implies(t.s.flag("LOCKED"), ~swapped)


@prop("memfd-noreserve", "always", """Every memfd and tmpfs file is VM_NORESERVE (no up-front
      commit accounting: ftruncate to 1 TiB succeeds).""",
      "shmem_file_setup(..., VM_NORESERVE), shmem_mknod()", family="flags")
def noreserve(s: StateView) -> E:
    return Implies((s.origin == 1) | (s.origin == 2), s.flag("NORESERVE"))


@prop("sometimes-shm-locked", "sometimes", """A SysV segment can be SHM_LOCKed.""",
      "shmem_lock()", family="flags")
def w_locked(s: StateView) -> E:
    return s.flag("LOCKED")


@prop("sometimes-shmget-refused-by-accounting", "sometimes-action", """Without VM_NORESERVE a
      segment is accounted up front and can be refused.""", "shmem_acct_size()",
      family="flags")
def w_acct(t: TransitionView) -> E:
    return t.fired("acct_size") if t.is_("shmget") else false


@prop("shmget-accounting-decides", "action", """shmget() of a new segment fails with ENOMEM
      exactly when it is accounted up front (not VM_NORESERVE: no SHM_NORESERVE, or
      overcommit_memory = 2) and the commit limit is reached; otherwise it succeeds. The
      flags word's VM_NORESERVE is what the accounting reads.""",
      "newseg(): VM_NORESERVE only for SHM_NORESERVE when overcommit is not never; "
      "shmem_acct_size() -> security_vm_enough_memory_mm()", family="flags")
def shmget_accounting(t: TransitionView) -> E:
    if not t.is_("shmget"):
        return true
    accounted = (t.param("noreserve") == 0) | t.s.commit_full
    return t.failed("ENOMEM") == (accounted & t.s.commit_full)


@prop("sometimes-shmget-with-noreserve-under-commit-limit", "sometimes-action", """shmget()
      with SHM_NORESERVE while overcommit_memory = 2 (the case where VM_NORESERVE is not
      granted: a precondition of shmget-accounting-decides's refusal).""", "newseg()",
      family="flags")
def w_shmget_noreserve(t: TransitionView) -> E:
    return (t.param("noreserve") == 1) & t.s.commit_full if t.is_("shmget") else false


@prop("kvm-notifier-only-on-shmem", "always", """KVM's memfile_notifier is registered only on a
      shmem memfd: hugetlbfs has no memfile backing store for it.""",
      "memfile_register_notifier(): -EOPNOTSUPP unless the inode has memfile_backing_store",
      family="v5")
def kvm_notifier_shmem(s: StateView) -> E:
    return Implies(s.kvm_notifier, ~s.hugetlb)


@prop("sometimes-kvm-register-hugetlb-attempt", "sometimes-action", """KVM tries to register
      its notifier on a hugetlbfs memfd (the precondition of kvm-notifier-only-on-shmem's
      refusal).""", "memfile_register_notifier()", family="v5")
def w_kvm_register_hugetlb(t: TransitionView) -> E:
    return t.s.hugetlb if t.is_("kvm_register") else false
