"""Bounded model checking: the shortest run (up to a depth) reaching a goal.

One incremental solver holds Init and the unrolled transitions; each depth's goal is asked
under push/pop, so the first hit is a shortest run. Runs are decoded from the z3 model into
traces.run.ARun; checker/symbolic.py replays them on the explicit interpreter.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import z3

from checker.encode_z3 import Encoder, Goal
from checker.interrupt import requested, unknown_reason, watching
from checker.z3_terms import Z
from traces.run import ARun, AStep


def set_timeout(solver: Any, seconds: float | None) -> None:
    if seconds is not None and seconds > 0:
        solver.set("timeout", max(1, int(seconds * 1000)))


#: the first slice of a query's time budget; each further slice doubles, with a new seed
RESTART_FIRST = 2.0


def slices(budget: float, repeat: int = 2) -> Iterator[tuple[float, int, bool]]:
    """A query's time budget as restart slices: (seconds, random seed, last) for 2, 2, 4, 4,
    8, 8 ... seconds, each with the next seed (so each length is tried once in the query's
    own context and once in a fresh one: RestartingSolver); the last slice takes what is
    left, once too little is left for another one after it. The caller stops at an answer;
    a slice that timed out took its whole time. (Against doubling at every slice, 2, 4, 8 ...,
    over the same 12 histories of v5-flags write-seal-content-frozen, bench/restarts.py: mean
    6.5 s against 8.1 s, worst 25.4 s against 33.1 s, median 3.9 s against 3.7 s; `repeat`
    is how many slices each length gets: 1 is that doubling schedule.)"""
    left, part, seed = budget, RESTART_FIRST, 0
    while True:
        last = left <= part * 1.5
        give = left if last else part
        yield give, seed, last
        if last:
            return
        left, seed = left - give, seed + 1
        if seed % repeat == 0:
            part *= 2


def retry(solver: Any, r: Any, last: bool) -> bool:
    """Another slice is worth it: the answer is a timeout, time is left, no Ctrl-C."""
    return (r == z3.unknown and not last and not requested()
            and str(solver.reason_unknown()) in ("timeout", "canceled"))


class RestartingSolver(z3.Solver):  # type: ignore[misc]
    """A z3 solver whose check() spends its timeout in slices (`slices`), each with another
    random seed, and answers unknown only once the whole budget is spent.

    z3's time on these unrollings is heavy-tailed: the same bmc query that is answered in
    0.3 s alone ran past 60 s after another property's queries had changed the context's
    term ids (v5-flags, sometimes-future-write-live-writable-map right after
    write-seal-no-writable-mapping; the query's SMT-LIB dump alone: sat in 0.3 s); with the
    next seed it was answered at once. Once the next seed was not enough: in CI a depth-3
    query of memfd@5.17 sometimes-hugetlb-mapped-beyond-eof, answered in 0.3 s in a
    process of its own, timed out in all seven slices of 300 s. So every second slice asks a
    copy of the query in a fresh z3 context (Solver.translate: new term ids, nothing learnt),
    which is how "alone" asks it; a model found there is translated back. Restarts change
    only how long an answer takes, never the answer; Ctrl-C is not retried, and reaches the
    copy's context too (checker/interrupt.py `watching`). (Spacer restarts too, but with a
    new solver per slice: checker/pdr.py.)"""

    def __init__(self, timeout: float | None) -> None:
        super().__init__()
        self.budget = timeout if timeout is not None and timeout > 0 else None
        self._params: dict[str, Any] = {}
        self._answered_by: Any = None  # the fresh-context copy that gave the last answer
        set_timeout(self, self.budget)

    def set(self, *args: Any, **keys: Any) -> None:
        if len(args) == 2 and isinstance(args[0], str):
            self._params[args[0]] = args[1]
        super().set(*args, **keys)

    def _copy(self) -> Any:
        """The assertions so far in a new context, with this solver's parameters."""
        c = self.translate(z3.Context())
        for k, v in self._params.items():
            if k not in ("timeout", "random_seed"):
                c.set(k, v)
        return c

    def check(self, *assumptions: Any) -> Any:
        self._answered_by = None
        if self.budget is None:
            return super().check(*assumptions)
        for give, seed, last in slices(self.budget):
            if seed % 2 == 0:
                s, r = self, None
                set_timeout(self, give)
                self.set("random_seed", seed)
                r = super().check(*assumptions)
            else:
                s = self._copy()
                set_timeout(s, give)
                s.set("random_seed", seed)
                with watching(s.ctx):
                    r = s.check(*[a.translate(s.ctx) for a in assumptions])
            if not retry(s, r, last):
                self._answered_by = None if s is self else s
                return r
        raise AssertionError("unreachable: the last slice returns")

    def model(self) -> Any:
        if self._answered_by is not None:
            return self._answered_by.model().translate(self.ctx)
        return super().model()

    def reason_unknown(self) -> Any:
        if self._answered_by is not None:
            return self._answered_by.reason_unknown()
        return super().reason_unknown()


def unrolling_solver(timeout: float | None) -> Any:
    """A solver for unrolled paths (restarting: RestartingSolver): z3's older arithmetic
    solver (arith.solver=2) measured about twice as fast on these counter-heavy unrollings
    (bench/bench_symbolic.py)."""
    s = RestartingSolver(timeout)
    s.set("arith.solver", 2)
    return s


