"""Design diff: do two designs behave the same for every call sequence?

Every observable is compared: the call's outcome, its effects (CHG_FD, CHG_MAP...: the content
changes the properties speak of), and the value of every property both designs have (state
properties on the state after the call, action properties on the transition), which is the
state the properties read. Explicitly, within a scope: a breadth-first search over *pairs* of
states. Both designs take the same action instance (same action name and parameter values); a
pair is expanded only through transitions whose observables agree, so the first disagreement on
a path ends it, and the first one found is a shortest distinguishing trace. Actions that exist
in one design only are the other design's additions: they are listed, and explored with the
other design standing still.

The semantics is not re-implemented here: both sides are the designs' compiled actions
(checker/compile_np.py), evaluated on the same parameter grid.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from checker.compile_np import Arr, CompiledAction, live_fields
from checker.explicit import Layer, trace_back
from checker.interpreter import Interpreter, interpreter_for
from checker.memory import human, over, rss_bytes
from checker.packer import Packer
from model.lang.action import Action, outcome_text
from model.lang.design import Design
from properties.catalogue import Property
from traces.run import ARun, AStep


@dataclass
class Divergence:
    """One class of disagreement: an action whose outcome differs, with the deciding rules."""

    action: str
    rule_a: str
    rule_b: str
    count: int
    example: tuple[ARun, ARun]  # the shortest run to it, in each design (same calls)
    what: str = "outcome"  # what differs: outcome | effects | property NAME | enabled


@dataclass
class DiffResult:
    a: Design
    b: Design
    scope: dict[str, int]
    pairs: int
    depth: int
    seconds: float
    only_a: list[str]
    only_b: list[str]
    divergences: list[Divergence] = field(default_factory=list)
    complete: bool = True
    stopped: str | None = None  # why the search stopped before its end (the memory bound)

    @property
    def equivalent(self) -> bool:
        return not self.divergences and not self.only_a and not self.only_b

    @property
    def shortest(self) -> Divergence | None:
        return min(self.divergences, key=lambda d: len(d.example[0]), default=None)


ROWS = 4096
EVAL_CELLS = 1 << 16  # (state, parameter row) cells per evaluation of a compiled action
#: divergence class (action, rule in A, rule in B, what) -> (occurrences, where it first
#: happened: depth, row, step index, parameter column)
Classes = dict[tuple[str, str, str, str], tuple[int, tuple[int, int, int, int]]]
OUTSIDE = "(outside the model)"  # the deciding rule where a call is not possible in a design
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)


class _PairSet:
    """Visited pairs of int64 keys: a sorted array of 64-bit pair hashes for speed, with the
    pairs themselves kept to verify every hit exactly (a hash collision can never drop a pair:
    colliding pairs go to an exact Python set)."""

    def __init__(self) -> None:
        self.h = np.zeros(0, np.uint64)
        self.a = np.zeros(0, np.int64)
        self.b = np.zeros(0, np.int64)
        self.extra: set[tuple[int, int]] = set()

    @property
    def size(self) -> int:
        return int(self.h.size) + len(self.extra)

    @staticmethod
    def _hash(a: Arr, b: Arr) -> Arr:
        with np.errstate(over="ignore"):
            x = a.astype(np.uint64) * _M1
            x ^= (b.astype(np.uint64) + np.uint64(0x632BE59BD9B4E019)) * _M2
            x ^= x >> np.uint64(29)
        return x

    def add(self, a: Arr, b: Arr) -> Arr:
        """Insert the pairs not seen before; return the indices (into a, b) that were new."""
        h = self._hash(a, b)
        uh, first, inv = np.unique(h, return_index=True, return_inverse=True)
        same = (a[first][inv] == a) & (b[first][inv] == b)
        new_idx = []
        if not same.all():  # two different pairs in this batch share a hash: exact path
            for i in np.nonzero(~same)[0].tolist():
                new_idx.append(i) if self._extra_add(int(a[i]), int(b[i])) else None
        pos = np.searchsorted(self.h, uh)
        pos_c = np.minimum(pos, max(self.h.size - 1, 0))
        hit = (self.h.size > 0) & (self.h[pos_c] == uh) if self.h.size else np.zeros(
            uh.size, bool)
        fa, fb = a[first], b[first]
        exact = hit & (self.a[pos_c] == fa) & (self.b[pos_c] == fb) if self.h.size else hit
        for i in np.nonzero(hit & ~exact)[0].tolist():  # a hash shared with an old pair
            if self._extra_add(int(fa[i]), int(fb[i])):
                new_idx.append(int(first[i]))
        fresh = ~hit
        order = np.argsort(np.concatenate([self.h, uh[fresh]]), kind="stable")
        self.h = np.concatenate([self.h, uh[fresh]])[order]
        self.a = np.concatenate([self.a, fa[fresh]])[order]
        self.b = np.concatenate([self.b, fb[fresh]])[order]
        out = np.concatenate([first[fresh], np.array(new_idx, dtype=np.int64)])
        return np.sort(out)

    def _extra_add(self, a: int, b: int) -> bool:
        if (a, b) in self.extra:
            return False
        self.extra.add((a, b))
        return True


def _grid_match(ca: CompiledAction, cb: CompiledAction) -> bool:
    return ca.pnames == cb.pnames and np.array_equal(ca.pgrid, cb.pgrid)


class Differ:
    def __init__(self, a: Design, b: Design, scope: Mapping[str, int], *,
                 max_depth: int | None = None,
                 progress: Callable[[str], None] | None = None,
                 max_memory: int | None = None, states: bool = False) -> None:
        self.a, self.b = a, b
        self.max_memory = max_memory
        #: also compare the successor states' shared fields (what="state FIELD"): a change
        #: no outcome, effect or property shows yet (mutation scoring, checker/mutate.py)
        self.states = states
        sa = {k: v for k, v in scope.items() if k in a.default_scope}
        sb = {k: v for k, v in scope.items() if k in b.default_scope}
        self.props = common_properties(a, b)
        self.ea = interpreter_for(a, a.scope(sa), self.props)
        self.eb = interpreter_for(b, b.scope(sb), self.props)
        self._eff_b_to_a = _effect_map(a, b)
        #: the fields the common state properties read, in each design: all a successor's
        #: state needs decoding for (every field when the states themselves are compared)
        sp = [p.name for p in self.props if p.kind in ("always", "sometimes")]
        self._reads_a = None if states else sorted({f for n in sp for f in self.ea.sreads[n]})
        self._reads_b = None if states else sorted({f for n in sp for f in self.eb.sreads[n]})
        self.scope = dict(scope)
        self.max_depth = max_depth
        self.progress = progress
        acts_a = {c.action.name: c for c in self.ea.actions}
        acts_b = {c.action.name: c for c in self.eb.actions}
        self.common: list[tuple[CompiledAction, CompiledAction]] = []
        for n, ca in acts_a.items():
            cb = acts_b.get(n)
            if cb is not None:
                if not _grid_match(ca, cb):
                    raise ValueError(f"action {n} has different parameters in {a.name} and "
                                     f"{b.name}: compare designs whose common actions agree "
                                     "on parameter names and explored values")
                self.common.append((ca, cb))
        self.only_a = [c for n, c in acts_a.items() if n not in acts_b]
        self.only_b = [c for n, c in acts_b.items() if n not in acts_a]
        #: the product's steps: (name, A's action, B's action); None where a design lacks it
        self.steps: list[tuple[str, CompiledAction | None, CompiledAction | None]] = [
            (c.action.name, c, d) for c, d in self.common]
        self.steps += [(c.action.name, c, None) for c in self.only_a]
        self.steps += [(c.action.name, None, c) for c in self.only_b]
        self._masks: dict[tuple[int, int], np.int64] = {}

    def run(self) -> DiffResult:
        """Breadth-first over pairs of states, a layer at a time (the explicit engine's layer
        and parent bookkeeping: checker/explicit.py Layer, trace_back)."""
        t0 = time.perf_counter()
        # per layer: (A keys, parent index, step index, param row), and the B keys beside it
        a0, b0 = self._initial_pairs()
        self._layers: list[Layer] = [(a0, np.full(a0.size, -1, np.int64),
                                      np.full(a0.size, -1, np.int16),
                                      np.full(a0.size, -1, np.int32))]
        self._bkeys: list[Arr] = [b0]
        # taint: the pair was first reached through a call one design does not have; there a
        # call possible in one design only is a consequence of that addition, not a divergence
        taints: list[Arr] = [np.zeros(a0.size, bool)]
        classes: Classes = {}
        vis = _PairSet()
        vis.add(a0, b0)
        depth = 0
        complete = True
        stopped: str | None = None
        while self._layers[-1][0].size:
            if self.max_depth is not None and depth >= self.max_depth:
                complete = False
                break
            new, stopped = self._expand_layer(depth, taints[-1], classes, vis)
            if stopped:
                complete = False
                break
            if new is None:
                break
            A, B, par, act, pj, taint = new
            keep = vis.add(A, B)
            if not keep.size:
                break
            self._layers.append((A[keep], par[keep], act[keep], pj[keep]))
            self._bkeys.append(B[keep])
            taints.append(taint[keep])
            depth += 1
            if self.progress:
                self.progress(f"pairs={vis.size} depth={depth}")
        divs = [Divergence(self.steps[si][0], la, lb, count, self._runs(d, row, si, col), what)
                for (_, la, lb, what), (count, (d, row, si, col)) in classes.items()]
        divs.sort(key=lambda v: (len(v.example[0]), v.action))
        return DiffResult(self.a, self.b, self.scope, vis.size, depth,
                          time.perf_counter() - t0, [c.action.name for c in self.only_a],
                          [c.action.name for c in self.only_b], divs, complete, stopped)

    def _initial_pairs(self) -> tuple[Arr, Arr]:
        """Each initial state of A with the B states that agree with it on shared fields."""
        pa, pb = self.ea.packer, self.eb.packer
        ia = [pa.pack(s) for s in self.ea.initial_states()]
        ib = [pb.pack(s) for s in self.eb.initial_states()]
        pairs0 = []
        for ka0 in ia:
            sa0 = pa.unpack(ka0)
            for kb0 in ib:
                sb0 = pb.unpack(kb0)
                if all(sa0[n] == sb0[n] for n in sa0.keys() & sb0.keys()):
                    pairs0.append((ka0, kb0))
        return (np.array([p[0] for p in pairs0], np.int64),
                np.array([p[1] for p in pairs0], np.int64))

    def _expand_layer(self, depth: int, taint_all: Arr,
                      classes: Classes, vis: _PairSet) -> tuple[tuple[Arr, ...] | None, str | None]:
        """The successor pairs of the last layer, in ROWS-row chunks, step by step: (A keys,
        B keys, parent, step, parameter row, taint), or None when there is none; and why the
        memory bound stopped the search, if it did. Divergences found go into `classes`."""
        ka_all, kb_all = self._layers[-1][0], self._bkeys[-1]
        out: list[tuple[Arr, ...]] = []
        for lo in range(0, ka_all.size, ROWS):
            if over(self.max_memory, 16 * sum(x[0].size for x in out)):
                return None, (f"memory bound {human(self.max_memory or 0)} reached while "
                              f"expanding depth {depth} ({vis.size:,} pairs visited, resident "
                              f"{human(rss_bytes())}); pairs within depth {depth} compared")
            ka, kb = ka_all[lo:lo + ROWS], kb_all[lo:lo + ROWS]
            taint = taint_all[lo:lo + ROWS]
            for si in range(len(self.steps)):
                got = self._step(si, lo, depth, ka, kb, taint, classes)
                if got is not None:
                    out.append(got)
        if not out:
            return None, None
        return tuple(np.concatenate(col) for col in zip(*out, strict=True)), None

    def _step(self, si: int, lo: int, depth: int, ka: Arr, kb: Arr, taint: Arr,
              classes: Classes) -> tuple[Arr, ...] | None:
        """Step `si` from the pairs (ka, kb) (frontier rows lo..): record where the designs
        disagree, and return the pairs both move to where they agree (or the one design that
        has the call moves), as (A keys, B keys, parent, step, parameter row, taint)."""
        _, ca, cb = self.steps[si]
        ref = ca or cb
        assert ref is not None
        P = (self.ea if ca else self.eb).pgrids[ref.index]
        on = np.zeros(ka.size, bool)
        if ca is not None:
            ia, full_a, da, ena = self._evaluate(self.ea, ca, ka, P)
            on |= np.asarray(full_a["en"]).any(axis=1).reshape(-1)[ia]
        if cb is not None:
            ib, full_b, db, enb = self._evaluate(self.eb, cb, kb, P)
            on |= np.asarray(full_b["en"]).any(axis=1).reshape(-1)[ib]
        if not on.any():
            return None
        idx = np.nonzero(on)[0]
        xa, xb = ka[idx], kb[idx]
        if ca is not None:
            ja = ia[idx]
            na, en = xa.reshape(-1, 1) + da[ja], ena[ja]
        if cb is not None:
            jb = ib[idx]
            nb, enb = xb.reshape(-1, 1) + db[jb], enb[jb]
        if ca is not None and cb is not None:
            differ = self._classify(si, lo, depth, idx, (full_a, ja), (full_b, jb), na, nb,
                                    en & enb, ~taint[idx].reshape(-1, 1), classes)
            move = en & enb & ~differ
        elif ca is not None:
            move, nb = en, np.repeat(xb.reshape(-1, 1), ref.k, axis=1)
        else:
            move, na = enb, np.repeat(xa.reshape(-1, 1), ref.k, axis=1)
        move &= (na != xa.reshape(-1, 1)) | (nb != xb.reshape(-1, 1))
        rows, cols = np.nonzero(move)
        if not rows.size:
            return None
        one_sided = ca is None or cb is None
        return (na[rows, cols], nb[rows, cols], idx[rows].astype(np.int64) + lo,
                np.full(rows.size, si, np.int16), cols.astype(np.int32),
                np.ones(rows.size, bool) if one_sided else taint[idx[rows]])

    def _evaluate(self, ex: Interpreter, ca: CompiledAction, keys: Arr, P: dict[str, Arr]
                  ) -> tuple[Arr, dict[str, Arr], Arr, Arr]:
        """`ca` evaluated once per distinct projection of `keys` onto the fields its results
        (outcome and effects included) depend on, as the explicit engine's memo does
        (checker/explicit.py): each key's projection row, the results per projection, and
        per projection and parameter row the key delta of the successor and whether it is
        enabled within the scope (Interpreter.next_keys)."""
        m = self._masks.get((id(ex), ca.index))
        if m is None:
            m = self._masks[(id(ex), ca.index)] = result_mask(ex.packer, [ca])
        proj, inv = np.unique(keys & m, return_inverse=True)
        S = ex.packer.fields(proj)
        r = ca.fn(S, P)
        nk, en = ex.next_keys(ca, r, proj, S)
        return inv.reshape(-1), r, nk - proj.reshape(-1, 1), en

    def _classify(self, si: int, lo: int, depth: int, idx: Arr, A: tuple[dict[str, Arr], Arr],
                  B: tuple[dict[str, Arr], Arr], na: Arr, nb: Arr, in_scope: Arr, clean: Arr,
                  classes: Classes) -> Arr:
        """Where a common step's observables differ (a mask over (pair, parameter row)); each
        difference counted in its class (action, rule in A, rule in B, what differs). A and B:
        each design's results per projection and each pair's projection row. The model's own
        enabling condition decides "outside the model"; a successor pruned by the explicit
        scope is not a divergence."""
        name, ca, cb = self.steps[si]
        assert ca is not None and cb is not None
        (fa, ia), (fb, ib) = A, B
        raw_a, raw_b = np.asarray(fa["en"])[ia], np.asarray(fb["en"])[ib]
        both_raw = raw_a & raw_b
        # the call's own observables are functions of the two projections: compared once per
        # distinct pair of them, as the index of the first one that differs (0: none)
        nu = int(np.asarray(fb["en"]).shape[0])
        pairs, back = np.unique(ia.astype(np.int64) * nu + ib, return_inverse=True)
        names, first = self._observe_call(fa, fb, pairs // nu, pairs % nu)
        what = first[back.reshape(-1)]
        # the state after: decoded only where both moved within the scope and the call's
        # observables agree (most cells are disabled calls)
        cells = np.flatnonzero(in_scope & (what == 0))
        snames, sfirst = self._observe_states(na.reshape(-1)[cells], nb.reshape(-1)[cells])
        if snames:
            flat = what.reshape(-1).copy()
            flat[cells] = np.where(sfirst > 0, sfirst + len(names), 0)
            what, names = flat.reshape(what.shape), names + snames
        differ: Arr = ((raw_a ^ raw_b) & clean) | (both_raw & (what > 0))
        for row, col in zip(*np.nonzero(differ), strict=True):
            w = ("enabled" if not both_raw[row, col] else names[int(what[row, col]) - 1])
            key = (name, ca.labels[int(np.asarray(fa["br"])[ia[row], col])]
                   if raw_a[row, col] else OUTSIDE,
                   cb.labels[int(np.asarray(fb["br"])[ib[row], col])]
                   if raw_b[row, col] else OUTSIDE, w)
            rec = classes.get(key)
            classes[key] = ((1, (depth, lo + int(idx[row]), si, int(col)))
                            if rec is None else (rec[0] + 1, rec[1]))
        return differ

    def _observe_call(self, fa: dict[str, Arr], fb: dict[str, Arr], ua: Arr, ub: Arr
                      ) -> tuple[list[str], Arr]:
        """The call's observables besides enabledness, in order: the outcome, the effects (by
        name), each common action property on the transition; and for each pair of
        projection rows (ua, ub) and parameter row, 1 + the index of the first that differs
        (0: none)."""
        def at(r: dict[str, Arr], key: str, u: Arr) -> Arr:
            return np.asarray(r[key])[u]

        ea, eb = at(fa, "eff", ua).astype(np.int64), at(fb, "eff", ub).astype(np.int64)
        if self._eff_b_to_a is not None:
            conv = np.zeros_like(eb)
            for bit_b, bit_a in self._eff_b_to_a:
                conv |= np.where(eb & bit_b, bit_a, 0)
            eb = conv
        whats = [("outcome", at(fa, "out", ua) != at(fb, "out", ub)), ("effects", ea != eb)]
        for p in self.props:
            if p.kind in ("action", "sometimes-action"):
                key = f"prop:{p.name}"
                whats.append((f"property {p.name}", at(fa, key, ua) != at(fb, key, ub)))
        return [w for w, _ in whats], _first_true([dw for _, dw in whats])

    def _observe_states(self, na: Arr, nb: Arr) -> tuple[list[str], Arr]:
        """The successor states' observables, in order: with `states`, each shared field;
        each common state property. For each pair of successor keys (na, nb), 1 + the index
        of the first that differs (0: none)."""
        sp = [p for p in self.props if p.kind in ("always", "sometimes")]
        if not (sp or self.states):
            return [], np.zeros(na.size, np.int16)
        SA = self.ea.packer.fields(na, self._reads_a)
        SB = self.eb.packer.fields(nb, self._reads_b)
        whats: list[tuple[str, Arr]] = []
        if self.states:
            for f in [n for n in SA if n in SB and n != "__shape__"]:
                whats.append((f"state {f}", np.asarray(SA[f]) != np.asarray(SB[f])))

        def col(v: object) -> Arr:  # a property's value per cell (it may fold to one)
            a = np.asarray(v)
            return np.broadcast_to(a.reshape(-1, 1) if a.ndim else a, (na.size, 1))

        for p in sp:
            va, vb = col(self.ea.sprops[p.name](SA)), col(self.eb.sprops[p.name](SB))
            whats.append((f"property {p.name}", va != vb))
        return ([w for w, _ in whats],
                _first_true([np.asarray(dw).reshape(-1) for _, dw in whats], na.size))

    def _runs(self, depth: int, row: int, si: int, col: int) -> tuple[ARun, ARun]:
        """The path to pair (depth, row) plus the diverging step, replayed in each design."""
        root, chain = trace_back(self._layers, depth, row)
        chain.append((si, col))
        out = []
        for ex, key in ((self.ea, int(self._layers[0][0][root])),
                        (self.eb, int(self._bkeys[0][root]))):
            # the full initial state (a key does not hold the replayed fields)
            st = next(s for s in ex.initial_states() if ex.packer.pack(s) == key)
            run = ARun(dict(st))
            for s, j in chain:
                c = ex.by_name.get(self.steps[s][0])
                if c is None:
                    continue  # the other design's addition: this design stands still
                params = c.params_at(j)
                if not ex.enabled(c, st, params):
                    run.steps.append(AStep(c.action.name, params, 0, 0, dict(st), OUTSIDE))
                    break
                step = ex.apply(c, st, params)
                run.steps.append(step)
                st = step.after
            out.append(run)
        # from the default initial state where the first step makes it the same run, in both
        # designs alike (the pair starts from one initial choice)
        fa, fb = self.ea.first_init(out[0]), self.eb.first_init(out[1])
        if all(fa.init.get(n) == fb.init.get(n) for n in set(fa.init) & set(fb.init)):
            return fa, fb
        return out[0], out[1]


def result_mask(pk: Packer, acts: Sequence[CompiledAction]) -> np.int64:
    """The key bits of the fields the actions' results depend on, outcome and effects
    included (compile_np.live_fields), plus the fields they update: two states equal on these
    bits get the same results and the same key delta for every parameter row. A byte count
    is decoded, and bounded, with its page size's fields (Packer.per), so those count too."""
    names = [n for n, _, _ in pk.layout]
    used: set[str] = set()
    for ca in acts:
        used |= set(live_fields(ca.source, names)) | set(ca.updated)
    used |= {b for f in list(used) if f in pk.per for b in pk.per[f][0]}
    return np.int64(sum(((1 << b) - 1) << sh for n, sh, b in pk.layout if n in used))


