"""guest_memfd as Linux 6.18 behaves (kernel-semantics.md §5.3, probed on 6.18.44).

Up to two VMs (KVM_CREATE_VM on an open /dev/kvm), up to two guest_memfd files g0 and g1 at a
time (KVM_CREATE_GUEST_MEMFD on either VM), and two memslots of the first VM, each unbound or
bound to a page range of one file (KVM_SET_USER_MEMORY_REGION2 with KVM_MEM_GUEST_MEMFD).
Byte arguments (a file's size, fallocate's offset and length, a memslot's guest_phys_addr,
memory_size and guest_memfd_offset, read/write counts) are parameters in bytes, judged exactly
for any value a trace holds (up to the argument's C type); the kernel's alignment, overflow and
range checks are rules with their errno. State keeps what only a successful call stores, which
is page-aligned: sizes, offsets, lengths and guest physical addresses in 4 KiB pages.
Descriptors, mappings and slots are the handles of traces: /dev/kvm and VM fds, gmem fds and
mappings are counted per kind.

Every mapping is MAP_SHARED|PROT_READ|PROT_WRITE over MAP_PAGES pages at file offset 0, so an
access at a page past i_size (the selftest's fault_overflow) is expressible. Memslots have
userspace_addr 0 (6.18 accepts it for guest_memfd slots); two slots whose guest physical ranges
meet are refused (EEXIST, kvm_check_memslot_overlap()).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from model.designs import register
from model.designs.vfs import fallocate_mode_unsupported
from model.lang import (
    Action,
    Design,
    E,
    Field,
    If,
    Init,
    Param,
    Schema,
    Sort,
    boolean,
    enum,
    fail,
    nat,
    ok,
    requires,
    signal,
    word,
)
from model.lang.action import Rule, as_updates
from model.lang.callspec import C, Choice, Fd, Fields, Flags, MapRef, Num, Span
from model.lang.expr import INT, Or, bv, const, recast
from model.lang.schema import StateView
from model.vocab import (
    F_SEAL_GROW,
    F_SEAL_SEAL,
    F_SEAL_WRITE,
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    FALLOC_FL_ZERO_RANGE,
    FALLOC_FLAGS,
    GMEM_FLAGS,
    GUEST_MEMFD_FLAG_INIT_SHARED,
    GUEST_MEMFD_FLAG_MMAP,
    KVM_MEM_GUEST_MEMFD,
    KVM_MEM_LOG_DIRTY_PAGES,
    KVM_MEM_READONLY,
    MEMSLOT_FLAGS,
    PAGE_SIZE,
    SEALS,
)

# ---- handles -------------------------------------------------------------------------------
FD_KINDS = ("kvm", "vm0", "vm1", "g0", "g1")  # enum order = order of the fd counters
KVM, VM0, VM1, G0, G1 = range(5)
GMEM_FDS = (G0, G1)
VM_FDS = (VM0, VM1)
MAP_KINDS = ("g0", "g1")  # a shared RW mapping of g0 / g1
NGMEM = 2
NSLOTS = 2
SLOT_STATES = ("none", "g0", "g1", "closed")
S_NONE, S_G0, S_G1, S_CLOSED = range(4)  # unbound; bound to g0 / g1; bound to a released file
MAP_PAGES = 4

# ---- byte counts ---------------------------------------------------------------------------
PAGE = PAGE_SIZE
LLONG_MAX = (1 << 63) - 1  # loff_t's largest value; also MAX_LFS_FILESIZE on 64-bit
U64_MAX = (1 << 64) - 1
U64_PAGES = U64_MAX >> 12  # a page-aligned u64 byte count, in pages, is at most this
KVM_MEM_MAX_NR_PAGES = (1 << 31) - 1  # include/linux/kvm_host.h
MIN_MAX_GFN = (1 << (36 - 12)) - 1  # kvm_mmu_max_gfn() on a host with the least MAXPHYADDR
HUGE = 1 << 62  # the explored "too large" byte value (its sums still fit the int64 search)
PAGES = "pages"
#: a byte count: a natural with no scope bound (no scope key "bytes": only state fields are
#: bounded by the scope); replay and conformance judge any value its C type holds, the
#: search explores each parameter's small domain
BYTES = nat("bytes")


def u64_exact(v: int) -> str | None:
    """A u64 field of an ioctl struct (or a size_t count) holds 0..2^64-1."""
    return None if v <= U64_MAX else "does not fit the argument's 64 bits"


def loff_exact(v: int) -> str | None:
    """A loff_t/off_t argument: the model takes 0..LLONG_MAX (a negative one is not modelled)."""
    return None if v <= LLONG_MAX else \
        "above LLONG_MAX: the kernel reads it as a negative loff_t (not modelled)"


# ---- constants ------------------------------------------------------------------------------
GMEM_SUPPORTED = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED  # KVM_CAP_GUEST_MEMFD_FLAGS
MEMSLOT_KNOWN = KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY | KVM_MEM_GUEST_MEMFD
GFLAGS = word(63, GMEM_FLAGS)  # the struct's u64 flags (bit 63 does not fit the int64 engines)

# ---- state ---------------------------------------------------------------------------------


def _gmem_fields(i: int) -> tuple[Field, ...]:
    g = f"g{i}"
    return (
        Field(f"{g}_fd", nat("fds"), f"descriptors of guest_memfd {g}", handle=("fd", g)),
        Field(f"{g}_maps", nat("maps"), f"shared RW mappings of {g} (each holds the file)",
              handle=("map", g)),
        Field(f"{g}_vm", enum("vm0", "vm1"), f"the VM {g} was created on (gmem->kvm)"),
        Field(f"{g}_flags", word(2, GMEM_FLAGS), f"{g}'s creation flags (inode->i_private)"),
        Field(f"{g}_size", nat("pages"), f"i_size of {g} in pages (fixed at creation)"),
    )


def _slot_fields(j: int) -> tuple[Field, ...]:
    sl = f"slot{j}"
    return (
        Field(sl, enum(*SLOT_STATES), f"memslot {j} of the first VM: unbound, bound to g0/g1, "
              "or bound to a released file (kvm_gmem_release() nulled slot->gmem.file)"),
        Field(f"{sl}_gpa", nat("pages"), f"slot {j}'s guest_phys_addr in pages (base_gfn)"),
        Field(f"{sl}_off", nat("pages"), f"slot {j}'s guest_memfd_offset in pages "
              "(slot->gmem.pgoff)"),
        Field(f"{sl}_len", nat("pages"), f"slot {j}'s npages"),
        Field(f"{sl}_ro", boolean(), f"slot {j} has KVM_MEM_READONLY (only a buggy kernel "
              "accepts it with KVM_MEM_GUEST_MEMFD)"),
    )


SCHEMA = Schema((
    Field("kvm_fd", nat(fixed=1), "descriptors of /dev/kvm", handle=("fd", "kvm")),
    Field("vms", nat(fixed=2), "VMs created so far (the first is vm0)"),
    Field("vm0_fd", nat(fixed=1), "descriptors of the first VM", handle=("fd", "vm0")),
    Field("vm1_fd", nat(fixed=1), "descriptors of the second VM", handle=("fd", "vm1")),
    *_gmem_fields(0), *_gmem_fields(1),
    *_slot_fields(0), *_slot_fields(1),
))

FD = enum(*FD_KINDS)
MAPK = enum(*MAP_KINDS)


# ---- helpers --------------------------------------------------------------------------------
def gf(s: StateView, i: int, name: str) -> E:
    return s[f"g{i}_{name}"]


def live(s: StateView, i: int) -> E:
    """gmem i exists: a descriptor or a mapping still holds its file."""
    return (gf(s, i, "fd") + gf(s, i, "maps")) > 0


def fd_count(s: StateView, kind: E) -> E:
    out: E = s[f"{FD_KINDS[-1]}_fd"]
    for i in range(len(FD_KINDS) - 2, -1, -1):
        out = If(kind == i, s[f"{FD_KINDS[i]}_fd"], out)
    return out


def of_gmem(s: StateView, fd: E, name: str, default: E | int = 0) -> E:
    """Field `name` of the gmem a descriptor kind names (default for other kinds)."""
    out: E | int = default
    for i in reversed(range(NGMEM)):
        out = If(fd == GMEM_FDS[i], gf(s, i, name), out)
    assert isinstance(out, E)
    return out


def of_map(s: StateView, m: E, name: str) -> E:
    """Field `name` of the gmem mapped by a mapping of kind m."""
    return If(m == 0, gf(s, 0, name), gf(s, 1, name))


def is_gmem(fd: E) -> E:
    return (fd == G0) | (fd == G1)


def have_fd(s: StateView, fd: E) -> Rule:
    return requires(fd_count(s, fd) > 0, label="have_fd",
                    why="the caller holds a descriptor of this kind")


def gmem_fd(fd: E) -> Rule:
    return requires(is_gmem(fd), label="gmem_fd",
                    why="the call is modelled on guest_memfd descriptors only")


def have_map(s: StateView, m: E) -> Rule:
    return requires(If(m == 0, gf(s, 0, "maps"), gf(s, 1, "maps")) > 0, label="have_map")


def drop_refs(s: StateView, fds: Mapping[str, E], maps: Mapping[int, E]) -> dict[str, E]:
    """Updates after descriptors/mappings are dropped: `fds` and `maps` give the new counters.

    A gmem whose last reference goes is released (kvm_gmem_release()): its bindings are
    nulled, so slots bound to it become S_CLOSED, and its fields are reset. The first VM is
    destroyed (kvm_destroy_vm() frees its memslots) when its fd and every gmem created on it
    are gone: gmem files hold a VM reference (kvm_get_kvm() in __kvm_gmem_create())."""
    up: dict[str, E] = {}
    gone: list[E] = []
    for i in range(NGMEM):
        nfd = fds.get(f"g{i}_fd", gf(s, i, "fd"))
        nmaps = maps.get(i, gf(s, i, "maps"))
        released = live(s, i) & ((nfd + nmaps) == 0)
        gone.append(released)
        up[f"g{i}_fd"] = nfd
        up[f"g{i}_maps"] = nmaps
        for f, zero in (("vm", 0), ("size", 0)):
            up[f"g{i}_{f}"] = If(released, zero, gf(s, i, f))
        up[f"g{i}_flags"] = If(released, bv(0, 2), gf(s, i, "flags"))
    n_vm0 = fds.get("vm0_fd", s.vm0_fd)
    for k in ("kvm_fd", "vm1_fd"):
        if k in fds:
            up[k] = fds[k]
    up["vm0_fd"] = n_vm0
    vm0_refs = n_vm0
    for i in range(NGMEM):
        vm0_refs = vm0_refs + If(live(s, i) & ~gone[i] & (gf(s, i, "vm") == 0), 1, 0)
    vm0_dies = (s.vms >= 1) & (vm0_refs == 0)
    for j in range(NSLOTS):
        sl = f"slot{j}"
        closes = Or(*((s[sl] == S_G0 + i) & gone[i] for i in range(NGMEM)))
        up[sl] = If(vm0_dies, S_NONE, If(closes, S_CLOSED, s[sl]))
        # a closed slot keeps its guest physical range (it still occupies it: EEXIST), not
        # its file range (the bindings went with the file)
        for f in ("gpa", "len"):
            up[f"{sl}_{f}"] = If(vm0_dies, 0, s[f"{sl}_{f}"])
        up[f"{sl}_off"] = If(vm0_dies | closes, 0, s[f"{sl}_off"])
        up[f"{sl}_ro"] = If(vm0_dies | closes, 0, s[f"{sl}_ro"])
    return up


# ---- /dev/kvm and VMs -----------------------------------------------------------------------
def open_kvm_body(s: StateView) -> list[Rule]:
    """open("/dev/kvm", O_RDWR): misc device open (kvm_dev_fops)."""
    return [ok(0, kvm_fd=s.kvm_fd + 1)]


def create_vm_body(s: StateView, fd: E) -> list[Rule]:
    """kvm_dev_ioctl(KVM_CREATE_VM) -> kvm_dev_ioctl_create_vm(): a VM of the default type."""
    return [
        requires(fd == KVM, label="kvm_fd", why="KVM_CREATE_VM is a /dev/kvm ioctl"),
        have_fd(s, fd),
        requires(s.vms < 2, label="two_vms", why="the model holds two VMs"),
        ok(0, vms=s.vms + 1, vm0_fd=s.vm0_fd + If(s.vms == 0, 1, 0),
           vm1_fd=s.vm1_fd + If(s.vms == 1, 1, 0)),
    ]


# ---- KVM_CREATE_GUEST_MEMFD -----------------------------------------------------------------
def create_gmem_body(s: StateView, vm: E, size: E, flags: E) -> list[Rule]:
    """kvm_vm_ioctl(KVM_CREATE_GUEST_MEMFD) -> kvm_gmem_create() -> __kvm_gmem_create()
    (virt/kvm/guest_memfd.c). reserved[] is not validated (not expressible in traces)."""
    tgt = If(live(s, 0), 1, 0)  # the first free file of the model
    up: dict[str, E | int] = {}
    for i in range(NGMEM):
        here = tgt == i
        up[f"g{i}_fd"] = gf(s, i, "fd") + If(here, 1, 0)
        up[f"g{i}_vm"] = If(here, If(vm == VM0, 0, 1), gf(s, i, "vm"))
        up[f"g{i}_flags"] = If(here, recast(flags & 3, word(2).expr_sort), gf(s, i, "flags"))
        up[f"g{i}_size"] = If(here, size // PAGE, gf(s, i, "size"))
    return [
        requires((vm == VM0) | (vm == VM1), label="vm_fd",
                 why="KVM_CREATE_GUEST_MEMFD is a VM ioctl"),
        have_fd(s, vm),
        fail("EINVAL", when=(flags & ~GMEM_SUPPORTED) != 0, label="unsupported_flags",
             why="kvm_gmem_create(): flags & ~kvm_gmem_get_supported_flags() (MMAP and "
                 "INIT_SHARED on a default x86 VM)"),
        fail("EINVAL", when=(size == 0) | (size > LLONG_MAX) | (size % PAGE != 0),
             label="bad_size", why="kvm_gmem_create(): loff_t size = args->size (a u64 above "
             "LLONG_MAX is negative); size <= 0 || !PAGE_ALIGNED(size)"),
        requires(~live(s, 0) | ~live(s, 1), label="two_gmems",
                 why="the model holds two guest_memfd files at a time"),
        ok(0, **as_updates(up),
           why="__kvm_gmem_create(): anon inode, i_size = size, flags in i_private, "
           "fd without FD_CLOEXEC; kvm_get_kvm() pins the VM"),
    ]


# ---- KVM_SET_USER_MEMORY_REGION2 ------------------------------------------------------------
def slot_field(s: StateView, slot: E, name: str) -> E:
    suffix = f"_{name}" if name else ""
    return If(slot == 0, s[f"slot0{suffix}"], s[f"slot1{suffix}"])


def overlaps(s: StateView, slot: E, g: E, off: E, npages: E) -> E:
    """Another slot is bound to the same file and its page range meets [off, off+npages)."""
    code = If(g == G0, S_G0, S_G1)
    hits = []
    for k in range(NSLOTS):
        sk = f"slot{k}"
        hits.append((slot != k) & (s[sk] == code) & (off < s[f"{sk}_off"] + s[f"{sk}_len"])
                    & (s[f"{sk}_off"] < off + npages))
    return Or(*hits)


def gpa_overlaps(s: StateView, slot: E, base: E, npages: E) -> E:
    """Another memslot (bound, or left by a released file) meets the guest frames
    [base, base+npages): kvm_check_memslot_overlap() skips only the slot's own id."""
    hits = []
    for k in range(NSLOTS):
        sk = f"slot{k}"
        hits.append((slot != k) & (s[sk] != S_NONE) & (base < s[f"{sk}_gpa"] + s[f"{sk}_len"])
                    & (s[f"{sk}_gpa"] < base + npages))
    return Or(*hits)


