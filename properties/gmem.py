"""Properties of guest_memfd (kernel-semantics.md §5.3-§5.4, bug-history.md G1) and the seed's
promise about inaccessible memory, mapped onto guest_memfd.

Files of the gmem family are named g0, g1, ... and carry `<g>_fd`, `<g>_maps`, `<g>_flags`,
`<g>_size`, `<g>_vm`; memslots are `slot<j>` with `_gpa`, `_off`, `_len`, `_ro` (in pages). A
predicate that reads these fields raises AttributeError on other designs, so the catalogue
applies these properties only where they speak of something (Property.applies).

"Inaccessible" is the seed's word (MFD_INACCESSIBLE, 2021-2022): memory the host cannot read,
write or map. On guest_memfd (6.18) it is a file created without GUEST_MEMFD_FLAG_MMAP: mmap()
fails with ENODEV, read()/write() have no file operations, so no host access path exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from model.designs.guest_memfd import S_CLOSED, S_G0, S_NONE
from model.lang.expr import And, E, Implies, Or, false, true
from model.lang.schema import StateView
from model.vocab import (
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    GUEST_MEMFD_FLAG_INIT_SHARED,
    GUEST_MEMFD_FLAG_MMAP,
    KVM_MEM_GUEST_MEMFD,
    PAGE_SIZE,
)
from properties.catalogue import VIOLATED, prop
from properties.views import TransitionView

G18, G68 = "guest_memfd", "guest_memfd@6.8-rc"
FAMILY = "gmem"
NFILES = 2
NSLOTS = 2


@dataclass(frozen=True)
class File:
    """One guest_memfd file of a state, by its fields."""

    fd: E
    maps: E
    flags: E
    size: E
    vm: E

    @property
    def live(self) -> E:
        return (self.fd + self.maps) > 0

    @property
    def inaccessible(self) -> E:
        """The seed's notion: created without GUEST_MEMFD_FLAG_MMAP."""
        return ~self.flags.has(GUEST_MEMFD_FLAG_MMAP)


def files(s: StateView) -> list[File]:
    return [File(s[f"g{i}_fd"], s[f"g{i}_maps"], s[f"g{i}_flags"], s[f"g{i}_size"],
                 s[f"g{i}_vm"]) for i in range(NFILES)]


@dataclass(frozen=True)
class Slot:
    state: E
    gpa: E
    off: E
    len: E
    ro: E

    @property
    def exists(self) -> E:
        return self.state != S_NONE

    def on(self, i: int) -> E:
        """Bound to live file g<i>."""
        return self.state == S_G0 + i


def slots(s: StateView) -> list[Slot]:
    return [Slot(s[f"slot{j}"], s[f"slot{j}_gpa"], s[f"slot{j}_off"], s[f"slot{j}_len"],
                 s[f"slot{j}_ro"]) for j in range(NSLOTS)]


def fd_file(t: TransitionView, param: str = "fd") -> list[tuple[int, E]]:
    """(file index, "the action's descriptor parameter names that file") pairs."""
    from model.designs.guest_memfd import GMEM_FDS

    if not t.has_param(param):
        return []
    p = t.param(param)
    return [(i, p == GMEM_FDS[i]) for i in range(NFILES)]


def map_file(t: TransitionView) -> list[tuple[int, E]]:
    if not t.has_param("m"):
        return []
    m = t.param("m")
    return [(i, m == i) for i in range(NFILES)]


# ---- the file -------------------------------------------------------------------------------
@prop("gmem-never-sealable", "action", """A guest_memfd has no seal word: F_ADD_SEALS and
      F_GET_SEALS fail (EINVAL) on it, so nothing can be promised to a receiver through seals
      and nothing can be taken away from KVM by one.""",
      "memfd_fcntl() -> memfd_file_seals_ptr() is NULL for a non-shmem, non-hugetlbfs file",
      family=FAMILY)
