"""`shmemcheck corpus --kernels`: which kernel has which bug of the corpus.

Each pair's `-fixed` trace (checker/corpus.py `pair_traces`: the calls of the shortest run
that tells the pair apart, with the fixed design's outcomes) runs on this machine's kernel
(traces/kernel.py, as `replay --on kernel`) and on every fetched kernel under QEMU (one boot
per kernel for all pairs, traces/guest.py). A kernel is *fixed* when it gives every outcome
the fixed design gives, *BROKEN* when its first difference from the fixed trace is at the
step where the pair differs and it gives the broken design's outcome there; any other
difference, or a step it could not run, is reported as such, never rounded to either; and
a pair whose traces have the same outcomes (it differs in effects only) is *undecided*.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from checker.corpus import PairResult, pair_traces
from model import designs
from traces.kernel import KernelRun
from traces.trace import Trace


@dataclass
class Column:
    """One kernel: its label and a cell per pair."""

    label: str
    cells: list[str]


def _short(why: str) -> str:
    """A reason without the list of what is supported (a table cell)."""
    return why.split(" (calls:")[0]


def verdict(fixed: Trace, broken: Trace, run: KernelRun | None) -> str:
    """The cell for one pair on one kernel (see the module docstring)."""
    from traces.concretize import outcome_str

    if run is None:
        return "no result"
    if run.skipped:
        return f"skip: {_short(run.skipped)}"
    differ = [i for i, (a, b) in enumerate(zip(fixed.steps, broken.steps, strict=True))
              if a.outcome != b.outcome]
    for i, got in enumerate(run.outcomes):
        if got == fixed.steps[i].outcome:
            continue
        if differ and i == differ[0] and got == broken.steps[i].outcome:
            return f"BROKEN (step {i + 1}: {outcome_str(got)})"
        return f"differs at step {i + 1}: {outcome_str(got)}"
    if run.error is not None or len(run.outcomes) < len(fixed.steps):
        return f"stopped at step {len(run.outcomes) + 1}: {_short(run.error or 'no result')}"
    # a pair whose outcomes are all the same (it differs in effects only) cannot be told
    # apart by a kernel run: agreeing with it says nothing about the bug
    return "fixed" if differ else "undecided (the pair differs in effects only)"


#: what a bug's reproducer needs that the kernel executor cannot do on any kernel, and why
UNRUNNABLE = {"liveupdate": "skip: the executor has no live-update session calls "
                            "(/dev/liveupdate, CONFIG_LIVEUPDATE): source-read"}


def unrunnable(p: PairResult) -> str | None:
    """The cell of a pair no kernel run can judge, else None."""
    return next((UNRUNNABLE[n] for n in p.bug.needs if n in UNRUNNABLE), None)


def _host_run(fixed: Trace) -> KernelRun:
    """The -fixed trace on this machine's kernel, as `replay --on kernel` runs it."""
    from checker.kernel_replay import run_trace

    return run_trace(designs.get(fixed.design), fixed)


def columns(results: Sequence[PairResult],
            progress: Callable[[str], None] | None = None) -> list[Column]:
    """This machine's kernel, then every fetched kernel (when QEMU is installed)."""
    import platform

    from checker.replay import kernel_noexec_scope, replay_for_export
    from traces import kernels
    from traces.guest import BatchItem, GuestError, run_batch

    say = progress or (lambda msg: None)
    pairs = [pair_traces(p) for p in results]
    skip = [unrunnable(p) for p in results]
    cols = [Column(f"{platform.release()} (this machine)",
                   [sk or verdict(fx, br, _host_run(fx))
                    for sk, (br, fx) in zip(skip, pairs, strict=True)])]
    qemu = kernels.qemu_binary()
    fetched = kernels.fetched()
    if qemu is None:
        if fetched:
            say(f"corpus --kernels: {kernels.QEMU} is not installed: the fetched kernels "
                "are left out (apt-get install qemu-system-x86)")
        return cols
    runnable = [i for i, sk in enumerate(skip) if sk is None]
    items = [BatchItem(results[i].bug.id,
                       replay_for_export(designs.get(pairs[i][1].design), pairs[i][1]),
                       kernel_noexec_scope(designs.get(pairs[i][1].design), pairs[i][1]))
             for i in runnable]
    for k in fetched:
        say(f"corpus --kernels: booting {k.version} ({len(items)} traces)")
        cells = [sk or "" for sk in skip]
        try:
            boot = run_batch(k.vmlinuz, items, qemu=qemu)
        except GuestError as e:
            for i in runnable:
                cells[i] = f"no result: {e}"
            cols.append(Column(k.version, cells))
            continue
        for i, run in zip(runnable, boot.runs, strict=True):
            br, fx = pairs[i]
            c = verdict(fx, br, run)
            cells[i] = f"no result: {boot.problem}" if boot.problem and c.startswith(
                "no result") else c
        cols.append(Column(k.version, cells))
    return cols


def table(results: Sequence[PairResult], cols: Sequence[Column], *,
          markdown: bool = False) -> str:
    """bug | each kernel's cell."""
    head = ["bug", *[c.label for c in cols]]
    rows = [[p.bug.id, *[c.cells[i] for c in cols]] for i, p in enumerate(results)]
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out) + "\n"
    w = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "".join("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() + "\n"
                   for r in [head, *rows])