class Unroller:
    """Per-position copies of the state and step variables, and instantiated terms."""

    def __init__(self, enc: Encoder, goal: Goal, tag: str = "") -> None:
        self.enc = enc
        self.goal = goal
        self.tag = tag
        self._trans = enc.unrolling_trans()
        self._reach = goal.reach(enc)
        self._avoid = (goal.avoided_by_step(enc) if goal.on_transition
                       else z3.Not(goal.state))
        self.states: list[dict[str, Z]] = []
        self.steps: list[dict[str, Z]] = []

    def s(self, i: int) -> dict[str, Z]:
        while len(self.states) <= i:
            self.states.append(self.enc.state_vars(f"{self.tag}{len(self.states)}"))
        return self.states[i]

    def st(self, i: int) -> dict[str, Z]:
        while len(self.steps) <= i:
            self.steps.append(self.enc.step_vars(f"{self.tag}{len(self.steps)}"))
        return self.steps[i]

    def _inst(self, term: Z, i: int) -> Z:
        return self.enc.instantiate(term, self.s(i), self.s(i + 1), self.st(i))

    def trans(self, i: int) -> Z:
        """A transition from position i to i + 1 (next state in the domain)."""
        return self._inst(self._trans, i)

    def reach(self, i: int) -> Z:
        """The goal at position i: g(s_i), or a goal transition out of s_i."""
        if not self.goal.on_transition:
            return self.enc.instantiate(self._reach, self.s(i))
        return self._inst(self._reach, i)

    def pre(self, i: int) -> Z | None:
        """The goal's pre-image at position i (a state formula), if known."""
        if self.goal.pre is None:
            return None
        return self.enc.instantiate(self.goal.pre, self.s(i))

    def avoided(self, i: int) -> Z:
        """Position i does not meet the goal (state goals: ¬g(s_i); action goals: the step
        taken at i is not a goal transition)."""
        if not self.goal.on_transition:
            return self.enc.instantiate(self._avoid, self.s(i))
        return self._inst(self._avoid, i)

    def distinct(self, i: int, j: int) -> Z:
        a, b = self.s(i), self.s(j)
        return z3.Or(*[a[f] != b[f] for f in a])

    def run_length(self, pos: int) -> int:
        """Steps in a run whose goal is met at position pos."""
        return pos + 1 if self.goal.on_transition else pos

    def decode(self, model: z3.ModelRef, steps: int, violation: str | None = None) -> ARun:
        enc = self.enc
        run = ARun(enc.decode_init(model, self.s(0)), violation=violation)
        for i in range(steps):
            a, params, out, eff, label = enc.decode_step(model, self.s(i), self.st(i))
            run.steps.append(AStep(enc.action_at(a).action.name, params, out, eff,
                                   enc.decode_state(model, self.s(i + 1)), label))
        return run


@dataclass
class SearchResult:
    status: str  # found | none | unknown
    depth: int  # found: the run's length; none/unknown: the depth fully searched
    run: ARun | None = None
    reason: str = ""
    queries: int = 0
    seconds: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)


def bmc(enc: Encoder, goal: Goal, depth: int, timeout: float | None = None, *,
        violation: str | None = None, use_pre: bool = True) -> SearchResult:
    """The shortest run of at most `depth` steps reaching the goal.

    Sound strengthenings of the unrolling, each justified by minimality: once depth i is
    refuted, the goal (or its pre-image) is false at position i, so it is asserted false there;
    a shortest run never stutters, so consecutive states differ. With `use_pre`, transition
    goals are first asked as their pre-image (a state formula, a stronger lemma when refuted).
    """
    t0 = time.perf_counter()
    u = Unroller(enc, goal)
    solver = unrolling_solver(timeout)
    solver.add(enc.dom(u.s(0)), enc.init(u.s(0)))
    last = depth - 1 if goal.on_transition else depth
    queries = 0
    spurious = 0

    def ask(term: Z) -> Any:
        # an assumption literal rather than push/pop: z3 keeps what it learnt about the
        # unrolling across depths (about 3x faster on the slowest memfd properties)
        nonlocal queries
        a = z3.FreshBool("goal")
        solver.add(z3.Implies(a, term))
        r = solver.check(a)
        queries += 1
        m = solver.model() if r == z3.sat else None
        return r, m

    def unknown(k: int) -> SearchResult:
        return SearchResult("unknown", max(0, u.run_length(k) - 1),
                            reason=unknown_reason(solver), queries=queries,
                            seconds=time.perf_counter() - t0)

    for k in range(last + 1):
        pre = u.pre(k) if use_pre or not goal.on_transition else None
        lemma = None
        if pre is not None:
            r, m = ask(pre)
            if r == z3.unknown:
                return unknown(k)
            if r == z3.unsat:
                lemma = z3.Not(pre)
            elif not goal.on_transition:
                run = u.decode(m, u.run_length(k), violation)
                return SearchResult("found", u.run_length(k), run, queries=queries,
                                    seconds=time.perf_counter() - t0)
        if lemma is None:
            r, m = ask(u.reach(k))
            if r == z3.unknown:
                return unknown(k)
            if r == z3.sat:
                run = u.decode(m, u.run_length(k), violation)
                return SearchResult("found", u.run_length(k), run, queries=queries,
                                    seconds=time.perf_counter() - t0)
            spurious += pre is not None
        if k < last:
            solver.add(u.trans(k), u.avoided(k), u.distinct(k, k + 1))
            if lemma is not None:
                solver.add(lemma)
    return SearchResult("none", depth, queries=queries, seconds=time.perf_counter() - t0,
                        stats={"spurious_preimage_hits": spurious})
