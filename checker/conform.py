"""Differential conformance testing: the model's transitions against the live kernel.

Two sources of traces, both replayed on the kernel from a fresh file in a forked child
(traces.kernel.run_on_kernel with observations), each step compared with the model:

* every transition of the reachable state graph at a *conformance scope* (counter bounds plus a
  depth bound `depth=D`: the states within D steps of an initial state; states that differ only
  in ghost fields count once): for each state its shortest path, then each enabled action
  instance from it, one trace each;
* seeded random walks at a larger scope, each step a uniformly chosen action among those with
  an enabled instance whose successor stays within that scope, then one such instance.

After every step the kernel's outcome, the outputs the call filled (fstat's st_size and
st_mode, FS_IOC_GETFLAGS's flags: traces/outputs.py) and its observable state are compared
with the model's: F_GET_SEALS, the size in bytes, the mode, and for each live mapping whether
a load and a load-then-store succeed (the model's `load`/`store` for that mapping in that
state: no rule is re-implemented here); a transition's trace observes its last step only
(transition_cases says why). A divergence is confirmed by a second run, shrunk
(dropping steps while it persists on model and kernel) and written in the trace format.
"""

from __future__ import annotations

import copy
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from checker.conform_pool import BATCH, Pool, run_one
from checker.conform_restrict import offers_hugetlb, restrict_capabilities, restrict_hugetlb
from model.lang.action import MAP_DEFAULT
from traces.concretize import size_scale
from traces.kernel import KernelRun, Observation
from traces.trace import Outcome, Ret, Step, Trace

if TYPE_CHECKING:
    from checker.compile_np import CompiledAction
    from checker.explicit import Explorer
    from checker.interpreter import Interpreter
    from model.lang.design import Design
    from traces.concretize import Handles
    from traces.run import AStep

__all__ = ["DEFAULT_SCOPES", "ConformOptions", "ConformReport", "Divergence", "run_conform"]

#: Conformance scopes (counter bounds and a depth bound) and random-walk scopes per design.
DEFAULT_SCOPES: dict[str, str] = {"memfd": "pages=2,maps=2,pins=2,fds=2,depth=3"}
DEFAULT_WALK_SCOPES: dict[str, str] = {"memfd": "pages=3,maps=3,pins=2,fds=3"}
HUGEPAGES_PER_JOB = 8  # a file of up to `pages` huge pages, private copies, stragglers
#: 1 GiB pages per job for MFD_HUGE_1GB files (--hugetlb-1g): fallocate takes up to 2, a
#: private store copies one, a finished case's may not be free yet (with 2: ENOSPC/SIGBUS)
GIGANTIC_PER_JOB = 4


# ---- options and results ------------------------------------------------------------------
@dataclass
class ConformOptions:
    """What to run: see `shmemcheck conform --help`."""

    scope: dict[str, int]  # counter bounds of the conformance scope
    depth: int | None  # states within this many steps of an initial state (None: all)
    walks: int = 0
    seed: int = 1
    length: int = 12
    walk_scope: dict[str, int] = field(default_factory=dict)
    exhaustive: bool = True
    jobs: int = 2
    hugetlb: bool = True
    gigantic: bool = False  # MFD_HUGE_1GB files too (reserves GIGANTIC_PER_JOB a job)
    out: str | None = None
    progress: Callable[[str], None] | None = None
    #: called with each trace that ran on the kernel and its run (`mutate --conform` keeps
    #: them to judge mutants against the kernel's own outcomes)
    record: Callable[[Case, KernelRun], None] | None = None


@dataclass
class Divergence:
    """A confirmed (or unconfirmed) difference between model and kernel, minimised."""

    label: str  # the first trace that found it
    where: str  # "step 3 (fcntl_add_seals): outcome: model 0, kernel -1 EBUSY"
    count: int  # divergent traces with the same signature (action, aspect)
    trace: str  # the minimal trace, kernel outcomes, in the trace format
    path: str | None  # where it was written
    reproduced: bool  # a second run of the original trace diverged the same way


