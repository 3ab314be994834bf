"""Replay a trace on the live kernel and compare each step with the trace or with the model.

`replay_on_kernel` runs the trace's steps with traces.kernel.run_on_kernel (a forked child, raw
system calls) and reports the first step whose kernel outcome differs from the trace's outcome
(`against="kernel"`; a `?` outcome stands for the model's) or from the model's outcome
(`against="both"`), with the model state before that step. A missing capability (no huge pages,
no io_uring, no pid namespaces, ...) is a skip with its reason, never a silent pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from checker.replay import ModelReplay, kernel_noexec_scope, state_text
from model.lang.design import Design
from traces.concretize import initial_state, outcome_str
from traces.hugepages import GIGANTIC_KB, hstate_1g_present
from traces.kernel import (
    NOEXEC_SYSCTL,
    KernelRun,
    hugepages_reserved,
    run_on_kernel,
)
from traces.outputs import output_text, shown_outputs
from traces.syscalls import TraceError, lower
from traces.textfmt import format_arg
from traces.trace import Any_, Outcome, Step, Trace

__all__ = ["KernelReplay", "host_noexec_scope", "kernel_hstate_1g", "kernel_noexec_arg",
           "needs_hugetlb", "needs_hugetlb_1g",
           "replay_on_kernel", "step_text"]

HUGEPAGES_FOR_REPLAY = 2  # one inode of at most a few huge pages; 2 leaves room for a straggler


@dataclass
class KernelReplay:
    """What the kernel did with a trace: skipped (with a reason), diverged, or matched."""

    skipped: str | None = None
    divergence: str | None = None
    summary: str = ""
    outcomes: list[Outcome] = field(default_factory=list)


def step_text(step: Step) -> str:
    """`call(args)` as in the trace, without the outcome."""
    return f"{step.call}({', '.join(format_arg(a) for a in step.args)})"


def needs_hugetlb(steps: Sequence[Step]) -> bool:
    """Whether some step needs hugetlbfs: the registry's `needs` (traces/syscalls.py; a
    memfd_create with MFD_HUGETLB). A step that cannot be lowered needs nothing here; the
    executor reports it."""
    for s in steps:
        try:
            if "hugetlb" in lower(s).needs:
                return True
        except TraceError:
            continue
    return False


def host_noexec_scope() -> int | None:
    """vm.memfd_noexec of this process's pid namespace (None if the kernel has none)."""
    try:
        with open(NOEXEC_SYSCTL) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def kernel_noexec_arg(scope: int | None) -> int | None:
    """run_on_kernel's noexec_scope for a trace whose model starts at vm.memfd_noexec=scope:
    None (run here) when this namespace already has that value, else the value (new pidns)."""
    host = host_noexec_scope()
    if scope is None or scope == host or (scope == 0 and host is None):
        return None
    return scope


def needs_hugetlb_1g(steps: Sequence[Step]) -> bool:
    """Whether some step creates a 1 GiB hugetlbfs file (memfd_create with MFD_HUGE_1GB)."""
    for s in steps:
        try:
            if "hugetlb_1g" in lower(s).needs:
                return True
        except TraceError:
            continue
    return False


def kernel_hstate_1g(design: Design, trace: Trace, against: str) -> int | None:
    """run_on_kernel's hstate_1g: `--on both` runs the model from its initial state, so the
    machine must match it (the trace's `# init: hstate_1g=N`, else the design's default);
    `--on kernel` takes the machine as it is unless the trace says."""
    st = initial_state(design, trace)
    if "hstate_1g" not in st:
        return None
    said = any(c.strip().startswith("init:") and "hstate_1g=" in c for c in trace.comments)
    return st["hstate_1g"] if against == "both" or said else None


@contextmanager
def _maybe_hugepages(need: bool, n: int = HUGEPAGES_FOR_REPLAY, *,
                     giga: bool = False) -> Iterator[str | None]:
    """Free 2 MiB pages when `need`; with `giga`, free 1 GiB pages too (only when this machine
    has that hstate: without it the run is skipped or judged ENODEV by run_on_kernel)."""
    with ExitStack() as stack:
        if need:
            reason = stack.enter_context(hugepages_reserved(n))
            if reason:
                yield reason
                return
        if giga and hstate_1g_present():
            reason = stack.enter_context(hugepages_reserved(HUGEPAGES_FOR_REPLAY,
                                                            GIGANTIC_KB))
            if reason:
                yield reason
                return
        yield None


