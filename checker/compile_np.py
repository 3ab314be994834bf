"""Compile model expressions to vectorised numpy code (the explicit engine's interpreter).

Each action is compiled once into a Python function over a frontier of states (arrays of shape
(N, 1)) and all its parameter combinations (arrays of shape (1, K)); numpy broadcasting evaluates
every (state, parameter) pair at once. The semantics is the model's IR: this module only
translates operators.
"""

from __future__ import annotations

import ast
import functools
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from model.lang.action import Action, Semantics
from model.lang.expr import BOOL, INT, E, SortT, literal_like, recast, var_key, width_of
from model.lang.schema import Schema

Arr = npt.NDArray[Any]


_ATOM = re.compile(r"-?\d+|True|False|[A-Za-z_]\w*")
_INT = re.compile(r"-?\d+")


def _int64(v: int, sort: SortT) -> int:
    """A 64-bit word's value as the int64 the arrays hold: its two's complement reading. A
    word has bitwise operations and (in)equality only, which agree on that reading as long
    as every operand has it: the constants here, the parameters (`word_values`) in the
    search's grid and in replay's exact evaluation alike. Any other value as it is."""
    if isinstance(sort, tuple) and sort[0] == "bv" and width_of(sort) == 64 and v >= 1 << 63:
        return v - (1 << 64)
    return v


def word_values(action: Action, params: Mapping[str, int]) -> dict[str, int]:
    """The action's parameter values as the compiled code reads them (a 64-bit word's in
    its two's complement reading, `_int64`)."""
    sorts = {p.name: p.sort for p in action.params}
    return {n: (v - (1 << 64) if n in sorts and sorts[n].kind == "word"
                and sorts[n].width == 64 and v >= 1 << 63 else v) for n, v in params.items()}
_LIT = {"True": True, "False": False}
_FOLD: dict[str, Callable[[Any, Any], Any]] = {
    "band": lambda x, y: x & y, "bor": lambda x, y: x | y, "bxor": lambda x, y: x ^ y,
    "add": lambda x, y: x + y, "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y, "div": lambda x, y: x // y, "mod": lambda x, y: x % y,
    "eq": lambda x, y: x == y, "ne": lambda x, y: x != y,
    "lt": lambda x, y: x < y, "le": lambda x, y: x <= y,
}