@dataclass
class ConformReport:
    """Figures of a run; `divergences` holds one shrunk trace per class of divergences."""

    design: str
    scope_text: str
    states: int = 0  # distinct (non-ghost) states of the conformance scope
    transitions: int = 0  # enabled action instances from them (one trace each)
    walks: int = 0
    traces: int = 0  # traces run on the kernel
    steps: int = 0  # steps run on the kernel
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> traces
    divergences: list[Divergence] = field(default_factory=list)
    tested: Counter[str] = field(default_factory=Counter)  # action -> kernel steps compared
    seconds: float = 0.0
    kernel: str = ""  # where the traces ran: "kernel 6.1.192 (QEMU guest)"
    #: actions left out of the run because this kernel cannot run their call -> why
    left_out: dict[str, str] = field(default_factory=dict)
    #: the only actions explored (`conform --actions`); empty: every action of the design
    actions: tuple[str, ...] = ()

    def summary(self) -> str:
        flaky = f", {self.unconfirmed} unconfirmed" if self.unconfirmed else ""
        on = f" on {self.kernel}" if self.kernel else ""
        only = f", actions {', '.join(self.actions)} only" if self.actions else ""
        return (f"conform: {self.traces:,} traces, {self.steps:,} steps, "
                f"{self.divergent} divergences{flaky} ({self.seconds:.0f} s){on}{only}")

    @property
    def divergent(self) -> int:
        """Traces whose divergence reproduced (each class in `divergences` is shrunk once)."""
        return sum(d.count for d in self.divergences if d.reproduced)

    @property
    def unconfirmed(self) -> int:
        """Traces whose divergence did not reproduce when re-run."""
        return sum(d.count for d in self.divergences if not d.reproduced)


# ---- the model side -----------------------------------------------------------------------
@dataclass
class Case:
    """One trace to run: abstract steps, their rendering, and the model's observations."""

    label: str
    init: dict[str, int]
    asteps: list[AStep]
    steps: list[Step]  # model outcomes
    expect: list[Observation]  # the model's observable state after each step
    noexec: int | None  # run_on_kernel's noexec_scope
    hugetlb: bool
    aspects: frozenset[str] = frozenset(("seals", "size", "mode", "maps"))  # compared
    #: the steps before this one are not observed (run_on_kernel's observe_from)
    observe_from: int = 0


@dataclass
class Mismatch:
    index: int  # 0-based step
    aspect: str  # outcome | an output (st_size) | seals | size | mode | maps | mN read | ...
    model: str
    kernel: str
    output: bool = False  # an output the call filled (st_size), not the state after it

    def signature(self, case: Case) -> tuple[str, str]:
        action = case.asteps[self.index].action if self.index < len(case.asteps) else "-"
        if " " in self.aspect:  # "m2 write" -> "map write": any mapping of the trace
            return action, "map " + self.aspect.split()[-1]
        return action, self.aspect

    def text(self, case: Case) -> str:
        action = case.asteps[self.index].action if self.index < len(case.asteps) else "-"
        what = ("outcome" if self.aspect == "outcome" else self.aspect if self.output
                else f"{self.aspect} after the step")
        return (f"step {self.index + 1} ({action}): {what}: model {self.model}, "
                f"kernel {self.kernel}")


def _copy_handles(h: Handles) -> Handles:
    """The whole handle table: live handles and serials, and what the table keeps of them
    (descriptions, f_pos, mapping lengths, write counts)."""
    return copy.deepcopy(h)


