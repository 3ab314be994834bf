"""Mutation scoring: how much of a design's behaviour do the properties (and the scenarios) pin?

From each `fail`/`signal` rule of a design, by its label, three mutant designs are derived
through the language's own deltas (model/lang/action.py Action.drop_rule / edit_rule):

- `drop`: the rule is removed (the check is missing: a later rule decides);
- `negate`: its condition is negated (the check fires exactly where it should not);
- `fire-too-often`: its condition is made true (the call always fails or faults there: a
  refusal the kernel must not make).

A mutant is named `DESIGN/ACTION/RULE/OPERATOR`. One that is not well formed (dropping or
negating a rule that is the action's last, unconditional one) is *stillborn* and left out; one
whose operator changes nothing (making an always-true condition true) is not derived.

Each mutant is compared with its base by the design diff (checker/diff.py OneActionDiff: the
product search over pairs of states, comparing outcomes, effects and successor states, done
once for all the mutants of a base). A mutant with no divergence within the scope is
*equivalent within the scope* and is not counted. A non-equivalent mutant is *killed by the
properties* when some property of the catalogue that applies to the base gets another verdict
on the mutant from the explicit engine at the same scope, and *killed by the scenarios* when
some trace of the scenario library that replays on the base replays with another outcome
(or not at all) on the mutant. The score is killed / non-equivalent. A survivor is reported
with its shortest distinguishing trace: the shortest call sequence a new property or scenario
would have to speak of.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from checker.diff import DiffResult, Divergence, OneActionDiff
from checker.verdict import Result
from model.lang.action import Action, Rule
from model.lang.design import Design, scope_text
from model.lang.errors import DesignError
from model.lang.expr import Not, true
from properties.catalogue import Property, for_design
from traces.trace import Trace

OPERATORS = ("drop", "negate", "fire-too-often")


@dataclass(frozen=True)
class MutantSpec:
    """Where a mutant comes from: its base design, action, rule label and operator."""

    base: str
    action: str
    rule: str
    kind: str  # fail | signal
    operator: str

    @property
    def name(self) -> str:
        return f"{self.base}/{self.action}/{self.rule}/{self.operator}"


def mutation_targets(design: Design) -> list[tuple[Action, Rule]]:
    """Each action's `fail` and `signal` rules, in the action's order."""
    out = []
    for a in design.actions:
        for r in a.rules(design.schema.state_vars("s"), a.param_vars()):
            if r.kind in ("fail", "signal"):
                out.append((a, r))
    return out


def _mutated(action: Action, rule: Rule, operator: str) -> Action | None:
    """The action with `operator` applied to `rule`; None where it changes nothing."""
    const_true = rule.cond.is_const and bool(rule.cond.val)
    if operator == "drop":
        return action.drop_rule(rule.label)
    if operator == "negate":
        if const_true:  # never firing is what `drop` already gives
            return None
        return action.edit_rule(rule.label, lambda r: replace(r, cond=Not(r.cond)))
    if operator == "fire-too-often":
        if const_true:
            return None
        return action.edit_rule(rule.label, lambda r: replace(r, cond=true))
    raise ValueError(f"unknown mutation operator {operator!r} (operators: "
                     f"{', '.join(OPERATORS)})")


@dataclass
class Mutant:
    spec: MutantSpec
    design: Design | None  # None: stillborn (not well formed)
    stillborn: str | None = None  # why it is not well formed


def derive_mutants(design: Design, operators: Sequence[str] = OPERATORS,
                   actions: Sequence[str] = ()) -> list[Mutant]:
    """Every mutant of `design` (only of `actions`, if given), each checked to be well
    formed (checker/wellformed.py); stillborn ones are returned with the reason."""
    from checker.wellformed import validate

    out = []
    for a, r in mutation_targets(design):
        if actions and a.name not in actions:
            continue
        for op in operators:
            new = _mutated(a, r, op)
            if new is None:
                continue
            spec = MutantSpec(design.name, a.name, r.label, r.kind, op)
            d = replace(design, name=spec.name, doc=f"mutant of {design.name}: {op} "
                        f"{a.name}.{r.label}",
                        actions=tuple(new if x.name == a.name else x for x in design.actions),
                        base=design.name, expect={}, kernel=None)  # claims no kernel
            try:
                validate(d)
            except DesignError as e:
                out.append(Mutant(spec, None, str(e).splitlines()[0]))
                continue
            out.append(Mutant(spec, d))
    return out


# -- property families ------------------------------------------------------------------------

#: A property's family, from its name (checked in order; the first pattern that matches).
#: Kept here, not in the catalogue: it only groups the scores.
FAMILY_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"^sometimes-|^sometimes:|:sometimes-", "witness"),
    (r"integrity|fmode|rdonly|read-only-fd|readonly-fd", "integrity"),
    (r"eof|bounds|beyond|past-", "bounds"),
    (r"permit|allow|succeed|liveness|refus", "permission"),
    (r"noexec|policy|sysctl|exec", "exec/policy"),
    (r"inaccessible|seed-", "inaccessible"),
    (r"gmem|slot|binding", "guest_memfd"),
    (r"seal", "seals"),
    (r"lock|swap|reserve|shm", "inode flags"),
    (r"cow|private|mapping|mprotect|madvise", "mappings"),
)


def family(p: Property) -> str:
    """The family a property's score is counted under (FAMILY_PATTERNS; a `sometimes`
    property is a witness whatever it names)."""
    fam = getattr(p, "group", None)  # a catalogue that names families itself wins
    if isinstance(fam, str) and fam:
        return fam
    if p.kind.startswith("sometimes"):
        return "witness"
    for pat, name in FAMILY_PATTERNS:
        if re.search(pat, p.name):
            return name
    return "other"


# -- scenarios --------------------------------------------------------------------------------

def scenario_dir() -> str:
    """The scenario library shipped with the package (traces/scenarios)."""
    import traces

    return os.path.join(os.path.dirname(os.path.abspath(traces.__file__)), "scenarios")


def load_scenarios(root: str) -> list[Trace]:
    """Every *.trace under `root` (sorted), parsed; a file that does not parse is skipped
    (`shmemcheck replay` reports it)."""
    from traces.textfmt import TraceSyntaxError, load_trace

    out = []
    for d, _, names in sorted(os.walk(root)):
        for n in sorted(names):
            if n.endswith(".trace"):
                p = os.path.join(d, n)
                try:
                    t = load_trace(p)
                except (OSError, TraceSyntaxError):
                    continue
                t.path = p
                out.append(t)
    return out


Outcomes = list[str]


def scenario_outcomes(design: Design, trace: Trace) -> Outcomes | None:
    """The model's outcome of each step of `trace` on `design` (the same replay as
    `shmemcheck replay`, not stopping where the trace's own outcome differs); where a step
    cannot be replayed (a handle the run never created, a call outside the model), the last
    item says so. None when the first step already cannot."""
    from checker.replay import TraceInputError, model_outcomes
    from traces.concretize import outcome_str

    try:
        rep = model_outcomes(design, trace, stop_at_divergence=False)
    except TraceInputError as e:
        return None if "step" not in str(e) else [f"not replayable: {e}"]
    return [outcome_str(o) for o in rep.outcomes]


# -- the kernel's own outcomes (--conform) ----------------------------------------------------

@dataclass
class KernelEvidence:
    """What a bounded `conform` of the base ran on the live kernel: each trace (checker/conform
    Case) with the kernel's run, kept only where the base predicted every outcome and
    observation (`agree`); the summary line of that conform run."""

    runs: list[tuple[Any, Any]]  # (conform.Case, traces.kernel.KernelRun)
    summary: str
    disagree: int = 0  # traces where the base itself diverged (left out)


def kernel_evidence(design: Design, opts: Any) -> KernelEvidence:
    """Run `conform` on the base with `opts` (checker/conform.ConformOptions: the CLI gives
    conform's own default bounds) and keep each trace with the kernel's outcomes and
    observations."""
    from checker.conform import compare, run_conform

    kept: list[tuple[Any, Any]] = []
    bad = [0]

    def record(case: Any, run: Any) -> None:
        if compare(case, run) is None:
            kept.append((case, run))
        else:
            bad[0] += 1

    rep = run_conform(design, replace(opts, record=record))
    return KernelEvidence(kept, rep.summary(), bad[0])


def conform_kills(mutant: Design, evidence: KernelEvidence, action: str | None = None,
                  limit: int = 3) -> list[str]:
    """The kernel traces (up to `limit`) on which `mutant` predicts another outcome or
    observation than the kernel gave (checker/conform.compare, the comparison `conform`
    makes), or can no longer take a step the kernel took: 'transition 17: step 3
    (pwrite): outcome: model 0, kernel -1 EBADF'. With `action` (the one action in which
    the mutant differs from its base), only the traces that take it are asked: until its
    first step the mutant computes what the base computed, which the kernel confirmed."""
    from checker.conform import Model, compare

    model = Model(mutant, {k: 1 for k in mutant.default_scope})
    out: list[str] = []
    for case, run in evidence.runs:
        if action is not None and all(a.action != action for a in case.asteps):
            continue
        asteps = model.reapply(case.init, case.asteps)
        if asteps is None:
            out.append(f"{case.label}: a step the kernel took is not enabled on the mutant")
        else:
            mine = model.case(case.label, case.init, asteps)
            mm = compare(mine, run)
            if mm is None:
                continue
            out.append(f"{case.label}: {mm.text(mine)}")
        if len(out) >= limit:
            break
    return out


def scenario_kills(mutant: Design, live: Sequence[tuple[Trace, Outcomes]]
                   ) -> tuple[list[str], list[str]]:
    """The scenarios (paths) whose outcomes on `mutant` differ from the base's (`live`: each
    scenario with the base's outcomes), and those the mutant cannot evaluate: its rules
    computed a value the interpreter cannot hold (a negated range check lets a huge offset
    through), which judges nothing and kills nothing."""
    scen: list[str] = []
    unjudged: list[str] = []
    for t, want in live:
        try:
            got = scenario_outcomes(mutant, t)
        except (OverflowError, ValueError, ArithmeticError) as e:
            unjudged.append(f"{os.path.basename(t.path or '?')} ({type(e).__name__})")
            continue
        if got != want:
            scen.append(os.path.relpath(t.path or "?"))
    return scen, unjudged


# -- the measurement ---------------------------------------------------------------------------

@dataclass
class MutantResult:
    spec: MutantSpec
    status: str  # stillborn | equivalent | killed | survived | inconclusive
    reason: str = ""
    diff: DiffResult | None = None
    by_properties: list[str] = field(default_factory=list)  # properties whose verdict changed
    by_scenarios: list[str] = field(default_factory=list)  # scenarios whose outcomes changed
    #: kernel traces the mutant mispredicts (--conform; asked only of mutants that properties
    #: and scenarios leave alive)
    by_conform: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def shortest(self) -> Divergence | None:
        return self.diff.shortest if self.diff is not None else None


@dataclass
class DesignScore:
    design: Design
    scope: dict[str, int]
    mutants: list[MutantResult]
    properties: list[Property]
    scenarios: int  # scenarios of the library that replay on the base
    states: int
    seconds: float
    complete: bool = True
    stopped: str | None = None
    with_scenarios: bool = True
    evidence: KernelEvidence | None = None  # --conform: the kernel runs mutants are held to

    def count(self, status: str) -> int:
        return sum(1 for m in self.mutants if m.status == status)

    @property
    def nonequivalent(self) -> list[MutantResult]:
        return [m for m in self.mutants if m.status in ("killed", "survived", "inconclusive")]

    @property
    def killed_by_properties(self) -> int:
        return sum(1 for m in self.nonequivalent if m.by_properties)

    @property
    def killed(self) -> int:
        return sum(1 for m in self.nonequivalent
                   if m.by_properties or m.by_scenarios or m.by_conform)

    @property
    def killed_with_scenarios(self) -> int:
        return sum(1 for m in self.nonequivalent if m.by_properties or m.by_scenarios)

    @property
    def killed_by_conform(self) -> int:
        """Mutants only the kernel's runs kill (properties and scenarios leave them)."""
        return sum(1 for m in self.nonequivalent if m.by_conform)

    def score(self, with_scenarios: bool) -> float:
        n = len(self.nonequivalent)
        k = self.killed if with_scenarios else self.killed_by_properties
        return k / n if n else 1.0

    def by_family(self) -> dict[str, tuple[int, list[str]]]:
        """family -> (non-equivalent mutants some property of it kills, its properties)."""
        fams: dict[str, list[str]] = {}
        for p in self.properties:
            fams.setdefault(family(p), []).append(p.name)
        out = {}
        for f, names in sorted(fams.items()):
            hit = sum(1 for m in self.nonequivalent if set(m.by_properties) & set(names))
            out[f] = (hit, names)
        return out

    def survivors_by(self) -> dict[str, int]:
        """operator -> surviving mutants."""
        out = {op: 0 for op in OPERATORS}
        for m in self.mutants:
            if m.status == "survived":
                out[m.spec.operator] += 1
        return out


