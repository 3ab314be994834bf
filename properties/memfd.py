"""Properties of memfd sealing (kernel-semantics.md §2-§3, bug-history.md)."""

from __future__ import annotations

from model.designs.memfd import (  # the design declares its effects
    CHG_DMA,
    CHG_FD,
    CHG_MAP,
    GPAGE_SIZE,
    MAX_LFS_FILESIZE,
    PR_RO,
    PR_RW,
    PROT_R,
    RO,
    RW,
    SH_RO,
    SH_RO_MW,
    SH_RW,
    SHARED,
    prot_writes,
)
from model.designs.memfd_access import MADV_LEN_WRAP
from model.designs.memfd_mmap import offset_fine
from model.designs.memfd_state import append_only, immutable
from model.lang.action import signal_code
from model.lang.expr import E, If, Implies, false, true
from model.lang.schema import StateView
from model.vocab import (
    F_ALL_SEALS,
    F_SEAL_EXEC,
    F_SEAL_FUTURE_WRITE,
    F_SEAL_GROW,
    F_SEAL_SEAL,
    F_SEAL_SHRINK,
    F_SEAL_WRITE,
    HPAGE_SIZE,
    MFD_ALLOW_SEALING,
    MFD_CLOEXEC,
    MFD_HUGETLB,
    PAGE_SIZE,
)
from properties.catalogue import HOLDS, NOT_WITNESSED, VIOLATED, prop
from properties.views import TransitionView

PRE_EXEC = ("memfd@5.17", "v5-inaccessible", "v5-flags", "memfd@6.1")  # before F_SEAL_EXEC (6.3)
HUGETLB_GROW = {d: VIOLATED for d in ("memfd", *PRE_EXEC)}
PRE_67 = ("memfd@5.17", "v5-inaccessible", "v5-flags")  # before the 6.7 mmap series (B9)

@prop("seals-only-grow", "action", """Seals are never removed: no code path clears a bit of
      the seal word, so a receiver may rely on a seal it has seen.""",
      "memfd_add_seals() only ORs; nothing else writes info->seals after creation")
def seals_only_grow(t: TransitionView) -> E:
    return (t.s.seals & ~t.n.seals) == 0


@prop("seal-seal-final", "action", """Once F_SEAL_SEAL is set the seal word never changes
      again and every F_ADD_SEALS fails, whatever it asks for (even 0).""",
      "memfd_add_seals(): `if (*file_seals & F_SEAL_SEAL) return -EPERM`")
def seal_seal_final(t: TransitionView) -> E:
    sealed = t.s.seals.has(F_SEAL_SEAL)
    refused = ~t.ok if t.is_("fcntl_add_seals") else ~false
    return Implies(sealed, (t.n.seals == t.s.seals) & refused)


@prop("write-seal-no-writable-mapping", "always", """F_SEAL_WRITE excludes every writable
      shared mapping (VM_SHARED|VM_MAYWRITE: even PROT_READ ones that mprotect could upgrade)
      and every long-term writable pin, so nobody can store into the file afterwards.""",
      "mapping_deny_writable() + memfd_wait_for_pins() in memfd_add_seals(); "
      "memfd_check_seals_mmap() in do_mmap()")
def write_seal_no_writable_mapping(s: StateView) -> E:
    return Implies(s.seals.has(F_SEAL_WRITE),
                   (s.map_sh_rw == 0) & (s.map_sh_ro_mw == 0) & (s.pin_gup == 0))


@prop("write-seal-content-frozen", "action", """With F_SEAL_WRITE set the file's content never
      changes by any path: write/pwrite, punching a hole, a store through a mapping, or a
      device writing through a held pin (truncation and hole allocation excepted: they change
      the size, which SHRINK/GROW govern). Violated by the v5 series as modelled: KVM's
      memfile_notifier mapping of an accessible memfd is not a mapping or a pin that
      F_SEAL_WRITE knows about, so the guest keeps writing a write-sealed file.""",
      "shmem_write_begin(), shmem_fallocate(), and the preconditions of the seal",
      expect={"v5-inaccessible": VIOLATED, "v5-flags": VIOLATED})
def write_seal_content_frozen(t: TransitionView) -> E:
    return Implies(t.s.seals.has(F_SEAL_WRITE), t.eff == 0)


@prop("future-write-no-new-write-access", "action", """After F_SEAL_FUTURE_WRITE no *new*
      write access is granted: write/pwrite and hole punching fail, no new writable-capable
      shared mapping appears from the file (a new PROT_READ shared map loses VM_MAYWRITE), so
      mprotect can upgrade only mappings that existed before the seal. mremap()'s copy of a
      mapping the caller already has (old_len 0, MREMAP_DONTUNMAP) and fork()'s copy into a
      child (dup_mmap()) give no access the caller lacked: future-write-no-writable-vma-added
      says what they do.""",
      "shmem_write_begin(), shmem_fallocate(), memfd_check_seals_mmap()")
def future_write_no_new_write_access(t: TransitionView) -> E:
    before = t.s.map_sh_rw + t.s.map_sh_ro_mw
    after = t.n.map_sh_rw + t.n.map_sh_ro_mw
    no_new_map = true if t.is_("mremap", "fork_vma") else after <= before
    return Implies(t.s.seals.has(F_SEAL_FUTURE_WRITE), ~t.eff.has(CHG_FD) & no_new_map)


@prop("future-write-no-writable-vma-added", "action", """After F_SEAL_FUTURE_WRITE no call
      adds a VM_SHARED|VM_MAYWRITE mapping of the file, by any path. Violated on mainline:
      mremap() with old_len 0 or MREMAP_DONTUNMAP copies an existing writable shared mapping
      (copy_vma()) without a seal check, since memfd_check_seals_mmap() runs in mmap_region()
      only, and a store through the copy changes the file after the first mapping is gone
      (found by this model, confirmed on 6.18.44:
      traces/scenarios/mremap-future-write-copy.trace); fork() too (fork-future-write-copy).""",
      "memfd_check_seals_mmap() (mmap only); NOT mremap()'s copy_vma(), fork()'s dup_mmap()",
      expect={"memfd": VIOLATED})