class Model:
    """The design's interpreter for conformance: renders runs and predicts observations."""

    def __init__(self, design: Design, scope: Mapping[str, int]) -> None:
        from checker.interpreter import interpreter_for
        from model.lang.callspec import MapRef

        self.design = design
        self.ex: Interpreter = interpreter_for(design, scope)
        self.compiled = self.ex.by_name
        self.ghost = [f.name for f in design.schema.fields if f.ghost]
        self.scale = size_scale(design)
        self.probes: dict[str, tuple[CompiledAction, str]] = {}
        for name in ("load", "store"):
            ca = self.compiled.get(name)
            if ca is None:
                continue
            mref = [s.param for s in ca.action.args if isinstance(s, MapRef)]
            if mref:
                self.probes[name] = (ca, mref[0])
        self._probe_cache: dict[tuple[object, ...], tuple[str, str]] = {}
        self._noexec: dict[int | None, int | None] = {}
        fields = design.schema.by_name
        #: the observations this design predicts (others are not compared)
        self.aspects: set[str] = {a for a in ("seals", "size", "mode") if a in fields}
        if len(self.probes) == 2:
            self.aspects.add("maps")
        if self.scale is None:
            self.aspects.discard("size")

    # -- observations
    def _probe(self, name: str, st: Mapping[str, int], kind: int, attrs: Mapping[str, int]) -> str:
        from model.lang.action import outcome_text

        ca, param = self.probes[name]
        # the executor probes the mapping's first byte: its length and offset from the
        # handle table, any other parameter its first explored value (byte 0)
        params = {p.name: p.domain[0] for p in ca.action.params}
        params.update({p: attrs[a] for p, a in ca.action.from_map})
        params[param] = kind
        out = self.ex.apply(ca, st, params).out
        return "ok" if out >= 0 else outcome_text(out)

    def probe(self, st: Mapping[str, int], kind: int,
              attrs: Mapping[str, int] = MAP_DEFAULT) -> tuple[str, str]:
        """(read, write) for a mapping of `kind`, `attrs` (Handles.maps): load; load, store."""
        key = (tuple(st[n] for n in sorted(st)), kind, tuple(sorted(attrs.items())))
        hit = self._probe_cache.get(key)
        if hit is None:
            read = self._probe("load", st, kind, attrs)
            write = read if read != "ok" else self._probe("store", st, kind, attrs)
            hit = self._probe_cache[key] = (read, write)
        return hit

    def observe(self, st: Mapping[str, int], h: Handles) -> Observation:
        """The observable state the executor reports, as the model predicts it (aspects the
        design does not model are left empty and not compared)."""
        exists = bool(st.get("exists", 1))
        seals: int | str = st["seals"] if exists and "seals" in self.aspects else "EBADF"
        size = mode = None
        if exists and self.scale is not None and "size" in self.aspects:
            size = st["size"] * self.scale(st)
        if exists and "mode" in self.aspects:
            mode = st["mode"]
        maps = ({n: self.probe(st, k, h.maps.get(n, MAP_DEFAULT)) for n, k in h.live["map"].items()}
                if "maps" in self.aspects else {})
        return Observation(seals, size, mode, maps)

    # -- rendering
    def noexec(self, init: Mapping[str, int]) -> int | None:
        """run_on_kernel's noexec_scope for a run from init (None: this pid namespace)."""
        from checker.kernel_replay import kernel_noexec_arg

        scope = init.get("noexec_scope")
        if scope not in self._noexec:
            self._noexec[scope] = kernel_noexec_arg(scope)
        return self._noexec[scope]

    def extend(self, h: Handles, before: Mapping[str, int], a: AStep) -> tuple[Step, Observation]:
        """Render one abstract step (updating the handle table) and predict what follows."""
        from traces.concretize import render_step

        step = render_step(self.design, h, a, before)
        return step, self.observe(a.after, h)

    def case(self, label: str, init: dict[str, int], asteps: list[AStep]) -> Case:
        from checker.kernel_replay import needs_hugetlb
        from traces.concretize import Handles

        h = Handles()
        st: Mapping[str, int] = init
        steps, obs = [], []
        for a in asteps:
            s, o = self.extend(h, st, a)
            steps.append(s)
            obs.append(o)
            st = a.after
        return Case(label, init, asteps, steps, obs, self.noexec(init), needs_hugetlb(steps),
                    frozenset(self.aspects))

    def reapply(self, init: dict[str, int], asteps: Sequence[AStep]) -> list[AStep] | None:
        """The same action instances applied afresh from init; None if one is not enabled."""
        out: list[AStep] = []
        st: Mapping[str, int] = init
        for a in asteps:
            try:
                b = self.ex.apply(self.compiled[a.action], st, a.params)
            except ValueError:
                return None
            out.append(b)
            st = b.after
        return out