def _first_true(masks: Sequence[Arr], n: int | None = None) -> Arr:
    """1 + the index of the first mask true at each cell, 0 where none is (int16; the masks
    broadcast to one shape, or to n cells)."""
    if not masks:
        return np.zeros(n or 0, np.int16)
    shape = np.broadcast_shapes(*(np.shape(m) for m in masks))
    out = np.zeros(shape, np.int16)
    for i in range(len(masks) - 1, -1, -1):
        out = np.where(masks[i], np.int16(i + 1), out)
    return out


def common_properties(a: Design, b: Design) -> list[Property]:
    """The properties both designs have: their values are observables the diff compares."""
    from properties.catalogue import for_design

    names_b = {p.name for p in for_design(b)}
    return [p for p in for_design(a) if p.name in names_b]


def _effect_map(a: Design, b: Design) -> list[tuple[int, int]] | None:
    """B's effect bits in A's numbering, by name (None when both number them alike); an
    effect only B has gets a bit A never sets, so it always differs."""
    if a.effects == b.effects:
        return None
    out = []
    for i, n in enumerate(b.effects):
        out.append((1 << i, (1 << a.effects.index(n)) if n in a.effects
                    else 1 << (len(a.effects) + i)))
    return out


def describe(d: Divergence) -> str:
    a, b = d.example
    oa = outcome_text(a.steps[-1].out) if a.steps else "?"
    ob = outcome_text(b.steps[-1].out) if b.steps else "?"
    return (f"{d.action}: {d.rule_a} -> {oa} vs {d.rule_b} -> {ob} "
            f"({d.count} reachable occurrences)")


