"""A small typed expression IR: the single representation every engine interprets.

Actions build these terms once; checker/compile_np.py compiles them to vectorised numpy code for
the explicit engine and checker/encode_z3.py translates them to z3 terms. Smart constructors fold
constants, so a rule whose parameters are fixed simplifies before any engine sees it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

# Sorts: "bool", "int" (a natural number; unbounded in z3, bounded by the scope when explicit),
# or ("bv", width) for flag words.
SortT = str | tuple[str, int]
BOOL: SortT = "bool"
INT: SortT = "int"


def BV(width: int) -> SortT:  # noqa: N802 - reads like a type
    return ("bv", width)


def width_of(sort: SortT) -> int:
    assert isinstance(sort, tuple)
    return sort[1]


@dataclass(frozen=True, eq=False)
class E:
    """An expression node. `op` is one of:

    const (val), var (val = (scope, name): scope is "s", "n" (next state), "p" (parameter),
    "o" (outcome), "x" (effects)), not/and/or/ite, eq/ne/lt/le, add/sub, band/bor/bxor/bnot,
    and mul/div/mod whose right operand is a positive integer constant (`x * 4096`,
    `x // 4096`, `x % 4096`: floor division, as Python and z3 agree on for a positive
    divisor), which keeps every term linear for z3.
    Python operators build nodes: & | ~ on bools are logical, on words bitwise.
    """

    op: str
    args: tuple[E, ...]
    sort: SortT
    val: object = None

    # -- construction helpers ------------------------------------------------------------
    def _coerce(self, other: Operand) -> E:
        return lift(other, self.sort)

    def _exact(self, other: Operand) -> E:
        """`other` as an operand of |, ^, == or != on this word: a literal with a bit above
        the word's width is refused, as truncating it would change the result (x == 0x40 on
        a 6-bit word is not x == 0). `&` keeps truncating: a bit the word cannot hold is 0
        in the result either way, and ~MASK literals rely on it."""
        if (isinstance(self.sort, tuple) and isinstance(other, int)
                and not isinstance(other, bool) and other >> self.sort[1] > 0):
            raise TypeError(f"the literal {other:#x} does not fit the {self.sort[1]}-bit "
                            f"word {show(self)}")
        return lift(other, self.sort)

    def __and__(self, other: Operand) -> E:
        o = self._coerce(other)
        return mk_and(self, o) if self.sort == BOOL else mk_bin("band", self, o)

    __rand__ = __and__

    def __or__(self, other: Operand) -> E:
        o = self._exact(other)
        return mk_or(self, o) if self.sort == BOOL else mk_bin("bor", self, o)

    __ror__ = __or__

    def __xor__(self, other: Operand) -> E:
        o = self._exact(other)
        return mk_bin("ne" if self.sort == BOOL else "bxor", self, o)

    def __invert__(self) -> E:
        return mk_not(self) if self.sort == BOOL else mk_un("bnot", self)

    def __add__(self, other: Operand) -> E:
        return mk_bin("add", self, self._coerce(other))

    __radd__ = __add__

    def __sub__(self, other: Operand) -> E:
        return mk_bin("sub", self, self._coerce(other))

    def __rsub__(self, other: Operand) -> E:
        return mk_bin("sub", self._coerce(other), self)

    def __mul__(self, other: Operand) -> E:
        return mk_bin("mul", self, _positive(other, "*"))

    __rmul__ = __mul__

    def __floordiv__(self, other: Operand) -> E:
        return mk_bin("div", self, _positive(other, "//"))

    def __mod__(self, other: Operand) -> E:
        return mk_bin("mod", self, _positive(other, "%"))

    def __eq__(self, other: object) -> E:  # type: ignore[override]
        return mk_bin("eq", self, self._exact(other))  # type: ignore[arg-type]

    def __ne__(self, other: object) -> E:  # type: ignore[override]
        return mk_bin("ne", self, self._exact(other))  # type: ignore[arg-type]

    def __lt__(self, other: Operand) -> E:
        return mk_bin("lt", self, self._coerce(other))

    def __le__(self, other: Operand) -> E:
        return mk_bin("le", self, self._coerce(other))

    def __gt__(self, other: Operand) -> E:
        return mk_bin("lt", self._coerce(other), self)

    def __ge__(self, other: Operand) -> E:
        return mk_bin("le", self._coerce(other), self)

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise TypeError(
            "a model expression has no Python truth value: use &, |, ~ and If(), not and/or/if")

    # -- flag-word helpers -----------------------------------------------------------------
    def has(self, mask: int | E) -> E:
        """Any bit of mask is set."""
        return (self & mask) != 0

    def has_all(self, mask: int | E) -> E:
        m = self._coerce(mask)
        return (self & m) == m

    def implies(self, other: Operand) -> E:
        return mk_or(mk_not(self), lift(other, BOOL))

    # -- inspection ------------------------------------------------------------------------
    @property
    def is_const(self) -> bool:
        return self.op == "const"

    def __repr__(self) -> str:
        return show(self)


Operand = E | int | bool


def _positive(k: Operand, op: str) -> E:
    """The constant right operand of *, // or %: a positive int (a term stays linear)."""
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise TypeError(f"{op} takes a positive integer constant, got {k!r}")
    return const(k, INT)