# ---- comparing ----------------------------------------------------------------------------
def _val(v: object) -> str:
    return "-" if v is None else (hex(v) if isinstance(v, int) and not isinstance(v, bool)
                                  else str(v))


def diff_observation(model: Observation, kernel: Observation,
                     aspects: frozenset[str] | set[str] = frozenset(("seals", "size", "mode",
                                                                    "maps"))
                     ) -> Mismatch | None:
    """The first observable difference among `aspects` (index filled in by the caller)."""
    if "seals" in aspects and model.seals != kernel.seals:
        return Mismatch(-1, "seals", _val(model.seals), _val(kernel.seals))
    if "size" in aspects and model.size != kernel.size:
        return Mismatch(-1, "size", str(model.size), str(kernel.size))
    km = None if kernel.mode is None else kernel.mode & 0o777
    if "mode" in aspects and model.mode != km:
        return Mismatch(-1, "mode", "-" if model.mode is None else oct(model.mode),
                        "-" if km is None else oct(km))
    if "maps" not in aspects:
        return None
    if set(model.maps) != set(kernel.maps):
        return Mismatch(-1, "maps", ",".join(sorted(model.maps)) or "none",
                        ",".join(sorted(kernel.maps)) or "none")
    for name in sorted(model.maps):
        for i, what in enumerate(("read", "write")):
            if model.maps[name][i] != kernel.maps[name][i]:
                return Mismatch(-1, f"{name} {what}", model.maps[name][i], kernel.maps[name][i])
    return None


def compare(case: Case, run: KernelRun) -> Mismatch | None:
    """The first step whose outcome or following observation differs (run not skipped)."""
    from traces.concretize import outcome_str
    from traces.outputs import shown_outputs

    obs = run.observations or []
    for i, got in enumerate(run.outcomes):
        want = case.steps[i].outcome
        if got != want:
            return Mismatch(i, "outcome", outcome_str(want), outcome_str(got))
        # the outputs the call filled (fstat's, FS_IOC_GETFLAGS's), as the model printed them
        shown = shown_outputs(case.steps[i])
        filled = run.outputs[i] if i < len(run.outputs) else {}
        for k in sorted(k for k in filled if k in shown and shown[k] != filled[k]):
            return Mismatch(i, k, _val(shown[k]), _val(filled[k]), output=True)
        seen = obs[i] if i < len(obs) else None
        if seen is not None:
            m = diff_observation(case.expect[i], seen, case.aspects)
            if m is not None:
                m.index = i
                return m
    if run.error is not None or len(run.outcomes) < len(case.steps):
        return Mismatch(len(run.outcomes), "executor", "-", run.error or "no result")
    return None


# ---- trace sources ------------------------------------------------------------------------
@dataclass
class Graph:
    """The conformance scope's states (one per non-ghost state, with its shortest path)."""

    ex: Explorer
    reps: list[tuple[int, int]]  # (depth, index) in the BFS layers
    transitions: int  # enabled action instances from the reps
    #: reps every state of whose path before it is a rep too: each step of the path is then
    #: some chunk's last step (transition_cases)
    covered: set[tuple[int, int]] = field(default_factory=set)


