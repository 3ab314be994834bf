"""Explicit-state breadth-first search, vectorised over the frontier (stateright/TLC style).

States are packed into int64 keys (model/lang/schema.py layout). Each BFS layer is expanded by
every compiled action at once over all parameter combinations; successors are de-duplicated with
np.unique and filtered against the sorted visited array. Per layer we keep (key, parent index,
action, parameter row), which is all a shortest counterexample needs: ~14 bytes a state plus the
visited array's 8.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from checker.compile_np import Arr, CompiledAction, compile_action, compile_state_pred
from model.lang.design import Design
from properties.catalogue import Property
from traces.run import ARun, AStep

ROWS = 4096  # frontier states evaluated per numpy call (× each action's parameter rows)


@dataclass
class PropOutcome:
    prop: Property
    holds: bool  # invariant/action: no violation found; sometimes: witness found
    run: ARun | None = None  # counterexample or witness


@dataclass
class ExploreResult:
    design: Design
    scope: dict[str, int]
    states: int
    transitions: int
    depth: int
    seconds: float
    pruned: int  # transitions leaving the scope (bounded counters), not explored
    coverage: dict[str, dict[str, int]]  # action -> rule label -> times fired
    props: dict[str, PropOutcome]
    stored_bytes: int
    complete: bool = True
    layers: list[tuple[Arr, Arr, Arr, Arr]] = field(default_factory=list, repr=False)

    @property
    def states_per_second(self) -> float:
        return self.states / self.seconds if self.seconds else float("inf")

    def uncovered(self) -> list[tuple[str, str]]:
        return [(a, r) for a, rules in self.coverage.items() for r, n in rules.items() if n == 0]


class Packer:
    def __init__(self, design: Design, scope: Mapping[str, int]) -> None:
        self.schema = design.schema
        self.layout = self.schema.layout(scope)
        self.shift = {n: sh for n, sh, _ in self.layout}
        self.mask = {n: (1 << b) - 1 for n, _, b in self.layout}
        self.bound = {f.name: f.sort.bound(scope) for f in self.schema.fields}
        self.nat = [f.name for f in self.schema.fields if f.sort.kind in ("nat", "enum")]

    def pack(self, st: Mapping[str, int]) -> int:
        return sum((int(st[n]) & self.mask[n]) << self.shift[n] for n in self.shift)

    def unpack(self, key: int) -> dict[str, int]:
        return {n: (key >> self.shift[n]) & self.mask[n] for n in self.shift}

    def fields(self, keys: Arr) -> dict[str, Arr]:
        col = keys.reshape(-1, 1)
        out = {n: (col >> self.shift[n]) & self.mask[n] for n in self.shift}
        out["__shape__"] = col
        return out


class Explorer:
    """BFS over a design within a scope, checking the given properties."""

    def __init__(self, design: Design, scope: Mapping[str, int], props: Sequence[Property],
                 *, max_depth: int | None = None, keep_layers: bool = False,
                 progress: Callable[[str], None] | None = None) -> None:
        self.design = design
        self.scope = dict(scope)
        self.props = list(props)
        self.max_depth = max_depth
        self.keep_layers = keep_layers
        self.progress = progress
        self.packer = Packer(design, scope)
        aprops = [p for p in self.props if p.kind in ("action", "sometimes-action")]
        extras = [(f"prop:{p.name}", p.pred) for p in aprops]
        # outcomes and effects matter to the search only through action properties
        self.actions = [compile_action(design.schema, a, i, extras, observe=bool(extras))
                        for i, a in enumerate(design.actions)]
        self.sprops = {p.name: compile_state_pred(design.schema, p.state_pred(design.schema))
                       for p in self.props if p.kind in ("always", "sometimes")}
        self.aprops = aprops
        self._pgrids = []
        for ca in self.actions:
            P = {n: ca.pgrid[:, i].reshape(1, -1) for i, n in enumerate(ca.pnames)}
            P["__shape__"] = np.zeros((1, ca.k), dtype=np.int8)
            self._pgrids.append(P)

    # -- the search -------------------------------------------------------------------------
    def run(self) -> ExploreResult:
        t0 = time.perf_counter()
        pk = self.packer
        init = np.unique(np.array([pk.pack(s) for s in self.design.init.states(
            self.design.schema)], dtype=np.int64))
        visited = init.copy()
        layers: list[tuple[Arr, Arr, Arr, Arr]] = [
            (init, np.full(init.shape, -1, np.int64), np.full(init.shape, -1, np.int16),
             np.full(init.shape, -1, np.int32))]
        coverage = {ca.action.name: dict.fromkeys(ca.labels, 0) for ca in self.actions}
        found: dict[str, tuple[int, int, int, int] | None] = {p.name: None for p in self.props}
        transitions = 0
        pruned = 0
        self._check_states(init, 0, found)
        depth = 0
        last_report = t0
        frontier = init
        while frontier.size and (self.max_depth is None or depth < self.max_depth):
            cand_k: list[Arr] = []
            cand_p: list[Arr] = []
            cand_a: list[Arr] = []
            cand_j: list[Arr] = []
            for lo in range(0, frontier.size, ROWS):
                keys0 = frontier[lo:lo + ROWS]
                S0 = pk.fields(keys0)
                for ca in self.actions:
                    k = ca.k
                    P = self._pgrids[ca.index]
                    rows_on = ca.enabled_fn(S0, P).any(axis=1)
                    n_on = int(rows_on.sum())
                    if n_on == 0:
                        continue
                    if n_on < keys0.size:
                        idx: Arr | None = np.nonzero(rows_on)[0]
                        keys = keys0[idx]
                        S = {n: v[idx] for n, v in S0.items()}
                    else:
                        idx, keys, S = None, keys0, S0
                    r = (ca.search or ca.fn)(S, P)
                    en = r["en"]
                    br = r["br"]
                    cov = np.bincount(br[en].astype(np.int64), minlength=len(ca.labels))
                    cv = coverage[ca.action.name]
                    for i, lab in enumerate(ca.labels):
                        cv[lab] += int(cov[i])
                    transitions += int(en.sum())
                    for p in self.aprops:
                        hold = r[f"prop:{p.name}"]
                        hit = en & ~hold if p.kind == "action" else en & hold
                        if found[p.name] is None and hit.any():
                            row, j = np.argwhere(hit)[0]
                            at = int(idx[row]) if idx is not None else int(row)
                            found[p.name] = (depth, lo + at, ca.index, int(j))
                    col = keys.reshape(-1, 1)
                    nk = np.repeat(col, k, axis=1)
                    ok = en.copy()
                    for fname in ca.updated:
                        u = r[fname]
                        if fname in pk.nat:
                            ok &= (u >= 0) & (u <= pk.bound[fname])
                        nk += ((u & pk.mask[fname]) - S[fname]) << pk.shift[fname]
                    pruned += int((en & ~ok).sum())
                    ok &= nk != col
                    if not ok.any():
                        continue
                    rows, cols = np.nonzero(ok)
                    cand_k.append(nk[rows, cols])
                    parent_rows = idx[rows] if idx is not None else rows
                    cand_p.append(parent_rows.astype(np.int64) + lo)
                    cand_a.append(np.full(rows.shape, ca.index, np.int16))
                    cand_j.append(cols.astype(np.int32))
            if not cand_k:
                break
            allk = np.concatenate(cand_k)
            uk, first = np.unique(allk, return_index=True)
            pos = np.searchsorted(visited, uk)
            pos[pos >= visited.size] = 0
            fresh = visited[pos] != uk
            uk, first = uk[fresh], first[fresh]
            if not uk.size:
                break
            par = np.concatenate(cand_p)[first]
            act = np.concatenate(cand_a)[first]
            pj = np.concatenate(cand_j)[first]
            depth += 1
            layers.append((uk, par, act, pj))
            visited = np.concatenate([visited, uk])
            visited.sort(kind="stable")
            self._check_states(uk, depth, found)
            frontier = uk
            now = time.perf_counter()
            if self.progress and now - last_report > 1.0:
                last_report = now
                self.progress(f"states={visited.size} depth={depth} "
                              f"states/s={visited.size / (now - t0):,.0f}")
        seconds = time.perf_counter() - t0
        complete = not frontier.size or self.max_depth is None or depth < self.max_depth
        stored = visited.nbytes + sum(a.nbytes + b.nbytes + c.nbytes + d.nbytes
                                      for a, b, c, d in layers)
        self._layers = layers
        props = {}
        for p in self.props:
            where = found[p.name]
            run = self._run_to(where, p) if where is not None else None
            holds = (where is None) if p.kind in ("always", "action") else (where is not None)
            props[p.name] = PropOutcome(p, holds, run)
        return ExploreResult(self.design, self.scope, int(visited.size), transitions, depth,
                             seconds, pruned, coverage, props, stored, complete,
                             layers if self.keep_layers else [])

    def _check_states(self, keys: Arr, depth: int,
                      found: dict[str, tuple[int, int, int, int] | None]) -> None:
        if not self.sprops:
            return
        S = self.packer.fields(keys)
        for p in self.props:
            if p.kind not in ("always", "sometimes") or found[p.name] is not None:
                continue
            v = self.sprops[p.name](S).reshape(-1)
            hit = ~v if p.kind == "always" else v
            if hit.any():
                found[p.name] = (depth, int(np.argmax(hit)), -1, -1)

    # -- counterexamples ----------------------------------------------------------------------
    def path(self, depth: int, idx: int) -> ARun:
        """The shortest run to the state at (layer depth, index idx)."""
        chain: list[tuple[int, int, int]] = []
        d, i = depth, idx
        while d > 0:
            _, par, act, pj = self._layers[d]
            chain.append((int(act[i]), int(pj[i]), d))
            i = int(par[i])
            d -= 1
        init = self.packer.unpack(int(self._layers[0][0][i]))
        run = ARun(init)
        st = init
        for a, j, _ in reversed(chain):
            ca = self.actions[a]
            step = self.apply(ca, st, ca.params_at(j))
            run.steps.append(step)
            st = step.after
        return run

    def apply(self, ca: CompiledAction, st: Mapping[str, int], params: Mapping[str, int]
              ) -> AStep:
        """One transition from a single state (the model interpreter used for replay)."""
        r, en = evaluate(self.packer, ca, st, params)
        if not en:
            raise ValueError(f"{ca.action.name}{dict(params)} is not enabled here")
        after = dict(st)
        for f in self.design.schema.fields:
            if f.name in r:
                after[f.name] = int(np.asarray(r[f.name]).reshape(-1)[0]) & (
                    self.packer.mask[f.name] if f.sort.kind == "word" else -1)
        br = int(np.asarray(r["br"]).reshape(-1)[0])
        return AStep(ca.action.name, dict(params), int(np.asarray(r["out"]).reshape(-1)[0]),
                     int(np.asarray(r["eff"]).reshape(-1)[0]), after, ca.labels[br])

    def _run_to(self, hit: tuple[int, int, int, int], p: Property) -> ARun:
        depth, idx, a, j = hit
        run = self.path(depth, idx)
        if a >= 0:
            ca = self.actions[a]
            st = run.states()[-1]
            run.steps.append(self.apply(ca, st, ca.params_at(j)))
        if p.kind in ("always", "action"):
            run.violation = p.name
        return run


def evaluate(pk: Packer, ca: CompiledAction, st: Mapping[str, int],
             params: Mapping[str, int]) -> tuple[dict[str, Any], bool]:
    S: dict[str, Arr] = {n: np.array([[int(st[n])]], dtype=np.int64) for n in pk.shift}
    S["__shape__"] = np.zeros((1, 1), dtype=np.int8)
    P: dict[str, Arr] = {n: np.array([[int(v)]], dtype=np.int64) for n, v in params.items()}
    P["__shape__"] = np.zeros((1, 1), dtype=np.int8)
    r = ca.fn(S, P)
    return r, bool(np.asarray(r["en"]).reshape(-1)[0])