def restrict_domain(d: Design, action: str, param: str, mask: int) -> Design:
    """The design exploring only `param` values of `action` with no bit of `mask` set."""
    a = d.action(action)
    p = next((p for p in a.params if p.name == param), None)
    if p is None:
        raise KeyError(f"action {action} of {d.name} has no parameter {param!r}")
    keep = [v for v in p.domain if not v & mask]
    return d.derive(d.name, d.doc, edit={action: lambda x: x.with_params(**{param: keep})},
                    kernel=d.kernel)


def rule_changes(a: Design, b: Design) -> list[str]:
    """Static view: per common action, the rules B adds, drops or changes (by label)."""
    from model.lang.action import Rule
    from model.lang.expr import E, show

    out = []
    bn = {x.name: x for x in b.actions}
    for x in a.actions:
        y = bn.get(x.name)
        if y is None:
            continue

        def table(act: Action, d: Design) -> dict[str, str]:
            rs = act.rules(d.schema.state_vars("s"), act.param_vars())
            def eff(r: Rule) -> str:
                e = r.effects
                return show(e) if isinstance(e, E) else str(e)

            return {r.label: f"{r.kind} {show(r.value)} when {show(r.cond)} "
                    f"upd {sorted((k, show(v)) for k, v in r.updates.items())} "
                    f"effects {eff(r)}" for r in rs}

        ta, tb = table(x, a), table(y, b)
        for lab in tb:
            if lab not in ta:
                out.append(f"{x.name}: + {lab}")
            elif ta[lab] != tb[lab]:
                out.append(f"{x.name}: ~ {lab}")
        for lab in ta:
            if lab not in tb:
                out.append(f"{x.name}: - {lab}")
    return out