def gmem_never_sealable(t: TransitionView) -> E:
    return ~t.ok if t.is_("fcntl_add_seals", "fcntl_get_seals") else true


@prop("gmem-user-mappable-only-with-MMAP", "always", """Only a file created with
      GUEST_MEMFD_FLAG_MMAP is ever mapped into a user address space.""",
      "kvm_gmem_mmap(): !kvm_gmem_supports_mmap() -> -ENODEV", family=FAMILY)
def gmem_mappable_only_with_mmap(s: StateView) -> E:
    return And(*(Implies(f.maps > 0, f.flags.has(GUEST_MEMFD_FLAG_MMAP)) for f in files(s)))


@prop("gmem-no-private-mapping", "action", """No MAP_PRIVATE mapping of a guest_memfd is ever
      created: copy-on-write would give the host private copies of guest memory.""",
      "kvm_gmem_mmap(): (vm_flags & (VM_SHARED|VM_MAYSHARE)) != both -> -EINVAL",
      family=FAMILY)
def gmem_no_private_mapping(t: TransitionView) -> E:
    from model.designs.guest_memfd import PRIVATE

    if not t.is_("mmap"):
        return true
    return Implies(t.param("share") == PRIVATE, ~t.ok)


@prop("gmem-user-fault-only-if-shared", "action", """A user access through a mapping succeeds
      only on a page inside the file of a file created GUEST_MEMFD_FLAG_INIT_SHARED: private
      guest memory is never faulted into the host.""",
      "kvm_gmem_fault_user_mapping(): SIGBUS at/after i_size and without INIT_SHARED",
      family=FAMILY)
def gmem_fault_only_if_shared(t: TransitionView) -> E:
    fs = files(t.s)
    if not t.is_("store", "load"):
        return true
    page = t.param("page")
    return Implies(t.ok, Or(*(here & fs[i].flags.has(GUEST_MEMFD_FLAG_INIT_SHARED)
                              & (page < fs[i].size) for i, here in map_file(t))))


@prop("gmem-size-immutable", "action", """A guest_memfd's size and flags never change while
      it exists: ftruncate and fchmod fail, fallocate keeps the size, and allocation stops at
      i_size ("guest memory is immutable by default").""",
      "kvm_gmem_setattr() -> -EINVAL; kvm_gmem_fallocate() requires FALLOC_FL_KEEP_SIZE; "
      "kvm_gmem_allocate()", family=FAMILY)
def gmem_size_immutable(t: TransitionView) -> E:
    return And(*(Implies(a.live & b.live, (a.size == b.size) & (a.flags == b.flags)
                         & (a.vm == b.vm))
                 for a, b in zip(files(t.s), files(t.n), strict=True)))


@prop("gmem-bindings-disjoint", "always", """Each page of a guest_memfd is bound to at most
      one memslot: two slots bound to the same file have disjoint page ranges.""",
      "kvm_gmem_bind(): xa_find() over the range in gmem->bindings -> -EINVAL", family=FAMILY)
def gmem_bindings_disjoint(s: StateView) -> E:
    a, b = slots(s)
    return And(*(Implies(a.on(i) & b.on(i), (a.off + a.len <= b.off) | (b.off + b.len <= a.off))
                 for i in range(NFILES)))


@prop("gmem-slots-disjoint-in-gpa", "always", """Two memslots never share a guest physical
      frame, also when one of them outlived its guest_memfd: guest physical addresses name one
      slot each.""",
      "kvm_set_memory_region(): KVM_MR_CREATE and kvm_check_memslot_overlap() -> -EEXIST",
      family=FAMILY)
def gmem_slots_disjoint_in_gpa(s: StateView) -> E:
    a, b = slots(s)
    return Implies(a.exists & b.exists, (a.gpa + a.len <= b.gpa) | (b.gpa + b.len <= a.gpa))


@prop("gmem-bindings-in-bounds", "always", """A binding lies inside its file, and the file
      belongs to the memslot's VM.""",
      "kvm_gmem_bind(): offset + size > i_size and gmem->kvm != kvm -> -EINVAL", family=FAMILY)
