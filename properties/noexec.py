"""vm.memfd_noexec (6.3): what the pid namespace's policy promises about the memfds created
under it (check_sysctl_memfd_noexec())."""

from __future__ import annotations

from model.lang.expr import E, Implies, false, true
from model.vocab import F_SEAL_EXEC, MFD_EXEC, MFD_NOEXEC_SEAL
from properties.catalogue import NOT_WITNESSED, prop
from properties.memfd import PRE_EXEC
from properties.views import TransitionView


# ---- policy: vm.memfd_noexec -----------------------------------------------------------------
@prop("noexec-2-never-creates-executable", "action", """Under vm.memfd_noexec = 2
      (MEMFD_NOEXEC_SCOPE_NOEXEC_ENFORCED) no executable memfd is ever created: a
      memfd_create() that succeeds yields mode 0666 with F_SEAL_EXEC (MFD_EXEC is refused
      with EACCES; flag-less calls become MFD_NOEXEC_SEAL). Vacuous before 6.3: there is no
      such sysctl (the sometimes witness shows it).""",
      "check_sysctl_memfd_noexec(): !(flags & MFD_NOEXEC_SEAL) && scope >= "
      "MEMFD_NOEXEC_SCOPE_NOEXEC_ENFORCED -> -EACCES")
def noexec_2(t: TransitionView) -> E:
    if not t.is_("memfd_create"):
        return true
    return Implies((t.s.noexec_scope >= 2) & t.ok,
                   t.n.created_noexec & ((t.n.mode & 0o111) == 0)
                   & t.n.seals.has(F_SEAL_EXEC))


@prop("noexec-1-default-is-noexec-seal", "action", """Under vm.memfd_noexec >= 1 a memfd
      created without MFD_EXEC or MFD_NOEXEC_SEAL is MFD_NOEXEC_SEAL: mode 0666, F_SEAL_EXEC
      set, F_SEAL_SEAL clear.""",
      "check_sysctl_memfd_noexec(): scope >= MEMFD_NOEXEC_SCOPE_NOEXEC_SEAL -> "
      "flags |= MFD_NOEXEC_SEAL; alloc_file()")
def noexec_1(t: TransitionView) -> E:
    if not t.is_("memfd_create"):
        return true
    plain = ~t.param("flags").has(MFD_EXEC | MFD_NOEXEC_SEAL)
    return Implies((t.s.noexec_scope >= 1) & plain & t.ok,
                   t.n.created_noexec & (t.n.mode == 0o666) & (t.n.seals == F_SEAL_EXEC))


@prop("sometimes-memfd-create-under-noexec-1", "sometimes-action", """memfd_create() without
      exec flags under vm.memfd_noexec = 1 (the precondition of
      noexec-1-default-is-noexec-seal). Not before 6.3.""", "check_sysctl_memfd_noexec()",
      expect=dict.fromkeys(PRE_EXEC, NOT_WITNESSED))
def w_noexec_1(t: TransitionView) -> E:
    if not t.is_("memfd_create"):
        return false
    return (t.s.noexec_scope == 1) & ~t.param("flags").has(MFD_EXEC | MFD_NOEXEC_SEAL)
