"""Properties of memfd preservation across a live update (memfd+luo, issue 18): what
SHMEM_F_MAPPING_FROZEN promises while a memfd is preserved, and what the next kernel gets."""

from __future__ import annotations

from model.designs.memfd_luo import KEXEC, LIVE, RETRIEVED
from model.lang.expr import E, Implies, false
from model.lang.schema import StateView
from properties.catalogue import VIOLATED, prop
from properties.views import TransitionView


def frozen(s: StateView) -> E:
    return s.flag("MAPPING_FROZEN")


def _changes_pages(t: TransitionView) -> E:
    """A call that would add or remove pages of the page cache: fallocate() (any mode) and
    MADV_REMOVE succeeding."""
    if t.is_("madvise_remove"):
        return t.ok & ~t.fired("zero_len")  # len 0: nothing to punch
    return t.ok if t.is_("fallocate") else false


@prop("frozen-size-fixed", "action", """While SHMEM_F_MAPPING_FROZEN is set the size never
      changes, by any path (ftruncate, O_TRUNC, a write past EOF, fallocate, a hugetlbfs
      mapping).""", "shmem_setattr(), shmem_write_begin(), shmem_fallocate()", family="luo")
def frozen_size_fixed(t: TransitionView) -> E:
    return Implies(frozen(t.s), t.n.size == t.s.size)


@prop("frozen-no-hole-punch-or-allocation", "action", """While frozen no fallocate() (allocation,
      KEEP_SIZE or hole punch) and no MADV_REMOVE succeeds: the page-cache index set is what
      the preservation pinned.""", "shmem_fallocate(): SHMEM_F_MAPPING_FROZEN -> EPERM",
      family="luo")
def frozen_no_punch(t: TransitionView) -> E:
    return Implies(frozen(t.s), ~_changes_pages(t))


@prop("preserved-is-frozen", "always", """A memfd preserved for the next kernel is frozen until
      it is unpreserved or the kexec happens.""",
      "memfd_luo_preserve(): shmem_freeze(true); memfd_luo_unpreserve(): shmem_freeze(false)",
      family="luo")
def preserved_is_frozen(s: StateView) -> E:
    return Implies((s.luo_n > 0) & (s.luo_phase == LIVE), frozen(s))


@prop("unpreserve-restores", "action", """Closing the session before the reboot gives the file
      back as it was: neither frozen nor pinned by the preservation.""",
      "memfd_luo_unpreserve()", family="luo")
def unpreserve_restores(t: TransitionView) -> E:
    if not t.is_("luo_unpreserve"):
        return ~false
    return Implies(t.ok & (t.n.luo_n == 0), ~frozen(t.n) & ~t.n.luo_pin)


@prop("preserve-refused-leaves-nothing", "action", """A preservation that fails leaves the file
      neither frozen nor pinned (as it was).""",
      "memfd_luo_preserve(): err_unlock: shmem_freeze(false)", family="luo")
def preserve_refused(t: TransitionView) -> E:
    if not t.is_("luo_preserve"):
        return ~false
    return Implies(~t.ok, (frozen(t.n) == frozen(t.s)) & (t.n.luo_pin == t.s.luo_pin))


@prop("retrieved-size-preserved", "action", """The next kernel's file has the size the
      preserved one had.""", "memfd_luo_retrieve(): i_size_write(ser->size)", family="luo")
def retrieved_size(t: TransitionView) -> E:
    if not t.is_("luo_retrieve"):
        return ~false
    return Implies(t.ok, t.n.size == t.s.size)


@prop("live-update-keeps-seals", "action", """A live update neither drops nor adds a seal: the
      retrieved file carries exactly the preserved seals. Violated: memfd_luo_retrieve()
      re-applies them with memfd_add_seals() on a new file of mode 0777, so F_SEAL_EXEC
      preserved from a file without x bits (MFD_NOEXEC_SEAL) also adds SHRINK, GROW, WRITE
      and FUTURE_WRITE (source-read, fb2257f1).""", "memfd_luo_retrieve(), memfd_add_seals()",
      expect={"memfd+luo": VIOLATED}, family="luo")
def keeps_seals(t: TransitionView) -> E:
    if not t.is_("luo_retrieve"):
        return ~false
    return Implies(t.ok, t.n.seals == t.s.seals)


@prop("live-update-keeps-mode", "action", """The retrieved file has the preserved file's mode.
      Violated: the mode is not preserved; memfd_alloc_file() makes it 0777, so an
      MFD_NOEXEC_SEAL memfd (0666, F_SEAL_EXEC) comes back executable, with F_SEAL_EXEC now
      keeping its x bits (source-read).""",
      "memfd_luo_retrieve(): memfd_alloc_file(\"\", MFD_ALLOW_SEALING)",
      expect={"memfd+luo": VIOLATED}, family="luo")
def keeps_mode(t: TransitionView) -> E:
    if not t.is_("luo_retrieve"):
        return ~false
    return Implies(t.ok, t.n.mode == t.s.luo_mode)


@prop("sometimes-preserved", "sometimes", """A memfd is preserved (frozen, pinned).""",
      "memfd_luo_preserve()", family="luo")
def sometimes_preserved(s: StateView) -> E:
    return (s.luo_n > 0) & frozen(s) & s.luo_pin


@prop("sometimes-frozen-refuses", "sometimes-action", """A size change of a preserved memfd is
      refused because it is frozen (not because of a seal).""", "shmem_setattr()",
      family="luo")
def sometimes_frozen_refuses(t: TransitionView) -> E:
    return t.fired("frozen") if t.is_("ftruncate", "fallocate", "pwrite") else false


@prop("sometimes-frozen-write-within-eof", "sometimes-action", """A preserved (frozen) memfd
      is still written within its size.""", "shmem_write_begin()", family="luo")
def sometimes_frozen_write(t: TransitionView) -> E:
    return (frozen(t.s) & t.ok & (t.out > 0)) if t.is_("pwrite") else false


@prop("sometimes-retrieved", "sometimes", """The next kernel retrieves the preserved memfd.""",
      "memfd_luo_retrieve()", family="luo")
def sometimes_retrieved(s: StateView) -> E:
    return (s.luo_phase == RETRIEVED) & (s.size > 0)


@prop("sometimes-kexec-in-transit", "sometimes", """The next kernel runs and the memfd waits in
      the session, not yet retrieved.""", "luo_session_serialize()", family="luo")
def sometimes_in_transit(s: StateView) -> E:
    return s.luo_phase == KEXEC


@prop("sometimes-unpreserved", "sometimes-action", """A preservation is cancelled by closing the
      session before the reboot.""", "memfd_luo_unpreserve()", family="luo")
def sometimes_unpreserved(t: TransitionView) -> E:
    return t.ok if t.is_("luo_unpreserve") else false