def gmem_bindings_in_bounds(s: StateView) -> E:
    fs = files(s)
    return And(*(Implies(sl.on(i), (sl.off + sl.len <= fs[i].size) & (fs[i].vm == 0)
                         & (sl.len > 0))
                 for sl in slots(s) for i in range(NFILES)))


@prop("gmem-slots-immutable", "action", """A memslot bound to a guest_memfd never changes its
      binding: re-issuing it (even identically, or without KVM_MEM_GUEST_MEMFD) fails; it
      only goes away by deletion (memory_size 0, or the VM's destruction) or loses its file
      when that file is released.""",
      "kvm_set_memory_region(): `if (mem->flags & KVM_MEM_GUEST_MEMFD) return -EINVAL` and "
      "the READONLY|GUEST_MEMFD toggle check (9935df5333aa); kvm_gmem_release()",
      family=FAMILY)
def gmem_slots_immutable(t: TransitionView) -> E:
    out = []
    for a, b in zip(slots(t.s), slots(t.n), strict=True):
        same = ((b.state == a.state) & (b.gpa == a.gpa) & (b.off == a.off) & (b.len == a.len)
                & (b.ro == a.ro))
        gone = (b.state == S_NONE) | ((b.state == S_CLOSED) & (a.state != S_CLOSED))
        out.append(Implies(a.exists, same | gone))
    return And(*out)


@prop("gmem-no-readonly-slot", "always", """No memslot backed by a guest_memfd is read-only:
      read-only slots turn guest writes into emulated MMIO, which KVM does not support for
      private memory ("the guest can only ever read zeros"). Violated by the 6.8 merge
      window's code (bug-history G1).""",
      "check_memory_region_flags(): READONLY is valid only without KVM_MEM_GUEST_MEMFD",
      expect={G68: VIOLATED}, family=FAMILY)
def gmem_no_readonly_slot(s: StateView) -> E:
    return And(*(Implies(sl.exists, ~sl.ro) for sl in slots(s)))


# ---- the seed's promise -----------------------------------------------------------------------
@prop("seed-inaccessible-never-sealable", "action", """The seed's promise, first half:
      inaccessible memory can never be sealed, so a seal can never freeze or reveal what the
      guest owns. On guest_memfd: F_ADD_SEALS never succeeds on a file created without
      GUEST_MEMFD_FLAG_MMAP (in fact on none: there is no seal word).""",
      "memfd_fcntl(): no seal word for a guest_memfd (MFD_INACCESSIBLE v5 had F_SEAL_SEAL "
      "set at creation)", family=FAMILY)
def seed_never_sealable(t: TransitionView) -> E:
    fs = files(t.s)
    if not t.is_("fcntl_add_seals"):
        return true
    inacc = Or(*(here & fs[i].inaccessible for i, here in fd_file(t)))
    return Implies(inacc, ~t.ok)


@prop("seed-inaccessible-never-user-mappable", "always", """The seed's promise, second half:
      inaccessible memory is never mapped into a user address space. On guest_memfd: a file
      created without GUEST_MEMFD_FLAG_MMAP has no mapping, ever.""",
      "kvm_gmem_mmap() -> -ENODEV without GUEST_MEMFD_FLAG_MMAP", family=FAMILY)
def seed_never_mappable(s: StateView) -> E:
    return And(*(Implies(f.inaccessible, f.maps == 0) for f in files(s)))


@prop("seed-every-gmem-never-user-mappable", "always", """The seed's promise read for every
      guest_memfd: none is ever mapped. Violated since 6.18 by design: GUEST_MEMFD_FLAG_MMAP
      makes a file mappable (shared only), so "guest_memfd" no longer implies
      "inaccessible".""",
      "kvm_gmem_mmap() accepts MAP_SHARED mappings of GUEST_MEMFD_FLAG_MMAP files",
      expect={G18: VIOLATED, G68: VIOLATED}, family=FAMILY)