def set_region_rules(s: StateView, vm: E, slot: E, flags: E, size: E, off: E, gpa: E,
                     g: E | None) -> list[Rule]:
    """kvm_vm_ioctl_set_memory_region() -> kvm_set_memory_region() (virt/kvm/kvm_main.c):
    check_memory_region_flags(), the general sanity checks on the byte values, DELETE, the
    immutability of an existing guest_memfd slot, the guest-physical overlap check, then
    kvm_gmem_bind() (virt/kvm/guest_memfd.c). `size`, `off`, `gpa` are memory_size,
    guest_memfd_offset and guest_phys_addr in bytes (u64)."""
    gmem = flags.has(KVM_MEM_GUEST_MEMFD)
    exists = slot_field(s, slot, "") != S_NONE
    rules: list[Rule] = [
        requires(vm == VM0, label="vm0_slots", why="memslots are modelled for the first VM"),
        have_fd(s, vm),
    ]
    if g is not None:
        rules.append(requires(fd_count(s, g) > 0, label="have_gmem_fd",
                              why="guest_memfd names an open descriptor"))
    rules += [
        fail("EINVAL", when=(flags & ~MEMSLOT_KNOWN) != 0, label="unknown_flags",
             why="check_memory_region_flags(): flags outside the valid set"),
        fail("EINVAL", when=gmem & flags.has(KVM_MEM_LOG_DIRTY_PAGES), label="gmem_log_dirty",
             why="check_memory_region_flags(): no dirty logging of guest_memfd slots"),
        fail("EINVAL", when=gmem & flags.has(KVM_MEM_READONLY), label="gmem_readonly",
             why="check_memory_region_flags(): GUEST_MEMFD is incompatible with READONLY "
                 "(bug-history G1, \"KVM: Make KVM_MEM_GUEST_MEMFD mutually exclusive with "
                 "KVM_MEM_READONLY\")"),
        # the general sanity checks: all EINVAL with nothing between them, so their order
        # among themselves does not show; each may assume the ones above did not fire. With
        # memory_size 0 (delete_slot) only the guest_phys_addr alignment can fail.
        fail("EINVAL", when=gpa % PAGE != 0, label="gpa_unaligned",
             why="kvm_set_memory_region(): mem->guest_phys_addr & (PAGE_SIZE - 1)"),
    ]
    if g is not None:
        rules += [
            fail("EINVAL", when=size % PAGE != 0, label="size_unaligned",
                 why="kvm_set_memory_region(): mem->memory_size & (PAGE_SIZE - 1)"),
            fail("EINVAL", when=size // PAGE > KVM_MEM_MAX_NR_PAGES, label="too_many_pages",
                 why="kvm_set_memory_region(): (memory_size >> PAGE_SHIFT) > "
                     "KVM_MEM_MAX_NR_PAGES (access_ok(userspace_addr 0, memory_size) refuses "
                     "only larger sizes: TASK_SIZE_MAX is above 2^43)"),
            fail("EINVAL", when=gmem & (off % PAGE != 0), label="offset_unaligned",
                 why="kvm_set_memory_region(): guest_memfd_offset & (PAGE_SIZE - 1)"),
            # the values are page-aligned here: a u64 sum wraps iff the sum of their pages
            # passes U64_PAGES (the int64 search never holds such values: replay only)
            fail("EINVAL", when=gmem & (off // PAGE + size // PAGE > U64_PAGES),
                 label="offset_wraps",
                 why="kvm_set_memory_region(): guest_memfd_offset + memory_size wraps (u64)"),
            fail("EINVAL", when=gpa // PAGE + size // PAGE > U64_PAGES, label="gpa_wraps",
                 why="kvm_set_memory_region(): guest_phys_addr + memory_size wraps (u64)"),
        ]
    rules += [
        fail("EINVAL", when=(size == 0) & ~exists, label="delete_missing",
             why="kvm_set_memory_region(): !mem->memory_size and no old slot"),
        ok(0, when=size == 0, label="deleted",
           why="kvm_set_memslot(KVM_MR_DELETE) -> kvm_free_memslot() -> kvm_gmem_unbind()",
           **as_updates(slot_updates(s, slot, S_NONE, 0, 0, 0, 0))),
    ]
    if g is None:  # memory_size is 0: the delete above always decides
        return rules
    npages = size // PAGE
    rules += [
        fail("EINVAL", when=exists & gmem, label="immutable",
             why="kvm_set_memory_region(): guest_memfd memslots can only be deleted"),
        fail("EINVAL", when=exists, label="toggle_gmem",
             why="kvm_set_memory_region(): (flags ^ old->flags) & (READONLY | GUEST_MEMFD), "
                 "since 9935df5333aa (6.18.3; before it, clearing GUEST_MEMFD freed the slot "
                 "still bound: a use-after-free)"),
        requires(gmem, label="gmem_slots_only",
                 why="memslots without a guest_memfd are not modelled"),
        fail("EEXIST", when=gpa_overlaps(s, slot, gpa // PAGE, npages), label="gpa_overlap",
             why="kvm_set_memory_region(): KVM_MR_CREATE and kvm_check_memslot_overlap()"),
        fail("EINVAL", unless=is_gmem(g), label="not_gmem",
             why="kvm_gmem_bind(): file->f_op != &kvm_gmem_fops"),
        fail("EINVAL", when=of_gmem(s, g, "vm") != 0, label="other_vm",
             why="kvm_gmem_bind(): gmem->kvm != kvm"),
        fail("EINVAL", when=off > LLONG_MAX, label="offset_negative",
             why="kvm_gmem_bind(): loff_t offset < 0"),
        requires(off + size <= LLONG_MAX, label="no_loff_wrap",
                 why="kvm_gmem_bind() computes offset + size in loff_t: a sum past LLONG_MAX "
                     "wraps negative and passes the i_size check, so 6.18.44 binds pages past "
                     "i_size (probed); the model does not represent that kernel bug (NOTES.md)"),
        fail("EINVAL", when=off + size > of_gmem(s, g, "size") * PAGE, label="past_eof",
             why="kvm_gmem_bind(): offset + size > i_size_read(inode)"),
        fail("EINVAL", when=overlaps(s, slot, g, off // PAGE, npages), label="overlap",
             why="kvm_gmem_bind(): xa_find() over [start, end) of gmem->bindings"),
        requires(gpa // PAGE + npages <= MIN_MAX_GFN + 1, label="below_any_maxphyaddr",
                 why="kvm_set_memslot() -> kvm_arch_prepare_memory_region() (x86) refuses a "
                     "slot past kvm_mmu_max_gfn() (EINVAL), a limit set by the host's "
                     "MAXPHYADDR; the model judges a slot that succeeds otherwise only below "
                     "2^36 bytes, which every x86-64 host maps (NOTES.md)"),
        ok(0, why="kvm_gmem_bind(): xa_store_range(); the slot holds no file reference",
           **as_updates(slot_updates(s, slot, If(g == G0, S_G0, S_G1), gpa // PAGE,
                                     off // PAGE, npages,
                                     If(flags.has(KVM_MEM_READONLY), 1, 0)))),
    ]
    return rules


def slot_updates(s: StateView, slot: E, state: E | int, gpa: E | int, off: E | int,
                 npages: E | int, ro: E | int) -> dict[str, E | int]:
    up: dict[str, E | int] = {}
    for j in range(NSLOTS):
        sl = f"slot{j}"
        here = slot == j
        up[sl] = If(here, state, s[sl])
        up[f"{sl}_gpa"] = If(here, gpa, s[f"{sl}_gpa"])
        up[f"{sl}_off"] = If(here, off, s[f"{sl}_off"])
        up[f"{sl}_len"] = If(here, npages, s[f"{sl}_len"])
        up[f"{sl}_ro"] = If(here, ro, s[f"{sl}_ro"])
    return up


def bind_body(s: StateView, vm: E, slot: E, flags: E, gpa: E, size: E, off: E, g: E
              ) -> list[Rule]:
    """KVM_SET_USER_MEMORY_REGION2 naming a guest_memfd (memory_size 0 deletes the slot)."""
    return set_region_rules(s, vm, slot, flags, size, off, gpa, g)


def delete_body(s: StateView, vm: E, slot: E, flags: E, gpa: E) -> list[Rule]:
    """KVM_SET_USER_MEMORY_REGION2 with memory_size 0 (guest_memfd ignored): delete."""
    return set_region_rules(s, vm, slot, flags, const(0, INT), const(0, INT), gpa, None)


# ---- file operations -------------------------------------------------------------------------
def io_body(errno: str, why: str) -> Callable[..., list[Rule]]:
    """read/write/pread64/pwrite64/lseek: the VFS refuses before any file operation, whatever
    the count and position (vfs_read() tests FMODE_CAN_READ before the count)."""
    def body(s: StateView, fd: E, **sizes: E) -> list[Rule]:
        return [gmem_fd(fd), have_fd(s, fd), fail(errno, label="no_io", why=why)]
    body.__doc__ = why
    return body


def setattr_rules(s: StateView, fd: E) -> list[Rule]:
    return [gmem_fd(fd), have_fd(s, fd),
            fail("EINVAL", label="setattr", why="kvm_gmem_setattr() always fails")]


def ftruncate_body(s: StateView, fd: E, len: E) -> list[Rule]:
    """do_ftruncate() -> do_truncate() -> notify_change() -> kvm_gmem_setattr(): the size is
    fixed at creation. Any length >= 0 gets there: the file is O_LARGEFILE (no MAX_NON_LFS
    check) and setattr runs before any size check."""
    return setattr_rules(s, fd)


def fchmod_body(s: StateView, fd: E, mode: E) -> list[Rule]:
    """chmod_common() -> notify_change() -> kvm_gmem_setattr()."""
    return setattr_rules(s, fd)


def seals_body(s: StateView, fd: E, seals: E | None = None) -> list[Rule]:
    """memfd_fcntl(): memfd_file_seals_ptr() is NULL for a non-shmem, non-hugetlbfs file."""
    return [gmem_fd(fd), have_fd(s, fd),
            fail("EINVAL", label="no_seals", why="memfd_file_seals_ptr() == NULL")]


def fallocate_body(s: StateView, fd: E, mode: E, off: E, len: E) -> list[Rule]:
    """vfs_fallocate() (fs/open.c) then kvm_gmem_fallocate() (virt/kvm/guest_memfd.c)."""
    keep = mode.has(FALLOC_FL_KEEP_SIZE)
    return [
        gmem_fd(fd), have_fd(s, fd),
        fail("EINVAL", when=len == 0, label="empty_range",
             why="vfs_fallocate(): offset < 0 || len <= 0, before the mode"),
        fail("EOPNOTSUPP", when=fallocate_mode_unsupported(mode), label="vfs_mode",
             why="vfs_fallocate(): unknown bits, several modes, PUNCH_HOLE without KEEP_SIZE"),
        fail("EFBIG", when=off > LLONG_MAX - len, label="too_big",
             why="vfs_fallocate(): offset + len > s_maxbytes (MAX_LFS_FILESIZE, set by "
                 "init_pseudo()) or wraps below 0, before f_op->fallocate"),
        fail("EOPNOTSUPP", unless=keep, label="keep_size_required",
             why="kvm_gmem_fallocate(): !(mode & FALLOC_FL_KEEP_SIZE)"),
        fail("EOPNOTSUPP", when=(mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) != 0,
             label="gmem_mode", why="kvm_gmem_fallocate(): only KEEP_SIZE and PUNCH_HOLE"),
        fail("EINVAL", when=(off % PAGE != 0) | (len % PAGE != 0), label="unaligned",
             why="kvm_gmem_fallocate(): !PAGE_ALIGNED(offset) || !PAGE_ALIGNED(len)"),
        ok(0, when=mode.has(FALLOC_FL_PUNCH_HOLE), label="punched",
           why="kvm_gmem_punch_hole(): invalidate bound ranges, truncate pages; also past EOF"),
        fail("EINVAL", when=off + len > of_gmem(s, fd, "size") * PAGE, label="alloc_past_eof",
             why="kvm_gmem_allocate(): offset + len > i_size (\"immutable by default\")"),
        ok(0, label="allocated", why="kvm_gmem_allocate(): kvm_gmem_get_folio() per page"),
    ]


# ---- mappings ---------------------------------------------------------------------------------
SHARED, PRIVATE = 0, 1
PROT_RW, PROT_RX = 0, 1


def mmap_body(s: StateView, fd: E, share: E) -> list[Rule]:
    """do_mmap() -> mmap_region() -> kvm_gmem_mmap()."""
    return [
        gmem_fd(fd), have_fd(s, fd),
        fail("ENODEV", unless=of_gmem(s, fd, "flags").has(GUEST_MEMFD_FLAG_MMAP),
             label="no_mmap_flag", why="kvm_gmem_mmap(): !kvm_gmem_supports_mmap()"),
        fail("EINVAL", when=share == PRIVATE, label="not_shared",
             why="kvm_gmem_mmap(): needs VM_SHARED|VM_MAYSHARE (no copy-on-write)"),
        ok(0, g0_maps=s.g0_maps + If(fd == G0, 1, 0), g1_maps=s.g1_maps + If(fd == G1, 1, 0)),
    ]


def mprotect_body(s: StateView, m: E, prot: E) -> list[Rule]:
    """mprotect_fixup(): PROT_EXEC needs VM_MAYEXEC, which do_mmap() cleared because the
    anon-inode mount counts as noexec (path_noexec())."""
    return [have_map(s, m),
            fail("EACCES", when=prot == PROT_RX, label="noexec", why="no VM_MAYEXEC"),
            ok(0)]


def munmap_body(s: StateView, m: E) -> list[Rule]:
    """munmap(): the VMA's file reference goes; the last one releases the file."""
    maps = {i: gf(s, i, "maps") - If(m == i, 1, 0) for i in range(NGMEM)}
    return [have_map(s, m), ok(0, **as_updates(drop_refs(s, {}, maps)))]


def access_rules(s: StateView, m: E, page: E) -> list[Rule]:
    """A one-byte access at page `page` of the mapping: kvm_gmem_fault_user_mapping()."""
    return [
        have_map(s, m),
        requires(page < MAP_PAGES, label="inside_vma",
                 why="an address past the mapping may belong to another VMA"),
        signal("SIGBUS", when=page >= of_map(s, m, "size"), label="past_eof",
               why="kvm_gmem_fault_user_mapping(): pgoff << PAGE_SHIFT >= i_size"),
        signal("SIGBUS", unless=of_map(s, m, "flags").has(GUEST_MEMFD_FLAG_INIT_SHARED),
               label="private", why="kvm_gmem_fault_user_mapping(): memory is private "
                                    "without GUEST_MEMFD_FLAG_INIT_SHARED"),
        ok(0, why="a zeroed, prepared folio is mapped (kvm_gmem_get_folio())"),
    ]


def store_body(s: StateView, m: E, page: E) -> list[Rule]:
    """A one-byte store: the shared page is faulted in writable."""
    return access_rules(s, m, page)


def load_body(s: StateView, m: E, page: E) -> list[Rule]:
    """A one-byte load."""
    return access_rules(s, m, page)


def close_body(s: StateView, fd: E) -> list[Rule]:
    """close(): fput(); the last reference of a gmem file runs kvm_gmem_release()."""
    fds = {f"{k}_fd": s[f"{k}_fd"] - If(fd == i, 1, 0) for i, k in enumerate(FD_KINDS)}
    return [have_fd(s, fd), ok(0, **as_updates(drop_refs(s, fds, {})))]


# ---- actions ----------------------------------------------------------------------------------
def P(name: str, sort: Sort, domain: tuple[int, ...], doc: str = "",
      symbolic_domain: bool = False) -> Param:
    return Param(name, sort, domain, doc, symbolic_domain)


MAP_SPAN = Span(PAGE_SIZE, MAP_PAGES)
# Explored byte values (replay judges any value; NOTES.md "guest_memfd in bytes"): 0, one and
# two pages (the scope's largest file), a sub-page value of each check's own kind, and one value
# too large for the check that bounds it (HUGE: offset + len past MAX_LFS_FILESIZE; 2^43: more
# pages than a memslot takes). Sums of explored values stay far below 2^63 (the int64 search).
SIZE_DOMAIN = (0, PAGE, 2 * PAGE, PAGE - 1)
OFF_DOMAIN = (0, PAGE, 2 * PAGE, PAGE // 2, HUGE)
LEN_DOMAIN = (0, PAGE, PAGE - 1, HUGE)
SLOT_SIZE_DOMAIN = (0, PAGE, 2 * PAGE, PAGE // 2, (KVM_MEM_MAX_NR_PAGES + 1) * PAGE)
SLOT_OFF_DOMAIN = (0, PAGE, PAGE // 2)
GPA_DOMAIN = (0, PAGE, PAGE // 2)  # slots at the same, adjacent or unaligned frames
DELETE_GPA_DOMAIN = (0, PAGE // 2)
COUNT_DOMAIN = (0, PAGE)
GMEM_FLAG_DOMAIN = (0, GUEST_MEMFD_FLAG_MMAP, GUEST_MEMFD_FLAG_INIT_SHARED,
                    GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED, 1 << 2)
MEMSLOT_UNKNOWN = 1 << 3  # not a memslot flag in 6.18
MEMSLOT_FLAG_DOMAIN = (KVM_MEM_GUEST_MEMFD, KVM_MEM_GUEST_MEMFD | KVM_MEM_READONLY,
                       KVM_MEM_GUEST_MEMFD | KVM_MEM_LOG_DIRTY_PAGES,
                       KVM_MEM_GUEST_MEMFD | MEMSLOT_UNKNOWN, 0)
DELETE_FLAG_DOMAIN = (0, KVM_MEM_GUEST_MEMFD | KVM_MEM_READONLY,
                      KVM_MEM_GUEST_MEMFD | KVM_MEM_LOG_DIRTY_PAGES, MEMSLOT_UNKNOWN)
FALLOC_DOMAIN = (0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE,
                 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                 FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)
SEAL_DOMAIN = (F_SEAL_SEAL, F_SEAL_GROW, F_SEAL_WRITE, 0x40)
# Explored descriptor kinds for close() and for a memslot's guest_memfd. Closing /dev/kvm or the
# second VM's fd only disables later KVM_CREATE_VM / KVM_CREATE_GUEST_MEMFD calls on it, so every
# state it leads to is matched by one where the fd is still open (replay covers both); one
# non-gmem fd (the VM's own) suffices for the "not a guest_memfd" check.
CLOSE_DOMAIN = (VM0, G0, G1)
BIND_FD_DOMAIN = (VM0, G0, G1)
MAPS = tuple(range(len(MAP_KINDS)))


def _bytes(name: str, domain: tuple[int, ...], doc: str, c_type: str = "u64") -> Param:
    """A byte-count parameter: any value of its C type (u64/size_t, or loff_t >= 0)."""
    return Param(name, BYTES, domain, doc + " in bytes",
                 exact=u64_exact if c_type == "u64" else loff_exact)


def _fd(name: str, domain: tuple[int, ...]) -> Param:
    return P(name, FD, domain, symbolic_domain=True)


def _slot() -> Param:
    return P("slot", nat(fixed=NSLOTS - 1), tuple(range(NSLOTS)))


REGION_FIELDS_HEAD = (("slot", Num("slot")), ("flags", Flags("flags", MEMSLOT_FLAGS)),
                      ("guest_phys_addr", Num("gpa")))

ACTIONS: tuple[Action, ...] = (
    Action("open_kvm", (), open_kvm_body, "open", (C('"/dev/kvm"'), C("O_RDWR")),
           "open /dev/kvm"),
    Action("create_vm", (_fd("fd", (KVM,)),), create_vm_body, "ioctl",
           (Fd("fd"), C("KVM_CREATE_VM"), C("0")), "KVM_CREATE_VM"),
    Action("create_gmem",
           (_fd("vm", VM_FDS), _bytes("size", SIZE_DOMAIN, "size"),
            P("flags", GFLAGS, GMEM_FLAG_DOMAIN)),
           create_gmem_body, "ioctl",
           (Fd("vm"), C("KVM_CREATE_GUEST_MEMFD"),
            Fields((("size", Num("size")), ("flags", Flags("flags", GMEM_FLAGS))))),
           "KVM_CREATE_GUEST_MEMFD"),
    Action("bind",
           (_fd("vm", (VM0,)), _slot(), P("flags", word(32, MEMSLOT_FLAGS), MEMSLOT_FLAG_DOMAIN),
            _bytes("gpa", GPA_DOMAIN, "guest_phys_addr"),
            _bytes("size", SLOT_SIZE_DOMAIN, "memory_size (0 deletes)"),
            _bytes("off", SLOT_OFF_DOMAIN, "guest_memfd_offset"), _fd("g", BIND_FD_DOMAIN)),
           bind_body, "ioctl",
           (Fd("vm"), C("KVM_SET_USER_MEMORY_REGION2"),
            Fields((*REGION_FIELDS_HEAD, ("memory_size", Num("size")),
                    ("userspace_addr", C("0")), ("guest_memfd_offset", Num("off")),
                    ("guest_memfd", Fd("g"))))),
           "KVM_SET_USER_MEMORY_REGION2 of a guest_memfd range"),
    Action("delete_slot",
           (_fd("vm", (VM0,)), _slot(), P("flags", word(32, MEMSLOT_FLAGS), DELETE_FLAG_DOMAIN),
            _bytes("gpa", DELETE_GPA_DOMAIN, "guest_phys_addr")),
           delete_body, "ioctl",
           (Fd("vm"), C("KVM_SET_USER_MEMORY_REGION2"),
            Fields((*REGION_FIELDS_HEAD, ("memory_size", C("0")), ("userspace_addr", C("0")),
                    ("guest_memfd_offset", C("0")), ("guest_memfd", C("0"))))),
           "KVM_SET_USER_MEMORY_REGION2 with memory_size 0 and no descriptor: delete"),
    Action("read", (_fd("fd", GMEM_FDS), _bytes("count", COUNT_DOMAIN, "count")),
           io_body("EINVAL", "vfs_read(): no read ops (!FMODE_CAN_READ)"),
           "read", (Fd("fd"), C('""'), Num("count")), "read"),
    Action("write", (_fd("fd", GMEM_FDS), _bytes("count", COUNT_DOMAIN, "count")),
           io_body("EINVAL", "vfs_write(): no write ops (!FMODE_CAN_WRITE)"),
           "write", (Fd("fd"), C('"x"...'), Num("count")), "write"),
    Action("pread", (_fd("fd", GMEM_FDS), _bytes("count", COUNT_DOMAIN, "count"),
                     _bytes("pos", (0,), "position", "loff_t")),
           io_body("ESPIPE", "ksys_pread64(): no FMODE_PREAD (pos >= 0)"),
           "pread64", (Fd("fd"), C('""'), Num("count"), Num("pos")), "pread64"),
    Action("pwrite", (_fd("fd", GMEM_FDS), _bytes("count", COUNT_DOMAIN, "count"),
                      _bytes("pos", (0,), "position", "loff_t")),
           io_body("ESPIPE", "ksys_pwrite64(): no FMODE_PWRITE (pos >= 0)"),
           "pwrite64", (Fd("fd"), C('"x"...'), Num("count"), Num("pos")), "pwrite64"),
    Action("lseek", (_fd("fd", GMEM_FDS), _bytes("offset", (0,), "offset", "loff_t")),
           io_body("ESPIPE", "vfs_llseek(): no FMODE_LSEEK"),
           "lseek", (Fd("fd"), Num("offset"), C("SEEK_SET")), "lseek"),
    Action("ftruncate", (_fd("fd", GMEM_FDS),
                         _bytes("len", (0, PAGE, 2 * PAGE), "length", "loff_t")),
           ftruncate_body, "ftruncate", (Fd("fd"), Num("len")), "ftruncate"),
    Action("fchmod", (_fd("fd", GMEM_FDS), P("mode", word(9), (0o600, 0o644))), fchmod_body,
           "fchmod", (Fd("fd"), Num("mode", octal=True)), "fchmod"),
    Action("fcntl_get_seals", (_fd("fd", GMEM_FDS),), seals_body, "fcntl",
           (Fd("fd"), C("F_GET_SEALS")), "fcntl(F_GET_SEALS)"),
    Action("fcntl_add_seals", (_fd("fd", GMEM_FDS), P("seals", word(32, SEALS), SEAL_DOMAIN)),
           seals_body, "fcntl", (Fd("fd"), C("F_ADD_SEALS"), Flags("seals", SEALS)),
           "fcntl(F_ADD_SEALS)"),
    Action("fallocate",
           (_fd("fd", GMEM_FDS), P("mode", word(32, FALLOC_FLAGS), FALLOC_DOMAIN),
            _bytes("off", OFF_DOMAIN, "offset", "loff_t"),
            _bytes("len", LEN_DOMAIN, "length", "loff_t")),
           fallocate_body, "fallocate",
           (Fd("fd"), Flags("mode", FALLOC_FLAGS), Num("off"), Num("len")),
           "fallocate"),
    Action("mmap", (_fd("fd", GMEM_FDS), P("share", enum("shared", "private"), (SHARED, PRIVATE))),
           mmap_body, "mmap",
           (C("NULL"), MAP_SPAN, C("PROT_READ|PROT_WRITE"),
            Choice("share", {SHARED: "MAP_SHARED", PRIVATE: "MAP_PRIVATE"}), Fd("fd"), C("0")),
           "map MAP_PAGES pages read-write"),
    Action("mprotect", (P("m", MAPK, MAPS), P("prot", enum("rw", "rx"), (PROT_RW, PROT_RX))),
           mprotect_body, "mprotect",
           (MapRef("m"), MAP_SPAN, Choice("prot", {PROT_RW: "PROT_READ|PROT_WRITE",
                                                   PROT_RX: "PROT_READ|PROT_EXEC"})),
           "mprotect"),
    Action("munmap", (P("m", MAPK, MAPS),), munmap_body, "munmap", (MapRef("m"), MAP_SPAN),
           "munmap"),
    Action("store", (P("m", MAPK, MAPS), P("page", nat(fixed=MAP_PAGES), tuple(range(MAP_PAGES)))),
           store_body, "store", (MapRef("m"), Num("page", PAGE_SIZE)),
           "store one byte at a page of a mapping"),
    Action("load", (P("m", MAPK, MAPS), P("page", nat(fixed=MAP_PAGES), tuple(range(MAP_PAGES)))),
           load_body, "load", (MapRef("m"), Num("page", PAGE_SIZE)),
           "load one byte at a page of a mapping"),
    Action("close", (_fd("fd", CLOSE_DOMAIN),), close_body, "close", (Fd("fd"),), "close"),
)


#: Rules only values of 2^63 and more reach (a u64 offset or address that wraps, a loff_t
#: offset that is negative): the int64 search cannot hold them, replay judges them exactly.
REPLAY_ONLY = (("bind", "offset_wraps"), ("bind", "gpa_wraps"), ("bind", "offset_negative"))


def _no_readonly_check(a: Action) -> Action:
    return a.drop_rule("gmem_readonly")


@register("guest_memfd")
def build() -> Design:
    return Design(
        name="guest_memfd",
        doc="guest_memfd (KVM_CREATE_GUEST_MEMFD, memslot bindings), Linux 6.18 (probed on "
            "6.18.44)",
        schema=SCHEMA,
        init=Init({}),
        actions=ACTIONS,
        default_scope={"pages": 2, "fds": 1, "maps": 1},
        scope_max={"pages": 2},  # sizes, offsets and slot lengths of at most 2 pages
        scope_doc={"pages": "largest guest_memfd size and slot range, in pages",
                   "fds": "descriptors per kind", "maps": "mappings per file"},
        kernel="6.18",
        families=("gmem",),
    )


@register("guest_memfd@6.8-rc")
def build_g1() -> Design:
    return build().derive(
        "guest_memfd@6.8-rc",
        "6.18 with bug G1: KVM_MEM_GUEST_MEMFD|KVM_MEM_READONLY memslots accepted (a7800aa80ea4 "
        "until \"KVM: Make KVM_MEM_GUEST_MEMFD mutually exclusive with KVM_MEM_READONLY\")",
        edit={"bind": _no_readonly_check, "delete_slot": _no_readonly_check},
    )


__all__ = ["ACTIONS", "FD_KINDS", "MAP_PAGES", "REPLAY_ONLY", "SCHEMA", "build", "build_g1"]
