"""The model interpreter: one design's compiled actions, run on single states.

Every engine runs a step through this: the explicit search (checker/explicit.py, whose Explorer
is an Interpreter plus the search), the symbolic engines' replay of decoded runs, trace replay,
conformance, the design diff and the corpus. The semantics is the design's rule bodies compiled
once (checker/compile_np.py); nothing here re-states a syscall.

`interpreter_for(design, scope, props)` gives the one cached Interpreter for that design object,
scope and property list (compiling every action costs far more than a replay).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from checker.compile_np import (
    Arr,
    CompiledAction,
    compile_action,
    compile_state_pred_reads,
    live_fields,
    word_values,
)
from checker.packer import Packer
from model.lang.design import Design
from model.lang.designcache import PerDesign
from properties.catalogue import Property
from traces.run import ARun, AStep


class ReplayedFieldRead(ValueError):
    """A field declared `replayed` that an explored action or a property reads."""


def replayed_fields(design: Design, actions: Sequence[CompiledAction],
                    sreads: Mapping[str, Sequence[str]]) -> list[str]:
    """The fields declared `replayed` (model/lang/schema.py Field), checked: an explored
    action may update one, from itself and other replayed fields, and read it for nothing
    else (its enabling, outcome, effects and every other update do not depend on one), and
    no state property reads one. So states that differ only in them have the same successors
    modulo them and the same observations, and the explicit engines leave them out of their
    keys: they explore the quotient graph, exactly. Replay evaluates them (`evaluate`)."""
    names = [f.name for f in design.schema.fields]
    declared = [f.name for f in design.schema.fields if f.replayed]
    if not declared:
        return []
    for ca in actions:
        if not ca.action.explored:
            continue
        bad = set(live_fields(ca.source, names, tuple(declared))) & set(declared)
        if bad:
            raise ReplayedFieldRead(
                f"design {design.name}: action {ca.action.name} reads the replayed "
                f"field(s) {', '.join(sorted(bad))}, which the explicit engines do not store")
    for prop, reads in sreads.items():
        bad = set(reads) & set(declared)
        if bad:
            raise ReplayedFieldRead(
                f"design {design.name}: property {prop} reads the replayed field(s) "
                f"{', '.join(sorted(bad))}, which the explicit engines do not store")
    return declared


class Interpreter:
    """A design's transition relation at a scope: compiled actions (with the given action
    properties compiled into them), compiled state properties, and the packing of a state.

    The scope bounds the packing only (Packer); `apply` itself bounds nothing."""

    def __init__(self, design: Design, scope: Mapping[str, int],
                 props: Sequence[Property] = ()) -> None:
        from checker.wellformed import validate

        validate(design)  # a design that is not well formed is refused, never masked
        self.design = design
        self.scope = dict(scope)
        self.props = list(props)
        aprops = [p for p in self.props if p.kind in ("action", "sometimes-action")]
        extras = [(f"prop:{p.name}", p.pred) for p in aprops]
        # outcomes and effects matter to the search only through action properties
        self.actions = [compile_action(design.schema, a, i, extras, observe=bool(extras))
                        for i, a in enumerate(design.actions)]
        for ca in self.actions:  # the parameter rows this scope explores (Param.at_scope)
            ca.pgrid = scoped_grid(ca, self.scope)
        self.by_name = {ca.action.name: ca for ca in self.actions}
        self.pgrids = [param_arrays(ca) for ca in self.actions]  # each action's P
        spreds = {p.name: compile_state_pred_reads(design.schema, p.state_pred(design.schema))
                  for p in self.props if p.kind in ("always", "sometimes")}
        self.sprops = {n: fn for n, (fn, _) in spreds.items()}
        self.sreads = {n: reads for n, (_, reads) in spreds.items()}
        self.aprops = aprops
        # the state as the explicit engines pack it: without the replayed fields, which
        # nothing they compute reads (checked here)
        self.replayed = replayed_fields(design, self.actions, self.sreads)
        self.packer = Packer(design, scope)  # without them (Packer.omitted)

    def initial_states(self) -> list[dict[str, int]]:
        return [dict(s) for s in self.design.init.states(self.design.schema)]

    def evaluate(self, ca: CompiledAction, st: Mapping[str, int],
                 params: Mapping[str, int]) -> tuple[dict[str, Any], bool]:
        """The compiled action's results at one (state, parameters), and whether enabled."""
        return evaluate(self.packer, ca, st, params)

    def enabled(self, ca: CompiledAction, st: Mapping[str, int],
                params: Mapping[str, int]) -> bool:
        """Some rule decides this instance (no `requires` precondition fails first)."""
        return evaluate(self.packer, ca, st, params)[1]

    def apply(self, ca: CompiledAction, st: Mapping[str, int], params: Mapping[str, int]
              ) -> AStep:
        """One transition from a single state; ValueError when it is not enabled."""
        r, en = evaluate(self.packer, ca, st, params)
        if not en:
            raise ValueError(f"{ca.action.name}{dict(params)} is not enabled here")
        after = dict(st)
        for f in self.design.schema.fields:
            if f.name in r:
                after[f.name] = int(np.asarray(r[f.name]).reshape(-1)[0]) & (
                    self.packer.wmask.get(f.name, -1))
        br = int(np.asarray(r["br"]).reshape(-1)[0])
        return AStep(ca.action.name, dict(params), int(np.asarray(r["out"]).reshape(-1)[0]),
                     int(np.asarray(r["eff"]).reshape(-1)[0]), after, ca.labels[br])

    def first_init(self, run: ARun) -> ARun:
        """The same run from the earliest initial state (Init's choices in order: the
        defaults first) whose first step has the same outcome, effects, rule and after-state:
        a choice the first call overwrites (memfd_create resets noexec_scope and hstate_1g)
        then reads as the default, not as whichever initial state an engine met first."""
        if not run.steps:
            return run
        s0 = run.steps[0]
        ca = self.by_name[s0.action]
        for init in self.design.init.states(self.design.schema):
            if dict(init) == run.init:
                return run
            try:
                step = self.apply(ca, init, s0.params)
            except ValueError:
                continue
            if (step.out, step.eff, step.rule, step.after) == (s0.out, s0.eff, s0.rule,
                                                                s0.after):
                return ARun(dict(init), [step, *run.steps[1:]], run.violation)
        return run

    def state_holds(self, prop: str, st: Mapping[str, int]) -> bool:
        """State property `prop` (compiled in) on one state."""
        S = state_arrays([st], list(st))
        return bool(np.asarray(self.sprops[prop](S)).reshape(-1)[0])

    def transition_holds(self, prop: str, ca: CompiledAction, st: Mapping[str, int],
                         params: Mapping[str, int]) -> tuple[bool, bool]:
        """(enabled, action property `prop` on the transition) for one instance."""
        r, en = evaluate(self.packer, ca, st, params)
        return en, bool(np.asarray(r[f"prop:{prop}"]).reshape(-1)[0])

    def successors(self, st: Mapping[str, int]) -> list[AStep]:
        """Every enabled action instance from st, as `apply` gives it (vectorised over each
        action's parameter grid), in action then parameter-row order."""
        pk = self.packer
        S = state_arrays([st], list(pk.shift), pk.omitted)
        out: list[AStep] = []
        for ca in self.actions:
            r = ca.fn(S, self.pgrids[ca.index])

            def row(name: str, k: int = ca.k, r: Mapping[str, Any] = r) -> Any:
                return np.broadcast_to(r[name], (1, k))[0]

            cols = np.nonzero(row("en"))[0]
            if not cols.size:
                continue
            upd = {f.name: row(f.name) for f in self.design.schema.fields if f.name in r}
            outs, effs, brs = row("out"), row("eff"), row("br")
            for c in cols.tolist():
                after = dict(st)
                for name, arr in upd.items():
                    after[name] = int(arr[c]) & pk.wmask.get(name, -1)
                out.append(AStep(ca.action.name, ca.params_at(c), int(outs[c]), int(effs[c]),
                                 after, ca.labels[int(brs[c])]))
        return out

    def in_scope_instances(self, states: Sequence[Mapping[str, int]]) -> list[Arr]:
        """Per action, a (states, parameter rows) mask: the instances enabled in each state
        whose successor keeps every counter within the scope."""
        S = state_arrays(states, list(self.packer.shift), self.packer.omitted)
        out = []
        for ca in self.actions:
            r = ca.fn(S, self.pgrids[ca.index])
            en = np.broadcast_to(r["en"], (len(states), ca.k))
            out.append(self._in_scope(r, en, S))
        return out

    def _in_scope(self, r: Mapping[str, Any], en: Any, S: Mapping[str, Any]) -> Any:
        ok = np.array(en, copy=True)
        pk = self.packer
        for name in pk.nat:
            if name in r:
                ok &= pk.in_bounds(name, np.broadcast_to(r[name], ok.shape), S)
        return ok

    def next_keys(self, ca: CompiledAction, r: Mapping[str, Arr], keys: Arr,
                  S: Mapping[str, Arr]) -> tuple[Arr, Arr]:
        """Vectorised successors of the states `keys` (fields S) by `ca` over its parameter
        grid, from its results r = ca.fn(S, P): each successor's key (states, parameter rows),
        and where the instance is enabled with every counter of its successor in scope."""
        pk = self.packer
        nk = np.repeat(keys.reshape(-1, 1), ca.k, axis=1)
        en = r["en"].copy()
        for fname in ca.updated:
            if fname not in pk.shift:
                continue  # a field the key does not store (Packer.omitted)
            u = r[fname]
            if fname in pk.nat:
                en &= pk.in_bounds(fname, u, S)
            nk += pk.delta(fname, u, S[fname], S, r)
        return nk, en