def seed_every_never_mappable(s: StateView) -> E:
    return And(*(f.maps == 0 for f in files(s)))


def _w(name: str, kind: str, rationale: str, enforced_by: str
       ) -> Callable[[Callable[[Any], E]], Callable[[Any], E]]:
    """A `sometimes` witness of the gmem family (expected witnessed on every design)."""
    return prop(name, kind, rationale, enforced_by, family=FAMILY)


# ---- bounds and permission (issue 19) ------------------------------------------------------------
PAGE = PAGE_SIZE


def _alloc(t: TransitionView) -> E:
    """The call is an allocating fallocate (not a hole punch)."""
    return ~t.param("mode").has(FALLOC_FL_PUNCH_HOLE)


def _past_eof(t: TransitionView) -> E:
    """The fallocate's range ends past the i_size of the file its descriptor names."""
    fs = files(t.s)
    end = t.param("off") + t.param("len")
    return Or(*(here & (end > fs[i].size * PAGE) for i, here in fd_file(t)))


@prop("gmem-no-allocation-beyond-eof", "action", """fallocate() never allocates a page of a
      guest_memfd beyond its i_size: an allocation whose range ends past EOF fails (EINVAL),
      so guest memory is never instantiated outside the file KVM sized.""",
      "kvm_gmem_allocate(): offset + len > i_size_read(inode) -> -EINVAL", family=FAMILY)
def gmem_no_alloc_beyond_eof(t: TransitionView) -> E:
    if not t.is_("fallocate"):
        return true
    return Implies(_alloc(t) & _past_eof(t), ~t.ok)


@_w("sometimes-gmem-allocation-beyond-eof-attempt", "sometimes-action", """An allocating
    fallocate(FALLOC_FL_KEEP_SIZE) with page-aligned offset and length ends past EOF (the
    precondition of gmem-no-allocation-beyond-eof with every earlier check passed).""",
    "kvm_gmem_allocate()")
def w_alloc_beyond(t: TransitionView) -> E:
    if not t.is_("fallocate"):
        return false
    off, n = t.param("off"), t.param("len")
    return ((t.param("mode") == FALLOC_FL_KEEP_SIZE) & (n > 0) & (off % PAGE == 0)
            & (n % PAGE == 0) & _past_eof(t))


@prop("gmem-create-permitted", "action", """KVM_CREATE_GUEST_MEMFD on a VM with a size that is
      a positive multiple of the page (and a loff_t) and flags among MMAP and INIT_SHARED
      succeeds. (The descriptor table or memory running out is not in the model.)""",
      "kvm_gmem_create(): flags & ~kvm_gmem_get_supported_flags() and "
      "size <= 0 || !PAGE_ALIGNED(size) are its only refusals", family=FAMILY)
def gmem_create_permitted(t: TransitionView) -> E:
    from model.designs.guest_memfd import GMEM_SUPPORTED, LLONG_MAX

    if not t.is_("create_gmem"):
        return true
    size, flags = t.param("size"), t.param("flags")
    pre = ((flags & ~GMEM_SUPPORTED) == 0) & (size > 0) & (size <= LLONG_MAX) & (
        size % PAGE == 0)
    return Implies(pre, t.ok)


@_w("sometimes-gmem-create-attempt-with-a-file-alive", "sometimes-action", """A valid
    KVM_CREATE_GUEST_MEMFD while another guest_memfd is alive (the precondition of
    gmem-create-permitted, beyond the first file).""", "kvm_gmem_create()")
def w_create(t: TransitionView) -> E:
    from model.designs.guest_memfd import GMEM_SUPPORTED

    if not t.is_("create_gmem"):
        return false
    size, flags = t.param("size"), t.param("flags")
    return (((flags & ~GMEM_SUPPORTED) == 0) & (size > 0) & (size % PAGE == 0)
            & Or(*(f.live for f in files(t.s))))