def _with_outs(design: Design, o: Outcome, vals: dict[str, int], names: list[str]) -> str:
    """An outcome and the outputs `names` that differ (st_size=8192), as a divergence shows."""
    return " ".join([outcome_str(o), *(f"{k}={output_text(design, k, vals[k])}" for k in names
                                       if k in vals)])


def replay_on_kernel(design: Design, trace: Trace, model_replay: ModelReplay, *,
                     against: str) -> KernelReplay:
    """Run `trace` on the kernel; compare with the trace (`kernel`) or with the model (`both`).

    `model_replay` is checker.replay's result for the same trace (its outcomes and run)."""
    if against not in ("kernel", "both"):
        raise ValueError(f"against must be 'kernel' or 'both', not {against!r}")
    trace = model_replay.trace  # flattened, if it named processes (checker/processes.py)
    run = run_trace(design, trace, against)
    return judge(design, trace, model_replay, run, against=against, path=trace.path or "<trace>")


def run_trace(design: Design, trace: Trace, against: str = "kernel") -> KernelRun:
    """Run `trace` on this kernel as `replay --on kernel|both` does: its vm.memfd_noexec in
    a new pid namespace, free huge pages reserved (and restored) when it needs them, 1 GiB
    pages as `kernel_hstate_1g` says; a reason to skip when the machine cannot. `trace` is
    one the model took: a trace naming processes lowered (ModelReplay.trace,
    checker/processes.py), as replay_on_kernel passes it."""
    steps = trace.steps
    noexec = kernel_noexec_arg(kernel_noexec_scope(design, trace))
    giga = needs_hugetlb_1g(steps)
    hstate = kernel_hstate_1g(design, trace, against) if giga else None
    with _maybe_hugepages(needs_hugetlb(steps), giga=giga and hstate != 0) as reason:
        if reason:
            return KernelRun([], None, reason, None)
        return run_on_kernel(steps, noexec_scope=noexec, hstate_1g=hstate)


def judge(design: Design, trace: Trace, model_replay: ModelReplay, run: KernelRun, *,
          against: str, path: str) -> KernelReplay:
    """Compare a finished kernel run with the trace or the model (see replay_on_kernel)."""
    if run.skipped:
        return KernelReplay(skipped=run.skipped, outcomes=run.outcomes)
    model = model_replay.outcomes
    states = model_replay.run.states() if model_replay.run is not None else []
    for i, got in enumerate(run.outcomes):
        step = trace.steps[i]
        predicted = model[i] if i < len(model) else Any_()
        want = step.outcome if against == "kernel" else predicted
        if isinstance(want, Any_):
            want = predicted
        filled = run.outputs[i] if i < len(run.outputs) else {}
        mouts = model_replay.outputs[i] if i < len(model_replay.outputs) else {}
        wouts = shown_outputs(step) if against == "kernel" else mouts
        odiff = sorted(k for k in filled if k in wouts and wouts[k] != filled[k])
        if (isinstance(want, Any_) or want == got) and not odiff:
            continue

        lines = [f"{path}:{step.pos.line}:{step.pos.col}: step {i + 1} diverges on the kernel",
                 f"  step:   {step_text(step)}",
                 f"  model:  {_with_outs(design, predicted, mouts, odiff)}"]
        if against == "kernel" and not isinstance(step.outcome, Any_):
            lines.append(f"  trace:  {_with_outs(design, step.outcome, wouts, odiff)}")
        lines.append(f"  kernel: {_with_outs(design, got, filled, odiff)}")
        if i < len(states):
            lines.append(f"  model state before the step: {state_text(design, states[i])}")
        return KernelReplay(divergence="\n".join(lines), outcomes=run.outcomes)
    if run.error is not None or len(run.outcomes) < len(trace.steps):
        i = len(run.outcomes)
        where = (f"{path}:{trace.steps[i].pos.line}:{trace.steps[i].pos.col}"
                 if i < len(trace.steps) else path)
        return KernelReplay(divergence=f"{where}: the kernel executor stopped at step {i + 1}: "
                            f"{run.error or 'no result'}", outcomes=run.outcomes)
    what = "the trace" if against == "kernel" else "the model"
    ns = "" if kernel_noexec_arg(kernel_noexec_scope(design, trace)) is None else \
        " (in a new pid namespace)"
    return KernelReplay(summary=f"{len(run.outcomes)} steps agree with {what}{ns}",
                        outcomes=run.outcomes)
