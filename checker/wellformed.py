"""Static checks of a design, decided by z3 once per design, before any engine runs it.

1. Every action can be taken: some state and parameter values within the schema's field
   ranges satisfy its `requires` rules (an action none of whose rules can ever fire would be
   explored as if it were real, and its rules counted as covered).
2. Every update fits its field: in every state and for every parameter value where a rule
   decides, the value it stores in a word field has no bit above the field's width, and the
   value it stores in an enum is one of the enum's values. The
   engines store a state in fixed-width slots (the explicit engine's packed key, z3's
   bit-vectors), so a value that does not fit would otherwise be silently truncated
   (F_ADD_SEALS(0x40) stored in the 6-bit seal word as 0) or dropped as if out of scope.
   Naturals are not checked here: their bound is a scope (a fixed one for `nat(fixed=)`),
   and a transition past it is pruned and counted as such by the engines.

A failure is a DesignError naming the design, action, rule, field and a value (with the
parameter values that produce it). The result is cached per design object.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

import z3

from checker.compile_np import fit
from checker.z3_terms import domain, translate, z3_sort
from model.lang.design import Design
from model.lang.designcache import PerDesign
from model.lang.errors import DesignError
from model.lang.expr import INT, E, literal_like

Z = Any

#: design -> (the error or None,)
_CACHE: PerDesign[tuple[DesignError | None]] = PerDesign()
TIMEOUT_MS = 20_000


def validate(design: Design) -> None:
    """Raise DesignError if the design is not well formed (cached per design object)."""
    hit = _CACHE.get(design)
    if hit is None:
        try:
            _check(design)
            err = None
        except DesignError as e:
            err = e
        hit = _CACHE.put(design, (err,))
    if hit[0] is not None:
        raise hit[0]


def _err(design: Design, action: Any, rule: Any, msg: str,
         first: tuple[str, int] | None = None) -> DesignError:
    """A DesignError located at `first`, else the rule's own source line, then the deltas
    that edited the action (newest first), then the design's `derive` call."""
    sites = [first, rule.origin if rule is not None else None, *reversed(action.deltas),
             design.origin]
    found = tuple(x for x in sites if x is not None)
    return DesignError(msg, found[0] if found else None, found[1:])


_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _user_frame(e: BaseException) -> tuple[str, int] | None:
    """The innermost frame of the error outside the modelling language and the checker: the
    design's own code (a rule body, a what-if's function)."""
    skip = [os.path.join(_PKG, "model", "lang"), os.path.join(_PKG, "checker")]
    for fr in reversed(traceback.extract_tb(e.__traceback__)):
        fn = os.path.abspath(fr.filename)
        if not any(fn.startswith(d + os.sep) for d in skip):
            return fr.filename, fr.lineno or 1
    return None