def explore(design: Design, scope: Mapping[str, int], depth: int | None,
            ghost: Sequence[str]) -> Graph:
    """BFS to the depth bound; one representative per state modulo ghost fields."""
    import numpy as np

    from checker.explicit import Explorer
    from checker.interpreter import param_arrays

    ex = Explorer(design, scope, [], keep_layers=True, max_depth=depth)
    res = ex.run()
    pk = ex.packer
    gmask = 0
    for n in ghost:
        gmask |= pk.mask[n] << pk.shift[n]
    seen: set[int] = set()
    reps: list[tuple[int, int]] = []
    covered: set[tuple[int, int]] = set()
    transitions = 0
    # per layer, whether each state's path is through reps only (its own rep-ness aside)
    through_reps = prev_rep = np.ones(0, dtype=bool)
    for d, layer in enumerate(res.layers):
        keys = layer[0]
        is_rep = np.zeros(len(keys), dtype=bool)
        rows = []
        for i, k in enumerate((keys & ~np.int64(gmask)).tolist()):
            if k not in seen:
                seen.add(k)
                rows.append(i)
        is_rep[rows] = True
        if d == 0:
            through = np.ones(len(keys), dtype=bool)
        else:
            par = layer[1]
            through = through_reps[par] & prev_rep[par]
        covered.update((d, i) for i in rows if through[i])
        through_reps, prev_rep = through, is_rep
        if not rows:
            continue
        S = pk.fields(keys[np.array(rows, dtype=np.int64)])
        for ca in ex.actions:
            transitions += int(np.broadcast_to(ca.fn(S, param_arrays(ca))["en"],
                                               (len(rows), ca.k)).sum())
        reps.extend((d, i) for i in rows)
    return Graph(ex, reps, transitions, covered)


def transition_cases(model: Model, g: Graph) -> Iterator[list[Case]]:
    """One chunk per state: its path plus each enabled instance, one trace each. Where the
    path runs through reps only (Graph.covered), only the last step is observed: the state
    after each step of the path was observed in the trace whose last step it is (the search's
    path of a state runs through its parent's, and a rep parent's chunk has every successor),
    and the same steps from the same start leave the kernel in the same observable state.
    Elsewhere every step is observed, as a rerun (run_one: shrinking, reproducing) does."""
    from checker.kernel_replay import needs_hugetlb
    from traces.concretize import Handles

    n = 0
    for d, i in g.reps:
        run = g.ex.path(d, i)
        h = Handles()
        st: Mapping[str, int] = run.init
        steps, obs = [], []
        for a in run.steps:
            s, o = model.extend(h, st, a)
            steps.append(s)
            obs.append(o)
            st = a.after
        huge = needs_hugetlb(steps)
        noexec = model.noexec(run.init)
        aspects = frozenset(model.aspects)
        chunk = []
        for a in g.ex.successors(st):
            h2 = _copy_handles(h)
            s, o = model.extend(h2, st, a)
            n += 1
            chunk.append(Case(f"transition {n}", dict(run.init), [*run.steps, a], [*steps, s],
                              [*obs, o], noexec, huge or needs_hugetlb([s]), aspects,
                              observe_from=len(run.steps) if (d, i) in g.covered else 0))
        yield chunk


def random_walks(model: Model, design: Design, scope: Mapping[str, int], n: int, seed: int,
                 length: int) -> list[Case]:
    """n walks of up to `length` steps; each step picks an action uniformly among those with
    an enabled in-scope instance, then one of its instances uniformly (uniform over instances
    would spend most steps on the action with the most parameter values)."""
    import numpy as np

    from checker.interpreter import interpreter_for

    ex = interpreter_for(design, scope)
    rng = random.Random(seed)
    inits = list(design.init.states(design.schema))
    states = [dict(rng.choice(inits)) for _ in range(n)]
    inits_of = [dict(s) for s in states]
    runs: list[list[AStep]] = [[] for _ in range(n)]
    alive = list(range(n))
    for _ in range(length):
        if not alive:
            break
        masks = ex.in_scope_instances([states[w] for w in alive])
        counts = np.stack([m.sum(axis=1) for m in masks], axis=1)  # (walks, actions)
        still = []
        for row, w in enumerate(alive):
            enabled = [ai for ai in range(len(ex.actions)) if counts[row, ai]]
            if not enabled:
                continue
            ai = rng.choice(enabled)
            ca = ex.actions[ai]
            col = int(rng.choice(np.nonzero(masks[ai][row])[0]))
            a = ex.apply(ca, states[w], ca.params_at(col))
            runs[w].append(a)
            states[w] = a.after
            still.append(w)
        alive = still
    return [model.case(f"walk {w + 1} (seed {seed})", inits_of[w], runs[w])
            for w in range(n) if runs[w]]


