"""Conformance on the kernel a design claims (`Design.kernel`): this machine's when it is the
host's series, else a fetched kernel booted under QEMU (traces/guest.py).

The traces are checker/conform.py's (every transition of the conformance scope, then the
random walks) and are judged by its `compare`; only where they run differs. On a guest a boot
runs a whole batch (GUEST_BATCH traces), one forked child per trace, and the guest reports
each step's outcome and then the file's seals, size and mode, as the host's executor does; the
host's mapping probes (a load and a store through each live mapping after every step) are not
made in the guest, so a guest run compares outcomes, seals, size and mode (NOTES.md). A class
of divergent traces is confirmed by one more boot that re-runs its first members; it is not
shrunk (each shrinking candidate would cost a boot).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from checker.conform import (
    Case,
    ConformOptions,
    ConformReport,
    Divergence,
    Mismatch,
    Model,
    compare,
    divergence_trace,
    explore,
    random_walks,
    transition_cases,
)
from checker.conform_restrict import restrict_hugetlb

if TYPE_CHECKING:
    from model.lang.design import Design
    from traces.guest import BatchItem
    from traces.kernel import KernelRun
    from traces.kernels import FetchedKernel

__all__ = ["GUEST_BATCH", "GuestTarget", "NoGuestKernel", "host_series", "run_conform_guest",
           "target_of"]

#: traces per boot: a boot of 4,000 traces (~15,000 steps) took 16-89 s here (NOTES.md), within
#: one trace's share of traces.guest.boot_timeout() many times over
GUEST_BATCH = 4000


class NoGuestKernel(Exception):
    """The design's kernel is not the host's series and no build of it is fetched."""


def series(version: str) -> str:
    """6.1.176 -> 6.1; 6.18.44-fc-v1147 -> 6.18; 7.3-rc7 -> 7.3-rc."""
    if "-rc" in version:
        return version.split("-rc")[0] + "-rc"
    return ".".join(version.split("-")[0].split(".")[:2])


def host_series() -> str:
    return series(platform.release())


@dataclass
class GuestTarget:
    """Where a design's traces run: on this machine (kernel None) or in a guest."""

    version: str  # the kernel release the run names
    design: str
    kernel: FetchedKernel | None = None
    qemu: str | None = None

    @property
    def label(self) -> str:
        return (f"kernel {self.version} (this machine)" if self.kernel is None
                else f"kernel {self.version} (QEMU guest)")


def target_of(design: Design) -> GuestTarget:
    """The kernel `design.kernel` names: the host when it is the host's series, else the
    newest fetched build of that series; else, for a design claiming the reference kernel
    (memfd's, 6.18: the designs the project checks on its own machines), the host as before
    this module; NoGuestKernel (one line) otherwise."""
    from model import designs
    from traces import kernels

    want = design.kernel
    assert want is not None
    if series(want) == host_series() or want == platform.release():
        return GuestTarget(platform.release(), design.name)
    have = {k.version: k for k in kernels.fetched()}
    v = kernels.match(want, list(have))
    if v is None and want == designs.get("memfd").kernel:
        return GuestTarget(platform.release(), design.name)
    if v is None:
        raise NoGuestKernel(
            f"conform: design {design.name} claims kernel {want}, which is not this machine's "
            f"({platform.release()}) and is not fetched: run `shmemcheck kernels fetch {want}` "
            f"(cache: {kernels.cache_dir() / 'kernels'})")
    return GuestTarget(v, design.name, have[v], kernels.qemu_binary())


def _item(case: Case, design_name: str) -> BatchItem:
    from traces.guest import BatchItem
    from traces.replayed import Replayed
    from traces.trace import Trace

    t = Trace(list(case.steps), design=design_name)
    return BatchItem(case.label, Replayed(t, list(case.steps), None, None, None),
                     case.init.get("noexec_scope"))


@dataclass
class _Boots:
    """Boot figures of a guest run."""

    seconds: list[float]
    problems: list[str]


def _run_batch(target: GuestTarget, cases: list[Case], boots: _Boots) -> list[KernelRun | None]:
    from traces.guest import env_keep_dir, run_batch

    assert target.kernel is not None and target.qemu is not None
    keep = env_keep_dir()
    items = [_item(c, target.design) for c in cases]
    res = run_batch(target.kernel.vmlinuz, items, qemu=target.qemu,
                    keep=keep / f"{target.version}-{len(boots.seconds) + 1}" if keep else None)
    boots.seconds.append(res.seconds)
    if res.problem:
        boots.problems.append(res.problem)
    return res.runs