def _verdicts(results: Sequence[Result]) -> dict[str, str]:
    return {r.prop: r.verdict.value for r in results}


#: a mutant's explicit search stops past this many times its base's states (at least
#: MIN_STATES): a dropped check can open a space far larger than the base's (guest_memfd's
#: bind without `offset_negative` binds at offsets the base never reaches); what such a
#: search did not decide is UNKNOWN, never a pass, and a violation it found stands
STATES_FACTOR = 4
MIN_STATES = 200_000


def mutant_verdicts(design: Design, props: Sequence[Property], scope: dict[str, int],
                    max_states: int, max_memory: int | None = None
                    ) -> tuple[dict[str, str], str | None]:
    """Each property's verdict on `design` by one explicit search (as `check` runs it),
    bounded by `max_states`; and why the search stopped early, if it did."""
    from checker.explicit import Explorer

    r = Explorer(design, scope, props, max_memory=max_memory, max_states=max_states,
                 elide=True).run()
    out = {}
    for name, o in r.props.items():
        if o.prop.kind in ("always", "action"):
            v = "EXHAUSTED" if o.holds else "VIOLATED"
        else:
            v = "WITNESSED" if o.holds else "NOT WITNESSED"
        if r.stopped and v in ("EXHAUSTED", "NOT WITNESSED"):
            v = "UNKNOWN"
        out[name] = v
    return out, r.stopped


