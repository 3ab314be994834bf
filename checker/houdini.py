"""Strengthening lemmas for k-induction, found by the tool: mined candidates, then Houdini.

1. Candidates: every literal over one field (a boolean, `f = 0` for a natural, `f = v` for an
   enum value, one bit of a flag word), `a + b ≠ 0` for two naturals ("some descriptor or
   mapping still holds it"), and every clause of two such literals, kept only if it holds in
   every state the explicit engine reaches within a few steps at a small mining scope (as
   Daikon and mypyvy's data-driven inference do). Mining only prunes: a lemma that holds in
   every reachable state also holds in those, so it is never lost; a candidate that holds
   there by chance is dropped by step 2 (an inductive set holding initially holds in every
   reachable state).
2. Houdini (Flanagan & Leino, 2001) over z3's unbounded encoding: drop every candidate that
   fails in some initial state, then repeatedly every candidate that some transition from a
   state satisfying all remaining candidates falsifies. What is left is inductive on its own
   (Init ⇒ L and L ∧ Trans ⇒ L', both answered unsat by z3 at the end), so assuming it at
   every step of k-induction can only remove counterexamples to induction from unreachable
   states, never a reachable violation.

The result depends only on the design, so it is computed once per design and shared by every
property; `Lemmas.text` prints it with field and flag names.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import z3

from checker.bmc import set_timeout
from checker.certificate import render
from checker.encode_z3 import Encoder
from checker.explicit import Explorer
from checker.interrupt import unknown_reason
from checker.z3_terms import value_term
from model.lang.design import Design
from model.lang.designcache import PerDesign
from model.lang.schema import Field


@dataclass(frozen=True)
class Atom:
    """One-field predicate: field = value (bool/nat/enum) or bit `value` of a word is set."""

    field: str
    kind: str  # "eq" | "bit" | "sum0" (field + other = 0: neither counter is held)
    value: int
    other: str = ""

    def z3(self, enc: Encoder, s: dict[str, z3.ExprRef]) -> z3.BoolRef:
        f = enc.schema.by_name[self.field]
        x = s[self.field]
        if self.kind == "bit":
            return z3.Extract(self.value, self.value, x) == 1
        if self.kind == "sum0":
            return x + s[self.other] == 0
        if f.sort.kind == "bool":
            return x if self.value else z3.Not(x)
        return x == value_term(f.sort, self.value)

    def holds(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        x = cols[self.field].reshape(-1)
        if self.kind == "bit":
            return ((x >> self.value) & 1).astype(bool)
        if self.kind == "sum0":
            return np.asarray((x + cols[self.other].reshape(-1)) == 0)
        return np.asarray(x == self.value)


Lit = tuple[Atom, bool]  # (atom, positive)

#: the mining scope's bound on every scope parameter (any bound is sound: see mine())
MINE_BOUND = 1
#: and on the depth of the search: at depth 6 the memfd and v5 designs yield the same candidates
#: as their whole state space, at a tenth of the states (any depth is sound, as any bound is)
MINE_DEPTH: int | None = 6


@dataclass
class Lemmas:
    """An inductive conjunction of clauses over the template state, with how it was found."""

    design: str
    clauses: list[z3.BoolRef]
    text: str
    candidates: int = 0
    mined_states: int = 0
    rounds: int = 0
    seconds: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def formula(self) -> z3.BoolRef:
        return z3.And(*self.clauses) if self.clauses else z3.BoolVal(True)

    def summary(self) -> str:
        return (f"{len(self.clauses)} lemmas (Houdini: {self.candidates} mined candidates, "
                f"{self.rounds} rounds, {self.seconds:.1f} s)")


def atoms(f: Field) -> list[Atom]:
    """The one-field predicates candidates are made of."""
    k = f.sort.kind
    if k == "bool":
        return [Atom(f.name, "eq", 1)]
    if k == "nat":
        return [Atom(f.name, "eq", 0)]
    if k == "enum":
        return [Atom(f.name, "eq", v) for v in range(len(f.sort.values))]
    if k == "word":
        named = {b for _, b in f.sort.names}
        bits = range(f.sort.width) if f.sort.width <= 16 or not named else \
            sorted(b.bit_length() - 1 for b in named if b & (b - 1) == 0)
        return [Atom(f.name, "bit", b) for b in bits]
    return []


def mining_scope(design: Design) -> dict[str, int]:
    """Every scope parameter at most MINE_BOUND."""
    return {k: min(v, MINE_BOUND) for k, v in design.default_scope.items()}


def representatives(design: Design, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One state per class of states no atom tells apart (a natural matters only as zero or
    not): the literal matrix then has a row per class, not per state."""
    sig = [(cols[f.name].reshape(-1) != 0).astype(np.int64) if f.sort.kind == "nat"
           else cols[f.name].reshape(-1).astype(np.int64) for f in design.schema.fields]
    widths = [int(x.max(initial=0)).bit_length() for x in sig]
    if sum(widths) <= 63:  # one int64 key per state: a fast 1-D unique
        key = np.zeros(len(sig[0]), dtype=np.int64)
        for x, w in zip(sig, widths, strict=True):
            key = (key << w) | x
        _, idx = np.unique(key, return_index=True)
    else:
        _, idx = np.unique(np.stack(sig, axis=1), axis=0, return_index=True)
    return {f.name: cols[f.name].reshape(-1)[idx] for f in design.schema.fields}