def _bind_pre(t: TransitionView) -> E:
    """Everything kvm_set_memory_region() and kvm_gmem_bind() require of a new binding:
    flags exactly KVM_MEM_GUEST_MEMFD, the slot id unused, the file a guest_memfd of this
    VM, page-aligned values whose sums do not wrap (u64; the offset a loff_t), the range
    inside the file, and no overlap with another slot's guest frames or another binding of
    the file. Stated without leaning on what is reachable (a file is at most LLONG_MAX
    bytes), so k-induction needs no strengthening for it."""
    from model.designs.guest_memfd import KVM_MEM_MAX_NR_PAGES, LLONG_MAX, U64_PAGES

    fs, sls = files(t.s), slots(t.s)
    size, off, gpa = t.param("size"), t.param("off"), t.param("gpa")
    npages, first, base = size // PAGE, off // PAGE, gpa // PAGE
    per_slot = []
    for j, sl in enumerate(sls):
        other = sls[1 - j]
        per_file = []
        for i, here in fd_file(t, "g"):
            disjoint = ~other.on(i) | (first + npages <= other.off) | (
                other.off + other.len <= first)
            per_file.append(here & (fs[i].vm == 0) & (off + size <= fs[i].size * PAGE)
                            & disjoint)
        gpa_free = ~other.exists | (base + npages <= other.gpa) | (other.gpa + other.len
                                                                   <= base)
        per_slot.append((t.param("slot") == j) & ~sl.exists & gpa_free & Or(*per_file))
    return ((t.param("flags") == KVM_MEM_GUEST_MEMFD) & (size > 0) & (size % PAGE == 0)
            & (off % PAGE == 0) & (gpa % PAGE == 0) & (npages <= KVM_MEM_MAX_NR_PAGES)
            & (base + npages <= U64_PAGES) & (first + npages <= U64_PAGES)
            & (off <= LLONG_MAX) & Or(*per_slot))


@prop("gmem-bind-permitted", "action", """A guest_memfd binding the API allows succeeds:
      KVM_SET_USER_MEMORY_REGION2 with KVM_MEM_GUEST_MEMFD on an unused slot id, naming a
      guest_memfd of the same VM, with page-aligned guest physical address, size and offset,
      the range inside the file, and neither the guest frames nor the file range meeting
      another slot's. (A slot past the host's MAXPHYADDR and a failing allocation are not in
      the model.)""",
      "kvm_set_memory_region() -> kvm_set_memslot(KVM_MR_CREATE) -> kvm_gmem_bind()",
      family=FAMILY)
def gmem_bind_permitted(t: TransitionView) -> E:
    if not t.is_("bind"):
        return true
    return Implies(_bind_pre(t), t.ok)


@_w("sometimes-gmem-second-binding-attempt", "sometimes-action", """A binding the API allows
    is asked for while the other slot is bound to the same file (the precondition of
    gmem-bind-permitted, with the disjointness in play).""", "kvm_gmem_bind()")
def w_bind(t: TransitionView) -> E:
    if not t.is_("bind"):
        return false
    sls = slots(t.s)
    return _bind_pre(t) & Or(*(here & Or(*(sl.on(i) for sl in sls))
                               for i, here in fd_file(t, "g")))


def _unbind_pre(t: TransitionView) -> E:
    """A deletion kvm_set_memory_region() accepts: flags none or KVM_MEM_GUEST_MEMFD, an
    aligned guest physical address (and, with GUEST_MEMFD, offset), each a u64 value (the
    symbolic engines' parameters are unbounded integers), an existing slot."""
    from model.designs.guest_memfd import U64_MAX

    flags, gpa = t.param("flags"), t.param("gpa")
    ok_off = true
    if t.has_param("off"):
        off = t.param("off")
        ok_off = ~flags.has(KVM_MEM_GUEST_MEMFD) | ((off % PAGE == 0) & (off <= U64_MAX))
    exists = Or(*((t.param("slot") == j) & sl.exists for j, sl in enumerate(slots(t.s))))
    return (((flags & ~KVM_MEM_GUEST_MEMFD) == 0) & (gpa % PAGE == 0) & (gpa <= U64_MAX)
            & ok_off & exists)