def const(v: int | bool, sort: SortT) -> E:
    if sort == BOOL:
        return E("const", (), BOOL, bool(v))
    if isinstance(sort, tuple):
        return E("const", (), sort, int(v) & ((1 << sort[1]) - 1))
    return E("const", (), sort, int(v))


true = const(True, BOOL)
false = const(False, BOOL)


def bv(v: int, width: int) -> E:
    return const(v, BV(width))


def lift(x: Operand, sort: SortT) -> E:
    if isinstance(x, E):
        return x
    if isinstance(x, bool) and sort != BOOL:
        raise TypeError(f"a bool where a {sort} was expected")
    return const(x, sort)


def var(scope: str, name: str, sort: SortT) -> E:
    return E("var", (), sort, (scope, name))


def var_key(e: E) -> tuple[str, str]:
    """The (scope, name) of a var node."""
    return cast("tuple[str, str]", e.val)


def literal_like(e: E) -> bool:
    """An INT-sorted term built only from literals (2, If(c, 8, 16)): it may take any sort."""
    if e.op == "const":
        return True
    return e.op == "ite" and literal_like(e.args[1]) and literal_like(e.args[2])


def recast(e: E, sort: SortT) -> E:
    """Give a literal-like term another sort; for words, zero-extend or truncate."""
    if e.sort == sort:
        return e
    if e.op == "const":
        return const(e.val, sort)  # type: ignore[arg-type]
    if e.op == "ite" and (literal_like(e) or isinstance(e.sort, tuple)):
        return If(e.args[0], recast(e.args[1], sort), recast(e.args[2], sort))
    if isinstance(e.sort, tuple) and isinstance(sort, tuple):
        return E("resize", (e,), sort)
    raise TypeError(f"cannot give {show(e)} : {e.sort} the sort {sort}")


def _join_sort(a: E, b: E) -> SortT:
    if a.sort == b.sort:
        return a.sort
    if isinstance(a.sort, tuple) and isinstance(b.sort, tuple):
        return BV(max(a.sort[1], b.sort[1]))
    raise TypeError(f"sort mismatch: {show(a)} : {a.sort} vs {show(b)} : {b.sort}")


def mk_not(a: E) -> E:
    if a.sort != BOOL:
        raise TypeError(f"not of a non-bool {show(a)}")
    if a.is_const:
        return const(not a.val, BOOL)
    if a.op == "not":
        return a.args[0]
    return E("not", (a,), BOOL)