def run_conform_guest(design: Design, opts: ConformOptions, target: GuestTarget
                      ) -> tuple[ConformReport, list[float]]:
    """checker/conform.py's run_conform, with the traces run in `target`'s guest; the report
    and each boot's wall time. A trace without a result (the guest stopped) is counted as
    skipped with the boot's problem, never as agreeing."""
    from model.lang.design import scope_text

    t0 = time.perf_counter()
    say: Callable[[str], None] = opts.progress or (lambda msg: None)
    # a 512 MiB guest has no free 1 GiB page, and whether its CPU model has the hstate is
    # not the host's: MFD_HUGE_1GB stays out of guest runs (the host's decision tables
    # check it)
    design = restrict_hugetlb(design, gigantic_only=opts.hugetlb)
    # the batch program runs its traces one after another in one process: no fork's child
    # holds a mapping there (traces/guest.py), so fork_vma is the host's (the report says so)
    left_out = {a.name: "the guest's batch program runs no fork's child (fork_vma is run on "
                "the host's kernel)" for a in design.actions if a.name == "fork_vma"}
    if left_out:
        design = design.derive(design.name, design.doc, kernel=design.kernel,
                               drop=sorted(left_out))
    rep = ConformReport(design.name, scope_text(opts.scope, opts.depth), left_out=left_out)
    model = Model(design, {k: 1 for k in design.default_scope})
    cases: list[Case] = []
    if opts.exhaustive:
        graph = explore(design, opts.scope, opts.depth, model.ghost)
        rep.states, rep.transitions = len(graph.reps), graph.transitions
        say(f"conformance scope {rep.scope_text}: {rep.states:,} states, "
            f"{rep.transitions:,} transitions")
        for chunk in transition_cases(model, graph):
            cases.extend(chunk)
    if opts.walks:
        walks = random_walks(model, design, opts.walk_scope, opts.walks, opts.seed, opts.length)
        rep.walks = len(walks)
        cases.extend(walks)
        say(f"{len(walks):,} random walks of up to {opts.length} steps at scope "
            f"{scope_text(opts.walk_scope, None)}, seed {opts.seed}")
    for c in cases:  # the guest reports seals, size and mode, but probes no mapping
        c.aspects = c.aspects - {"maps"}
    boots = _Boots([], [])
    found: list[tuple[Case, Mismatch, KernelRun]] = []
    for i in range(0, len(cases), GUEST_BATCH):
        part = cases[i:i + GUEST_BATCH]
        say(f"{target.label}: booting {len(part):,} traces "
            f"({i + len(part):,}/{len(cases):,}) under QEMU (TCG)...")
        runs = _run_batch(target, part, boots)
        for case, run in zip(part, runs, strict=True):
            if run is None:
                why = boots.problems[-1] if boots.problems else "no KTAP line"
                rep.skipped[f"no result from the guest ({why})"] += 1
                continue
            if run.skipped:
                rep.skipped[run.skipped] += 1
                continue
            rep.traces += 1
            rep.steps += len(run.outcomes)
            mm = compare(case, run)
            for a in case.asteps[:len(run.outcomes) if mm is None else mm.index]:
                rep.tested[a.action] += 1
            if mm is not None:
                found.append((case, mm, run))
                say(f"DIVERGENCE in {case.label}: {mm.text(case)}")
        say(f"boot {len(boots.seconds)}: {boots.seconds[-1]:.1f} s")
    if found:
        rep.divergences = _confirm(model, target, found, boots, opts.out, say)
    rep.seconds = time.perf_counter() - t0
    return rep, boots.seconds


def _confirm(model: Model, target: GuestTarget, found: list[tuple[Case, Mismatch, KernelRun]],
             boots: _Boots, out: str | None, say: Callable[[str], None]) -> list[Divergence]:
    """One more boot re-runs the first (up to 3) traces of each class of divergences; a class
    is confirmed when one of them diverges the same way again."""
    import os

    from checker.atomic import write_text
    from traces.textfmt import format_trace

    groups: dict[tuple[str, str], list[tuple[Case, Mismatch, KernelRun]]] = {}
    for case, mm, run in found:
        groups.setdefault(mm.signature(case), []).append((case, mm, run))
    again = [m[0] for g in groups.values() for m in g[:3]]
    say(f"confirming {len(groups)} class(es) of divergences: one more boot of "
        f"{len(again)} traces")
    reruns = dict(zip((id(c) for c in again), _run_batch(target, again, boots), strict=True))
    divs: list[Divergence] = []
    for n, (sig, members) in enumerate(groups.items(), 1):
        confirmed = None
        for case, _, _ in members[:3]:
            r = reruns.get(id(case))
            m = None if r is None or r.skipped else compare(case, r)
            if r is not None and m is not None and m.signature(case) == sig:
                confirmed = (case, m, r)
                break
        case, mm, run = confirmed or members[0]
        note = (f"found by shmemcheck conform on {target.label} in {case.label}; "
                + ("re-run in another boot (not shrunk: a guest run costs a boot)" if confirmed
                   else "NOT reproduced in another boot"))
        text = format_trace(divergence_trace(model, case, mm, run, note))
        path = None
        if out:
            kind = "divergence" if confirmed else "unconfirmed"
            path = os.path.join(out, f"{model.design.name}-{kind}-{n:03d}.trace")
            write_text(path, text)
        divs.append(Divergence(members[0][0].label, mm.text(case), len(members), text, path,
                               confirmed is not None))
    return divs