def evaluate(pk: Packer, ca: CompiledAction, st: Mapping[str, int],
             params: Mapping[str, int]) -> tuple[dict[str, Any], bool]:
    """The compiled action at one (state, parameters): its results and whether enabled.

    Evaluated over numpy object arrays, i.e. Python integers: exact for any value a trace
    holds (an offset of 2**63-1 plus a length does not wrap as int64 would, and 2**64-1 is
    held); the search, which holds small values only, runs the same code over int64."""
    S: dict[str, Arr] = {n: _exact([[int(st[n])]]) for n in pk.shift}
    S.update({n: _exact([[int(st.get(n, 0))]]) for n in pk.omitted})  # a replay's full state
    S["__shape__"] = np.zeros((1, 1), dtype=np.int8)
    S["__exact__"] = S["__shape__"]  # the compiled code's updates stay Python ints
    P: dict[str, Arr] = {n: _exact([[int(v)]])
                         for n, v in word_values(ca.action, params).items()}
    P["__shape__"] = np.zeros((1, 1), dtype=np.int8)
    r = ca.fn(S, P)
    return r, bool(np.asarray(r["en"]).reshape(-1)[0])


def _exact(rows: list[list[int]]) -> Arr:
    """An object array of Python ints (np.array of a small int would choose int64)."""
    a = np.empty((len(rows), len(rows[0])), dtype=object)
    a[:] = rows
    return a