class CodeGen:
    """Emit straight-line numpy code for a set of expressions, sharing common subterms.

    Beyond the IR's own constant folding, terms are folded once their operands are known to be
    equal (the same variable or shared subterm: `x == x`, `x & x`) or constant, which is what
    a property comparing a field before and after an action that does not update it reduces
    to; `rename` maps variable names to code (such a field's after-value to its before-value).
    """

    def __init__(self, rename: Mapping[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.memo: dict[int, str] = {}
        self.n = 0
        self.keep: list[E] = []  # keep nodes alive so id() stays unique
        self.structural: dict[tuple[object, ...], str] = {}
        self.rename = dict(rename or {})
        self.inverse: dict[str, str] = {}  # code of (~x & mask) -> x
        self.defs: dict[str, str] = {}  # temporary name -> its code

    def _def(self, name: str) -> str:
        return self.defs.get(name, name)

    def emit(self, e: E) -> str:
        key = id(e)
        if key in self.memo:
            return self.memo[key]
        self.keep.append(e)
        code = self._code(e)
        if e.op in ("const", "var") or _ATOM.fullmatch(code):
            self.memo[key] = code
            return code
        skey = (code, e.sort)
        if skey in self.structural:
            self.memo[key] = self.structural[skey]
            return self.structural[skey]
        name = f"t{self.n}"
        self.structural[skey] = name
        self.n += 1
        self.lines.append(f"{name} = {code}")
        self.defs[name] = code
        self.memo[key] = name
        return name

    def _code(self, e: E) -> str:
        if e.op == "const":
            if e.sort == BOOL:
                return repr(bool(e.val))
            return repr(_int64(int(e.val), e.sort))  # type: ignore[call-overload]
        if e.op == "var":
            scope, name = var_key(e)
            return self.rename.get(f"{scope}_{name}", f"{scope}_{name}")
        a = [self.emit(x) for x in e.args]
        op = e.op
        if op == "not":
            if a[0] in ("True", "False"):
                return repr(a[0] == "False")
            return f"np.logical_not({a[0]})"
        if op in ("and", "or"):
            unit, zero = ("True", "False") if op == "and" else ("False", "True")
            if zero in a:
                return zero
            xs = list(dict.fromkeys(x for x in a if x != unit))
            if len(xs) <= 1:
                return xs[0] if xs else unit
            return "(" + (" & " if op == "and" else " | ").join(xs) + ")"
        if op == "ite":
            if a[0] in ("True", "False"):
                return a[1] if a[0] == "True" else a[2]
            if a[1] == a[2]:
                return a[1]
            return f"np.where({a[0]}, {a[1]}, {a[2]})"
        if op == "bnot":
            if _INT.fullmatch(a[0]):
                return repr(_int64(~int(a[0]) & ((1 << width_of(e.sort)) - 1), e.sort))
            code = (f"np.invert({a[0]})" if width_of(e.sort) == 64 else
                    f"(np.invert({a[0]}) & {(1 << width_of(e.sort)) - 1})")
            self.inverse[code] = a[0]
            return code
        if op == "resize":
            if _INT.fullmatch(a[0]):
                return repr(_int64(int(a[0]) & ((1 << width_of(e.sort)) - 1), e.sort))
            if width_of(e.sort) == 64:  # a narrower word's value, already within 64 bits
                return a[0]
            return f"({a[0]} & {(1 << width_of(e.sort)) - 1})"
        x, y = a
        if x in _LIT and y in _LIT:
            return repr(_FOLD[op](_LIT[x], _LIT[y]))
        if _INT.fullmatch(x) and _INT.fullmatch(y):
            return repr(_int64(_FOLD[op](int(x), int(y)), e.sort))
        if x == y and op in ("eq", "le"):
            return "True"
        if x == y and op in ("ne", "lt"):
            return "False"
        if x == y and op in ("band", "bor"):
            return x
        if x == y and op in ("bxor", "sub"):
            return "0"
        if op == "band" and (self.inverse.get(self._def(y)) == x
                             or self.inverse.get(self._def(x)) == y):
            return "0"  # x & ~x
        if op == "band" and "0" in a:
            return "0"
        if op in ("bor", "bxor", "add") and "0" in a:
            return y if x == "0" else x
        if op == "sub" and y == "0":
            return x
        sym = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "add": "+", "sub": "-",
               "mul": "*", "div": "//", "mod": "%", "band": "&", "bor": "|", "bxor": "^"}[op]
        if e.args[0].sort == BOOL and op in ("eq", "ne"):
            return f"(np.asarray({a[0]}) {sym} {a[1]})"
        return f"({a[0]} {sym} {a[1]})"


def fit(e: E, sort: SortT) -> E:
    """An update expression given the target field's sort."""
    if e.sort == sort:
        return e
    if sort == BOOL and e.sort == INT:
        return e != 0
    if sort == INT and e.sort == BOOL:
        from model.lang.expr import If
        return If(e, 1, 0)
    if literal_like(e) or (isinstance(e.sort, tuple) and isinstance(sort, tuple)):
        return recast(e, sort)
    raise TypeError(f"cannot store {e!r} : {e.sort} in a field of sort {sort}")


def param_grid(action: Action) -> tuple[list[str], Arr]:
    """All parameter combinations of an action's explored domains: (names, (K, nparams))."""
    names = [p.name for p in action.params]
    combos = [tuple(word_values(action, dict(zip(names, c, strict=True))).values())
              for c in itertools.product(*(p.domain for p in action.params))]
    if not names:
        return names, np.zeros((1, 0), dtype=np.int64)
    return names, np.array(combos, dtype=np.int64).reshape(len(combos), len(names))


@dataclass
class CompiledAction:
    action: Action
    index: int
    sem: Semantics
    pnames: list[str]
    pgrid: Arr  # (K, nparams)
    fn: Callable[[Mapping[str, Arr], Mapping[str, Arr]], dict[str, Arr]]
    enabled_fn: Callable[[Mapping[str, Arr], Mapping[str, Arr]], Arr]
    labels: list[str]
    source: str
    updated: list[str] = field(default_factory=list)  # fields some branch updates
    # what the search runs: fn itself, or a variant leaving outcome/effects at 0
    search: Callable[[Mapping[str, Arr], Mapping[str, Arr]], dict[str, Arr]] | None = None
    # the state fields the search variant's results (all but "out" and "eff") depend on: two
    # states equal on these fields get the same results for every parameter row
    reads: list[str] = field(default_factory=list)

    @property
    def k(self) -> int:
        return int(self.pgrid.shape[0])

    def params_at(self, j: int) -> dict[str, int]:
        """Row j's parameter values (a 64-bit word's as the unsigned value it is)."""
        return {n: int(self.pgrid[j, i]) % (1 << 64) if self.wide[i] else int(self.pgrid[j, i])
                for i, n in enumerate(self.pnames)}

    @property
    def wide(self) -> list[bool]:
        """Which parameters are 64-bit words (held in pgrid as two's complement)."""
        return [p.sort.kind == "word" and p.sort.width == 64 for p in self.action.params]


def compile_action(schema: Schema, action: Action, index: int,
                   extra: Sequence[tuple[str, Callable[[Any], E]]] = (),
                   observe: bool = True) -> CompiledAction:
    """Compile an action to fn(S, P) -> {"en", "br", "out", "eff", "<field>"..., extras}.

    `extra` are named predicates over the transition (action properties), each a function of a
    TransitionView, compiled into the same function so they share subterms. `fn` always
    computes everything; without `observe`, `search` is a variant that leaves the outcome and
    effects at 0 (a reachability-only search needs neither)."""
    c = _compile(schema, action, index, extra, True)
    s = _compile(schema, action, index, (), False) if not (observe or extra) else c
    c.search = s.fn
    c.reads = live_fields(s.source, [f.name for f in schema.fields], ("out", "eff"))
    return c


@functools.lru_cache(maxsize=8192)
def _function(src: str, filename: str) -> Any:
    """The function `fn` that generated source `src` defines (its only global is numpy).

    Cached by source: designs derived from one another (what-ifs, the corpus, a mutation
    run's hundred mutants) share most actions' code, and Python's compile() of it was most of
    a mutation run's set-up."""
    ns: dict[str, Any] = {"np": np}
    exec(compile(src, filename, "exec"), ns)
    return ns["fn"]


def live_fields(src: str, fields: Sequence[str], unused: Sequence[str] = ()) -> list[str]:
    """The fields whose `s_<field>` variables the generated function's results depend on.

    Read off the generated straight-line code itself (a backwards liveness pass over its
    assignments), so it is exact for the code that runs; results named in `unused` are not
    counted."""
    return list(_live_fields(src, tuple(fields), tuple(unused)))


@functools.lru_cache(maxsize=8192)
def _live_fields(src: str, fields: tuple[str, ...], unused: tuple[str, ...]) -> tuple[str, ...]:
    fn = ast.parse(src).body[0]
    assert isinstance(fn, ast.FunctionDef)
    ret = fn.body[-1]
    assert isinstance(ret, ast.Return) and isinstance(ret.value, ast.Dict)
    live: set[str] = set()
    for k, v in zip(ret.value.keys, ret.value.values, strict=True):
        if isinstance(k, ast.Constant) and k.value in unused:
            continue
        live |= {n.id for n in ast.walk(v) if isinstance(n, ast.Name)}
    for st in reversed(fn.body[:-1]):
        assert isinstance(st, ast.Assign) and len(st.targets) == 1
        tgt = st.targets[0]
        assert isinstance(tgt, ast.Name)
        if tgt.id in live:
            live |= {n.id for n in ast.walk(st.value) if isinstance(n, ast.Name)}
    return tuple(f for f in fields if f"s_{f}" in live)


def _compile(schema: Schema, action: Action, index: int,
             extra: Sequence[tuple[str, Callable[[Any], E]]], observe: bool
             ) -> CompiledAction:
    from properties.views import TransitionView

    sem = action.semantics(schema)
    g = CodeGen()
    en = g.emit(sem.enabled)
    conds = [g.emit(b.rule.cond) for b in sem.branches]
    vals = [g.emit(b.rule.value) if observe else "0" for b in sem.branches]
    nb = len(sem.branches)
    body = [f"en = np.broadcast_to({en}, SHAPE)"]
    body.append(f"br = np.full(SHAPE, {nb - 1}, dtype=np.int16)")
    for i in range(nb - 2, -1, -1):
        body.append(f"br = np.where({conds[i]}, np.int16({i}), br)")
    out = vals[-1]
    body.append(f"out = np.broadcast_to({out}, SHAPE)")
    for i in range(nb - 2, -1, -1) if observe else ():
        body.append(f"out = np.where(br == {i}, {vals[i]}, out)")
    effs = [b.rule.effects for b in sem.branches] if observe else []
    body.append("eff = np.zeros(SHAPE, dtype=np.int64)")
    for i, ef in enumerate(effs):
        if isinstance(ef, int) and ef == 0:
            continue
        code = repr(ef) if isinstance(ef, int) else g.emit(ef)
        body.append(f"eff = np.where(br == {i}, {code}, eff)")
    results = ["'en': en", "'br': br", "'out': out", "'eff': eff"]
    nexts: dict[str, str] = {}
    for f in schema.fields:
        cur = f"s_{f.name}"
        chain = []
        for i, b in enumerate(sem.branches):
            if f.name in b.rule.updates:
                chain.append((i, g.emit(fit(b.rule.updates[f.name], f.sort.expr_sort))))
        if not chain:
            continue
        expr = cur
        for i, code in reversed(chain):
            expr = f"np.where(br == {i}, {code}, {expr})"
        nm = f"u_{f.name}"
        body.append(f"{nm} = np.broadcast_to(np.asarray({expr}, dtype=INT), SHAPE)")
        nexts[f.name] = nm
        results.append(f"{f.name!r}: {nm}")
    # action properties over (s, n, params, outcome, effects), after the next state exists
    for f in schema.fields:
        if f.name not in nexts:
            body.append(f"n_{f.name} = s_{f.name}")
        else:
            conv = " != 0" if f.sort.kind == "bool" else ""
            body.append(f"n_{f.name} = u_{f.name}{conv}")
    body += ["o_out = out", "x_eff = eff", "b_br = br"]
    # a field no branch updates has the same value after: name it so, so that properties
    # comparing it before and after fold away (and do not make the search read it)
    rename = {f"n_{f.name}": f"s_{f.name}" for f in schema.fields if f.name not in nexts}
    if nb == 1:
        rename["b_br"] = "0"
    if len(set(vals)) == 1:
        rename["o_out"] = vals[0]
    if not any(isinstance(ef, E) or ef != 0 for ef in effs):
        rename["x_eff"] = "0"
    g2 = CodeGen(rename)
    g2.memo, g2.n, g2.keep = dict(g.memo), g.n, g.keep
    g2.structural = dict(g.structural)
    g2.inverse, g2.defs = dict(g.inverse), dict(g.defs)
    tv = TransitionView(schema, action, sem)
    for pname, pred in extra:
        code = g2.emit(pred(tv))
        results.append(f"{pname!r}: np.broadcast_to({code}, SHAPE)")
    head = _prologue(schema, action)
    src = "\n".join(head + ["    " + ln for ln in g.lines + body + g2.lines]
                    + ["    return {" + ", ".join(results) + "}"])
    fn = _function(src, f"<compiled {action.name}>")
    labels = [b.rule.label for b in sem.branches]
    names, grid = param_grid(action)
    return CompiledAction(action, index, sem, names, grid, fn,
                          _enabled_fn(schema, action, sem), labels, src, list(nexts))


def _prologue(schema: Schema, action: Action) -> list[str]:
    """The generated function's first lines: fields and parameters by name, the shape."""
    head = ["def fn(S, P):"]
    for f in schema.fields:
        conv = " != 0" if f.sort.kind == "bool" else ""
        head.append(f"    s_{f.name} = S[{f.name!r}]{conv}")
    for p in action.params:
        conv = " != 0" if p.sort.kind == "bool" else ""
        head.append(f"    p_{p.name} = P[{p.name!r}]{conv}")
    head.append("    SHAPE = np.broadcast_shapes(S['__shape__'].shape, P['__shape__'].shape)")
    # exact evaluation (interpreter.evaluate(): Python ints) keeps the updates exact too: a
    # disabled instance may compute one past int64 (an appending write's i_size + count)
    head.append("    INT = object if '__exact__' in S else np.int64")
    return head


def _enabled_fn(schema: Schema, action: Action, sem: Semantics
                ) -> Callable[[Mapping[str, Arr], Mapping[str, Arr]], Arr]:
    """Just the enabling condition: cheap, so rows where nothing is enabled can be skipped."""
    g = CodeGen()
    code = g.emit(sem.enabled)
    head = _prologue(schema, action)
    src = "\n".join(head + ["    " + ln for ln in g.lines]
                    + [f"    return np.broadcast_to({code}, SHAPE)"])
    fn: Callable[[Mapping[str, Arr], Mapping[str, Arr]], Arr] = _function(
        src, f"<enabled {action.name}>")
    return fn


def compile_state_pred_reads(schema: Schema, pred: E
                             ) -> tuple[Callable[[Mapping[str, Arr]], Arr], list[str]]:
    """A state predicate's function of S, and the fields it reads (the only ones it looks up
    in S)."""
    g = CodeGen()
    code = g.emit(pred)
    body = [*g.lines, f"return np.broadcast_to({code}, S['__shape__'].shape)"]
    used = set(re.findall(r"\bs_(\w+)", "\n".join(body)))
    reads = [f.name for f in schema.fields if f.name in used]
    head = ["def fn(S):"]
    for f in schema.fields:
        if f.name in used:
            conv = " != 0" if f.sort.kind == "bool" else ""
            head.append(f"    s_{f.name} = S[{f.name!r}]{conv}")
    src = "\n".join(head + ["    " + ln for ln in body])
    return _function(src, "<compiled predicate>"), reads
