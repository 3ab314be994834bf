"""The symbolic engines behind one entry point: check_symbolic(design, prop, engine, ...).

Engines: "bmc" (shortest run up to a depth), "kind" (k-induction), "pdr" (z3 Spacer, with an
inductive invariant re-checked independently). Naturals bounded by a scope are unbounded in
z3, so PROVED holds for every scope. Every run an engine reports (counterexample or witness)
is decoded from the z3 model and replayed step by step on the explicit engine's interpreter
(checker/explicit.py, the compiled numpy code of the same actions); any disagreement is an
internal error (ReplayMismatch), as is a certificate failing its re-check (CertificateError).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import z3

from checker.atomic import write_text
from checker.bmc import SearchResult, bmc
from checker.certificate import CertificateError, conjuncts_of, drop_implied, make, minimize
from checker.encode_z3 import Encoder, Goal, goal_for, is_action_kind, is_sometimes
from checker.explicit import Explorer
from checker.houdini import Lemmas, lemmas_for, support
from checker.interpreter import Interpreter, interpreter_for
from checker.kind import kinduction
from checker.kind import recheck as kind_recheck
from checker.pdr import pdr
from checker.verdict import Result, Verdict
from checker.z3_terms import Z
from model.lang.design import Design, scope_text
from model.lang.designcache import PerDesign
from model.lang.expr import E
from model.lang.schema import StateView, render_state
from properties.catalogue import Property, for_design
from traces.run import ARun

ENGINES = ("bmc", "kind", "pdr")
PDR_RUN_DEPTH = 200  # BMC bound when re-finding a run Spacer reported reachable
FALLBACK_STATES = 2_000_000  # the explicit search for a run bmc could not re-find stops here
REFIND_PLAIN = 10.0  # seconds a query for the re-find's first try, without pre-image lemmas
#: seconds a query for its second try, with them: the slowest second try that succeeded took
#: 3.8 s; past this the explicit search gives the run (`_explicit_run`), as it did after 60 s
REFIND_LEMMAS = 20.0


class ReplayMismatch(RuntimeError):
    """An internal error: a symbolic run disagrees with the explicit interpreter."""


# ---- caches ----------------------------------------------------------------------------------
_ENC: PerDesign[Encoder] = PerDesign()


def encoder(design: Design) -> Encoder:
    """The (cached) z3 encoding of a design."""
    return _ENC.setdefault(design, lambda: Encoder(design))


# ---- replay on the explicit interpreter -------------------------------------------------------
def _interpreter(design: Design, prop: Property) -> Interpreter:
    """The model interpreter (compiled actions and predicates) of `design` knowing `prop`: the
    shared one compiled with every catalogue property that applies to the design."""
    cat = for_design(design)
    props = cat if any(p is prop for p in cat) else [
        *(p for p in cat if p.name != prop.name), prop]
    return interpreter_for(design, design.scope(), props)


class Replayer:
    """Replays decoded runs with the model interpreter (checker/interpreter.py), and evaluates
    the property with its compiled predicate."""

    def __init__(self, design: Design, prop: Property) -> None:
        self.design = design
        self.prop = prop
        self.interp = _interpreter(design, prop)
        self.by_name = self.interp.by_name

    def replay(self, run: ARun) -> ARun:
        """The interpreter's run for the same initial state and action instances; raises
        ReplayMismatch unless every outcome, effect, deciding rule and after-state agrees
        and the run ends by meeting the property's goal."""
        d = self.design
        ch = d.init.choices(d.schema)
        bad = {k: v for k, v in run.init.items() if v not in ch[k]}
        if bad or set(run.init) != set(ch):
            raise ReplayMismatch(f"{self.prop.name}: decoded initial state is not initial: {bad}")
        st = dict(run.init)
        out = ARun(dict(run.init), violation=run.violation)
        for i, zs in enumerate(run.steps):
            ca = self.by_name[zs.action]
            try:
                step = self.interp.apply(ca, st, zs.params)
            except ValueError as e:
                raise ReplayMismatch(f"{self.prop.name}: step {i + 1} {zs.action}{zs.params}: "
                                     f"z3 took it, the interpreter says {e}") from None
            diffs = []
            if step.out != zs.out:
                diffs.append(f"outcome {step.out} vs z3 {zs.out}")
            if step.eff != zs.eff:
                diffs.append(f"effects {step.eff:#x} vs z3 {zs.eff:#x}")
            if step.rule != zs.rule:
                diffs.append(f"rule {step.rule} vs z3 {zs.rule}")
            for k in zs.after:  # the encoded fields (Encoder.fields)
                if step.after[k] != zs.after[k]:
                    diffs.append(f"{k}' = {step.after[k]} vs z3 {zs.after[k]}")
            if diffs:
                raise ReplayMismatch(
                    f"{self.prop.name}: step {i + 1} {zs.action}{zs.params} from "
                    f"{render_state(d.schema, st)}: interpreter and z3 disagree: "
                    + "; ".join(diffs))
            out.steps.append(step)
            st = dict(step.after)
        if not self.meets_goal(out):
            raise ReplayMismatch(f"{self.prop.name}: the replayed run does not "
                                 f"{'witness' if is_sometimes(self.prop) else 'violate'} it")
        first = self.interp.first_init(out)  # the defaults where z3 chose another start
        return first if self.meets_goal(first) else out

    def meets_goal(self, run: ARun) -> bool:
        p = self.prop
        want = is_sometimes(p)
        if is_action_kind(p):
            if not run.steps:
                return False
            last = run.steps[-1]
            before = run.states()[-2]
            en, val = self.interp.transition_holds(p.name, self.by_name[last.action], before,
                                                   last.params)
            return en and val == want
        return self.interp.state_holds(p.name, run.states()[-1]) == want