def measure(design: Design, scope: dict[str, int] | None = None, *,
            operators: Sequence[str] = OPERATORS, actions: Sequence[str] = (),
            scenarios: Sequence[Trace] | None = None,
            evidence: KernelEvidence | None = None,
            max_memory: int | None = None,
            progress: Callable[[str], None] | None = None) -> DesignScore:
    """The mutation score of `design`'s catalogue at `scope` (default: the design's), and of
    the catalogue with `scenarios` (None: no scenario replay) and, for the mutants those
    leave alive, the kernel runs of `evidence` (None: no conform)."""
    from checker.check import run_explicit

    t0 = time.perf_counter()
    sc = design.scope(scope or {})
    props = for_design(design)
    if progress:
        progress(f"mutate {design.name}: exploring the base at scope {scope_text(sc)}")
    base_results, _ = run_explicit(design, props, sc, max_memory=max_memory)
    base_v = _verdicts(base_results)
    differ = OneActionDiff(design, sc, max_memory=max_memory)
    live: list[tuple[Trace, Outcomes]] = []
    for t in scenarios or ():
        got = scenario_outcomes(design, t)
        if got is not None and not any(x.startswith("not replayable") for x in got):
            live.append((t, got))
    mutants = derive_mutants(design, operators, actions)
    results: list[MutantResult] = []
    for i, m in enumerate(mutants, 1):
        t1 = time.perf_counter()
        if m.design is None:
            results.append(MutantResult(m.spec, "stillborn", m.stillborn or ""))
            continue
        dr = differ.compare(m.design, m.spec.action, first_only=True)
        scen, unjudged = scenario_kills(m.design, live)
        not_evaluable = ([f"scenarios not evaluable on the mutant: {', '.join(unjudged)}"]
                         if unjudged else [])
        if not dr.divergences and not scen:
            res = MutantResult(m.spec, "equivalent", "; ".join(
                [f"equivalent within scope {scope_text(sc)} ({dr.pairs:,} reachable states)",
                 *not_evaluable]), dr)
        elif not dr.divergences:
            # the same within the scope, told apart by a scenario beyond it (a value near
            # LLONG_MAX, say): not equivalent, and no property can see it at this scope
            res = MutantResult(m.spec, "killed", "; ".join(
                [f"equivalent within scope {scope_text(sc)}, told apart beyond it by a "
                 "scenario", *not_evaluable]), dr, [], scen)
        else:
            mv, stop = mutant_verdicts(m.design, props, sc,
                                       max(MIN_STATES, STATES_FACTOR * differ.states),
                                       max_memory)
            killers = sorted(n for n, v in mv.items() if base_v.get(n) != v
                             and "UNKNOWN" not in (v, base_v.get(n)))
            unknown = [n for n, v in mv.items() if v == "UNKNOWN"]
            kernel = ([] if killers or scen or evidence is None
                      else conform_kills(m.design, evidence, m.spec.action))
            if killers or scen or kernel:
                status = "killed"
            else:
                status = "inconclusive" if unknown else "survived"
            why = ([f"search stopped: {stop}"] if stop else []) + not_evaluable
            res = MutantResult(m.spec, status, "; ".join(why), dr, killers, scen, kernel)
        res.seconds = time.perf_counter() - t1
        results.append(res)
        if progress:
            progress(f"mutate {design.name}: {i}/{len(mutants)} {m.spec.name}: {res.status}")
    return DesignScore(design, sc, results, props, len(live), differ.states,
                       time.perf_counter() - t0, differ.complete, differ.stopped,
                       scenarios is not None, evidence)