class OneActionDiff:
    """The design diff of `base` against designs that differ from it in one action only (same
    schema, initial states and every other action object: a mutant, checker/mutate.py), at a
    scope, comparing outcomes, effects and successor states.

    This is the product search of Differ(base, other, states=True) done once for many
    `other`s: every action but the edited one is the same compiled code in both, so until the
    first disagreement both runs are in the same state, and the pairs the product visits are
    exactly (s, s) for the base's reachable states s. The two designs are therefore the same
    within the scope iff the edited action gives the same enabledness, outcome, effects and
    successor state in every reachable state of the base for every explored parameter row,
    and the shortest distinguishing trace is a shortest path to the shallowest state where it
    does not. The base is explored once (checker/explicit.py, every layer kept); each `other`
    costs one evaluation of its edited action per distinct projection of those states onto
    the fields the two actions read (as the explicit search memoises them)."""

    def __init__(self, base: Design, scope: Mapping[str, int], *,
                 max_memory: int | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        from checker.explicit import Explorer

        self.base = base
        self.scope = dict(base.scope({k: v for k, v in scope.items()
                                      if k in base.default_scope}))
        self.ex = Explorer(base, self.scope, [], keep_layers=True, elide=False,
                           max_memory=max_memory, progress=progress)
        self.result = self.ex.run()
        layers = self.result.layers
        self.keys = np.concatenate([ly[0] for ly in layers])
        self.offsets = np.cumsum([0] + [ly[0].size for ly in layers])
        self.states = int(self.keys.size)
        self.depth = self.result.depth
        self.complete = self.result.complete
        self.stopped = self.result.stopped

    def compare(self, other: Design, action: str, first_only: bool = False) -> DiffResult:
        """The diff of the base and `other`, whose action `action` alone differs. With
        `first_only`, the states are compared shallowest first and the comparison stops after
        the first block of states where they differ: the shortest distinguishing trace is
        among the divergences found, and their counts are those of the states compared."""
        from checker.compile_np import compile_action
        from checker.interpreter import param_arrays, scoped_grid

        t0 = time.perf_counter()
        b = self.base
        if other.schema != b.schema or other.init != b.init or \
                [a.name for a in other.actions] != [a.name for a in b.actions] or \
                any(x is not y for x, y in zip(b.actions, other.actions, strict=True)
                    if x.name != action):
            raise ValueError(f"{other.name} differs from {b.name} in more than action "
                             f"{action}: compare them with Differ")
        i = next(j for j, a in enumerate(b.actions) if a.name == action)
        ca = self.ex.actions[i]
        cb = compile_action(other.schema, other.actions[i], i)
        cb.pgrid = scoped_grid(cb, self.scope)
        if not _grid_match(ca, cb):
            raise ValueError(f"action {action} explores other parameter values in "
                             f"{other.name} than in {b.name}")
        updated = sorted(set(ca.updated) | set(cb.updated))
        pk = self.ex.packer
        proj = self.keys & result_mask(pk, [ca, cb])
        _, first, counts = np.unique(proj, return_index=True, return_counts=True)
        order = np.argsort(first, kind="stable")  # breadth-first: shallowest states first
        first, counts = first[order], counts[order]
        P = param_arrays(ca)
        classes: dict[tuple[str, str, str], list[int]] = {}  # -> [count, state index, col]
        rows = max(16, EVAL_CELLS // max(1, ca.k))
        lo = 0
        while lo < first.size and not (classes and first_only):
            hi = min(lo + rows, first.size)
            S = pk.fields(self.keys[first[lo:hi]])
            ra, rb = ca.fn(S, P), cb.fn(S, P)
            shape = (hi - lo, ca.k)
            ea, eb = (np.broadcast_to(r["en"], shape) for r in (ra, rb))
            both = ea & eb
            whats: list[tuple[str, Arr]] = [("enabled", ea ^ eb)]
            for key in ("out", "eff"):
                dv = np.broadcast_to(ra[key], shape) != np.broadcast_to(rb[key], shape)
                whats.append(("outcome" if key == "out" else "effects", both & dv))
            for f in updated:
                va = np.broadcast_to(ra.get(f, S[f]), shape)
                vb = np.broadcast_to(rb.get(f, S[f]), shape)
                whats.append((f"state {f}", both & (va != vb)))
            seen = np.zeros(shape, bool)
            for what, dv in whats:
                dv = dv & ~seen  # each instance in the first class it differs in
                seen |= dv
                for row, col in zip(*np.nonzero(dv), strict=True):
                    la = ca.labels[int(np.broadcast_to(ra["br"], shape)[row, col])] \
                        if ea[row, col] else OUTSIDE
                    lb = cb.labels[int(np.broadcast_to(rb["br"], shape)[row, col])] \
                        if eb[row, col] else OUTSIDE
                    st = int(first[lo + row])
                    rec = classes.setdefault((la, lb, what), [0, st, int(col)])
                    rec[0] += int(counts[lo + row])
                    if st < rec[1]:
                        rec[1], rec[2] = st, int(col)
            lo = hi
        divs = [Divergence(action, la, lb, n, self._runs(other, ca, st, col), what)
                for (la, lb, what), (n, st, col) in classes.items()]
        divs.sort(key=lambda v: (len(v.example[0]), v.what))
        return DiffResult(b, other, self.scope, self.states, self.depth,
                          time.perf_counter() - t0, [], [], divs, self.complete, self.stopped)

    def _runs(self, other: Design, ca: CompiledAction, st: int, col: int) -> tuple[ARun, ARun]:
        """The shortest run to reachable state `st` (an index into the layers) and then the
        edited action with parameter row `col`, in the base and in `other`."""
        depth = int(np.searchsorted(self.offsets, st, side="right")) - 1
        prefix = self.ex.path(depth, st - int(self.offsets[depth]))
        ob = interpreter_for(other, self.scope)
        out = []
        for ex in (self.ex, ob):
            c = ex.by_name[ca.action.name]
            run = ARun(dict(prefix.init), list(prefix.steps), None)
            s = prefix.states()[-1]
            params = c.params_at(col)
            if ex.enabled(c, s, params):
                run.steps.append(ex.apply(c, s, params))
            else:
                run.steps.append(AStep(c.action.name, params, 0, 0, dict(s), OUTSIDE))
            out.append(run)
        return out[0], out[1]