def shrink(model: Model, case: Case, mm: Mismatch,
           run: Callable[[Case], KernelRun]) -> tuple[Case, Mismatch, KernelRun | None]:
    """Drop steps while the same divergence (action and aspect) persists on model and kernel."""
    sig = mm.signature(case)
    best, best_mm, best_run = case, mm, None
    asteps = list(case.asteps[:mm.index + 1])
    changed = True
    while changed:
        changed = False
        for j in range(len(asteps) - 1, -1, -1):
            cand = model.reapply(best.init, asteps[:j] + asteps[j + 1:])
            if not cand:
                continue
            c = model.case(case.label + " (shrunk)", best.init, cand)
            r = run(c)
            if r.skipped:
                continue
            m = compare(c, r)
            if m is not None and m.signature(c) == sig:
                best, best_mm, best_run = c, m, r
                asteps = list(cand[:m.index + 1])
                changed = True
                break
    for init in model.design.init.states(model.design.schema):  # a simpler initial state?
        if init == best.init:
            break
        cand = model.reapply(init, best.asteps)
        if not cand:
            continue
        c = model.case(best.label, init, cand)
        r = run(c)
        m = None if r.skipped else compare(c, r)
        if m is not None and m.signature(c) == sig:
            best, best_mm, best_run = c, m, r
            break
    if len(best.asteps) > best_mm.index + 1:
        trimmed = model.reapply(best.init, best.asteps[:best_mm.index + 1])
        if trimmed:
            best = model.case(best.label, best.init, trimmed)
    return best, best_mm, best_run


def divergence_trace(model: Model, case: Case, mm: Mismatch, run: KernelRun | None,
                     note: str) -> Trace:
    """The case up to the divergence, with the kernel's outcomes; the model's in a comment."""
    from traces.initstate import init_comment

    steps: list[Step] = []
    for i, s in enumerate(case.steps[:mm.index + 1]):
        out: Outcome = s.outcome
        if run is not None and i < len(run.outcomes):
            out = run.outcomes[i]
        comment = None
        if i == mm.index:
            what = "outcome" if mm.aspect == "outcome" else f"after this step, {mm.aspect}"
            comment = f"DIVERGES: {what}: model {mm.model}, kernel {mm.kernel}"
        steps.append(Step(s.call, s.args, out, s.note if isinstance(out, Ret) and
                          out == s.outcome else None, comment))
    comments = [c for c in (init_comment(model.design, case.init),) if c]
    comments.append(note)
    action = case.asteps[mm.index].action if mm.index < len(case.asteps) else "executor"
    return Trace(steps, design=model.design.name, expect="conforms",
                 title=f"conform divergence: {action}, {mm.aspect}", comments=tuple(comments))


# ---- the driver ---------------------------------------------------------------------------
class NotAKernelDesign(ValueError):
    pass


def kernel_designs() -> list[str]:
    """The built-in designs that claim to match a live kernel."""
    from model import designs

    return [n for n in designs.names(include_corpus=True)
            if not designs.is_corpus(n) and designs.get(n).kernel is not None]


