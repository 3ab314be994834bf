"""IC3/PDR through z3's Spacer engine (constrained Horn clauses).

One uninterpreted relation Inv over the state fields:

    dom(s) ∧ Init(s)                     ⇒ Inv(s)
    Inv(s) ∧ Trans_a(s, p, s') ∧ dom(s') ⇒ Inv(s')      one clause per action a
    Inv(s) ∧ g(s)                         ⇒ ⊥           state goals
    Inv(s) ∧ Trans_a(s, p, s') ∧ g_a      ⇒ ⊥           transition goals, per action

"sat" (the clauses have a model) means the goal is unreachable, and the model's Inv is an
inductive invariant (checker/certificate.py renders and independently re-checks it); "unsat"
means the goal is reachable (checker/symbolic.py then finds a shortest run with BMC).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import z3

from checker.bmc import retry, set_timeout, slices
from checker.encode_z3 import Encoder, Goal
from checker.interrupt import unknown_reason
from checker.z3_terms import Z


@dataclass
class PdrResult:
    status: str  # safe | reachable | unknown
    invariant: Z | None = None  # over the template state enc.s
    reason: str = ""
    seconds: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)


class Horn:
    """The goal-independent clauses of an encoder (built once, shared by every query)."""

    def __init__(self, enc: Encoder) -> None:
        self.enc = enc
        self.s = [enc.s[f.name] for f in enc.fields]
        self.n = [enc.n[f.name] for f in enc.fields]
        self.inv = z3.Function("Inv", *[v.sort() for v in self.s], z3.BoolSort())
        self.step = [enc.out, enc.eff, enc.br]
        self.base = [self.close(z3.And(enc.dom(enc.s), enc.init(enc.s)), self.inv(*self.s),
                                self.s)]
        for ae in enc.actions:
            self.base.append(self.close(
                z3.And(self.inv(*self.s), enc.trans_a(ae.index, observe=False), enc.dom(enc.n)),
                self.inv(*self.n), self.s + self.n + list(ae.params.values())))

    @staticmethod
    def close(body: Z, head: Z, vs: list[Z]) -> Z:
        return z3.ForAll(vs, z3.Implies(body, head))

    def queries(self, goal: Goal) -> list[Z]:
        """The clauses with head ⊥."""
        enc, inv = self.enc, self.inv
        if goal.per_action is None:
            return [self.close(z3.And(inv(*self.s), goal.state), z3.BoolVal(False), self.s)]
        out = []
        for ae in enc.actions:
            g = goal.per_action[ae.index]
            if z3.is_false(z3.simplify(g)):
                continue
            out.append(self.close(z3.And(inv(*self.s), enc.trans_a(ae.index), g),
                                  z3.BoolVal(False),
                                  self.s + self.n + list(ae.params.values()) + self.step))
        return out


_HORN: dict[int, Horn] = {}


def horn_for(enc: Encoder) -> Horn:
    h = _HORN.get(id(enc))
    if h is None or h.enc is not enc:
        h = _HORN[id(enc)] = Horn(enc)
    return h


def interpretation(model: z3.ModelRef, rel: z3.FuncDeclRef, args: list[Z]) -> Z:
    """The model's interpretation of relation `rel`, applied to `args`."""
    fi = model[rel]
    if fi is None:
        return z3.BoolVal(True)  # unconstrained: any interpretation will do
    if isinstance(fi, z3.FuncInterp):
        out = z3.substitute_vars(fi.else_value(), *args)
        for i in range(fi.num_entries()):
            e = fi.entry(i)
            cond = z3.And(*[a == e.arg_value(j) for j, a in enumerate(args)])
            out = z3.If(cond, e.value(), out)
        return out
    return z3.substitute_vars(fi, *args)


def spacer(clauses: list[Z], timeout: float | None) -> tuple[Any, Any]:
    """Spacer's answer on the Horn clauses, and the solver that gave it (for its model).

    The timeout is spent in restart slices with a new Spacer seed each (checker/bmc.py
    `slices`): Spacer's time is heavy-tailed in the context's history as z3's is on the
    unrollings. In CI's whole-catalogue pdr run v5-flags sometimes-write-seal-busy-mapping
    timed out at 60 s; alone it is answered in 0.15 s under each of six seeds. Each slice
    gets a new solver: z3 5.4.1 crashes (SIGSEGV) when a HORN solver is checked again after
    a timeout."""
    plan = slices(timeout) if timeout is not None and timeout > 0 else iter([(0.0, 0, True)])
    for give, seed, last in plan:
        solver = z3.SolverFor("HORN")
        set_timeout(solver, give)
        solver.set("fp.spacer.random_seed", seed)
        solver.add(*clauses)
        r = solver.check()
        if not retry(solver, r, last):
            return r, solver
    raise AssertionError("unreachable: the last slice returns")


def pdr(enc: Encoder, goal: Goal, timeout: float | None = None) -> PdrResult:
    """Decide whether the goal is reachable; on "safe", return Spacer's inductive invariant."""
    t0 = time.perf_counter()
    h = horn_for(enc)
    r, solver = spacer([*h.base, *h.queries(goal)], timeout)
    secs = time.perf_counter() - t0
    if r == z3.sat:
        formula = interpretation(solver.model(), h.inv, h.s)
        return PdrResult("safe", formula, seconds=secs)
    if r == z3.unsat:
        return PdrResult("reachable", seconds=secs)
    return PdrResult("unknown", reason=unknown_reason(solver), seconds=secs)
