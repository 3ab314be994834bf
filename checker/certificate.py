"""Inductive-invariant certificates: render, re-check independently, export as SMT-LIB2.

A certificate for "the goal is unreachable" is a state formula Inv with

    1. dom(s) ∧ Init(s)            ⇒ Inv(s)             (initiation)
    2. dom(s) ∧ Inv(s) ∧ Trans(s, s') ⇒ Inv(s')         (consecution)
    3. dom(s) ∧ Inv(s)             ⇒ ¬g(s)              state goals: Inv ⇒ P
       dom(s) ∧ Inv(s) ∧ Trans(s, s') ⇒ ¬g(s, s', ...)  transition goals: Inv ∧ Trans ⇒ P

Each is asked of a fresh plain z3 Solver (never the engine that found Inv), over the
functional transition relation of checker/encode_z3.py (not the per-action Horn clauses that
Spacer saw), and each must answer unsat. The SMT-LIB2 export carries the same three queries so
any SMT solver can re-check them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import z3

from checker.bmc import set_timeout
from checker.encode_z3 import Encoder, Goal, is_sometimes
from checker.z3_terms import Z
from model.lang.schema import Field

CHECKS = ("initiation", "consecution", "property")


class CertificateError(RuntimeError):
    """An internal error: a certificate from an engine failed its independent re-check."""


@dataclass
class Certificate:
    """A re-checked invariant (conjuncts over the template state), rendered and exported."""

    conjuncts: list[Z]
    text: str
    smt2: str
    checks: dict[str, str] = field(default_factory=dict)  # check name -> unsat|sat|unknown

    @property
    def valid(self) -> bool:
        return all(v == "unsat" for v in self.checks.values()) and len(self.checks) == 3


# ---- the three queries ------------------------------------------------------------------------
def queries(enc: Encoder, goal: Goal, inv: Z) -> dict[str, list[Z]]:
    """The assertions of each check (each must be unsatisfiable)."""
    inv_n = z3.substitute(inv, *[(enc.s[f], enc.n[f]) for f in enc.s])
    third = [goal.state] if goal.per_action is None else [goal.reach(enc)]
    return {  # cheapest first: recheck() stops at the first failure
        "initiation": [enc.dom(enc.s), enc.init(enc.s), z3.Not(inv)],
        "property": [enc.dom(enc.s), inv, *third],
        "consecution": [enc.dom(enc.s), inv, enc.trans(), z3.Not(inv_n)],
    }


def recheck(enc: Encoder, goal: Goal, conjuncts: Sequence[Z], timeout: float | None = None,
            only: Sequence[str] = CHECKS) -> dict[str, str]:
    """Ask each check of a fresh solver: unsat | sat | unknown."""
    inv = z3.And(*conjuncts)
    out: dict[str, str] = {}
    for name, asserts in queries(enc, goal, inv).items():
        if name not in only:
            continue
        s = z3.Solver()
        set_timeout(s, timeout)
        s.add(*asserts)
        out[name] = str(s.check())
        if out[name] != "unsat":
            break
    return out


def conjuncts_of(inv: Z, limit: int = 64) -> list[Z]:
    """An invariant as a list of clauses: simplified, negations pushed inward, and ∨
    distributed over ∧ while that yields at most `limit` clauses (so ¬(A ∨ B) and
    F ⇒ (A ∧ B) each split into two conjuncts)."""
    out: list[Z] = []
    for clause in _cnf(nnf(z3.simplify(inv)), limit):
        if any(z3.is_true(x) for x in clause):
            continue
        lits = [x for x in clause if not z3.is_false(x)]
        out.append(z3.Or(*lits) if len(lits) > 1 else (lits[0] if lits else z3.BoolVal(False)))
    return out


def _cnf(e: Z, limit: int) -> list[list[Z]]:
    if z3.is_and(e):
        return [c for x in e.children() for c in _cnf(x, limit)]
    if z3.is_or(e):
        acc: list[list[Z]] = [[]]
        for x in e.children():
            cs = _cnf(x, limit)
            acc = [a + c for a in acc for c in cs]
            if len(acc) > limit:
                return [[e]]
        return acc
    return [[e]]


def nnf(e: Z, neg: bool = False) -> Z:
    """Push negations through ∧, ∨, ⇒ and ¬ (atoms keep their form)."""
    if z3.is_not(e):
        return nnf(e.arg(0), not neg)
    if z3.is_and(e) or z3.is_or(e):
        kids = [nnf(c, neg) for c in e.children()]
        return z3.Or(*kids) if z3.is_and(e) == neg else z3.And(*kids)
    if z3.is_implies(e):
        return nnf(z3.Or(z3.Not(e.arg(0)), e.arg(1)), neg)
    if z3.is_true(e) or z3.is_false(e):
        return z3.BoolVal(z3.is_true(e) != neg)
    if z3.is_distinct(e) and e.num_args() == 2:
        return nnf(e.arg(0) == e.arg(1), not neg)
    return z3.Not(e) if neg else e


def drop_implied(enc: Encoder, conjuncts: Sequence[Z], timeout: float | None = None
                 ) -> list[Z]:
    """The conjuncts without those the others (and the domain) imply: the same formula,
    shorter to read. One validity query per conjunct, no transition relation."""
    keep = list(conjuncts)
    dom = enc.dom(enc.s)
    for c in list(reversed(keep)):
        rest = [x for x in keep if not x.eq(c)]
        s = z3.Solver()
        set_timeout(s, timeout)
        s.add(dom, *rest, z3.Not(c))
        if s.check() == z3.unsat:
            keep = rest
    return keep


def minimize(enc: Encoder, goal: Goal, conjuncts: Sequence[Z], timeout: float | None = None
             ) -> list[Z]:
    """Drop conjuncts the domain implies, then (greedily, to a fixpoint) those the certificate
    does not need; each remaining conjunct is then necessary: removing any one fails a check."""
    dom = enc.dom(enc.s)
    keep = []
    for c in conjuncts:
        s = z3.Solver()
        set_timeout(s, timeout)
        s.add(dom, z3.Not(c))
        if s.check() != z3.unsat:
            keep.append(c)
    changed = True
    while changed:
        changed = False
        for c in list(keep):
            trial = [x for x in keep if not x.eq(c)]
            if all(v == "unsat" for v in recheck(enc, goal, trial, timeout).values()):
                keep = trial
                changed = True
    return keep


# ---- rendering -------------------------------------------------------------------------------
class Renderer:
    """Print invariant conjuncts with field and flag names: `F_SEAL_WRITE ∈ seals ⇒
    map_sh_rw = 0 ∧ ...`."""

    def __init__(self, enc: Encoder) -> None:
        self.enc = enc
        self.fields: dict[int, Field] = {}
        for f in enc.fields:
            self.fields[enc.s[f.name].get_id()] = f
            self.fields[enc.n[f.name].get_id()] = f

    def _field(self, z: Z) -> Field | None:
        return self.fields.get(z.get_id()) if z3.is_const(z) else None

    def bit_test(self, z: Z) -> tuple[str, bool] | None:
        """(text saying "these bits are set", whether z says so) for Extract(i,i,f) = 0/1,
        Extract(hi,lo,f) = 0 and (f & m) = 0."""
        if not z3.is_eq(z):
            return None
        a, b = z.arg(0), z.arg(1)
        if z3.is_bv_value(a):
            a, b = b, a
        if not z3.is_bv_value(b):
            return None
        v = b.as_long()
        if z3.is_app_of(a, z3.Z3_OP_EXTRACT):
            hi, lo = a.params()
            f = self._field(a.arg(0))
            if f is None or not (hi == lo or v == 0):
                return None
            mask = ((1 << (hi - lo + 1)) - 1) << lo
            return self._bits(f, mask), hi == lo and v == 1
        if z3.is_app_of(a, z3.Z3_OP_BAND) and v == 0 and a.num_args() == 2:
            xs = a.children()
            fv = [x for x in xs if self._field(x) is not None]
            mv = [x for x in xs if z3.is_bv_value(x)]
            if len(fv) == 1 and len(mv) == 1:
                fld = self._field(fv[0])
                assert fld is not None
                return self._bits(fld, mv[0].as_long()), False
        return None

    def _bits(self, f: Field, mask: int) -> str:
        """`F_SEAL_WRITE ∈ seals` / `{A,B} ∩ seals ≠ ∅` / `mode & 0o100 ≠ 0` (the "set" text;
        literal() turns it into the "clear" one)."""
        named = dict((b, n) for n, b in f.sort.names)
        if mask in named:
            return f"{named[mask]} ∈ {f.name}"
        if named and all(b in named for b in _bits_of(mask)):
            return f"{f.sort.render(mask)} ∩ {f.name} ≠ ∅"
        m = oct(mask) if f.sort.width == 9 else hex(mask)
        return f"{f.name} & {m} ≠ 0"

    def is_flag(self, z: Z) -> bool:
        """A boolean field or a single-bit test (the natural antecedents)."""
        f = self._field(z)
        if f is not None and f.sort.kind == "bool":
            return True
        return self.bit_test(z) is not None

    def term(self, z: Z) -> str:
        f = self._field(z)
        if f is not None:
            return f.name
        if z3.is_int_value(z) or z3.is_bv_value(z):
            return str(z.as_long())
        if z3.is_add(z):
            return " + ".join(self.term(c) for c in z.children())
        if z3.is_app_of(z, z3.Z3_OP_EXTRACT):
            hi, lo = z.params()
            return f"{self.term(z.arg(0))}[{hi}:{lo}]"
        if z3.is_app_of(z, z3.Z3_OP_BAND):
            return " & ".join(self.term(c) for c in z.children())
        if z3.is_mul(z) and z3.is_int_value(z.arg(0)) and z.arg(0).as_long() == -1:
            return f"-{self.term(z.arg(1))}"
        return self._generic(z)

    def _generic(self, z: Z) -> str:
        txt = str(z)
        for f in self.enc.fields:
            txt = txt.replace(f"n.{f.name}", f"{f.name}'").replace(f"s.{f.name}", f.name)
        for a, b in (("<=", "≤"), (">=", "≥"), ("!=", "≠")):
            txt = txt.replace(a, b)
        return " ".join(txt.split())

    def _value(self, f: Field | None, v: Z) -> str:
        if f is not None and (z3.is_bv_value(v) or z3.is_int_value(v)):
            return f.sort.render(v.as_long())
        return self.term(v)

    def literal(self, z: Z) -> str:
        """A literal (an atom or its negation), in the field's vocabulary."""
        neg = z3.is_not(z)
        a = z.arg(0) if neg else z
        bt = self.bit_test(a)
        if bt is not None:
            txt, is_set = bt
            if is_set != neg:
                return txt
            return txt.replace(" ∈ ", " ∉ ").replace(" ≠ ∅", " = ∅").replace(" ≠ 0", " = 0")
        f = self._field(a)
        if f is not None and f.sort.kind == "bool":
            return f"¬{f.name}" if neg else f.name
        if z3.is_eq(a):
            lhs, rhs = a.arg(0), a.arg(1)  # z3 orders the arguments of = itself
            if self._field(lhs) is None and self._field(rhs) is not None:
                lhs, rhs = rhs, lhs
            return (f"{self.term(lhs)} {'≠' if neg else '='} "
                    f"{self._value(self._field(lhs), rhs)}")
        flip = {"≥": "≤", "≤": "≥", ">": "<", "<": ">"}
        for test, op, nop in ((z3.is_ge, "≥", "<"), (z3.is_le, "≤", ">"),
                              (z3.is_gt, ">", "≤"), (z3.is_lt, "<", "≥")):
            if not test(a):
                continue
            lhs, rhs = a.arg(0), a.arg(1)
            o = nop if neg else op
            if z3.is_int_value(lhs) and not z3.is_int_value(rhs):
                lhs, rhs, o = rhs, lhs, flip[o]
            if not z3.is_int_value(rhs):
                break
            k = rhs.as_long()
            moved = self._move_negatives(lhs, o, k)
            if moved is not None:
                return moved
            txt = self.term(lhs)
            f = self._field(lhs)
            if f is not None and f.sort.kind == "enum" and o in ("≤", "<") and k == (o == "<"):
                return f"{txt} = {f.sort.render(0)}"
            if self._nat(lhs) and ((o == "<" and k == 1) or (o == "≤" and k == 0)):
                return f"{txt} = 0"
            if self._nat(lhs) and ((o == "≥" and k == 1) or (o == ">" and k == 0)):
                return f"{txt} > 0"
            return f"{txt} {o} {k}"
        inner = self._generic(a)
        return f"¬({inner})" if neg else inner

    def _move_negatives(self, lhs: Z, o: str, k: int) -> str | None:
        """`P + -N > -1` (Spacer's form) as `N ≤ P`: integer sums with negated terms are
        printed with every term positive."""
        if not (z3.is_add(lhs) or z3.is_sub(lhs)):
            return None
        pos: list[str] = []
        neg: list[str] = []

        def walk(z: Z, sign: bool) -> None:
            if z3.is_add(z):
                for c in z.children():
                    walk(c, sign)
            elif z3.is_sub(z):
                walk(z.arg(0), sign)
                for c in z.children()[1:]:
                    walk(c, not sign)
            elif z3.is_mul(z) and z3.is_int_value(z.arg(0)) and z.arg(0).as_long() == -1:
                walk(z.arg(1), not sign)
            else:
                (pos if sign else neg).append(self.term(z))

        walk(lhs, True)
        if not neg or not pos:
            return None
        if o in (">", "<"):  # integers: P - N > k is P - N ≥ k + 1
            o, k = ("≥", k + 1) if o == ">" else ("≤", k - 1)
        small, big = (neg, pos) if o == "≥" else (pos, neg)  # small + k ≤ big (≥) ...
        kk = k if o == "≥" else -k
        lhs_t = " + ".join(small) + (f" + {kk}" if kk > 0 else "")
        rhs_t = " + ".join(big) + (f" + {-kk}" if kk < 0 else "")
        return f"{lhs_t} ≤ {rhs_t}"

    def _nat(self, z: Z) -> bool:
        """A sum of nat fields (so `< 1` reads `= 0`)."""
        kids = z.children() if z3.is_add(z) else [z]
        fs = [self._field(k) for k in kids]
        return all(f is not None and f.sort.kind in ("nat", "enum") for f in fs)

    def _key(self, x: Z) -> str:
        return self.literal(x)

    def clause(self, lits: Sequence[Z], freq: Mapping[str, int]
               ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(antecedents, consequents) of a clause, read as `A1 ∧ ... ⇒ C1 ∨ ...`. Literals
        shared with other clauses become antecedents (so clauses group under a common
        premise); otherwise flag/bool literals are antecedents when the clause speaks of
        counts, else the negative ones are."""
        shared = [x for x in lits if freq.get(self._key(x), 0) > 1]
        if shared and len(shared) < len(lits):
            ante = shared
            cons = [x for x in lits if not any(x.eq(y) for y in shared)]
        elif shared:
            last = min(shared, key=lambda x: freq[self._key(x)])
            ante = [x for x in shared if not x.eq(last)]
            cons = [last]
        else:
            flags = [x for x in lits if self.is_flag(x.arg(0) if z3.is_not(x) else x)]
            others = [x for x in lits if not any(x.eq(y) for y in flags)]
            if others:
                ante, cons = flags, others
            else:
                ante = [x for x in flags if not self._positive(x)]
                cons = [x for x in flags if self._positive(x)]
                if not cons and ante:
                    cons = [ante.pop()]
        a = tuple(sorted({self.literal(_negate(x)) for x in ante}))
        c = tuple(dict.fromkeys(self.literal(x) for x in cons))
        return a, c

    def _positive(self, x: Z) -> bool:
        """A flag literal saying a bool holds or a bit is set."""
        neg = z3.is_not(x)
        a = x.arg(0) if neg else x
        bt = self.bit_test(a)
        pos = bt[1] if bt is not None else True
        return bool(pos != neg)

    def render(self, conjuncts: Sequence[Z]) -> str:
        """One line per premise: `A ⇒ C1 ∧ C2`; ⊤ for the empty invariant."""
        clauses = [list(c.children()) if z3.is_or(c) else [c] for c in conjuncts]
        freq: dict[str, int] = {}
        for lits in clauses:
            for k in {self._key(x) for x in lits}:
                freq[k] = freq.get(k, 0) + 1
        groups: dict[tuple[str, ...], list[str]] = {}
        for lits in clauses:
            a, cs = self.clause(lits, freq)
            body = " ∨ ".join(cs) if cs else "⊥"
            groups.setdefault(a, []).append(f"({body})" if len(cs) > 1 and a else body)
        lines = []
        for a, rhs_parts in groups.items():
            rhs = " ∧ ".join(dict.fromkeys(rhs_parts))
            lines.append(f"{' ∧ '.join(a)} ⇒ {rhs}" if a else rhs)
        return "\n".join(lines) if lines else "⊤"


def _bits_of(mask: int) -> list[int]:
    return [1 << i for i in range(mask.bit_length()) if mask >> i & 1]


def _negate(x: Z) -> Z:
    return x.arg(0) if z3.is_not(x) else z3.Not(x)


def render(enc: Encoder, conjuncts: Sequence[Z]) -> str:
    return Renderer(enc).render(conjuncts)


# ---- SMT-LIB2 --------------------------------------------------------------------------------
def to_smt2(enc: Encoder, goal: Goal, conjuncts: Sequence[Z], title: str = "") -> str:
    """A standalone SMT-LIB2 script: declarations, dom/init/trans/inv/goal as nullary
    define-funs, and the three checks, each `(push) (assert (not ...)) (check-sat) (pop)`;
    every check-sat must answer unsat."""
    inv = z3.And(*conjuncts) if conjuncts else z3.BoolVal(True)
    inv_n = z3.substitute(inv, *[(enc.s[f], enc.n[f]) for f in enc.s])
    trans = enc.trans()
    third = goal.state if goal.per_action is None else goal.reach(enc)
    defs = {"dom": enc.dom(enc.s), "init": enc.init(enc.s), "trans": trans, "inv": inv,
            "inv_next": inv_n, "goal": third}
    allv = enc.variables()
    out = [f"; {line}" for line in (title or "shmemcheck certificate").splitlines()]
    out += [
        "; State variables s.<field>, next state n.<field>; one step: act (the action index),",
        "; p.<action>.<param>, out (encoded outcome), eff (effect bits), br (deciding rule).",
        "; Each of the three check-sat commands below must answer unsat.",
        "; The invariant Inv, as shmemcheck prints it:",
        *[f";   {line}" for line in render(enc, conjuncts).splitlines()],
        "(set-logic ALL)",
    ]
    for v in allv:
        out.append(f"(declare-fun {_sym(v.decl().name())} () {v.sort().sexpr()})")
    for k, t in defs.items():
        out.append(f"(define-fun {k} () Bool\n  {t.sexpr()})")
    q = "¬Q (Q: the sometimes predicate, unreachable)" if is_sometimes(goal.prop) else "P"
    claims = {
        "initiation: dom ∧ Init ⇒ Inv": "(=> (and dom init) inv)",
        "consecution: dom ∧ Inv ∧ Trans ⇒ Inv'": "(=> (and dom inv trans) inv_next)",
        (f"property: Inv ⇒ {q}" if goal.per_action is None
         else f"property: Inv ∧ Trans ⇒ {q}"): "(=> (and dom inv) (not goal))",
    }
    for label, claim in claims.items():
        out += [f"; {label}", "(push)", f"(assert (not {claim}))", "(check-sat)", "(pop)"]
    return "\n".join(out) + "\n"


def _sym(name: str) -> str:
    ok = all(ch.isalnum() or ch in "~!@$%^&*_-+=<>.?/" for ch in name) and not name[0].isdigit()
    return name if ok else f"|{name}|"


def check_smt2(text: str) -> list[str]:
    """Run an SMT-LIB2 script in a fresh z3 context; the answers of its check-sat commands."""
    ctx = z3.Context()
    res = z3.Z3_eval_smtlib2_string(ctx.ref(), text)
    return [ln.strip() for ln in str(res).splitlines()
            if ln.strip() in ("sat", "unsat", "unknown")]


def make(enc: Encoder, goal: Goal, conjuncts: Sequence[Z], title: str,
         timeout: float | None = None) -> Certificate:
    """Re-check `conjuncts` independently, render them and export them."""
    cs = list(conjuncts)
    checks = recheck(enc, goal, cs, timeout)
    return Certificate(cs, render(enc, cs), to_smt2(enc, goal, cs, title), checks)