def _check(design: Design) -> None:
    schema = design.schema
    s = {f.name: z3.Const(f"s.{f.name}", z3_sort(f.sort.expr_sort)) for f in schema.fields}
    sdom = [domain(f.sort, s[f.name]) for f in schema.fields]
    for a in design.actions:
        try:
            sem = a.semantics(schema)
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            if msg.startswith(f"{a.name}:"):
                msg = f"action {msg}"
            elif not msg.startswith(f"action {a.name} "):
                msg = f"action {a.name}: {msg}"
            raise _err(design, a, None, f"design {design.name}: {msg}",
                       _user_frame(e) or getattr(e, "where", None)) from None
        p = {q.name: z3.Const(f"p.{q.name}", z3_sort(q.sort.expr_sort)) for q in a.params}
        pdom = []
        for q in a.params:
            sv = q.symbolic_values()
            if sv:  # (none: replay-only, as f_pos: every value)
                pdom.append(z3.Or(*[p[q.name] == _lit(q.sort.expr_sort, v) for v in sv]))
            else:
                pdom.append(domain(q.sort, p[q.name]))
        explored = [z3.Or(*[p[q.name] == _lit(q.sort.expr_sort, v) for v in q.domain])
                    for q in a.params if q.domain]
        env: dict[tuple[str, str], Z] = {("s", k): v for k, v in s.items()}
        env.update({("p", k): v for k, v in p.items()})
        solver = z3.Solver()
        solver.set("timeout", TIMEOUT_MS)
        solver.add(*sdom, *pdom, translate(sem.enabled, env))
        r = solver.check()
        if r == z3.unsat:
            # point at a requires rule that cannot hold by itself, else the last one
            reqs = [x for x in a.rules(schema.state_vars("s"), a.param_vars())
                    if x.kind == "requires"]
            culprit = reqs[-1] if reqs else None
            for x in reqs:
                alone = z3.Solver()
                alone.set("timeout", TIMEOUT_MS)
                alone.add(*sdom, *pdom, translate(x.cond, env))
                if alone.check() == z3.unsat:
                    culprit = x
                    break
            raise _err(design, a, culprit,
                       f"design {design.name}: action {a.name} can never be taken: no state "
                       "and parameter values within the fields' ranges satisfy its requires "
                       f"rules (rules: {', '.join(b.rule.label for b in sem.branches)})")
        for b in sem.branches:
            where = f"design {design.name}: action {a.name}, rule {b.rule.label}"
            for fname, raw in b.rule.updates.items():
                f = schema.by_name.get(fname)
                if f is None:
                    raise _err(design, a, b.rule, f"{where}: updates unknown field {fname!r}")
                try:
                    fit(raw, f.sort.expr_sort)
                except TypeError as e:
                    raise _err(design, a, b.rule, f"{where}, field {fname}: {e}") from None
                bad = _misfit(f.sort, raw, env)
                if bad is None:
                    continue
                solver.push()
                solver.add(translate(b.fires, env), bad[0])
                r = solver.check()
                if r == z3.sat:
                    m = solver.model()
                    # prefer an example with the parameter values the explicit engine explores
                    solver.add(*explored)
                    if solver.check() == z3.sat:
                        m = solver.model()
                    val = m.eval(bad[1], model_completion=True)
                    args = ", ".join(f"{q}={_show(m.eval(v, model_completion=True))}"
                                     for q, v in p.items())
                    raise _err(design, a, b.rule,
                               f"{where}: the update of field {fname} ({_sort_text(f.sort)}) "
                               f"can be {_show(val)}, which does not fit the field"
                               + (f" (parameters {args})" if args else "")
                               + "; the engines would truncate or drop it, so the design "
                               "must exclude it (an earlier rule)")
                if r != z3.unsat:
                    raise _err(design, a, b.rule,
                               f"{where}: could not decide whether the update of field "
                               f"{fname} always fits it (z3: {solver.reason_unknown()})")
                solver.pop()


def _lit(sort: Any, v: int) -> Z:
    if sort == INT:
        return z3.IntVal(v)
    if isinstance(sort, tuple):
        return z3.BitVecVal(v, sort[1])
    return z3.BoolVal(bool(v))


def _misfit(sort: Any, raw: E, env: dict[tuple[str, str], Z]) -> tuple[Z, Z] | None:
    """(the condition under which `raw` does not fit `sort`, the value) or None if it always
    fits by construction."""
    if sort.kind == "word":
        w = sort.width
        if isinstance(raw.sort, tuple):
            if raw.sort[1] <= w:
                return None
            v = translate(raw, env)
            return z3.Extract(raw.sort[1] - 1, w, v) != 0, v
        if raw.sort == INT and literal_like(raw):
            v = translate(raw, env)
            return z3.Or(v < 0, v >= (1 << w)), v
        return None
    if sort.kind == "enum":
        hi = len(sort.values) - 1
        if raw.sort != INT:
            return None
        v = translate(raw, env)
        return z3.Or(v < 0, v > hi), v
    return None


def _show(v: Z) -> str:
    if z3.is_bv_value(v):
        return hex(v.as_long())
    return str(v)


def _sort_text(sort: Any) -> str:
    if sort.kind == "word":
        return f"word({sort.width})"
    return f"enum of {len(sort.values)}"