def mine(design: Design, lits: list[Lit]) -> tuple[list[tuple[Lit, ...]], int]:
    """Unit and two-literal clauses over `lits` true in every state reached at the mining
    scope (unit clauses subsume the pairs they occur in)."""
    ex = Explorer(design, design.scope(mining_scope(design)), [], keep_layers=True,
                  max_depth=MINE_DEPTH)
    r = ex.run()
    keys = np.unique(np.concatenate([layer[0] for layer in r.layers]))
    cols = representatives(design, ex.packer.fields(keys))
    by_atom = {a: a.holds(cols) for a in {a for a, _ in lits}}
    m = np.stack([by_atom[a] if pos else ~by_atom[a] for a, pos in lits], axis=1)
    packed = np.packbits(m, axis=1)  # distinct literal valuations: unique rows of bytes
    rows = np.unique(packed.view(np.dtype((np.void, packed.shape[1]))).reshape(-1))
    m = np.unpackbits(rows.view(np.uint8).reshape(len(rows), -1), axis=1,
                      count=len(lits)).astype(bool)
    false = (~m).astype(np.float32)
    both_false = false.T @ false  # [i, j]: states where lit i and lit j are both false
    unit = np.diag(both_false) == 0
    out: list[tuple[Lit, ...]] = [(lits[i],) for i in np.nonzero(unit)[0]]
    for i, j in combinations(range(len(lits)), 2):
        (a, pa), (b, pb) = lits[i], lits[j]
        if unit[i] or unit[j] or a == b or (a.field == b.field and a.kind == b.kind == "eq") \
                or implies((a, not pa), lits[j]) or implies((b, not pb), lits[i]):
            continue  # subsumed, a tautology (x = 0 ∨ x + y ≠ 0), or two values of one field
        if both_false[i, j] == 0:
            out.append((lits[i], lits[j]))
    return out, len(keys)  # states mined (before merging classes)


def houdini(design: Design, enc: Encoder, timeout: float | None = 60.0) -> Lemmas:
    """The largest inductive subset of the mined candidates (see the module docstring)."""
    t0 = time.perf_counter()
    nats = [f.name for f in design.schema.fields if f.sort.kind == "nat"]
    # only "a + b ≠ 0": a clause with "a + b = 0" is two clauses already among the candidates
    sums: list[Lit] = [(Atom(a, "sum0", 0, b), False) for a, b in combinations(nats, 2)]
    # a replayed field is never packed (Packer.omitted): the mined states do not hold it
    lits: list[Lit] = [(a, pos) for f in design.schema.fields if not f.replayed
                       for a in atoms(f) for pos in (True, False)] + sums
    cands, mined = mine(design, lits)
    t_mine = time.perf_counter() - t0

    def clause(c: tuple[Lit, ...], s: dict[str, z3.ExprRef]) -> z3.BoolRef:
        return z3.Or(*[a.z3(enc, s) if pos else z3.Not(a.z3(enc, s)) for a, pos in c])

    pre = [clause(c, enc.s) for c in cands]
    nxt = [(enc.s[f], enc.n[f]) for f in enc.s]
    step = Step(lambda inv: [enc.dom(enc.s), enc.trans(observe=False), inv],
                lambda c: z3.substitute(c, *nxt))
    try:
        alive, rounds = inductive_subset(pre, [enc.dom(enc.s), enc.init(enc.s)], [step],
                                         timeout)
    except TimeoutError as e:
        raise TimeoutError(f"Houdini on {design.name}: {e}") from None
    kept = irredundant([cands[i] for i in alive])
    clauses = [clause(c, enc.s) for c in kept]
    return Lemmas(design.name, clauses, render(enc, clauses) if clauses else "true",
                  candidates=len(cands), mined_states=mined, rounds=rounds,
                  seconds=time.perf_counter() - t0, stats={"mine_seconds": round(t_mine, 2)})


def implies(a: Lit, b: Lit) -> bool:
    """Literal a entails literal b, syntactically: equal; `x ≠ 0` entails `x + y ≠ 0`; an enum
    field equal to one value is unequal to every other."""
    (x, px), (y, py) = a, b
    if a == b:
        return True
    if not px and not py and x.kind == "eq" and y.kind == "sum0":
        return x.field in (y.field, y.other)
    return (px and not py and x.kind == y.kind == "eq" and x.field == y.field
            and x.value != y.value)