def future_write_no_writable_vma_added(t: TransitionView) -> E:
    before = t.s.map_sh_rw + t.s.map_sh_ro_mw
    after = t.n.map_sh_rw + t.n.map_sh_ro_mw
    return Implies(t.s.seals.has(F_SEAL_FUTURE_WRITE), after <= before)


@prop("shrink-seal-size-monotone", "action", """With F_SEAL_SHRINK the size never
      decreases (ftruncate, open(O_TRUNC)).""", "shmem_setattr(), hugetlbfs_setattr()")
def shrink_seal(t: TransitionView) -> E:
    return Implies(t.s.seals.has(F_SEAL_SHRINK), t.n.size >= t.s.size)


@prop("grow-seal-size-monotone", "action", """With F_SEAL_GROW the size never increases.
      Violated on hugetlbfs: hugetlbfs_file_mmap() raises i_size to the end of any VM_WRITE
      mapping without looking at the seals (found by this model, confirmed on 6.18.44).""",
      "shmem_setattr(), shmem_write_begin(), shmem_fallocate(); NOT hugetlbfs_file_mmap()",
      expect=HUGETLB_GROW)
def grow_seal(t: TransitionView) -> E:
    return Implies(t.s.seals.has(F_SEAL_GROW), t.n.size <= t.s.size)


@prop("grow-seal-size-monotone-shmem", "action", """The same on shmem-backed memfds, where
      every growth path checks F_SEAL_GROW.""", "shmem_setattr(), shmem_write_begin(), "
      "shmem_fallocate()")
def grow_seal_shmem(t: TransitionView) -> E:
    return Implies(~t.s.hugetlb & t.s.seals.has(F_SEAL_GROW), t.n.size <= t.s.size)


@prop("exec-seal-mode-fixed", "action", """With F_SEAL_EXEC the exec bits of the mode never
      change. Violated on hugetlbfs-backed memfds: hugetlbfs_setattr() does not check the seal
      (bug-history B15, present on 6.18.44). memfd@5.17 (and the v5 designs derived from it)
      and memfd@6.1 predate F_SEAL_EXEC (6.3), so there it holds.""",
      "shmem_setattr(); NOT hugetlbfs_setattr()",
      expect={"memfd": VIOLATED, "memfd@5.17": HOLDS, "memfd@6.1": HOLDS})
def exec_seal_mode_fixed(t: TransitionView) -> E:
    return Implies(t.s.seals.has(F_SEAL_EXEC), ((t.n.mode ^ t.s.mode) & 0o111) == 0)


@prop("exec-seal-mode-fixed-shmem", "action", """The same on shmem-backed memfds, where
      shmem_setattr() enforces it.""", "shmem_setattr()")
def exec_seal_mode_fixed_shmem(t: TransitionView) -> E:
    return Implies(~t.s.hugetlb & t.s.seals.has(F_SEAL_EXEC),
                   ((t.n.mode ^ t.s.mode) & 0o111) == 0)


@prop("noexec-seal-never-executable", "always", """A memfd created with MFD_NOEXEC_SEAL
      (explicitly or by vm.memfd_noexec) never gets an exec bit: "not executable and sealed to
      prevent changing to executable". Violated on hugetlbfs (B15).""",
      "alloc_file() (mode 0666, F_SEAL_EXEC) + shmem_setattr()",
      expect={"memfd": VIOLATED, "memfd@5.17": HOLDS, "memfd@6.1": HOLDS})
def noexec_never_exec(s: StateView) -> E:
    return Implies(s.created_noexec, (s.mode & 0o111) == 0)


@prop("noexec-seal-never-executable-shmem", "always", """The same for shmem-backed memfds.""",
      "alloc_file() + shmem_setattr()")
def noexec_never_exec_shmem(s: StateView) -> E:
    return Implies(s.created_noexec & ~s.hugetlb, (s.mode & 0o111) == 0)