@prop("gmem-unbind-permitted", "action", """Deleting an existing memslot succeeds — bound to a
      live guest_memfd or left by a released one — when the flags are none or
      KVM_MEM_GUEST_MEMFD and the guest physical address (and, with GUEST_MEMFD, the offset)
      is page-aligned: memory_size 0 deletes, and the slot is gone after it.""",
      "kvm_set_memory_region(): !mem->memory_size -> kvm_set_memslot(KVM_MR_DELETE) -> "
      "kvm_gmem_unbind()", family=FAMILY)
def gmem_unbind_permitted(t: TransitionView) -> E:
    if t.is_("bind"):
        pre = (t.param("size") == 0) & _unbind_pre(t)
    elif t.is_("delete_slot"):
        pre = _unbind_pre(t)
    else:
        return true
    gone = And(*(Implies(t.param("slot") == j, ~sl.exists)
                 for j, sl in enumerate(slots(t.n))))
    return Implies(pre, t.ok & gone)


@_w("sometimes-gmem-unbind-attempt-of-bound-slot", "sometimes-action", """A deletion the API
    allows of a slot bound to a live guest_memfd (the precondition of
    gmem-unbind-permitted).""", "kvm_set_memory_region() KVM_MR_DELETE")
def w_unbind(t: TransitionView) -> E:
    if not t.is_("delete_slot"):
        return false
    bound = Or(*((t.param("slot") == j) & Or(*(sl.on(i) for i in range(NFILES)))
                 for j, sl in enumerate(slots(t.s))))
    return _unbind_pre(t) & bound


def _fault_pre(t: TransitionView) -> E:
    """The access hits a page inside a file created GUEST_MEMFD_FLAG_INIT_SHARED."""
    fs = files(t.s)
    page = t.param("page")
    return Or(*(here & fs[i].flags.has(GUEST_MEMFD_FLAG_INIT_SHARED) & (page < fs[i].size)
                for i, here in map_file(t)))


@prop("gmem-user-fault-permitted", "action", """A user load or store through a mapping of a
      file created GUEST_MEMFD_FLAG_INIT_SHARED succeeds on every page inside the file (the
      converse of gmem-user-fault-only-if-shared).""",
      "kvm_gmem_fault_user_mapping(): only pgoff >= i_size and private memory SIGBUS",
      family=FAMILY)
def gmem_fault_permitted(t: TransitionView) -> E:
    if not t.is_("store", "load"):
        return true
    return Implies(_fault_pre(t), t.ok)


@_w("sometimes-gmem-shared-page-load-attempt", "sometimes-action", """A load of the last page
    inside a two-page INIT_SHARED file (the precondition of gmem-user-fault-permitted).""",
    "kvm_gmem_fault_user_mapping()")
def w_fault(t: TransitionView) -> E:
    if not t.is_("load"):
        return false
    fs = files(t.s)
    return _fault_pre(t) & (t.param("page") == 1) & Or(*(here & (fs[i].size == 2)
                                                       for i, here in map_file(t)))


# ---- fallocate's contract and mprotect (issue 19) ----------------------------------------------
def _fallocate_contract(t: TransitionView) -> E:
    """What KVM's API promises of a guest_memfd fallocate that succeeds: FALLOC_FL_KEEP_SIZE,
    nothing but KEEP_SIZE and PUNCH_HOLE, a non-empty page-aligned range that fits in loff_t."""
    from model.designs.guest_memfd import LLONG_MAX

    mode, off, n = t.param("mode"), t.param("off"), t.param("len")
    return (mode.has(FALLOC_FL_KEEP_SIZE)
            & ((mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) == 0)
            & (n > 0) & (off % PAGE == 0) & (n % PAGE == 0) & (off <= LLONG_MAX - n))