# ---- the entry point --------------------------------------------------------------------------
def check_symbolic(design: Design, prop: Property, engine: str, *, depth: int = 20,
                   timeout: float | None = 60.0, explicit_replay: bool = True,
                   invariant: Callable[[StateView], E] | None = None,
                   lemmas: bool = False,
                   certificate: str | Path | None = None) -> Result:
    """Check one property of one design with a symbolic engine.

    depth: BMC bound / largest k for k-induction. timeout: seconds per solver query (a
    timeout or `unknown` gives UNKNOWN, never PROVED). explicit_replay: replay every run on
    the explicit interpreter (on by default; a disagreement raises ReplayMismatch).
    invariant: a state predicate strengthening k-induction (proved along with the property).
    lemmas: also strengthen k-induction with the design's tool-found lemmas (checker/houdini.py).
    certificate: write the SMT-LIB2 certificate of a PROVED (or proved NOT WITNESSED)
    verdict to this file."""
    if engine not in ENGINES:
        raise ValueError(f"unknown symbolic engine {engine!r} (one of {', '.join(ENGINES)})")
    t0 = time.perf_counter()
    enc = encoder(design)
    goal = goal_for(enc, prop)
    ctx = _Ctx(design, prop, engine, enc, goal, timeout, explicit_replay, t0)
    if engine == "bmc":
        res = ctx.bmc(depth)
    elif engine == "kind":
        user = [enc.state_pred(invariant(design.schema.state_vars("s")))] if invariant else []
        found = None
        if lemmas:
            try:
                found = lemmas_for(design, enc, timeout)
            except TimeoutError as e:
                ctx.note = f"no tool-found lemmas: {e}"
        res = ctx.kind(depth, user, found)
    else:
        res = ctx.pdr()
    res.seconds = time.perf_counter() - t0
    if certificate is not None and res.certificate_smt2 is not None:
        write_text(str(certificate), res.certificate_smt2)
    return res


