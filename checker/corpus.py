"""The bug corpus: would the checker have caught each historical bug, and does each fix hold?

For every entry of traces/scenarios/corpus/catalogue.toml (a `-broken`/`-fixed` pair of
designs from model/designs/corpus.py and a property) `shmemcheck corpus` checks:

- the broken design: a safety property must be VIOLATED, with the shortest counterexample
  (explicit breadth-first search, deepened 4, 8, 12, ... steps, so the arguments are the
  explicit domains' and the run is the shortest); a `sometimes` property must be NOT
  WITNESSED (proved unreachable by pdr when checker.symbolic is available, else within the
  explicit scope);
- the fixed design: a safety property must hold (PROVED by pdr when available, else EXHAUSTED
  within the explicit scope: it then "holds" but is not "proved"); a `sometimes` property must
  be WITNESSED (a replayed run: a proof of reachability).

The run that tells the pair apart (the broken counterexample, or for a `sometimes` property the
fixed design's witness) is replayed action for action on the other design, so each bug gets two
traces with the same calls, `<id>-broken.trace` and `<id>-fixed.trace`, and a kselftest-style C
reproducer of each (traces/export/c.py): `<id>-fixed.c` encodes the fixed behaviour (exit 0
on a kernel with the fix, KSFT_FAIL where the bug is present) and `<id>-broken.c` the broken
one (exit 0 only on a kernel that still has the bug).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from checker.check import symbolic_engine
from checker.explicit import Explorer
from checker.interpreter import interpreter_for
from checker.verdict import AGREES, EXIT_OK, EXIT_UNEXPECTED, Result, Verdict
from model import designs
from model.lang.action import outcome_text
from model.lang.design import Design, scope_text
from properties.catalogue import HOLDS, WITNESSED, Property, load
from properties.corpus import CATALOGUE_PATH, entries, failing
from traces.concretize import run_to_trace
from traces.run import ARun, AStep
from traces.trace import Trace

CORPUS_DIR = CATALOGUE_PATH.parent
DEPTHS = (4, 8, 12, None)  # explicit search: deepen until a run is found, then exhaust
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Bug:
    """One catalogue entry."""

    id: str
    title: str
    commit: str
    introduced: str
    property_name: str
    broken: str
    fixed: str
    kernel: str  # what Linux 6.18.44 shows: "fixed" or "broken"
    needs: tuple[str, ...]
    paragraph: str
    exclude: tuple[str, ...] = ()  # "action.param=MASK": values the explicit search leaves out

    @property
    def prop(self) -> Property:
        return load()[self.property_name]

    @property
    def sometimes(self) -> bool:
        return self.prop.kind.startswith("sometimes")

    @property
    def want_broken(self) -> str:
        return failing(self.prop.kind)

    @property
    def want_fixed(self) -> str:
        return WITNESSED if self.sometimes else HOLDS


def catalogue(path: Path = CATALOGUE_PATH) -> list[Bug]:
    out = []
    for e in entries(path):
        out.append(Bug(e["id"], e["title"], e["commit"], e.get("introduced", ""),
                       e["property"], e["broken"], e["fixed"], e["kernel"],
                       tuple(e.get("needs", ())), " ".join(e["paragraph"].split()),
                       tuple(e.get("exclude", ()))))
    return out


@dataclass
class PairResult:
    bug: Bug
    broken: Result
    fixed: Result
    seconds: float

    @property
    def caught(self) -> bool:
        return self.broken.verdict in AGREES[self.bug.want_broken]

    @property
    def fix_holds(self) -> bool:
        return self.fixed.verdict in AGREES[self.bug.want_fixed]

    @property
    def fix_proved(self) -> bool:
        """PROVED by pdr, or WITNESSED by a replayed run; not EXHAUSTED within a scope."""
        return self.fix_holds and self.fixed.verdict in (Verdict.PROVED, Verdict.WITNESSED)

    @property
    def run(self) -> ARun | None:
        """The run telling the pair apart: the counterexample, or the fixed design's witness."""
        return self.fixed.run if self.bug.sometimes else self.broken.run


# ---- one side of a pair ----------------------------------------------------------------------
def restricted(design: Design, exclude: Sequence[str]) -> Design:
    """`design` exploring no parameter value with a bit of MASK (each "action.param=MASK")."""
    from checker.diff import restrict_domain

    for spec in exclude:
        where, _, mask = spec.partition("=")
        action, _, param = where.partition(".")
        design = restrict_domain(design, action, param, int(mask, 0))
    return design


