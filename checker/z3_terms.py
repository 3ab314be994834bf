"""Model IR terms (model/lang/expr.py) as z3 terms: sorts, operators, values and domains.

The layer below both the z3 encoding of a design (checker/encode_z3.py) and the
well-formedness checks (checker/wellformed.py), which translate single rules:

* bool -> Bool, word(w) -> BitVec(w), enum -> Int in 0..len-1, nat(fixed=N) -> Int in 0..N,
  nat(scope=...) -> an UNBOUNDED Int >= 0;
* updates are fitted to the field's sort exactly as compile_np.fit does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import z3

from model.lang.expr import BOOL, INT, E, SortT, width_of
from model.lang.schema import Sort

Env = Mapping[tuple[str, str], z3.ExprRef]
Z = Any  # a z3 term (z3's Python API is untyped)


def z3_sort(sort: SortT) -> z3.SortRef:
    if sort == BOOL:
        return z3.BoolSort()
    if sort == INT:
        return z3.IntSort()
    assert isinstance(sort, tuple)
    return z3.BitVecSort(sort[1])


def _width(z: Z) -> int:
    return int(z.size())


def bv_value(z: Z) -> Z:
    """The unsigned value of a word as an Int, as a sum of its bits (plain SMT-LIB: no
    bv2int, which not every solver reads, and friendlier to Spacer)."""
    if z3.is_bv_value(z):
        return z3.IntVal(z.as_long())
    return z3.Sum(*[z3.If(z3.Extract(i, i, z) == 1, z3.IntVal(1 << i), z3.IntVal(0))
                    for i in range(_width(z))])


def coerce(z: Z, sort: SortT) -> Z:
    """Give a translated term the IR sort `sort` (zero-extend/truncate words, Int literals to
    words, bool <-> int as 1/0)."""
    if sort == BOOL:
        if z3.is_bool(z):
            return z
        if z3.is_int(z):
            return z != 0
        raise TypeError(f"cannot use {z} as a bool")
    if sort == INT:
        if z3.is_int(z):
            return z
        if z3.is_bool(z):
            return z3.If(z, z3.IntVal(1), z3.IntVal(0))
        if z3.is_bv(z):
            return bv_value(z)
        raise TypeError(f"cannot use {z} as an int")
    assert isinstance(sort, tuple)
    w = sort[1]
    if z3.is_bv(z):
        cur = _width(z)
        if cur == w:
            return z
        if cur < w:
            return z3.ZeroExt(w - cur, z)
        return z3.Extract(w - 1, 0, z)
    if z3.is_int_value(z):
        return z3.BitVecVal(z.as_long() & ((1 << w) - 1), w)
    raise TypeError(f"cannot use {z} as a {w}-bit word")


def translate(e: E, env: Env) -> Z:
    """The z3 term of an IR expression; `env` maps (scope, name) to z3 terms."""
    memo: dict[int, Z] = {}

    def go(x: E) -> Z:
        r = memo.get(id(x))
        if r is not None:
            return r
        r = _node(x)
        memo[id(x)] = r
        return r

    def _node(x: E) -> Z:
        op = x.op
        if op == "const":
            if x.sort == BOOL:
                return z3.BoolVal(bool(x.val))
            if x.sort == INT:
                return z3.IntVal(int(x.val))  # type: ignore[call-overload]
            return z3.BitVecVal(int(x.val), width_of(x.sort))  # type: ignore[call-overload]
        if op == "var":
            key: tuple[str, str] = x.val  # type: ignore[assignment]
            if key not in env:
                raise KeyError(f"no z3 variable for {key[0]}:{key[1]}")
            return coerce(env[key], x.sort)
        a = [go(y) for y in x.args]
        if op == "not":
            return z3.Not(a[0])
        if op == "and":
            return z3.And(*a)
        if op == "or":
            return z3.Or(*a)
        if op == "ite":
            return z3.If(coerce(a[0], BOOL), coerce(a[1], x.sort), coerce(a[2], x.sort))
        if op == "bnot":
            return ~coerce(a[0], x.sort)
        if op == "resize":
            return coerce(a[0], x.sort)
        if op in ("eq", "ne"):
            lhs, rhs = x.args
            if lhs.sort == rhs.sort:
                ls, rs = a[0], a[1]
            elif isinstance(lhs.sort, tuple) and isinstance(rhs.sort, tuple):
                w = max(lhs.sort[1], rhs.sort[1])
                ls, rs = coerce(a[0], ("bv", w)), coerce(a[1], ("bv", w))
            else:  # a literal int against a word (recast by the IR's folding)
                s = lhs.sort if isinstance(lhs.sort, tuple) else rhs.sort
                ls, rs = coerce(a[0], s), coerce(a[1], s)
            return ls == rs if op == "eq" else ls != rs
        if op in ("band", "bor", "bxor"):
            ls, rs = coerce(a[0], x.sort), coerce(a[1], x.sort)
            return ls & rs if op == "band" else (ls | rs if op == "bor" else ls ^ rs)
        if op in ("add", "sub"):
            return a[0] + a[1] if op == "add" else a[0] - a[1]
        if op == "mul":
            return a[0] * a[1]
        if op in ("div", "mod"):  # z3's Int / and % are Euclidean: floor for a positive divisor
            return a[0] / a[1] if op == "div" else a[0] % a[1]
        if op == "lt":
            return a[0] < a[1]
        if op == "le":
            return a[0] <= a[1]
        raise ValueError(f"unknown IR operator {op}")

    return go(e)


def value_term(sort: Sort, v: int) -> Z:
    """The z3 literal of a field/parameter value as the explicit engine stores it (an int)."""
    if sort.kind == "bool":
        return z3.BoolVal(bool(v))
    if sort.kind == "word":
        return z3.BitVecVal(v, sort.width)
    return z3.IntVal(v)


def domain(sort: Sort, z: Z) -> Z:
    """The symbolic domain of a field or parameter of this sort (scope-bounded nats: >= 0;
    a machine integer such as loff_t: lo..hi, so no step takes a value no syscall can pass)."""
    if sort.kind == "int":
        return z3.And(z >= sort.lo, z <= sort.hi)
    if sort.kind == "nat":
        return z >= 0 if sort.fixed is None else z3.And(z >= 0, z <= sort.fixed)
    if sort.kind == "enum":
        return z3.And(z >= 0, z < len(sort.values))
    return z3.BoolVal(True)


def as_int(model: z3.ModelRef, z: Z) -> int:
    """A term's value in a model, as the explicit engine stores it (bools are 0/1)."""
    v = model.eval(z, model_completion=True)
    if z3.is_true(v):
        return 1
    if z3.is_false(v):
        return 0
    return int(v.as_long())