class _Ctx:
    def __init__(self, design: Design, prop: Property, engine: str, enc: Encoder, goal: Goal,
                 timeout: float | None, replay: bool, t0: float) -> None:
        self.design, self.prop, self.engine = design, prop, engine
        self.enc, self.goal, self.timeout, self.replay, self.t0 = enc, goal, timeout, replay, t0
        self.sometimes = is_sometimes(prop)
        self.note = ""

    def result(self, verdict: Verdict, method: str, **kw: Any) -> Result:
        if self.note:
            kw["note"] = "\n".join(x for x in (kw.get("note", ""), self.note) if x)
        return Result(self.design.name, self.prop.name, self.engine, verdict,
                      self.prop.expected(self.design.name), method, **kw)

    def violation(self) -> str | None:
        return None if self.sometimes else self.prop.name

    def found(self, run: ARun, method: str, stats: Mapping[str, Any]) -> Result:
        if self.replay:
            run = Replayer(self.design, self.prop).replay(run)
            method += ", replayed on the explicit interpreter"
        verdict = Verdict.WITNESSED if self.sometimes else Verdict.VIOLATED
        return self.result(verdict, method, run=run, stats=dict(stats))

    def unknown(self, why: str, stats: Mapping[str, Any] | None = None) -> Result:
        return self.result(Verdict.UNKNOWN, f"{self.engine}: {why}", stats=dict(stats or {}))

    # -- engines ------------------------------------------------------------------------------
    def bmc(self, depth: int) -> Result:
        r = bmc(self.enc, self.goal, depth, self.timeout, violation=self.violation())
        stats = {"queries": r.queries, "depth": r.depth}
        if r.status == "found":
            assert r.run is not None
            return self.found(r.run, f"bmc, shortest run ({len(r.run)} steps)", stats)
        if r.status == "unknown":
            return self.unknown(f"solver gave up after depth {r.depth} ({r.reason})", stats)
        if self.sometimes:
            return self.result(Verdict.NOT_WITNESSED, f"bmc: no witness within depth {depth}",
                               stats=stats)
        return self.result(Verdict.BOUNDED, f"bmc to depth {depth}", stats=stats)

    def kind(self, max_k: int, user: list[Z], found: Lemmas | None) -> Result:
        parts = user + (found.clauses if found else [])
        strengthen = z3.And(*parts) if parts else None
        r = kinduction(self.enc, self.goal, max_k, self.timeout, strengthen=strengthen,
                       violation=self.violation())
        stats: dict[str, Any] = {"k": r.k}
        if r.status == "found":
            assert r.run is not None
            return self.found(r.run, f"k-induction base case, run of {len(r.run)} steps", stats)
        if r.status == "unknown":
            return self.unknown(f"at k={r.k}: {r.reason}", stats)
        if r.status == "cti":
            assert r.run is not None
            extra = (f"; strengthened by {found.summary()}" if found else "")
            return self.result(Verdict.CTI, f"k-induction: step fails at k={r.k} "
                               f"(inconclusive{extra})", note=self.cti_text(r.run), stats=stats)
        extra = " with the given strengthening invariant" if user else ""
        if found:
            extra += (" and" if user else " strengthened by") + f" {found.summary()}"
        cert = None
        if r.k <= 1 and not r.on_transitions:
            # ¬bad is inductive (k = 1) or valid (k = 0): it is the certificate
            bad = self.goal.pre if self.goal.pre is not None else self.goal.state
            conj = conjuncts_of(z3.Not(bad))
            for u in user:
                conj += conjuncts_of(u)
            used: list[Z] = []
            if found:
                sup = support(self.enc, conj, found.clauses, self.timeout)
                used = found.clauses if sup is None else sup
                conj += used
            conj = drop_implied(self.enc, conj, self.timeout)
            if found:
                n = sum(1 for u in used if any(u.eq(c) for c in conj))
                extra += f", {n} of them in the certificate"
                stats["lemmas"] = n
            cert = make(self.enc, self.goal, conj, self.title(), self.timeout)
            if not cert.valid:
                if "sat" not in cert.checks.values():
                    return self.unknown(f"certificate re-check inconclusive: {cert.checks}",
                                        stats)
                raise CertificateError(f"{self.prop.name}: k-induction invariant failed its "
                                       f"re-check: {cert.checks}")
            it = "its negation" if self.sometimes else "the property"
            if self.goal.per_action is None:
                how = (f"{it} holds in every state" if r.k == 0
                       else f"{it} is inductive (certificate: {it} itself)")
            else:
                bad = "a transition meeting it" if self.sometimes else "a violating transition"
                how = (f"no state has {bad}" if r.k == 0 else
                       f"the states without {bad} are closed under transitions "
                       "(certificate: that set)")
            method = (f"k-induction, k={r.k}{extra}: {how}; certificate re-checked "
                      "(3 unsat queries)")
        else:
            again = kind_recheck(self.enc, self.goal, r.k, self.timeout, strengthen=strengthen,
                                 use_pre=not r.on_transitions)
            if again == "unknown":
                return self.unknown(f"re-check of k={r.k} inconclusive", stats)
            if again != "unsat":
                raise CertificateError(f"{self.prop.name}: k-induction at k={r.k} failed its "
                                       "re-check in a fresh solver")
            why = ("on transitions" if r.on_transitions
                   else "k > 1: no 1-inductive certificate")
            method = (f"k-induction, k={r.k}{extra} ({why}; base and step re-run in a fresh "
                      "solver)")
        return self.proved(method, cert, stats)

    def pdr(self) -> Result:
        r = pdr(self.enc, self.goal, self.timeout)
        stats: dict[str, Any] = {"pdr_seconds": round(r.seconds, 3)}
        if r.status == "unknown":
            return self.unknown(f"Spacer: {r.reason or 'unknown'}", stats)
        if r.status == "reachable":
            # the explicit search's shortest run within the default scope (it stops at its
            # layer), then bmc over every parameter value for a shorter one: its unsat
            # queries are the cheap ones, the last, satisfiable query was most of the time
            # (write-seal-content-frozen of v5-inaccessible: 13.7 of 29.6 s)
            run, scope = self._explicit_run()
            search = self._refind(stats, PDR_RUN_DEPTH if run is None else len(run) - 1)
            if search.status == "found":
                assert search.run is not None
                return self.found(search.run, f"pdr (Spacer): reachable; shortest run "
                                  f"({len(search.run)} steps) found by bmc", stats)
            if run is not None and search.status == "none":
                return self.found(run, f"pdr (Spacer): reachable; shortest run ({len(run)} "
                                  f"steps) found by the explicit search within scope {scope}, "
                                  "none shorter by bmc", stats)
            gave_up = (f"bmc found no run within {search.depth} steps "
                       f"({search.reason or 'bound'})")
            if search.status == "unknown" and run is not None:
                return self.found(run, f"pdr (Spacer): reachable; {gave_up}, so the run "
                                  f"is the explicit search's shortest within scope "
                                  f"{scope} ({len(run)} steps)", stats)
            return self.unknown(f"Spacer says reachable but {gave_up}", stats)
        assert r.invariant is not None
        conj = minimize(self.enc, self.goal, conjuncts_of(r.invariant), self.timeout)
        cert = make(self.enc, self.goal, conj, self.title(), self.timeout)
        stats["invariant_conjuncts"] = len(conj)
        if not cert.valid:
            if "sat" not in cert.checks.values():
                return self.unknown(f"certificate re-check inconclusive: {cert.checks}", stats)
            raise CertificateError(f"{self.prop.name}: Spacer's invariant failed the "
                                   f"independent re-check: {cert.checks}")
        return self.proved("pdr (Spacer), inductive invariant re-checked by a fresh solver "
                           "(3 unsat queries)", cert, stats)

    def _refind(self, stats: dict[str, Any], depth: int) -> SearchResult:
        """The shortest run of at most `depth` steps to a goal Spacer called reachable: bmc
        first without the pre-image lemmas for at most REFIND_PLAIN s a query, then with them
        for at most REFIND_LEMMAS s.
        Each is heavy-tailed where the other is not: v5-inaccessible
        inaccessible-size-fixed-once-set takes 0.5 s without and ~280 s with them;
        sometimes-inaccessible-consumed-by-kvm 3.8 s with and past 60 s a query without (NOTES
        "Spacer restarts too")."""
        plain = self.timeout if self.timeout is None else min(self.timeout, REFIND_PLAIN)
        s = bmc(self.enc, self.goal, depth, plain, violation=self.violation(), use_pre=False)
        queries = s.queries
        if s.status == "unknown":
            capped = self.timeout if self.timeout is None else min(self.timeout, REFIND_LEMMAS)
            s = bmc(self.enc, self.goal, depth, capped, violation=self.violation())
            queries += s.queries
        stats["bmc_queries"] = queries
        return s

    def _explicit_run(self) -> tuple[ARun | None, str]:
        """The shortest run to the goal within the design's default scope, by the explicit
        search (stopped at the layer that holds it), for a goal Spacer called reachable;
        None when the scope holds none. It is replayed like any run (`found`), so the
        verdict rests on Spacer's answer and a concrete run, and the method says where the
        run came from: shortest over every parameter value where bmc finds none shorter,
        within the scope only where bmc times out (z3's heavy tail on one deep unrolled
        query: v5-flags write-seal-content-frozen, NOTES "Performance")."""
        scope = self.design.scope()
        r = Explorer(self.design, scope, [self.prop], elide=True,
                     max_states=FALLBACK_STATES, until_found=True).run()
        o = r.props[self.prop.name]
        # a run found is real even where the search stopped at its bound later on
        found = o.holds if self.sometimes else not o.holds
        return (o.run if found else None), scope_text(scope)

    # -- helpers ------------------------------------------------------------------------------
    def proved(self, method: str, cert: Any, stats: dict[str, Any]) -> Result:
        method += "; unbounded: holds for every scope"
        verdict = Verdict.NOT_WITNESSED if self.sometimes else Verdict.PROVED
        if self.sometimes:
            method = "proved unreachable: " + method
        return self.result(verdict, method, certificate=cert.text if cert else None,
                           certificate_smt2=cert.smt2 if cert else None, stats=stats)

    def title(self) -> str:
        what = ("no reachable state satisfies" if self.sometimes else "invariant for")
        return (f"shmemcheck certificate: {what} property {self.prop.name} "
                f"({self.prop.kind}) of design {self.design.name}")

    def cti_text(self, run: ARun) -> str:
        sch = self.design.schema
        # the encoded fields: a replayed one is not in the encoding (Encoder.fields)
        shown = [f.name for f in sch.fields if not f.replayed]
        lines = ["counterexample to induction (states NOT known to be reachable; not a bug):",
                 f"  s0: {render_state(sch, run.init, only=shown)}"]
        for i, st in enumerate(run.steps, 1):
            lines.append(f"  --{st.action}{st.params} -> {st.rule}-->")
            lines.append(f"  s{i}: {render_state(sch, st.after, only=shown)}")
        lines.append("  the last state "
                     + ("has a transition violating the property"
                        if self.goal.on_transition else "violates the property")
                     + " though the earlier ones satisfy it")
        return "\n".join(lines)