def run_conform(design: Design, opts: ConformOptions) -> ConformReport:
    """Run the exhaustive transitions and the random walks on the kernel; see module doc.

    Only a design that claims to match a live kernel (design.kernel) is compared with it: a
    historical or proposed design differs from this kernel by construction (NotAKernelDesign)."""
    from checker.kernel_replay import needs_hugetlb_1g
    from traces.hugepages import GIGANTIC_KB, hstate_1g_present
    from traces.kernel import hugepages_reserved, restore_hugepages

    if design.kernel is None:
        raise NotAKernelDesign(
            f"conform: design {design.name} is not a model of a live kernel (a historical or "
            "proposed design): it cannot be compared with this kernel; designs that can: "
            + ", ".join(kernel_designs()))
    from model.lang.design import scope_text

    t0 = time.perf_counter()
    say = opts.progress or (lambda msg: None)
    undone = restore_hugepages()  # a raise left by a run that was killed
    if undone:
        say(undone)
    if not opts.hugetlb:
        design = restrict_hugetlb(design)
    elif not opts.gigantic:
        design = restrict_hugetlb(design, gigantic_only=True)
    design, left_out = restrict_capabilities(design)  # the report names them
    rep = ConformReport(design.name, scope_text(opts.scope, opts.depth), left_out=left_out)
    model = Model(design, {k: 1 for k in design.default_scope})  # apply packs nothing
    graph = None
    if opts.exhaustive:
        graph = explore(design, opts.scope, opts.depth, model.ghost)
        rep.states, rep.transitions = len(graph.reps), graph.transitions
        say(f"conformance scope {rep.scope_text}: {rep.states:,} states, "
            f"{rep.transitions:,} transitions")
    walks: list[Case] = []
    if opts.walks:
        walks = random_walks(model, design, opts.walk_scope, opts.walks, opts.seed, opts.length)
        rep.walks = len(walks)
        say(f"{len(walks):,} random walks of up to {opts.length} steps at scope "
            f"{scope_text(opts.walk_scope, None)}, seed {opts.seed}")
    total = rep.transitions + len(walks)
    found: list[tuple[Case, Mismatch, KernelRun]] = []
    last = [time.perf_counter()]
    huge_reason: str | None = None
    giga_reason: str | None = None

    def done(case: Case, run: KernelRun) -> None:
        if run.skipped:
            rep.skipped[run.skipped] += 1
        else:
            rep.traces += 1
            rep.steps += len(run.outcomes)
            if opts.record is not None:
                opts.record(case, run)
            mm = compare(case, run)
            ok_steps = len(run.outcomes) if mm is None else mm.index
            for a in case.asteps[:ok_steps]:
                rep.tested[a.action] += 1
            if mm is not None:
                found.append((case, mm, run))
                say(f"DIVERGENCE in {case.label}: {mm.text(case)}")
        now = time.perf_counter()
        if now - last[0] >= 5.0:
            last[0] = now
            n = rep.traces + sum(rep.skipped.values())
            rate = n / max(now - t0, 1e-9)
            eta = (total - n) / rate if rate else 0.0
            say(f"{n:,}/{total:,} traces, {len(found)} divergences, {now - t0:.0f} s, "
                f"~{eta:.0f} s to go")

    def sources() -> Iterator[list[Case]]:
        if graph is not None:
            yield from transition_cases(model, graph)
        for i in range(0, len(walks), BATCH):
            yield walks[i:i + BATCH]

    def filtered() -> Iterator[list[Case]]:
        for chunk in sources():
            keep = []
            for c in chunk:
                if c.hugetlb and huge_reason:
                    rep.skipped[huge_reason] += 1
                elif giga_reason and needs_hugetlb_1g(c.steps):
                    rep.skipped[giga_reason] += 1
                else:
                    keep.append(c)
            yield keep

    want_huge = opts.hugetlb and offers_hugetlb(design)
    reserve = (hugepages_reserved(HUGEPAGES_PER_JOB * opts.jobs + 1) if want_huge
               else nullcontext(None))
    # 1 GiB pages where the machine has that hstate; a run that cannot get them skips its
    # MFD_HUGE_1GB cases with the reason (run_on_kernel: no free 1 GiB page)
    giga = (hugepages_reserved(GIGANTIC_PER_JOB * opts.jobs + 1, GIGANTIC_KB)
            if want_huge and opts.gigantic and hstate_1g_present() else nullcontext(None))
    with reserve as reason, giga as giga_why:
        giga_reason = giga_why
        huge_reason = reason
        if huge_reason:
            say(f"traces with MFD_HUGETLB are skipped: {huge_reason}")
        if giga_reason:
            say(f"traces with MFD_HUGE_1GB are skipped: {giga_reason}")
        pool = Pool(opts.jobs)
        try:
            pool.run(filtered(), done)
        except KeyboardInterrupt:  # Ctrl-C: say how far it got; the CLI exits 130, no verdict
            n = rep.traces + sum(rep.skipped.values())
            say(f"interrupted after {n:,}/{total:,} traces, {rep.steps:,} steps: "
                f"{len(found)} divergences seen (not confirmed); no verdict")
            raise
        finally:
            pool.close()
        groups: dict[tuple[str, str], list[tuple[Case, Mismatch, KernelRun]]] = {}
        for case, mm, run in found:
            groups.setdefault(mm.signature(case), []).append((case, mm, run))
        for n, (sig, members) in enumerate(groups.items(), 1):
            say(f"confirming and shrinking divergence {n}/{len(groups)} ({members[0][0].label})")
            rep.divergences.append(_minimise(model, sig, members, n, opts.out))
    rep.seconds = time.perf_counter() - t0
    return rep