def mk_and(*xs: Operand) -> E:
    items: list[E] = []
    for x in xs:
        e = lift(x, BOOL)
        if e.sort != BOOL:
            raise TypeError(f"and of a non-bool {show(e)}")
        if e.is_const:
            if not e.val:
                return false
            continue
        items.extend(e.args if e.op == "and" else (e,))
    if not items:
        return true
    return items[0] if len(items) == 1 else E("and", tuple(items), BOOL)


def mk_or(*xs: Operand) -> E:
    items: list[E] = []
    for x in xs:
        e = lift(x, BOOL)
        if e.sort != BOOL:
            raise TypeError(f"or of a non-bool {show(e)}")
        if e.is_const:
            if e.val:
                return true
            continue
        items.extend(e.args if e.op == "or" else (e,))
    if not items:
        return false
    return items[0] if len(items) == 1 else E("or", tuple(items), BOOL)


def mk_un(op: str, a: E) -> E:
    assert op == "bnot"
    if not isinstance(a.sort, tuple):
        raise TypeError(f"~ of a non-word {show(a)}")
    if a.is_const:
        return const(~int(a.val), a.sort)  # type: ignore[call-overload]
    return E(op, (a,), a.sort)


_FOLD = {
    "band": lambda x, y: x & y, "bor": lambda x, y: x | y, "bxor": lambda x, y: x ^ y,
    "add": lambda x, y: x + y, "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y, "div": lambda x, y: x // y, "mod": lambda x, y: x % y,
    "eq": lambda x, y: x == y, "ne": lambda x, y: x != y,
    "lt": lambda x, y: x < y, "le": lambda x, y: x <= y,
}


def mk_bin(op: str, a: E, b: E) -> E:
    if a.sort != b.sort:
        if a.sort == INT and literal_like(a) and b.sort != BOOL:
            a = recast(a, b.sort)
        elif b.sort == INT and literal_like(b) and a.sort != BOOL:
            b = recast(b, a.sort)
    sort = _join_sort(a, b)
    if op in ("band", "bor", "bxor") and not isinstance(sort, tuple):
        raise TypeError(f"bitwise {op} on {sort}")
    if op in ("add", "sub", "mul", "div", "mod", "lt", "le") and sort != INT:
        raise TypeError(f"arithmetic/order {op} needs naturals, got {sort}")
    rsort = BOOL if op in ("eq", "ne", "lt", "le") else sort
    if a.is_const and b.is_const:
        return const(_FOLD[op](a.val, b.val), rsort)
    if op == "band" and (_is(a, 0) or _is(b, 0)):
        return const(0, sort)
    if op in ("bor", "bxor", "add") and _is(b, 0):
        return a if a.sort == sort else E(op, (a, b), rsort)
    if op == "sub" and _is(b, 0):
        return a
    if op in ("mul", "div") and _is(b, 1):
        return a
    if op == "mod" and _is(b, 1):
        return const(0, INT)
    if op in ("eq", "ne") and sort == BOOL:
        # x == True -> x
        if b.is_const:
            return a if bool(b.val) == (op == "eq") else mk_not(a)
        if a.is_const:
            return b if bool(a.val) == (op == "eq") else mk_not(b)
    return E(op, (a, b), rsort)


def _is(e: E, v: int) -> bool:
    return e.is_const and e.val == v


def If(c: Operand, a: Operand, b: Operand) -> E:  # noqa: N802
    ce = lift(c, BOOL)
    if isinstance(a, E):
        ae, be = a, lift(b, a.sort)
    elif isinstance(b, E):
        be, ae = b, lift(a, b.sort)
    else:
        ae, be = lift(a, INT), lift(b, INT)
    if ae.sort != be.sort:
        if ae.sort == INT and literal_like(ae):
            ae = recast(ae, be.sort)
        elif be.sort == INT and literal_like(be):
            be = recast(be, ae.sort)
    sort = _join_sort(ae, be)
    if ce.is_const:
        return ae if ce.val else be
    if ae.is_const and be.is_const and ae.val == be.val:
        return ae
    return E("ite", (ce, ae, be), sort)


