"""Properties of memfd sealing (kernel-semantics.md §2-§3, bug-history.md)."""

from __future__ import annotations

from model.designs.memfd import (  # the design declares its effects
    CHG_DMA,
    CHG_FD,
    CHG_MAP,
    GPAGE_SIZE,
)
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
    PAGE_SIZE,
)
from properties.catalogue import HOLDS, NOT_WITNESSED, VIOLATED, prop
from properties.views import TransitionView

PRE_EXEC = ("memfd@5.17", "v5-inaccessible", "v5-flags", "memfd@6.1")  # before F_SEAL_EXEC (6.3)
HUGETLB_GROW = {d: VIOLATED for d in ("memfd", *PRE_EXEC)}

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
      shared mapping appears (a new PROT_READ shared map loses VM_MAYWRITE), so mprotect can
      upgrade only mappings that existed before the seal.""",
      "shmem_write_begin(), shmem_fallocate(), memfd_check_seals_mmap()")
def future_write_no_new_write_access(t: TransitionView) -> E:
    before = t.s.map_sh_rw + t.s.map_sh_ro_mw
    after = t.n.map_sh_rw + t.n.map_sh_ro_mw
    return Implies(t.s.seals.has(F_SEAL_FUTURE_WRITE), ~t.eff.has(CHG_FD) & (after <= before))


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


__all__ = ["NOT_WITNESSED", "VIOLATED"]