@prop("gmem-fallocate-only-aligned-keep-size", "action", """fallocate() of a guest_memfd
      succeeds only with FALLOC_FL_KEEP_SIZE (the size is fixed at creation), no mode bit
      but KEEP_SIZE and PUNCH_HOLE, and a non-empty, page-aligned range that fits in loff_t
      (Documentation/virt/kvm/api.rst, KVM_CREATE_GUEST_MEMFD). A VMM relies on each: an
      unaligned hole punch must not half-convert a page.""",
      "vfs_fallocate() (len <= 0, offset + len > s_maxbytes); kvm_gmem_fallocate(): "
      "!(mode & FALLOC_FL_KEEP_SIZE), mode & ~(KEEP_SIZE|PUNCH_HOLE), !PAGE_ALIGNED(offset "
      "or len)", family=FAMILY)
def gmem_fallocate_contract(t: TransitionView) -> E:
    if not t.is_("fallocate"):
        return true
    return Implies(t.ok, _fallocate_contract(t))


@_w("sometimes-gmem-fallocate-outside-contract-attempt", "sometimes-action", """A fallocate()
    of a guest_memfd outside that contract is asked for (the precondition of
    gmem-fallocate-only-aligned-keep-size's refusal).""", "kvm_gmem_fallocate()")
def w_fallocate_outside(t: TransitionView) -> E:
    if not t.is_("fallocate"):
        return false
    return ~_fallocate_contract(t)


@prop("gmem-mapping-never-executable", "action", """A guest_memfd mapping never becomes
      executable: mprotect(PROT_EXEC) fails with EACCES, because do_mmap() left the VMA
      without VM_MAYEXEC (the anon-inode mount counts as noexec).""",
      "do_mmap(): path_noexec() clears VM_MAYEXEC; mprotect_fixup() -> -EACCES",
      family=FAMILY)
def gmem_mapping_never_executable(t: TransitionView) -> E:
    from model.designs.guest_memfd import PROT_RX

    if not t.is_("mprotect"):
        return true
    return Implies(t.param("prot") == PROT_RX, t.failed("EACCES"))


@prop("gmem-mprotect-permitted", "action", """mprotect(PROT_READ|PROT_WRITE) of a guest_memfd
      mapping (always shared and writable: kvm_gmem_mmap() accepts only those) succeeds.""",
      "mprotect_fixup(): VM_MAYREAD|VM_MAYWRITE are set", family=FAMILY)
def gmem_mprotect_permitted(t: TransitionView) -> E:
    from model.designs.guest_memfd import PROT_RW

    if not t.is_("mprotect"):
        return true
    return Implies(t.param("prot") == PROT_RW, t.ok)


@_w("sometimes-gmem-mprotect-exec-attempt", "sometimes-action", """mprotect(PROT_EXEC) is
    asked of a guest_memfd mapping (the precondition of gmem-mapping-never-executable).""",
    "mprotect_fixup()")
def w_mprotect_exec(t: TransitionView) -> E:
    from model.designs.guest_memfd import PROT_RX

    return t.param("prot") == PROT_RX if t.is_("mprotect") else false


@_w("sometimes-gmem-mprotect-rw", "sometimes-action", """mprotect(PROT_READ|PROT_WRITE) of a
    guest_memfd mapping (the precondition of gmem-mprotect-permitted).""", "mprotect_fixup()")
def w_mprotect_rw(t: TransitionView) -> E:
    from model.designs.guest_memfd import PROT_RW

    return t.param("prot") == PROT_RW if t.is_("mprotect") else false


# ---- sometimes: the invariants above are not vacuous -------------------------------------------
@_w("sometimes-gmem-slot-bound", "sometimes", """A memslot is bound to a guest_memfd.""",
    "kvm_gmem_bind()")
def w_bound(s: StateView) -> E:
    return Or(*(sl.on(i) for sl in slots(s) for i in range(NFILES)))