def state_arrays(states: Sequence[Mapping[str, int]], names: Sequence[str],
                 omitted: Sequence[str] = ()) -> dict[str, Any]:
    """States as the compiled code's S: one (states, 1) column per field; an `omitted` field
    (the packer's: replayed ones) from the state when it has it, else 0."""
    S: dict[str, Any] = {n: np.array([[st[n]] for st in states], dtype=np.int64) for n in names}
    S.update({n: np.array([[st.get(n, 0)] for st in states], dtype=np.int64) for n in omitted})
    S["__shape__"] = np.zeros((len(states), 1), dtype=np.int8)
    return S


def scoped_grid(ca: CompiledAction, scope: Mapping[str, int]) -> Arr:
    """The rows of an action's parameter grid whose every value the scope explores."""
    keep = np.ones(ca.k, dtype=bool)
    for i, p in enumerate(ca.action.params):
        if p.at_scope is not None:
            col = ca.pgrid[:, i] % (1 << 64) if ca.wide[i] else ca.pgrid[:, i]
            keep &= np.array([p.at_scope(int(v), scope) for v in col], dtype=bool)
    out: Arr = ca.pgrid[keep]
    return out


def param_arrays(ca: CompiledAction) -> dict[str, Any]:
    """An action's whole parameter grid as the compiled code's P: one (1, K) row each."""
    P: dict[str, Any] = {n: ca.pgrid[:, i].reshape(1, -1) for i, n in enumerate(ca.pnames)}
    P["__shape__"] = np.zeros((1, ca.k), dtype=np.int8)
    return P


#: design -> {(scope, property names): Interpreter}; at most this many designs are kept
INTERPRETER_DESIGNS = 16
_INTERPRETERS: PerDesign[dict[tuple[tuple[tuple[str, int], ...], tuple[str, ...]],
                              Interpreter]] = PerDesign(INTERPRETER_DESIGNS)


def interpreter_for(design: Design, scope: Mapping[str, int] | None = None,
                    props: Sequence[Property] = ()) -> Interpreter:
    """The cached Interpreter of this design object at `scope` (default: the design's default
    scope) knowing `props`: compiled once, shared by every caller."""
    sc = dict(design.scope() if scope is None else scope)
    per = _INTERPRETERS.setdefault(design, dict)
    key = (tuple(sc.items()), tuple(p.name for p in props))
    hit = per.get(key)
    if hit is None or any(a is not b for a, b in zip(hit.props, props, strict=True)):
        hit = per[key] = Interpreter(design, sc, props)
    return hit