def search(design: Design, prop: Property, expected: str, exclude: Sequence[str] = (),
           depths: Sequence[int | None] = DEPTHS) -> Result:
    """Explicit BFS for the shortest violation/witness, deepening through `depths`
    (None: exhaustive)."""
    t0 = time.perf_counter()
    design = restricted(design, exclude)
    sometimes = prop.kind.startswith("sometimes")
    for depth in depths:
        r = Explorer(design, design.scope(), [prop], max_depth=depth).run()
        o = r.props[prop.name]
        found = o.holds if sometimes else not o.holds
        if found or r.complete:
            break
    sc = scope_text(r.scope)
    if found:
        assert o.run is not None
        v = Verdict.WITNESSED if sometimes else Verdict.VIOLATED
        method = f"explicit BFS, scope {sc}: shortest run, {len(o.run)} steps"
        if exclude:
            method += " (searched without " + ", ".join(exclude) + ")"
    else:
        v = Verdict.NOT_WITNESSED if sometimes else Verdict.EXHAUSTED
        method = f"explicit, scope {sc}: within this scope only ({r.states:,} states)"
    return Result(design.name, prop.name, "explicit", v, expected, method,
                  time.perf_counter() - t0, o.run if found else None,
                  stats={"states": r.states, "depth": r.depth})


def prove(design: Design, prop: Property, expected: str, *, timeout: float,
          symbolic: bool = True) -> Result:
    """pdr (Spacer, certificate re-checked) when available; else the explicit engine."""
    engine = symbolic_engine() if symbolic else None
    if engine is not None:
        try:
            r = engine(design, prop, "pdr", timeout=timeout)
        except Exception as e:  # an engine error must never pass for a proof
            fallback = f"pdr failed ({type(e).__name__}: {e}); "
        else:
            if r.verdict in (Verdict.PROVED, Verdict.NOT_WITNESSED, Verdict.VIOLATED,
                             Verdict.WITNESSED):
                return replace(r, expected=expected)
            fallback = f"pdr inconclusive ({r.method}); "
    else:
        fallback = "symbolic engines not available; "
    r = search(design, prop, expected, depths=(None,))
    return replace(r, method=fallback + r.method)


def check_pair(bug: Bug, *, symbolic: bool = True, timeout: float = 60.0) -> PairResult:
    t0 = time.perf_counter()
    prop = bug.prop
    broken, fixed = designs.get(bug.broken), designs.get(bug.fixed)
    if bug.sometimes:
        rb = prove(broken, prop, bug.want_broken, timeout=timeout, symbolic=symbolic)
        rf = search(fixed, prop, bug.want_fixed, bug.exclude)
    else:
        rb = search(broken, prop, bug.want_broken, bug.exclude)
        if rb.run is not None and not observable(rb.run, fixed):
            rb = _observable_instead(bug, rb)
        rf = prove(fixed, prop, bug.want_fixed, timeout=timeout, symbolic=symbolic)
    return PairResult(bug, rb, rf, time.perf_counter() - t0)


def observable(run: ARun, other: Design) -> bool:
    """Some call of `run` returns differently on `other`: a reproducer can tell them apart."""
    return any(a.out != b.out for a, b in zip(run.steps, replay_run(other, run).steps,
                                              strict=True))


def violates_at_end(design: Design, prop: Property, run: ARun) -> bool:
    """The run's last transition (action property) or last state (invariant) violates `prop`."""
    ex = interpreter_for(design, design.scope(), [prop])
    if prop.kind == "always":
        return not ex.state_holds(prop.name, run.states()[-1])
    if not run.steps:
        return False
    last = run.steps[-1]
    en, holds = ex.transition_holds(prop.name, ex.by_name[last.action], run.states()[-2],
                                    last.params)
    return en and not holds


def _observable_instead(bug: Bug, rb: Result) -> Result:
    """A counterexample of the same length whose last call returns differently on the fixed
    design (checker.diff, bounded to that length), when the shortest one found is not."""
    from checker.diff import OUTSIDE, Differ

    assert rb.run is not None
    broken = restricted(designs.get(bug.broken), bug.exclude)
    fixed = restricted(designs.get(bug.fixed), bug.exclude)
    d = Differ(broken, fixed, broken.scope(), max_depth=len(rb.run)).run()
    for div in sorted(d.divergences, key=lambda x: len(x.example[0])):
        run = div.example[0]
        if (OUTSIDE in (div.rule_a, div.rule_b) or len(run) > len(rb.run)
                or div.what != "outcome"):  # only a different return is observable here
            continue
        if violates_at_end(broken, bug.prop, run):
            run.violation = bug.property_name
            return replace(rb, run=run, method=rb.method + "; of the shortest, one whose last "
                           f"call returns differently on {bug.fixed} (checker.diff)")
    return rb