@_w("sometimes-gmem-two-bindings-one-file", "sometimes", """Two memslots are bound to disjoint
    ranges of the same file.""", "kvm_gmem_bind()")
def w_two_bindings(s: StateView) -> E:
    a, b = slots(s)
    return Or(*(a.on(i) & b.on(i) for i in range(NFILES)))


@_w("sometimes-gmem-mapped-and-faulted", "sometimes-action", """A store through a mapping of
    a GUEST_MEMFD_FLAG_MMAP|INIT_SHARED file succeeds.""", "kvm_gmem_fault_user_mapping()")
def w_faulted(t: TransitionView) -> E:
    return t.ok if t.is_("store") else false


@_w("sometimes-gmem-punched-hole", "sometimes-action", """A hole is punched in a file while a
    memslot is bound to it.""", "kvm_gmem_punch_hole()")
def w_punched(t: TransitionView) -> E:
    sls = slots(t.s)
    return t.fired("punched") & Or(*(here & sl.on(i) for i, here in fd_file(t) for sl in sls))


@_w("sometimes-gmem-allocated", "sometimes-action", """Pages are allocated with
    FALLOC_FL_KEEP_SIZE.""", "kvm_gmem_allocate()")
def w_allocated(t: TransitionView) -> E:
    return t.fired("allocated")


@_w("sometimes-gmem-slot-outlives-file", "sometimes", """A memslot survives the release of
    its guest_memfd (and can still be deleted).""", "kvm_gmem_release()")
def w_closed_slot(s: StateView) -> E:
    return Or(*(sl.state == S_CLOSED for sl in slots(s)))


@_w("sometimes-gmem-deleted-after-close", "sometimes-action", """A memslot whose guest_memfd
    was released is deleted.""", "kvm_set_memory_region() KVM_MR_DELETE")
def w_deleted_closed(t: TransitionView) -> E:
    sls = slots(t.s)
    if not t.has_param("slot"):
        return false
    return t.fired("deleted") & Or(*((t.param("slot") == j) & (sl.state == S_CLOSED)
                                     for j, sl in enumerate(sls)))


@_w("sometimes-gmem-file-outlives-fd", "sometimes", """A guest_memfd stays alive through a
    mapping after its last descriptor is closed.""", "the VMA's file reference")
def w_outlives_fd(s: StateView) -> E:
    return Or(*((f.fd == 0) & (f.maps > 0) for f in files(s)))


@_w("sometimes-gmem-outlives-vm-fd", "sometimes", """A guest_memfd of the first VM is alive
    after the VM's descriptor is closed.""", "__kvm_gmem_create(): kvm_get_kvm()")
def w_outlives_vm(s: StateView) -> E:
    return (s.vm0_fd == 0) & Or(*(f.live & (f.vm == 0) for f in files(s)))


@_w("sometimes-gmem-other-vm-refused", "sometimes-action", """Binding a guest_memfd of the
    other VM is refused.""", "kvm_gmem_bind(): gmem->kvm != kvm")
def w_other_vm(t: TransitionView) -> E:
    return t.fired("other_vm")


@_w("sometimes-gmem-overlap-refused", "sometimes-action", """A binding overlapping another
    slot's range of the same file is refused.""", "kvm_gmem_bind()")
def w_overlap(t: TransitionView) -> E:
    return t.fired("overlap")


@_w("sometimes-gmem-gpa-overlap-refused", "sometimes-action", """A memslot whose guest
    physical range meets another slot's is refused.""",
    "kvm_set_memory_region(): kvm_check_memslot_overlap()")
def w_gpa_overlap(t: TransitionView) -> E:
    return t.fired("gpa_overlap")


@_w("sometimes-gmem-rebind-refused", "sometimes-action", """Re-issuing an existing guest_memfd
    memslot is refused.""", "kvm_set_memory_region()")
def w_immutable(t: TransitionView) -> E:
    return t.fired("immutable")


__all__ = ["File", "Slot", "files", "slots"]