def _reproduces(case: Case, sig: tuple[str, str], tries: int = 2) -> KernelRun | None:
    """A run of `case` that diverges with signature `sig`, within `tries` runs."""
    for _ in range(tries):
        run = run_one(case)
        m = None if run.skipped else compare(case, run)
        if m is not None and m.signature(case) == sig:
            return run
    return None


def _minimise(model: Model, sig: tuple[str, str],
              members: list[tuple[Case, Mismatch, KernelRun]], n: int, out: str | None
              ) -> Divergence:
    """Confirm a class of divergent traces by re-running, shrink one, write it."""
    from checker.atomic import write_text
    from traces.textfmt import format_trace

    first, first_mm, first_run = members[0]
    confirmed: tuple[Case, Mismatch, KernelRun] | None = None
    for case, mm, _ in members[:3]:
        again = _reproduces(case, sig)
        if again is not None:
            confirmed = (case, mm, again)
            break
    srun: KernelRun | None
    if confirmed is None:
        note = (f"found by shmemcheck conform in {first.label}; NOT reproduced when re-run "
                "(a resource shared with other processes, such as huge pages?)")
        small, smm, srun = first, first_mm, first_run
    else:
        case, mm, crun = confirmed
        small, smm, srun = shrink(model, case, mm, run_one)
        check = _reproduces(small, sig)
        if check is None:  # the shrinker was misled by a flaky run: keep the original
            small, smm, srun = case, mm, crun
        else:
            srun = check
            smm = compare(small, check) or smm
        note = (f"found by shmemcheck conform in {case.label}; shrunk from "
                f"{len(case.asteps)} steps and re-run")
    text = format_trace(divergence_trace(model, small, smm, srun, note))
    path = None
    if out:
        kind = "divergence" if confirmed else "unconfirmed"
        path = os.path.join(out, f"{model.design.name}-{kind}-{n:03d}.trace")
        write_text(path, text)
    return Divergence(first.label, smm.text(small), len(members), text, path,
                      confirmed is not None)


def print_report(rep: ConformReport, file: Any = None) -> None:
    """The report: scope figures, skips, divergences, and the summary line last."""
    out = file or sys.stdout
    if rep.states:
        print(f"conform: {rep.design}, conformance scope {rep.scope_text}: {rep.states:,} "
              f"states, {rep.transitions:,} transitions (one trace each)", file=out)
    if rep.walks:
        print(f"conform: {rep.walks:,} random walks", file=out)
    if rep.tested:
        print("conform: steps compared per action: " + ", ".join(
            f"{a} {n:,}" for a, n in sorted(rep.tested.items())), file=out)
    for name, why in sorted(rep.left_out.items()):
        print(f"conform: left out {name}: {why}", file=out)
    for reason, n in sorted(rep.skipped.items()):
        print(f"conform: SKIP {n:,} traces: {reason}", file=out)
    for d in rep.divergences:
        what = "DIVERGENCE" if d.reproduced else "UNCONFIRMED divergence (did not reproduce)"
        print(f"conform: {what} in {d.count:,} traces, first {d.label}; minimal: {d.where}",
              file=out)
        if d.path:
            print(f"  written to {d.path}", file=out)
        else:
            print("  " + d.trace.rstrip("\n").replace("\n", "\n  "), file=out)
    print(rep.summary(), file=out)