def irredundant(clauses: list[tuple[Lit, ...]]) -> list[tuple[Lit, ...]]:
    """The clauses without those another one subsumes (every literal of the other entails a
    literal of this one): the same formula, fewer clauses to print and to assume."""
    by_len = sorted(clauses, key=len)
    out: list[tuple[Lit, ...]] = []
    for c in by_len:
        if not any(all(any(implies(a, b) for b in c) for a in d) for d in out):
            out.append(c)
    return out


@dataclass(frozen=True)
class Step:
    """One kind of step for Houdini: `context(inv)` asserts a step from a state satisfying
    `inv`; `post(c)` is candidate c over that step's next state."""

    context: Callable[[z3.BoolRef], list[z3.BoolRef]]
    post: Callable[[z3.BoolRef], z3.BoolRef]


def inductive_subset(cands: Sequence[z3.BoolRef], init: Sequence[z3.BoolRef],
                     steps: Sequence[Step], timeout: float | None = 60.0
                     ) -> tuple[list[int], int]:
    """Houdini's fixpoint: (indices of the largest subset S of `cands` with init ⇒ S and
    S ∧ step ⇒ S' for every step, number of solver rounds). Each round asks one solver for a
    model falsifying any remaining candidate and drops every candidate that model falsifies;
    raises TimeoutError if z3 gives up."""
    rounds = 0

    def shrink(s: z3.Solver, alive: list[int], test: list[z3.BoolRef],
               assume: list[z3.BoolRef]) -> tuple[list[int], bool]:
        nonlocal rounds
        dropped = False
        while alive:
            rounds += 1
            s.push()
            s.add(z3.Or(*[z3.Not(test[i]) for i in alive]))
            r = s.check(*[assume[i] for i in alive] if assume else [])
            if r == z3.unsat:
                s.pop()
                break
            if r != z3.sat:
                raise TimeoutError(f"z3 gave up ({unknown_reason(s)})")
            m = s.model()
            alive = [i for i in alive if z3.is_true(m.eval(test[i], model_completion=True))]
            dropped = True
            s.pop()
        return alive, dropped

    def solver(*asserts: z3.BoolRef) -> z3.Solver:
        s = z3.Solver()
        set_timeout(s, timeout)
        s.add(*asserts)
        return s

    alive, _ = shrink(solver(*init), list(range(len(cands))), list(cands), [])
    guards = [z3.Bool(f"houdini!{i}") for i in range(len(cands))]
    inv = z3.And(*[z3.Implies(g, c) for g, c in zip(guards, cands, strict=True)])
    per_step = [(solver(*st.context(inv)), [st.post(c) for c in cands]) for st in steps]
    changed = True
    while changed:
        changed = False
        for s, post in per_step:
            alive, dropped = shrink(s, alive, post, guards)
            changed |= dropped and len(per_step) > 1
    return alive, rounds


_CACHE: PerDesign[Lemmas] = PerDesign()


def lemmas_for(design: Design, enc: Encoder, timeout: float | None = 60.0) -> Lemmas:
    """The design's lemmas, mined and proved once per design object."""
    return _CACHE.setdefault(design, lambda: houdini(design, enc, timeout))


def support(enc: Encoder, prop: list[z3.BoolRef], lemmas: list[z3.BoolRef],
            timeout: float | None = 60.0) -> list[z3.BoolRef] | None:
    """A subset S of the (jointly inductive) `lemmas` such that prop ∧ S is inductive, found
    by unsat cores: start from what prop' needs, add what each added lemma' needs, to a
    fixpoint. None if a query is not unsat (then prop ∧ lemmas is not 1-inductive)."""
    s = z3.Solver()
    set_timeout(s, timeout)
    s.set("core.minimize", True)
    s.add(enc.dom(enc.s), *prop, enc.trans(observe=False))
    guards = [z3.Bool(f"support!{i}") for i in range(len(lemmas))]
    for g, c in zip(guards, lemmas, strict=True):
        s.add(z3.Implies(g, c))
    index = {g.get_id(): i for i, g in enumerate(guards)}
    nxt = [(enc.s[f], enc.n[f]) for f in enc.s]
    need: set[int] = set()
    todo: list[z3.BoolRef] = [z3.And(*prop)]
    while todo:
        t = todo.pop()
        s.push()
        s.add(z3.Not(z3.substitute(t, *nxt)))
        if s.check(*guards) != z3.unsat:
            return None
        new = {index[c.get_id()] for c in s.unsat_core()} - need
        s.pop()
        need |= new
        todo += [lemmas[i] for i in new]
    return [lemmas[i] for i in sorted(need)]
