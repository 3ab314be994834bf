"""k-induction with simple-path constraints, optionally strengthened by a user invariant.

Positions 0..k carry states; "bad at i" is the goal at s_i: g(s_i) for state goals, and for
transition goals the goal's pre-image (a state formula, checked to over-approximate "some
transition from s_i meets the goal"; see encode_z3.preimage). With a strengthening invariant
I, bad(i) also includes ¬I(s_i), so I is proved together with the property.

    base(k):  Init(s_0) ∧ T(0..k-1) ∧ bad(k)                               (a real run)
    step(k):  dom(s_0) ∧ T(0..k-1) ∧ ¬bad(0..k-1) ∧ bad(k) ∧ distinct(s_0..s_k)

The base solver also asserts, once base(i) is refuted, that step i changes the state (bmc's
strengthening: a run reaching bad has one without stuttering steps, no longer, so base(k)
asks only for those).

step(k) unsat with base(0..k) unsat proves the goal unreachable; step unsat at k = 0 means the
goal is impossible in every state of the domain, at k = 1 that ¬bad is inductive. If step(K)
is sat, its model is a counterexample to induction (CTI): a path of states not known to be
reachable, which is inconclusive, not a bug. A step(k) the solver cannot answer in time is
passed over (base(k+1) may still find a run, step(k+1) may still close); only the last k's
unanswered step is UNKNOWN.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import z3

from checker.bmc import Unroller, set_timeout, unrolling_solver
from checker.encode_z3 import Encoder, Goal
from checker.interrupt import requested, unknown_reason
from checker.z3_terms import Z
from traces.run import ARun


@dataclass
class KindResult:
    status: str  # proved | found | cti | unknown
    k: int
    run: ARun | None = None  # found: the run from Init; cti: the CTI path
    reason: str = ""
    seconds: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)
    on_transitions: bool = False  # bad(i) is the goal transition itself (no pre-image)


class _Positions:
    """bad(i) / good(i) over an unroller (state mode: a state formula per position;
    transition mode: the goal transition out of s_i / the taken step avoids the goal)."""

    def __init__(self, u: Unroller, strengthen: Z | None, use_pre: bool) -> None:
        self.u = u
        self.strengthen = strengthen
        self.use_pre = use_pre and u.goal.pre is not None

    def _i(self, i: int) -> Z | None:
        if self.strengthen is None:
            return None
        return self.u.enc.instantiate(self.strengthen, self.u.s(i))

    def bad(self, i: int) -> Z:
        g = self.u.pre(i) if self.use_pre else self.u.reach(i)
        inv = self._i(i)
        return g if inv is None else z3.Or(g, z3.Not(inv))

    def good(self, i: int) -> Z:
        g = z3.Not(self.u.pre(i)) if self.use_pre else self.u.avoided(i)
        inv = self._i(i)
        return g if inv is None else z3.And(g, inv)


def step_query(enc: Encoder, goal: Goal, k: int, strengthen: Z | None, use_pre: bool,
               tag: str = "k") -> tuple[list[Z], Unroller]:
    """The assertions of step(k)."""
    u = Unroller(enc, goal, tag=f"{tag}{k}_")
    pos = _Positions(u, strengthen, use_pre)
    asserts = [enc.dom(u.s(0))]
    for i in range(k):
        asserts += [u.trans(i), pos.good(i)]
    asserts.append(pos.bad(k))
    for i in range(k + 1):
        for j in range(i + 1, k + 1):
            asserts.append(u.distinct(i, j))
    return asserts, u


def kinduction(enc: Encoder, goal: Goal, max_k: int, timeout: float | None = None, *,
               strengthen: Z | None = None, violation: str | None = None) -> KindResult:
    """Prove the goal unreachable by k-induction for some k <= max_k, or find it reachable."""
    t0 = time.perf_counter()
    use_pre = goal.pre is not None
    res = _kind(enc, goal, max_k, timeout, strengthen, violation, use_pre)
    if res.status == "spurious":  # the pre-image is reachable but no goal transition is
        res = _kind(enc, goal, max_k, timeout, strengthen, violation, False)
    res.seconds = time.perf_counter() - t0
    return res


def _kind(enc: Encoder, goal: Goal, max_k: int, timeout: float | None, strengthen: Z | None,
          violation: str | None, use_pre: bool) -> KindResult:
    base_u = Unroller(enc, goal, tag="b")
    base_pos = _Positions(base_u, strengthen, use_pre)
    base = unrolling_solver(timeout)
    base.add(enc.dom(base_u.s(0)), enc.init(base_u.s(0)))
    on_t = goal.on_transition and not use_pre
    for k in range(max_k + 1):
        # base case: no bad position k on a run from Init, asked under an assumption literal
        # (as bmc asks: z3 keeps what it learnt about the unrolling across k)
        at_k = z3.FreshBool("bad")
        base.add(z3.Implies(at_k, base_pos.bad(k)))
        r = base.check(at_k)
        if r == z3.sat:
            hit = _confirm(base, base_u, k, strengthen, violation)
            if hit is None:
                return KindResult("unknown", k, reason=unknown_reason(base), on_transitions=on_t)
            if isinstance(hit, str):
                if hit == "spurious" and use_pre:
                    return KindResult("spurious", k)
                return KindResult("unknown", k, reason=hit, on_transitions=on_t)
            return KindResult("found", base_u.run_length(k), hit, on_transitions=on_t)
        if r == z3.unknown:
            return KindResult("unknown", k, reason=unknown_reason(base), on_transitions=on_t)
        # a shortest run never stutters (bmc's strengthening): the first hit stays shortest
        base.add(base_u.trans(k), base_pos.good(k), base_u.distinct(k, k + 1))
        # inductive step
        asserts, u = step_query(enc, goal, k, strengthen, use_pre)
        step = unrolling_solver(timeout)
        step.add(*asserts)
        r = step.check()
        if r == z3.unsat:
            return KindResult("proved", k, on_transitions=on_t)
        if r == z3.unknown:
            # not an answer at this k; base(k+1) may still find a run and step(k+1) may still
            # close (base(0..k+1) and step(k+1) are all a proof at k+1 needs)
            if k == max_k or requested():
                return KindResult("unknown", k, reason=unknown_reason(step),
                                  on_transitions=on_t)
            continue
        if k == max_k:
            cti = u.decode(step.model(), k)
            return KindResult("cti", k, cti, on_transitions=on_t)
    raise AssertionError("unreachable")


def _confirm(base: z3.Solver, u: Unroller, k: int, strengthen: Z | None,
             violation: str | None) -> ARun | str | None:
    """A bad position k on a run from Init: the run if it is a real goal hit; "spurious" if
    only the pre-image (not a goal transition) is reachable there; a reason if the
    strengthening invariant is what fails (it does not hold)."""
    base.push()
    base.add(u.reach(k))
    r = base.check()
    if r == z3.sat:
        run = u.decode(base.model(), u.run_length(k), violation)
        base.pop()
        return run
    base.pop()
    if r == z3.unknown:
        return None
    if strengthen is not None:
        base.push()
        base.add(z3.Not(u.enc.instantiate(strengthen, u.s(k))))
        r2 = base.check()
        base.pop()
        if r2 == z3.sat:
            return f"the strengthening invariant does not hold: a run of {k} steps violates it"
    return "spurious"


def recheck(enc: Encoder, goal: Goal, k: int, timeout: float | None = None, *,
            strengthen: Z | None = None, use_pre: bool = True) -> str:
    """Re-run base(0..k) and step(k) in fresh solvers (the k > 1 certificate): "unsat" if
    both are unsatisfiable, else the first other answer ("sat" or "unknown")."""
    use_pre = use_pre and goal.pre is not None
    u = Unroller(enc, goal, tag="rb")
    pos = _Positions(u, strengthen, use_pre)
    s = z3.Solver()
    set_timeout(s, timeout)
    s.add(enc.dom(u.s(0)), enc.init(u.s(0)))
    for i in range(k + 1):
        s.push()
        s.add(pos.bad(i))
        r = s.check()
        s.pop()
        if r != z3.unsat:
            return str(r)
        s.add(u.trans(i))
    asserts, _ = step_query(enc, goal, k, strengthen, use_pre, tag="rs")
    s2 = z3.Solver()
    set_timeout(s2, timeout)
    s2.add(*asserts)
    return str(s2.check())