def run_corpus(bugs: Sequence[Bug] | None = None, *, symbolic: bool = True,
               timeout: float = 60.0, progress: Progress | None = None) -> list[PairResult]:
    out = []
    for b in bugs if bugs is not None else catalogue():
        if progress:
            progress(f"{b.id}: {b.broken} / {b.fixed}, {b.property_name}")
        out.append(check_pair(b, symbolic=symbolic, timeout=timeout))
    return out


# ---- the report ----------------------------------------------------------------------------------
def _broken_cell(p: PairResult) -> str:
    r = p.broken
    if r.run is not None:
        return f"{r.verdict.value} ({len(r.run)} steps)"
    if r.verdict is Verdict.NOT_WITNESSED:
        how = "pdr, unbounded" if r.engine == "pdr" else "explicit scope"
        return f"{r.verdict.value} ({how})"
    return str(r.verdict.value)


def _fixed_cell(p: PairResult) -> str:
    r = p.fixed
    if r.verdict is Verdict.PROVED:
        return f"{r.verdict.value} (pdr)"
    if r.verdict is Verdict.WITNESSED and r.run is not None:
        return f"{r.verdict.value} ({len(r.run)} steps)"
    if r.verdict is Verdict.EXHAUSTED:
        return f"{r.verdict.value} (explicit scope)"
    return str(r.verdict.value)


def _commit(b: Bug) -> str:
    ids = [c.strip() for c in b.commit.split(",")]
    return ids[0] + (f" +{len(ids) - 1}" if len(ids) > 1 else "")


def rows(results: Sequence[PairResult]) -> list[tuple[str, ...]]:
    head = ("bug", "fix commit", "property", "broken", "fixed", "time")
    body = [(p.bug.id, _commit(p.bug), p.bug.property_name, _broken_cell(p), _fixed_cell(p),
             f"{p.seconds:.1f} s") for p in results]
    return [head, *body]


def table(results: Sequence[PairResult], *, markdown: bool = False) -> str:
    rs = rows(results)
    if markdown:
        lines = ["| " + " | ".join(r) + " |" for r in rs]
        lines.insert(1, "|" + "|".join("---" for _ in rs[0]) + "|")
        return "\n".join(lines) + "\n"
    w = [max(len(r[i]) for r in rs) for i in range(len(rs[0]))]
    return "".join("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() + "\n"
                   for r in rs)


def summary(results: Sequence[PairResult]) -> str:
    """`corpus: 7/7 bugs caught, 7/7 fixes proved`; fixes only explicit-checked "hold"."""
    n = len(results)
    caught = sum(p.caught for p in results)
    holds = sum(p.fix_holds for p in results)
    proved = sum(p.fix_proved for p in results)
    if proved == n:
        fixes = f"{proved}/{n} fixes proved"
    elif proved:
        fixes = (f"{holds}/{n} fixes hold ({proved} proved, {holds - proved} within the "
                 "explicit scope only)")
    else:
        fixes = f"{holds}/{n} fixes hold (within the explicit scope only)"
    return f"corpus: {caught}/{n} bugs caught, {fixes}"


def exit_status(results: Sequence[PairResult]) -> int:
    ok = all(p.caught and p.fix_holds for p in results)
    return EXIT_OK if ok else EXIT_UNEXPECTED


def verdict_changes(a: Design, b: Design, props: Sequence[Property]
                    ) -> dict[str, tuple[bool, bool]]:
    """The properties whose explicit verdict differs between designs `a` and `b` (same scope):
    name -> (holds on a, holds on b). For B15: only the two F_SEAL_EXEC properties."""
    scope = a.scope()
    ra = Explorer(a, scope, props).run()
    rb = Explorer(b, b.scope(scope), props).run()
    return {p.name: (ra.props[p.name].holds, rb.props[p.name].holds) for p in props
            if ra.props[p.name].holds != rb.props[p.name].holds}


# ---- traces and reproducers --------------------------------------------------------------------
def replay_run(design: Design, run: ARun) -> ARun:
    """The same action instances from the same initial state, on another design."""
    ex = interpreter_for(design, design.scope())
    by_name = ex.by_name
    out = ARun(dict(run.init))
    st = dict(run.init)
    for s in run.steps:
        step = ex.apply(by_name[s.action], st, s.params)
        out.steps.append(step)
        st = dict(step.after)
    return out