def And(*xs: Operand) -> E:  # noqa: N802
    return mk_and(*xs)


def Or(*xs: Operand) -> E:  # noqa: N802
    return mk_or(*xs)


def Not(x: Operand) -> E:  # noqa: N802
    return mk_not(lift(x, BOOL))


def Implies(a: Operand, b: Operand) -> E:  # noqa: N802
    return mk_or(mk_not(lift(a, BOOL)), lift(b, BOOL))


def substitute(e: E, env: dict[tuple[str, str], E]) -> E:
    """Replace variables by expressions (re-folding constants)."""
    memo: dict[int, E] = {}

    def go(x: E) -> E:
        r = memo.get(id(x))
        if r is not None:
            return r
        if x.op == "var":
            r = env.get(var_key(x), x)
        elif x.op == "const":
            r = x
        else:
            args = tuple(go(a) for a in x.args)
            r = rebuild(x, args)
        memo[id(x)] = r
        return r

    return go(e)


def rebuild(x: E, args: tuple[E, ...]) -> E:
    if x.op == "not":
        return mk_not(args[0])
    if x.op == "and":
        return mk_and(*args)
    if x.op == "or":
        return mk_or(*args)
    if x.op == "ite":
        return If(args[0], args[1], args[2])
    if x.op == "bnot":
        return mk_un("bnot", args[0])
    if x.op == "resize":
        a0 = args[0]
        if a0.is_const:
            return const(a0.val, x.sort)  # type: ignore[arg-type]
        return E("resize", (a0,), x.sort)
    return mk_bin(x.op, args[0], args[1])


def variables(e: E) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    seen: set[int] = set()
    stack = [e]
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if x.op == "var":
            out.add(var_key(x))
        stack.extend(x.args)
    return out


_SYM = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "add": "+", "sub": "-",
        "mul": "·", "div": "div", "mod": "mod",
        "band": "&", "bor": "|", "bxor": "^"}


def show(e: E, names: dict[tuple[str, str], str] | None = None) -> str:
    """Readable rendering (used for certificates and error messages)."""
    if e.op == "const":
        if e.sort == BOOL:
            return "⊤" if e.val else "⊥"
        return hex(e.val) if isinstance(e.sort, tuple) else str(e.val)  # type: ignore[arg-type]
    if e.op == "var":
        scope, name = var_key(e)
        if names and (scope, name) in names:
            return names[(scope, name)]
        return {"s": name, "n": name + "'", "p": name, "o": "ret", "x": "effects"}.get(
            scope, name)
    a = [show(x, names) for x in e.args]
    if e.op == "not":
        return f"¬{a[0]}" if e.args[0].op in ("var", "const") else f"¬({a[0]})"
    if e.op == "and":
        return " ∧ ".join(f"({x})" if y.op in ("or", "ite") else x
                          for x, y in zip(a, e.args, strict=True))
    if e.op == "or":
        return " ∨ ".join(f"({x})" if y.op in ("and", "ite") else x
                          for x, y in zip(a, e.args, strict=True))
    if e.op == "ite":
        return f"(if {a[0]} then {a[1]} else {a[2]})"
    if e.op == "bnot":
        return f"~{a[0]}"
    if e.op == "resize":
        return a[0]
    if e.op in ("mul", "div", "mod"):  # parenthesise a compound operand: (a + b) mod 4096
        a = [f"({x})" if y.op not in ("var", "const") else x
             for x, y in zip(a, e.args, strict=True)]
    else:
        a = [f"({x})" if y.op in ("mul", "div", "mod") else x
             for x, y in zip(a, e.args, strict=True)]
    return f"{a[0]} {_SYM[e.op]} {a[1]}"


def conj(xs: Iterable[E]) -> E:
    return mk_and(*xs)