def _fault_beyond_eof_page(t: TransitionView) -> E:
    """The page a store/load hits lies beyond the page holding EOF, stated from the kernel's
    page-cache rules rather than from the design's `past_eof`: shmem_get_folio_gfp() refuses
    index >= DIV_ROUND_UP(i_size, PAGE_SIZE); hugetlb_no_page() refuses an uncached page with
    idx >= i_size >> huge_page_shift(), and a page in the page cache is mapped whatever
    i_size is (hpage0_cached: page 0 cached while i_size is below one huge page)."""
    s, off = t.s, t.param("off")
    shmem = off // PAGE_SIZE >= (s.size + PAGE_SIZE - 1) // PAGE_SIZE
    idx = If(s.huge_1g, off // GPAGE_SIZE, off // HPAGE_SIZE)
    shift = If(s.huge_1g, s.size // GPAGE_SIZE, s.size // HPAGE_SIZE)
    huge = (idx >= shift) & ~((idx == 0) & s.hpage0_cached)
    return If(s.hugetlb, huge, shmem)


@prop("sigbus-exactly-beyond-eof-page", "action", """A store or load through a mapping that
      passes the permission check (no SIGSEGV) raises SIGBUS exactly when the page it hits is
      beyond the page holding EOF: on shmem when its index is at least DIV_ROUND_UP(i_size,
      PAGE_SIZE), so the page holding the last byte of a one-byte file is mapped; on
      hugetlbfs by the kernel's own rule, idx >= i_size >> huge_page_shift() for a page not in
      the page cache (a cached page is mapped even beyond EOF), in 2 MiB or 1 GiB pages.""",
      "shmem_fault() -> shmem_get_folio_gfp(); hugetlb_fault() -> hugetlb_no_page()")
def sigbus_exactly_beyond_eof_page(t: TransitionView) -> E:
    if not t.is_("store", "load"):
        return true
    bus = t.out == signal_code("SIGBUS")
    segv = t.out == signal_code("SIGSEGV")
    beyond = _fault_beyond_eof_page(t)
    return Implies(~segv, (bus & beyond) | (~bus & ~beyond))


# ---- sometimes: the invariants above are not vacuous -------------------------------------
@prop("sometimes-write-sealed-ro-shared-map", "sometimes", """A read-only shared mapping of a
      write-sealed file can exist (6.7+; bug-history B9).""", "memfd_check_seals_mmap()")
def w_ro_shared(s: StateView) -> E:
    return s.seals.has(F_SEAL_WRITE) & (s.map_sh_ro > 0)


@prop("sometimes-future-write-live-writable-map", "sometimes", """F_SEAL_FUTURE_WRITE can be
      added while a writable shared mapping is alive.""", "memfd_add_seals()")
def w_fw_live(s: StateView) -> E:
    return s.seals.has(F_SEAL_FUTURE_WRITE) & (s.map_sh_rw > 0)


@prop("sometimes-future-write-old-map-writes", "sometimes-action", """Under
      F_SEAL_FUTURE_WRITE a pre-existing writable mapping still changes the file.""",
      "faults are not seal-checked")
def w_fw_store(t: TransitionView) -> E:
    return t.s.seals.has(F_SEAL_FUTURE_WRITE) & t.eff.has(CHG_MAP)


@prop("sometimes-write-seal-busy-mapping", "sometimes-action", """F_SEAL_WRITE is refused
      with EBUSY because of a writable shared mapping.""", "mapping_deny_writable()")
def w_busy_map(t: TransitionView) -> E:
    return t.fired("deny_writable")


@prop("sometimes-write-seal-busy-pin", "sometimes-action", """F_SEAL_WRITE is refused with
      EBUSY because a page reference is held.""", "memfd_wait_for_pins()")
def w_busy_pin(t: TransitionView) -> E:
    return t.fired("wait_for_pins")


@prop("sometimes-all-seals", "sometimes", """Every seal, F_SEAL_EXEC included, can be set at
      once (not before 6.3: there was no F_SEAL_EXEC).""", "memfd_add_seals()",
      expect=dict.fromkeys(PRE_EXEC, NOT_WITNESSED))
def w_all(s: StateView) -> E:
    return s.seals == F_ALL_SEALS


@prop("sometimes-exec-sealed-nonempty", "sometimes", """An exec-sealed file with content
      (not before 6.3).""", "memfd_add_seals()",
      expect=dict.fromkeys(PRE_EXEC, NOT_WITNESSED))
def w_exec(s: StateView) -> E:
    return s.seals.has(F_SEAL_EXEC) & (s.size > 0)


@prop("sometimes-dma-write", "sometimes-action", """A device writes through a held pin.""",
      "pin_user_pages()")
def w_dma(t: TransitionView) -> E:
    return t.eff.has(CHG_DMA)


#: designs without UDMABUF_CREATE: before memfd_pin_folios() (6.11) udmabuf pinned with
#: shmem_read_mapping_page() and other checks, not re-read; Debian's 6.1 build has no
#: CONFIG_UDMABUF; memfd+luo's frozen mapping was not read for it
NO_UDMABUF = ("memfd@5.17", "v5-inaccessible", "v5-flags", "memfd@6.1", "memfd+luo")


@prop("udmabuf-only-of-shrink-sealed-unwritable-file", "action", """A udmabuf is made only of
      a file sealed against shrinking and not write-sealed (F_SEAL_WRITE or
      F_SEAL_FUTURE_WRITE), and only of pages before EOF: the seals promise the device that the
      pages stay, and the range must be in the file.""",
      "check_memfd_seals() (SEALS_WANTED, SEALS_DENIED); memfd_pin_folios(): end >= i_size "
      "-> -EINVAL")
def udmabuf_only_shrink_sealed(t: TransitionView) -> E:
    if not t.is_("udmabuf"):
        return true
    fits = t.param("off") + t.param("size") <= t.s.size
    return Implies(t.ok, t.s.seals.has(F_SEAL_SHRINK)
                   & ~t.s.seals.has(F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) & fits)


@prop("sometimes-udmabuf-of-readonly-description", "sometimes-action", """A udmabuf is made
      through an O_RDONLY description: udmabuf_create() does not look at the description's
      f_mode, and the dmabuf it returns is O_RDWR, so a holder of a read-only descriptor gets
      a long-term pin through which a device (or a mapping of the dmabuf) writes the
      file.""", "udmabuf_create(): fget(list[i].memfd) and no FMODE_WRITE check; "
      "export_udmabuf(): exp_info.flags = O_RDWR",
      expect=dict.fromkeys(NO_UDMABUF, NOT_WITNESSED))
def w_udmabuf_ro(t: TransitionView) -> E:
    if not t.is_("udmabuf"):
        return false
    return t.ok & (t.param("fd") == RO)


@prop("sometimes-splice-write-reaches-file", "sometimes-action", """Bytes spliced from a pipe
      change the file (the splice path is not vacuous: what write-seal-content-frozen then
      covers for it).""", "iter_file_splice_write() -> shmem_file_write_iter()",
      # splice into a memfd is not modelled for 5.17 (nor the v5 designs on it)
      expect=dict.fromkeys(("memfd@5.17", "v5-inaccessible", "v5-flags"), NOT_WITNESSED))
def w_splice(t: TransitionView) -> E:
    if not t.is_("splice_write"):
        return false
    return t.eff.has(CHG_FD)


@prop("sometimes-hugetlb-write-sealed", "sometimes", """A hugetlbfs memfd can be
      write-sealed.""", "memfd_add_seals()")
def w_huge(s: StateView) -> E:
    return s.hugetlb & s.seals.has(F_SEAL_WRITE)


@prop("sometimes-sealed-against-growth-and-shrink", "sometimes", """SHRINK|GROW sealed with
      content.""", "memfd_add_seals()")
def w_resize(s: StateView) -> E:
    return s.seals.has_all(F_SEAL_SHRINK | F_SEAL_GROW) & (s.size > 0)


@prop("sometimes-hugetlb-mapped-beyond-eof", "sometimes-action", """On hugetlbfs an access
      beyond EOF can succeed: fallocate(KEEP_SIZE) put page 0 of an empty file in the page
      cache, and hugetlb_fault() maps a cached page without looking at i_size (shmem would
      SIGBUS). The exception sigbus-exactly-beyond-eof-page makes is not vacuous.""",
      "hugetlb_fault(), hugetlb_no_page()")
def w_huge_cached(t: TransitionView) -> E:
    if not t.is_("store", "load"):
        return false
    return t.s.hugetlb & (t.s.size == 0) & t.ok


@prop("sometimes-gigantic-page-stored", "sometimes-action", """A store through a mapping of
      a 1 GiB hugetlbfs file (MFD_HUGE_1GB on a machine with that hstate) succeeds.""",
      "hugetlb_file_setup(), hugetlb_fault()")
def w_gigantic(t: TransitionView) -> E:
    return t.s.huge_1g & t.ok if t.is_("store") else false


# ---- integrity: a description without FMODE_WRITE changes nothing (issue 19) ----------------
#: the calls that change content, size or seals through a descriptor
MODIFYING = ("pwrite", "ftruncate", "fallocate", "fcntl_add_seals")


def _inaccessible(s: StateView) -> E:
    """The file is MFD_INACCESSIBLE (v5 designs); false on a design without that flag."""
    try:
        return s.flag("INACCESSIBLE")
    except AttributeError:
        return false


@prop("ro-description-never-modifies", "action", """A call through an open file description
      without FMODE_WRITE (opened O_RDONLY, or reopened so through /proc/self/fd) never
      changes the file: pwrite, ftruncate, fallocate and F_ADD_SEALS through it fail, whatever
      their other arguments, and leave content, size and seals as they were.""",
      "vfs_write() (EBADF), do_ftruncate() (EINVAL), vfs_fallocate() (EBADF), "
      "memfd_add_seals() (EPERM): each tests file->f_mode & FMODE_WRITE")
def ro_description_never_modifies(t: TransitionView) -> E:
    if not t.is_(*MODIFYING):
        return true
    return Implies(t.param("fd") == RO, ~t.ok & (t.eff == 0) & (t.n.size == t.s.size)
                   & (t.n.seals == t.s.seals))


@prop("ro-description-no-writable-shared-mapping", "action", """mmap() through a description
      without FMODE_WRITE never creates a shared mapping that can write the file: MAP_SHARED
      with PROT_WRITE fails (EACCES), and a PROT_READ one loses VM_SHARED|VM_MAYWRITE, so no
      later mprotect() can upgrade it.""",
      "do_mmap(): MAP_SHARED && (prot & PROT_WRITE) && !(f_mode & FMODE_WRITE) -> -EACCES; "
      "!(f_mode & FMODE_WRITE) clears VM_MAYWRITE|VM_SHARED")
def ro_description_no_writable_map(t: TransitionView) -> E:
    if not t.is_("mmap"):
        return true
    return Implies(t.param("fd") == RO, (t.n.map_sh_rw == t.s.map_sh_rw)
                   & (t.n.map_sh_ro_mw == t.s.map_sh_ro_mw))


@prop("sometimes-ro-description-modify-attempt", "sometimes-action", """pwrite, ftruncate,
      fallocate or F_ADD_SEALS is called through an O_RDONLY description of an unsealed file
      (the precondition of ro-description-never-modifies: nothing but FMODE_WRITE could stop
      it).""", "open(O_RDONLY) of /proc/self/fd/N")
def w_ro_modify(t: TransitionView) -> E:
    if not t.is_(*MODIFYING):
        return false
    return (t.param("fd") == RO) & (t.s.seals == 0)


@prop("sometimes-ro-description-shared-mapping-attempt", "sometimes-action", """mmap(MAP_SHARED)
      through an O_RDONLY description (the precondition of
      ro-description-no-writable-shared-mapping).""", "do_mmap()")
def w_ro_map(t: TransitionView) -> E:
    if not t.is_("mmap"):
        return false
    return (t.param("fd") == RO) & (t.param("share") == SHARED)


# ---- bounds --------------------------------------------------------------------------------
def _page0_beyond_eof(s: StateView) -> E:
    """Page 0 lies beyond the page holding EOF, by the kernel's page-cache rules (as
    _fault_beyond_eof_page() for offset 0)."""
    huge = If(s.huge_1g, s.size < GPAGE_SIZE, s.size < HPAGE_SIZE) & ~s.hpage0_cached
    return If(s.hugetlb, huge, s.size == 0)


@prop("pin-only-within-eof", "action", """A page reference (vmsplice) or a long-term pin
      (pin_user_pages) is taken only on a page the file holds: get_user_pages() faults the
      page in, and the fault handler refuses a page beyond EOF, so pinning past EOF fails
      with EFAULT (hugetlbfs: a page already in the page cache is pinned whatever i_size).""",
      "__get_user_pages() -> handle_mm_fault() -> shmem_fault()/hugetlb_fault() "
      "VM_FAULT_SIGBUS -> -EFAULT")
def pin_only_within_eof(t: TransitionView) -> E:
    if not t.is_("pin", "gup_pin"):
        return true
    return Implies(t.ok, ~_page0_beyond_eof(t.s))


@prop("sometimes-pin-beyond-eof-attempt", "sometimes-action", """A page is pinned (vmsplice
      or FOLL_LONGTERM) through a shared mapping while it lies beyond EOF (the precondition of
      pin-only-within-eof).""", "get_user_pages()")
def w_pin_beyond(t: TransitionView) -> E:
    if not t.is_("pin", "gup_pin"):
        return false
    return _page0_beyond_eof(t.s)


@prop("store-needs-prot-write", "action", """A store through a mapping without VM_WRITE (a
      PROT_READ mapping, shared or private, whatever its VM_MAYWRITE) raises SIGSEGV and
      changes nothing: the permission fault comes before the file is looked at.""",
      "do_user_addr_fault() -> access_error(): write fault on a VMA without VM_WRITE")
def store_needs_prot_write(t: TransitionView) -> E:
    if not t.is_("store"):
        return true
    m = t.param("m")
    return Implies((m != SH_RW) & (m != PR_RW),
                   (t.out == signal_code("SIGSEGV")) & (t.eff == 0))


@prop("sometimes-store-without-prot-write", "sometimes-action", """A store through a PROT_READ
      mapping of a non-empty file (the precondition of store-needs-prot-write, with nothing
      but the permission to stop it).""", "access_error()")
def w_store_ro(t: TransitionView) -> E:
    if not t.is_("store"):
        return false
    m = t.param("m")
    return (m != SH_RW) & (m != PR_RW) & (t.s.size > 0)


@prop("force-write-never-reaches-file", "action", """A FOLL_FORCE write (/proc/self/mem,
      ptrace) through a mapping without VM_WRITE|VM_SHARED leaves the file unchanged: through
      a read-only private mapping it writes the private copy COW breaks to, through a shared
      read-only one it is refused. The invariant CVE-2022-2590 broke (bug-history B5): a
      write-sealed memfd, or a file the caller may only read, changed through a debugger's
      write.""",
      "check_vma_flags() (mm/gup.c, 5535be309971 \"mm/gup: fix FOLL_FORCE COW security issue "
      "and remove FOLL_COW\")")
def force_write_no_file(t: TransitionView) -> E:
    if not t.is_("mem_write"):
        return true
    return Implies(t.param("m") != SH_RW, t.eff == 0)


@prop("sometimes-force-write-through-read-only-private", "sometimes-action", """A FOLL_FORCE
      write through a PROT_READ private mapping of a non-empty file succeeds (the precondition
      of force-write-never-reaches-file, and what debuggers rely on: a breakpoint written into
      read-only text).""", "check_vma_flags(): FOLL_FORCE on is_cow_mapping()",
      # no FOLL_FORCE path modelled for 5.17; none on Debian's 7.x builds (PROC_MEM_FORCE_PTRACE)
      expect=dict.fromkeys(("memfd@5.17", "memfd@7.2", "memfd@7.3-rc"), NOT_WITNESSED))
def w_force_private(t: TransitionView) -> E:
    if not t.is_("mem_write"):
        return false
    return (t.param("m") == PR_RO) & t.ok


@prop("force-write-permitted", "action", """A FOLL_FORCE write through a private mapping
      (PROT_READ or not) or a writable shared one succeeds at a page the file holds: what
      debuggers and checkpoint/restore rely on (a breakpoint in read-only text). Not on a
      build that gives /proc/self/mem no FOLL_FORCE (CONFIG_PROC_MEM_FORCE_PTRACE: Debian's
      7.x), nor before hugetlbfs took FOLL_FORCE writes (6.1, 6.12).""",
      "check_vma_flags() (FOLL_FORCE into is_cow_mapping()); proc_mem_foll_force()",
      expect=dict.fromkeys(("memfd@6.1", "memfd@6.12", "memfd@7.2", "memfd@7.3-rc"),
                           VIOLATED))
def force_write_permitted(t: TransitionView) -> E:
    if not t.is_("mem_write"):
        return true
    m = t.param("m")
    return Implies(((m == PR_RO) | (m == PR_RW) | (m == SH_RW)) & ~_page0_beyond_eof(t.s),
                   t.ok)


# ---- permission: what the kernel must allow (liveness as action properties) ---------------
#: the seals every design's F_ADD_SEALS knows (F_SEAL_EXEC only since 6.3)
SEALS_PRE_EXEC = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE


def _seal_call(t: TransitionView, known: int) -> E:
    """F_ADD_SEALS through a writable description, asking only for seals in `known`, on a
    file not F_SEAL_SEAL-ed: what memfd_add_seals() checks before the WRITE preconditions."""
    seals = t.param("seals")
    return ((t.param("fd") == RW) & ((seals & ~known) == 0)
            & ~t.s.seals.has(F_SEAL_SEAL))


def _write_seal_busy(t: TransitionView, adds_write: E) -> E:
    """The one reason left to refuse: F_SEAL_WRITE is added while i_mmap_writable > 0 or a
    page reference is held."""
    busy = (t.s.map_sh_rw + t.s.map_sh_ro_mw + t.s.pin_ref + t.s.pin_gup) > 0
    return adds_write & ~t.s.seals.has(F_SEAL_WRITE) & busy


@prop("add-seals-permitted", "action", """F_ADD_SEALS of any of SEAL, SHRINK, GROW, WRITE and
      FUTURE_WRITE through an O_RDWR description of a file not F_SEAL_SEAL-ed succeeds, unless
      it adds F_SEAL_WRITE while a writable shared mapping (VM_SHARED|VM_MAYWRITE) or a page
      reference exists: in particular F_SEAL_WRITE succeeds when neither exists. The
      kernel's other refusals (FMODE_WRITE, unknown bits, F_SEAL_SEAL) are the precondition's
      exclusions; memfd_add_seals() has no allocation that could fail.""",
      "memfd_add_seals(): mapping_deny_writable() and memfd_wait_for_pins() only when "
      "F_SEAL_WRITE is new")
def add_seals_permitted(t: TransitionView) -> E:
    if not t.is_("fcntl_add_seals"):
        return true
    adds_write = t.param("seals").has(F_SEAL_WRITE)
    return Implies(_seal_call(t, SEALS_PRE_EXEC) & ~_write_seal_busy(t, adds_write), t.ok)


@prop("sometimes-write-seal-permitted-precondition", "sometimes-action", """F_SEAL_WRITE is
      asked for through an O_RDWR description of a sealable file with no writable shared
      mapping and no page reference, while a read-only shared mapping exists (the
      precondition of add-seals-permitted, not vacuously).""", "memfd_add_seals()")
def w_write_seal_pre(t: TransitionView) -> E:
    if not t.is_("fcntl_add_seals"):
        return false
    adds_write = t.param("seals").has(F_SEAL_WRITE) & ~t.s.seals.has(F_SEAL_WRITE)
    return (_seal_call(t, SEALS_PRE_EXEC) & adds_write
            & ~_write_seal_busy(t, adds_write) & (t.s.map_sh_ro > 0))


@prop("exec-seal-permitted", "action", """F_ADD_SEALS with F_SEAL_EXEC (any known seals) through
      an O_RDWR description of a file not F_SEAL_SEAL-ed succeeds unless F_SEAL_WRITE is
      added — asked for, or implied by F_SEAL_EXEC on a file with an exec bit (W^X) — while a
      writable shared mapping or a page reference exists. Before 6.3 there is no F_SEAL_EXEC
      (EINVAL), so it does not hold there.""",
      "memfd_add_seals(): `if (seals & F_SEAL_EXEC && inode->i_mode & 0111)` adds "
      "SHRINK|GROW|WRITE|FUTURE_WRITE before the WRITE checks (3b041514cb6e)",
      expect=dict.fromkeys(PRE_EXEC, VIOLATED))
def exec_seal_permitted(t: TransitionView) -> E:
    if not t.is_("fcntl_add_seals"):
        return true
    seals = t.param("seals")
    adds_write = seals.has(F_SEAL_WRITE) | t.s.mode.has(0o111)
    return Implies(_seal_call(t, F_ALL_SEALS) & seals.has(F_SEAL_EXEC)
                   & ~_write_seal_busy(t, adds_write), t.ok)


@prop("sometimes-exec-seal-on-executable-file", "sometimes-action", """F_SEAL_EXEC is asked
      for through an O_RDWR description of a sealable file that has an exec bit and no
      writable shared mapping or page reference (the precondition of exec-seal-permitted,
      with the W^X implication in play).""", "memfd_add_seals()")
def w_exec_seal_pre(t: TransitionView) -> E:
    if not t.is_("fcntl_add_seals"):
        return false
    return (_seal_call(t, F_ALL_SEALS) & t.param("seals").has(F_SEAL_EXEC)
            & t.s.mode.has(0o111) & ~_write_seal_busy(t, true))


#: memfd_create flags every design accepts that say nothing about exec
PLAIN_MFD = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB


@prop("memfd-create-without-exec-flag-permitted", "action", """memfd_create() with a valid
      name and flags among CLOEXEC, ALLOW_SEALING and HUGETLB (default huge page size) — no
      MFD_EXEC, no MFD_NOEXEC_SEAL — succeeds under every vm.memfd_noexec value: 0 makes it
      MFD_EXEC, 1 and 2 make it MFD_NOEXEC_SEAL, so old callers keep working. (6.3-6.5
      refused it under 2; 202e14222fad, 6.6, bug-history B7.) Running out of descriptors or
      memory is not in the model.""",
      "check_sysctl_memfd_noexec(): flags without EXEC|NOEXEC_SEAL get NOEXEC_SEAL when "
      "the scope is >= 1, before the NOEXEC_ENFORCED test")
def memfd_create_plain_permitted(t: TransitionView) -> E:
    if not t.is_("memfd_create"):
        return true
    return Implies((t.param("name") == 0) & ((t.param("flags") & ~PLAIN_MFD) == 0), t.ok)


@prop("sometimes-memfd-create-without-exec-flag-under-noexec-2", "sometimes-action", """
      memfd_create() without MFD_EXEC/MFD_NOEXEC_SEAL is called under vm.memfd_noexec = 2
      (the hardest case of memfd-create-without-exec-flag-permitted, and a call the policy
      property noexec-2-never-creates-executable speaks of). Not before 6.3: no sysctl.""",
      "check_sysctl_memfd_noexec()", expect=dict.fromkeys(PRE_EXEC, NOT_WITNESSED))
def w_create_plain_2(t: TransitionView) -> E:
    if not t.is_("memfd_create"):
        return false
    return ((t.param("name") == 0) & ((t.param("flags") & ~PLAIN_MFD) == 0)
            & (t.s.noexec_scope == 2))


@prop("read-mapping-of-write-sealed-permitted", "action", """A mapping that cannot write the
      file — PROT_READ shared, or private — of a WRITE- or FUTURE_WRITE-sealed file is always
      permitted, through any description (but a shared one of an append-only file through an
      O_RDWR one: do_mmap()'s EACCES). Not before the 6.7 series (bug-history B9):
      mapping_map_writable() refused every VM_SHARED mapping of a WRITE-sealed file.""",
      "memfd_check_seals_mmap(): only VM_SHARED|VM_WRITE is refused (e8e17ee90eaf, "
      "28464bbb2ddc, 158978945f31)", expect=dict.fromkeys(PRE_67, VIOLATED))
def read_map_sealed_permitted(t: TransitionView) -> E:
    if not t.is_("mmap"):
        return true
    shared = t.param("share") == SHARED
    shared_w = shared & prot_writes(t.param("prot"))
    appending = shared & (t.param("fd") == RW) & append_only(t.s)
    return Implies(~shared_w & ~appending & t.s.seals.has(F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)
                   & (offset_fine(t.s, t.param("moff")) if t.has_param("moff") else true), t.ok)


@prop("sometimes-read-shared-mapping-of-write-sealed-attempt", "sometimes-action", """mmap(
      PROT_READ, MAP_SHARED) through an O_RDWR description of a WRITE-sealed file (the
      precondition of read-mapping-of-write-sealed-permitted where B9 refused it).""",
      "memfd_check_seals_mmap()")
def w_read_map_sealed(t: TransitionView) -> E:
    if not t.is_("mmap"):
        return false
    return ((t.param("share") == SHARED) & (t.param("prot") == PROT_R)
            & (t.param("fd") == RW) & t.s.seals.has(F_SEAL_WRITE))


@prop("shared-write-mapping-permitted", "action", """mmap(PROT_READ|PROT_WRITE, MAP_SHARED)
      through an O_RDWR description of a file without WRITE or FUTURE_WRITE seal, not
      append-only (chattr +a) and not inaccessible (the v5 designs) succeeds.""",
      "do_mmap(), memfd_check_seals_mmap(), shmem_mmap()/hugetlbfs_file_mmap()")
def shared_write_map_permitted(t: TransitionView) -> E:
    if not t.is_("mmap"):
        return true
    pre = ((t.param("share") == SHARED) & prot_writes(t.param("prot")) & (t.param("fd") == RW)
           & ~t.s.seals.has(F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) & ~append_only(t.s)
           & ~_inaccessible(t.s)
           & (offset_fine(t.s, t.param("moff")) if t.has_param("moff") else true))
    return Implies(pre, t.ok)


@prop("sometimes-shared-write-mapping-attempt", "sometimes-action", """A writable shared
      mapping of a sealable, unsealed file is asked for through an O_RDWR description (the
      precondition of shared-write-mapping-permitted).""", "do_mmap()")
def w_shared_write(t: TransitionView) -> E:
    if not t.is_("mmap"):
        return false
    return ((t.param("share") == SHARED) & prot_writes(t.param("prot"))
            & (t.param("fd") == RW) & (t.s.seals == 0) & ~_inaccessible(t.s))


@prop("pwrite-permitted", "action", """pwrite() of `len` bytes at `off` through an O_RDWR
      description of a shmem file succeeds and writes all `len` bytes when off >= 0, off +
      len fits in loff_t, neither WRITE nor FUTURE_WRITE is set, F_SEAL_GROW is not set or
      the write ends within i_size, and the file is accessible. (hugetlbfs has no write_iter;
      a failing memory allocation is not in the model, nor are counts above 64 MiB, so
      rw_verify_area()'s MAX_RW_COUNT cap never shortens one.)""",
      "vfs_write(), generic_write_checks(), shmem_write_begin()")
def pwrite_permitted(t: TransitionView) -> E:
    if not t.is_("pwrite"):
        return true
    s, off, n = t.s, t.param("off"), t.param("len")
    pre = ((t.param("fd") == RW) & (off >= 0) & (off + n <= MAX_LFS_FILESIZE) & ~s.hugetlb
           & ~s.seals.has(F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)
           & ~(s.seals.has(F_SEAL_GROW) & (off + n > s.size)) & ~_inaccessible(s))
    return Implies(pre, t.out == n)


@prop("sometimes-pwrite-growing-attempt", "sometimes-action", """A pwrite() that grows an
      unsealed shmem file through an O_RDWR description (the precondition of
      pwrite-permitted, with a size change).""", "shmem_write_begin()")
def w_pwrite(t: TransitionView) -> E:
    if not t.is_("pwrite"):
        return false
    s, off, n = t.s, t.param("off"), t.param("len")
    return ((t.param("fd") == RW) & (off >= 0) & ~s.hugetlb & (s.seals == 0)
            & (off + n > s.size) & ~_inaccessible(s))


def _huge_unaligned(s: StateView, n: E) -> E:
    return s.hugetlb & If(s.huge_1g, n % GPAGE_SIZE != 0, n % HPAGE_SIZE != 0)


@prop("ftruncate-permitted", "action", """ftruncate() through an O_RDWR description to a length
      >= 0 (a multiple of the huge page on hugetlbfs) succeeds unless F_SEAL_SHRINK forbids a
      shrink, F_SEAL_GROW a growth or the file is append-only (the v5 designs' inaccessible
      files excepted: their own rule). An immutable file is truncated all the same:
      do_ftruncate() checks IS_APPEND only. Truncating away a pinned page is outside the
      model.""",
      "do_ftruncate(), shmem_setattr()/hugetlbfs_setattr()")
def ftruncate_permitted(t: TransitionView) -> E:
    if not t.is_("ftruncate"):
        return true
    s, n = t.s, t.param("len")
    pre = ((t.param("fd") == RW) & (n >= 0) & ~_huge_unaligned(s, n)
           & ~(s.seals.has(F_SEAL_SHRINK) & (n < s.size))
           & ~(s.seals.has(F_SEAL_GROW) & (n > s.size)) & ~append_only(s) & ~_inaccessible(s))
    return Implies(pre, t.ok & (t.n.size == n))


@prop("sometimes-ftruncate-shrink-attempt", "sometimes-action", """ftruncate() shrinks a
      GROW-sealed shmem file (the precondition of ftruncate-permitted, under a seal that does not
      forbid it).""", "shmem_setattr()")
def w_ftruncate(t: TransitionView) -> E:
    if not t.is_("ftruncate"):
        return false
    s, n = t.s, t.param("len")
    return ((t.param("fd") == RW) & (n >= 0) & (n < s.size) & ~s.hugetlb
            & s.seals.has(F_SEAL_GROW) & ~s.seals.has(F_SEAL_SHRINK) & ~_inaccessible(s))


# ---- mappings: mprotect() and madvise(MADV_REMOVE) ----------------------------------------
def _upgrade(t: TransitionView) -> E:
    """mprotect(PROT_READ|PROT_WRITE) of a shared mapping without VM_MAYWRITE (mapped
    PROT_READ through an O_RDONLY description, or of a WRITE/FUTURE_WRITE-sealed file)."""
    return (t.param("m") == SH_RO) & prot_writes(t.param("prot"))


@prop("mprotect-write-needs-maywrite", "action", """A shared mapping without VM_MAYWRITE
      never gains PROT_WRITE: mprotect(PROT_READ|PROT_WRITE) of it fails with EACCES and
      changes nothing. This is what keeps an O_RDONLY description's mapping, and a mapping
      made after F_SEAL_FUTURE_WRITE or F_SEAL_WRITE, read-only for good.""",
      "mprotect_fixup(): `(newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS` -> -EACCES; "
      "do_mmap() clears VM_MAYWRITE (!(file->f_mode & FMODE_WRITE), "
      "memfd_check_seals_mmap())")
def mprotect_write_needs_maywrite(t: TransitionView) -> E:
    if not t.is_("mprotect"):
        return true
    return Implies(_upgrade(t), t.failed("EACCES") & (t.n.map_sh_ro == t.s.map_sh_ro)
                   & (t.n.map_sh_rw == t.s.map_sh_rw))


@prop("sometimes-mprotect-upgrade-without-maywrite-attempt", "sometimes-action", """
      mprotect(PROT_READ|PROT_WRITE) is asked of a shared mapping without VM_MAYWRITE (the
      precondition of mprotect-write-needs-maywrite).""", "mprotect_fixup()")
def w_mprotect_upgrade(t: TransitionView) -> E:
    if not t.is_("mprotect"):
        return false
    return _upgrade(t)


@prop("mprotect-permitted", "action", """mprotect() of a mapping to PROT_READ, or to
      PROT_READ|PROT_WRITE when the VMA has VM_MAYWRITE (every private mapping, and a shared
      one made writable or PROT_READ through an O_RDWR description of an unsealed file),
      succeeds.""", "mprotect_fixup()")
def mprotect_permitted(t: TransitionView) -> E:
    if not t.is_("mprotect"):
        return true
    return Implies(~_upgrade(t), t.ok)


@prop("sometimes-mprotect-upgrade", "sometimes-action", """A PROT_READ shared mapping that may
      write (VM_MAYWRITE) is made writable by mprotect() (a precondition of
      mprotect-permitted: the upgrade F_SEAL_WRITE must count).""", "mprotect_fixup()")
def w_mprotect_maywrite(t: TransitionView) -> E:
    if not t.is_("mprotect"):
        return false
    return (t.param("m") == SH_RO_MW) & prot_writes(t.param("prot"))


def _remove(t: TransitionView) -> E:
    """madvise(MADV_REMOVE) of a non-empty range the kernel accepts (PAGE_ALIGN(len) does
    not wrap)."""
    n = t.param("len")
    return (n > 0) & (n < MADV_LEN_WRAP)


@prop("madvise-remove-needs-shared-maywrite", "action", """MADV_REMOVE punches a hole only
      through a shared mapping that may write (VM_SHARED with VM_MAYWRITE since 6.7; with
      VM_WRITE before): through a private mapping, or a shared one without VM_MAYWRITE (an
      O_RDONLY description's, a write-sealed file's), it fails with EACCES and the file is
      unchanged.""",
      "madvise_remove(): `if (!vma_is_shared_maywrite(vma)) return -EACCES`")
def madvise_remove_needs_shared_maywrite(t: TransitionView) -> E:
    if not t.is_("madvise_remove"):
        return true
    m = t.param("m")
    return Implies(_remove(t) & (m != SH_RW) & (m != SH_RO_MW),
                   t.failed("EACCES") & (t.eff == 0))


@prop("sometimes-madvise-remove-without-maywrite-attempt", "sometimes-action", """MADV_REMOVE
      of a non-empty range is asked through a mapping that may not write the file (the
      precondition of madvise-remove-needs-shared-maywrite).""", "madvise_remove()")
def w_madvise_remove_ro(t: TransitionView) -> E:
    if not t.is_("madvise_remove"):
        return false
    m = t.param("m")
    return _remove(t) & (m != SH_RW) & (m != SH_RO_MW)


@prop("madvise-remove-permitted", "action", """MADV_REMOVE of a range within a writable shared
      mapping (VM_SHARED|VM_WRITE) of a file without F_SEAL_WRITE or F_SEAL_FUTURE_WRITE,
      neither immutable nor append-only, succeeds (a zero length does nothing and succeeds on
      any mapping).""",
      "madvise_remove() -> vfs_fallocate(FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE)")
def madvise_remove_permitted(t: TransitionView) -> E:
    if not t.is_("madvise_remove"):
        return true
    n = t.param("len")
    pre = ((n == 0) | (_remove(t) & (t.param("m") == SH_RW)
                       & ~t.s.seals.has(F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)
                       & ~immutable(t.s) & ~append_only(t.s)))
    return Implies(pre, t.ok)


@prop("sometimes-madvise-remove-punches", "sometimes-action", """MADV_REMOVE punches a
      non-empty hole through a writable shared mapping of an unsealed, non-empty file (the
      precondition of madvise-remove-permitted, with content to remove).""",
      "madvise_remove()")
def w_madvise_remove(t: TransitionView) -> E:
    if not t.is_("madvise_remove"):
        return false
    return _remove(t) & (t.param("m") == SH_RW) & (t.s.seals == 0) & (t.s.size > 0)


__all__ = ["NOT_WITNESSED", "VIOLATED"]