def pair_traces(p: PairResult) -> tuple[Trace, Trace]:
    """(`<id>-broken` trace, `<id>-fixed` trace): the same calls, each design's outcomes; the
    steps where the outcomes differ say what the other design does."""
    b = p.bug
    run = p.run
    if run is None:
        raise ValueError(f"{b.id}: no run tells {b.broken} and {b.fixed} apart")
    dbr, dfx = designs.get(b.broken), designs.get(b.fixed)
    rbr, rfx = (run, replay_run(dfx, run)) if not b.sometimes else (replay_run(dbr, run), run)
    expect_br = "conforms" if b.sometimes else f"violates {b.property_name}"
    expect_fx = f"witnesses {b.property_name}" if b.sometimes else "conforms"
    fix = "no fix yet" if b.commit == "unfixed" else f"fixed by {b.commit}"
    # a pair whose runs return the same values differs in effects only (B2, B5): no return
    # value tells a kernel with the bug from one without
    same = [a.out for a in rbr.steps] == [a.out for a in rfx.steps]
    tbr = run_to_trace(dbr, rbr, expect=expect_br,
                       title=f"{b.id}-broken: {b.title} ({fix}); reproduces the bug"
                             + (" (in its effects: the return values are the fix's)"
                                if same else ""))
    tfx = run_to_trace(dfx, rfx, expect=expect_fx,
                       title=f"{b.id}-fixed: the same calls as the fix has them; "
                             + ("the same return values as with the bug (the pair differs in "
                                "effects only)" if same else "a kernel with the bug fails here"))
    lines_br, lines_fx = [], []
    for sb, sf, ab, af in zip(tbr.steps, tfx.steps, rbr.steps, rfx.steps, strict=True):
        if sb.outcome != sf.outcome or ab.eff != af.eff:
            sb = replace(sb, comment=f"{b.fixed}: {_outcome(dfx, af)}")
            sf = replace(sf, comment=f"{b.broken}: {_outcome(dbr, ab)}")
        lines_br.append(sb)
        lines_fx.append(sf)
    about = (f"bug {b.id}, {b.broken} vs {b.fixed}, property {b.property_name}; same calls as "
             f"{b.id}-{{broken,fixed}}.trace (written by `shmemcheck corpus --out`)")
    tbr = replace(tbr, steps=lines_br, comments=(*tbr.comments, about))
    tfx = replace(tfx, steps=lines_fx, comments=(*tfx.comments, about))
    return tbr, tfx


def _outcome(design: Design, step: AStep) -> str:
    """`EBUSY (wait_for_pins)`, or `0 (ok; effects CHG_PEER)` when only the effects differ."""
    text = str(step.out) if step.out >= 0 else outcome_text(step.out)
    effects = [n for i, n in enumerate(design.effects) if step.eff >> i & 1]
    return f"{text} ({step.rule}; effects {'|'.join(effects) or 'none'})"


@dataclass
class Artifact:
    path: str
    note: str = ""  # why it was not written (no exporter for a call), if it was not


def write_artifacts(results: Sequence[PairResult], outdir: str | Path) -> list[Artifact]:
    """`<id>-broken.trace`, `<id>-fixed.trace` and their C reproducers, for every pair."""
    from checker.atomic import write_text
    from checker.replay import replay_for_export
    from traces.export import EXPORTERS, ExportError
    from traces.textfmt import format_trace

    ext, export_c = EXPORTERS["c"]
    out: list[Artifact] = []
    for p in results:
        tb, tf = pair_traces(p)
        for side, t in (("broken", tb), ("fixed", tf)):
            base = Path(outdir) / f"{p.bug.id}-{side}"
            t.path = f"traces/scenarios/corpus/{base.name}.trace"
            write_text(f"{base}.trace", format_trace(t))
            out.append(Artifact(f"{base}.trace"))
            try:
                d = designs.get(t.design)
                text = export_c(d, replay_for_export(d, t))
            except ExportError as e:
                out.append(Artifact(f"{base}.{ext}", f"no C export: {e}"))
                continue
            write_text(f"{base}.{ext}", text)
            out.append(Artifact(f"{base}.{ext}"))
    return out


__all__ = ["CORPUS_DIR", "Bug", "PairResult", "catalogue", "check_pair", "exit_status",
           "pair_traces", "replay_run", "run_corpus", "summary", "table", "verdict_changes",
           "write_artifacts"]
