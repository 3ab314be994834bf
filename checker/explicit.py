"""Explicit-state breadth-first search, vectorised over the frontier (stateright/TLC style).

States are packed into int64 keys (model/lang/schema.py layout). An action's results depend only
on the fields its compiled code reads (CompiledAction.reads), so each action is evaluated once
per distinct projection of a state onto those fields, over all its parameter rows at once, and
what the search needs is memoised per projection: enabled/pruned/per-rule counts, which action
properties some row hits, and every successor as a key delta. Expanding a frontier is then table
look-ups and gathers. Successors are de-duplicated by sorting (key, rank) packed into one int64
and filtered against the sorted visited array. Per layer we keep (key, parent index, action,
parameter row), which is all a shortest counterexample needs: 22 bytes a state plus the visited
array's 8.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from checker.compile_np import Arr, CompiledAction, compile_action, compile_state_pred_reads
from checker.memory import human, over, rss_bytes
from model.lang.design import Design
from properties.catalogue import Property
from traces.run import ARun, AStep

# Which parent a state keeps and which counterexample is found first follow one fixed order of
# the transitions out of a layer: frontier rows in blocks of ORDER_ROWS, within a block action by
# action, then row, then parameter row. CHUNK (a multiple) is how many rows one step expands.
ORDER_ROWS = 4096
_ORDER_SHIFT = ORDER_ROWS.bit_length() - 1
CHUNK = 1 << 16
EVAL_CELLS = 1 << 16  # (state, parameter row) pairs per call of a compiled action
_PACK_BITS = 63  # (key, rank) pairs are sorted as one int64 when they fit, else by lexsort
MEMO_BYTES_PER_STATE = 100  # the memo's bound (Memo.bound)
MEMO_MIN_BYTES = 256 << 20


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
    memo_bytes: int = 0  # the per-projection transition tables (grow with projections, not states)
    stopped: str | None = None  # why the search stopped before its end (the memory bound)

    @property
    def states_per_second(self) -> float:
        return self.states / self.seconds if self.seconds else float("inf")

    def uncovered(self) -> list[tuple[str, str]]:
        return [(a, r) for a, rules in self.coverage.items() for r, n in rules.items() if n == 0]


class ScopeTooWide(ValueError):
    """A state of this design at this scope does not fit the explicit engine's 63-bit key."""


KEY_BITS = 63


class Packer:
    """A state as one non-negative int64 key: each field in its own contiguous bit range.

    A field takes bit_length(bound) bits. When that does not fit in KEY_BITS, a flag word keeps
    only the bits some initial state or update can set (may_set_bits: the 22-bit inode flags
    word of memfd@5.17 carries just VM_LOCKED and VM_NORESERVE); every value stored is checked
    against that mask, so a bit the analysis missed stops the search instead of being dropped.
    If even that does not fit, ScopeTooWide names the largest scope that does."""

    def __init__(self, design: Design, scope: Mapping[str, int]) -> None:
        self.schema = schema = design.schema
        self.bound = {f.name: f.sort.bound(scope) for f in schema.fields}
        self.nat = [f.name for f in schema.fields if f.sort.kind in ("nat", "enum")]
        self.wmask = {f.name: (1 << f.sort.width) - 1 for f in schema.fields
                      if f.sort.kind == "word"}  # a word's value bits
        # sparse word -> (value bit, key bit, length) runs, in the field's key range
        self.runs: dict[str, list[tuple[int, int, int]]] = {}
        self.keep: dict[str, int] = {}  # sparse word -> the value bits it can hold
        plain = _widths(design, scope)
        if sum(plain.values()) <= KEY_BITS:
            widths = plain
        else:
            self.keep = {n: m for n, m in may_set_bits(design).items() if m != self.wmask[n]}
            widths = {n: (bin(self.keep[n]).count("1") if n in self.keep else b)
                      for n, b in plain.items()}
            need = sum(widths.values())
            if need > KEY_BITS:
                raise ScopeTooWide(
                    f"design {design.name} needs {need} bits per state at scope "
                    f"{_scope_text(scope)} and the explicit engine packs a state into "
                    f"{KEY_BITS}; the largest scope that fits: "
                    f"{_scope_text(largest_fitting(design, scope))}")
        self.layout: list[tuple[str, int, int]] = []
        sh = 0
        for f in schema.fields:
            b = widths[f.name]
            self.layout.append((f.name, sh, b))
            if f.name in self.keep:
                self.runs[f.name] = _runs(self.keep[f.name], sh)
            sh += b
        self.bits = sh
        self.shift = {n: s for n, s, _ in self.layout}
        self.mask = {n: (1 << b) - 1 for n, _, b in self.layout}  # the field's key range

    def pack(self, st: Mapping[str, int]) -> int:
        return int(sum(int(self.encode(n, np.array(int(st[n]), np.int64))) for n in self.shift))

    def unpack(self, key: int) -> dict[str, int]:
        k = np.array(key, np.int64)
        return {n: int(self.decode(n, k)) for n in self.shift}

    def decode(self, name: str, keys: Arr) -> Arr:
        """Field `name`'s values in these keys."""
        runs = self.runs.get(name)
        if runs is None:
            return (keys >> self.shift[name]) & self.mask[name]
        out = np.zeros_like(keys)
        for src, ksh, n in runs:
            out |= ((keys >> ksh) & ((1 << n) - 1)) << src
        return out

    def encode(self, name: str, v: Arr) -> Arr:
        """The key bits of field values v (a word's bits beyond its width are dropped, as the
        field stores them)."""
        runs = self.runs.get(name)
        if runs is None:
            return (v & self.mask[name]) << self.shift[name]
        v = v & self.wmask[name]
        stray = v & ~np.int64(self.keep[name])
        if stray.any():
            raise RuntimeError(f"internal error: field {name} took value "
                               f"{hex(int(v[stray != 0].flat[0]))}, outside the bits "
                               f"{hex(self.keep[name])} the packing keeps (may_set_bits)")
        out = np.zeros_like(v)
        for src, ksh, n in runs:
            out |= ((v >> src) & ((1 << n) - 1)) << ksh
        return out

    def delta(self, name: str, u: Arr, s: Arr) -> Arr:
        """key(after) - key(before) for field `name` going from value s to u."""
        if name not in self.runs:
            return ((u & self.mask[name]) - s) << self.shift[name]
        return self.encode(name, u) - self.encode(name, s)

    def fields(self, keys: Arr, only: Sequence[str] | None = None) -> dict[str, Arr]:
        """Each field's values as a column; with `only`, just those fields."""
        col = keys.reshape(-1, 1)
        names = self.shift if only is None else only
        out = {n: self.decode(n, col) for n in names}
        out["__shape__"] = col
        return out


def _scope_text(scope: Mapping[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in scope.items())


def _widths(design: Design, scope: Mapping[str, int]) -> dict[str, int]:
    return {f.name: max(1, f.sort.bound(scope).bit_length()) for f in design.schema.fields}


def _runs(mask: int, at: int) -> list[tuple[int, int, int]]:
    """The runs of set bits of `mask` as (value bit, key bit, length), packed from key bit at."""
    out: list[tuple[int, int, int]] = []
    bit = 0
    while mask >> bit:
        if (mask >> bit) & 1:
            n = 0
            while (mask >> (bit + n)) & 1:
                n += 1
            out.append((bit, at, n))
            at += n
            bit += n
        else:
            bit += 1
    return out


def packed_bits(design: Design, scope: Mapping[str, int]) -> int:
    """Bits a state of `design` takes at `scope` (words sparse where that is needed)."""
    plain = _widths(design, scope)
    if sum(plain.values()) <= KEY_BITS:
        return sum(plain.values())
    keep = may_set_bits(design)
    return sum(bin(keep[n]).count("1") if n in keep else b for n, b in plain.items())


def largest_fitting(design: Design, scope: Mapping[str, int]) -> dict[str, int]:
    """A scope no larger than `scope` whose states fit a key: the largest parameters are halved
    until it fits, then each is raised again as far as it still fits (each stays >= 1)."""
    sc = dict(scope)

    def fits(s: Mapping[str, int]) -> bool:
        return packed_bits(design, s) <= KEY_BITS

    while not fits(sc):
        k = max((k for k in sc if sc[k] > 1), key=lambda k: sc[k], default=None)
        if k is None:
            break
        sc[k] = max(1, sc[k] // 2)
    for k in sc:
        lo, hi = sc[k], scope[k]
        while lo < hi:  # the largest value of k that fits, the others as they are
            mid = (lo + hi + 1) // 2
            if fits({**sc, k: mid}):
                lo = mid
            else:
                hi = mid - 1
        sc[k] = lo
    return sc


def may_set_bits(design: Design) -> dict[str, int]:
    """For each flag word, the bits some initial value or some update can set: a least fixed
    point over every action's update expressions (band narrows, bor/bxor/ite join, constants
    and parameter domains contribute their bits, anything else may set every bit)."""
    from checker.compile_np import fit
    from model.lang.expr import E, var_key

    schema = design.schema
    full = {f.name: (1 << f.sort.width) - 1 for f in schema.fields if f.sort.kind == "word"}
    keep = dict.fromkeys(full, 0)
    for n, vs in design.init.choices(schema).items():
        if n in full:
            for v in vs:
                keep[n] |= v & full[n]
    ups: list[tuple[str, E, dict[str, int]]] = []
    for a in design.actions:
        pbits: dict[str, int] = {}
        for p in a.params:
            m = 0
            for v in p.domain:
                m |= v
            pbits[p.name] = m if p.sort.kind == "word" and m >= 0 else -1
        for b in a.semantics(schema).branches:
            for n, e in b.rule.updates.items():
                if n in full:
                    ups.append((n, fit(e, schema.by_name[n].sort.expr_sort), pbits))

    def bits(e: E, pb: dict[str, int], memo: dict[int, int]) -> int:
        got = memo.get(id(e))
        if got is not None:
            return got
        op = e.op
        if op == "const":
            r = int(e.val) if isinstance(e.sort, tuple) else -1  # type: ignore[call-overload]
        elif op == "var":
            vs, vn = var_key(e)
            r = pb.get(vn, -1) if vs == "p" else keep.get(vn, -1)
        elif op == "band":
            r = bits(e.args[0], pb, memo) & bits(e.args[1], pb, memo)
        elif op in ("bor", "bxor"):
            r = bits(e.args[0], pb, memo) | bits(e.args[1], pb, memo)
        elif op == "ite":
            r = bits(e.args[1], pb, memo) | bits(e.args[2], pb, memo)
        elif op == "resize" and isinstance(e.args[0].sort, tuple):
            r = bits(e.args[0], pb, memo)
        else:
            r = -1
        memo[id(e)] = r
        return r

    changed = True
    while changed:
        changed = False
        for n, e, pb in ups:
            m = keep[n] | (bits(e, pb, {}) & full[n])
            if m != keep[n]:
                keep[n] = m
                changed = True
    return keep


class _Grow:
    """An append-only array (rows of `width` columns, or scalars) with amortised growth."""

    def __init__(self, dtype: Any, width: int = 0) -> None:
        self.buf: Arr = np.zeros((1024, width) if width else (1024,), dtype)
        self.n = 0

    def append(self, a: Arr) -> None:
        m = a.shape[0]
        if self.n + m > self.buf.shape[0]:
            nb = np.zeros((max(2 * self.buf.shape[0], self.n + m), *self.buf.shape[1:]),
                          self.buf.dtype)
            nb[:self.n] = self.buf[:self.n]
            self.buf = nb
        self.buf[self.n:self.n + m] = a
        self.n += m


_HASH = np.uint64(0x9E3779B97F4A7C15)


class _Table:
    """Open-addressing hash map (linear probing, vectorised) from distinct non-negative int64
    keys to dense slot numbers, given in order of insertion; at most 1/4 full."""

    def __init__(self) -> None:
        self.bits = 12
        self.keys = np.full(1 << self.bits, -1, np.int64)
        self.vals = np.zeros(1 << self.bits, np.int32)
        self.n = 0

    def _hash(self, k: Arr) -> Arr:
        return ((k.view(np.uint64) * _HASH) >> np.uint64(64 - self.bits)).view(np.int64)

    def get(self, k: Arr) -> Arr:
        """Each key's slot, -1 where absent."""
        m = (1 << self.bits) - 1
        h = self._hash(k)
        tk = self.keys[h]
        hit = tk == k
        out = self.vals[h]
        if hit.all():
            return out
        out[~hit] = -1
        pend = np.flatnonzero(~hit & (tk != -1))
        while pend.size:
            hp = (h[pend] + 1) & m
            h[pend] = hp
            tk = self.keys[hp]
            ok = tk == k[pend]
            out[pend[ok]] = self.vals[hp[ok]]
            pend = pend[~ok & (tk != -1)]
        return out

    def add(self, k: Arr) -> None:
        """Give distinct absent keys the next slots, in order."""
        ids = np.arange(self.n, self.n + k.size, dtype=np.int32)
        self.n += k.size
        if 4 * self.n > (1 << self.bits):
            old = self.keys != -1
            ok, ov = self.keys[old], self.vals[old]
            while 4 * self.n > (1 << self.bits):
                self.bits += 1
            self.keys = np.full(1 << self.bits, -1, np.int64)
            self.vals = np.zeros(1 << self.bits, np.int32)
            self._put(ok, ov)
        self._put(k, ids)

    def _put(self, k: Arr, v: Arr) -> None:
        m = (1 << self.bits) - 1
        h = self._hash(k)
        while k.size:
            fi = np.flatnonzero(self.keys[h] == -1)
            fh = h[fi]
            fk = k[fi]
            self.keys[fh] = fk  # keys are distinct: one writer per position wins
            won = self.keys[fh] == fk
            done = fi[won]
            self.vals[fh[won]] = v[done]
            rest = np.ones(k.size, bool)
            rest[done] = False
            k, v, h = k[rest], v[rest], h[rest]
            h = np.where(self.keys[h] == -1, h, (h + 1) & m)


class _ActMemo:
    """One action's results per slot of its projection group, computed once per slot by the
    compiled action: enabled/pruned/branch counts, property hits, and the (parameter row, key
    delta) of every successor that leaves the state and stays in scope, as CSR rows."""

    def __init__(self, ex: Explorer, ca: CompiledAction) -> None:
        self.ex = ex
        self.ca = ca
        self.P = ex._pgrids[ca.index]
        # totals over the states expanded, banked from the per-slot counts
        self.transitions = 0
        self.pruned = 0
        self.coverage = np.zeros(len(ca.labels), np.int64)
        self.clear()

    def clear(self) -> None:
        nq = len(self.ex.aprops)
        ca = self.ca
        # per slot (counts are at most the action's parameter rows)
        self.ens = _Grow(np.int32)  # enabled parameter rows
        self.prn = _Grow(np.int32)  # enabled rows whose successor leaves the scope
        self.cov = _Grow(np.int32, len(ca.labels))  # enabled rows per deciding rule
        self.cnt = _Grow(np.int32)  # successors (CSR row length) ...
        self.start = _Grow(np.int64)  # ... and where they start in fd/fj
        self.hb = _Grow(np.bool_, max(nq, 1))  # which properties some row hits
        self.hitany = _Grow(np.bool_)  # some row hits a property not found yet
        self.succ = False  # some slot has a successor
        # per successor
        self.fd = _Grow(np.int64)  # key delta
        self.fj = _Grow(np.int32)  # parameter row
        self.hit_live = False

    def evaluate(self, proj: Arr, unfound: list[int]) -> None:
        # in batches of about EVAL_CELLS (state, parameter row) pairs: temporaries stay in cache
        step = max(1, EVAL_CELLS // self.ca.k)
        for lo in range(0, proj.size, step):
            self._evaluate(proj[lo:lo + step], unfound)

    def _evaluate(self, proj: Arr, unfound: list[int]) -> None:
        pk, ca = self.ex.packer, self.ca
        u_n, nl, nq = proj.size, len(ca.labels), len(self.ex.aprops)
        S = pk.fields(proj)
        ens = np.zeros(u_n, np.int32)
        prn = np.zeros(u_n, np.int32)
        cov = np.zeros((u_n, nl), np.int32)
        cnt = np.zeros(u_n, np.int32)
        hb = np.zeros((u_n, max(nq, 1)), bool)
        # the enabling condition first (cheap): rows where nothing is enabled stay all-zero
        on = np.flatnonzero(ca.enabled_fn(S, self.P).any(axis=1))
        if on.size:
            if on.size < u_n:
                S = {n: v[on] for n, v in S.items()}
            r = (ca.search or ca.fn)(S, self.P)
            en = np.asarray(r["en"])
            m, k = en.shape
            ens[on] = en.sum(axis=1)
            flat = (np.arange(m).reshape(-1, 1) * nl + r["br"])[en]
            cov[on] = np.bincount(flat, minlength=m * nl).reshape(m, nl)
            d = np.zeros((m, k), np.int64)
            ok = en.copy()
            for fname in ca.updated:
                u = r[fname]
                if fname in pk.nat:
                    ok &= (u >= 0) & (u <= pk.bound[fname])
                d += pk.delta(fname, u, S[fname])
            prn[on] = (en & ~ok).sum(axis=1)
            ok &= d != 0
            rows, cols = np.nonzero(ok)
            dv = d[rows, cols]
            # parameter rows leading to the same successor: only the first can be its parent
            o = np.lexsort((cols, dv, rows))
            keep = np.empty(rows.size, bool)
            keep[o] = _run_starts(rows[o]) | _run_starts(dv[o])
            rows, cols, dv = rows[keep], cols[keep], dv[keep]
            cnt[on] = np.bincount(rows, minlength=m)
            self.succ = self.succ or bool(rows.size)
            self.fd.append(dv)
            self.fj.append(cols.astype(np.int32))
            for q in unfound:  # a property found once is never looked for again
                hb[on, q] = self._hit(r, q).any(axis=1)
        self.start.append(self.fd.n - cnt.sum() + np.cumsum(cnt) - cnt)
        self.cnt.append(cnt)
        self.ens.append(ens)
        self.prn.append(prn)
        self.cov.append(cov)
        if nq:
            self.hb.append(hb)
            ha: Arr = np.asarray(hb[:, unfound].any(axis=1))
            self.hitany.append(ha)
            self.hit_live = self.hit_live or bool(ha.any())

    def _hit(self, r: dict[str, Arr], q: int) -> Arr:
        p = self.ex.aprops[q]
        hold = r[f"prop:{p.name}"]
        en = r["en"]
        return en & ~hold if p.kind == "action" else en & hold

    def first_hit(self, proj: int, q: int) -> int:
        """The first parameter row at which a transition from this projection hits
        property q (recomputed: hits are rare, so they are not stored)."""
        S = self.ex.packer.fields(np.array([proj], np.int64))
        r = (self.ca.search or self.ca.fn)(S, self.P)
        return int(self._hit(r, q)[0].argmax())

    def arrays(self) -> list[_Grow]:
        return [self.ens, self.prn, self.cov, self.cnt, self.start, self.hb, self.hitany,
                self.fd, self.fj]

    def refresh_hits(self, unfound: list[int]) -> None:
        if self.ex.aprops:
            n = self.hb.n
            self.hitany.buf[:n] = self.hb.buf[:n][:, unfound].any(axis=1)
            self.hit_live = bool(self.hitany.buf[:n].any())


class _Group:
    """Actions that read the same fields share one projection (key & mask) -> slot table."""

    def __init__(self, mask: int) -> None:
        self.mask = np.int64(mask)
        self.table = _Table()
        self.acts: list[_ActMemo] = []
        self.pending: list[Arr] = []
        self.npending = 0
        self.visits: Arr = np.zeros(0, np.int64)  # states expanded per slot

    def slots(self, keys: Arr, unfound: list[int]) -> Arr:
        proj = keys & self.mask
        sl = self.table.get(proj)
        miss = sl < 0
        if miss.any():
            newp = np.unique(proj[miss])
            base = self.table.n
            self.table.add(newp)
            for am in self.acts:
                am.evaluate(newp, unfound)
            sl[miss] = base + np.searchsorted(newp, proj[miss])
        self.pending.append(sl)
        self.npending += sl.size
        if self.npending > max(1 << 20, self.table.n):
            self.flush()
        return sl

    def flush(self) -> None:
        n = self.table.n
        if self.visits.size < n:
            self.visits = np.concatenate([self.visits, np.zeros(n - self.visits.size, np.int64)])
        if self.pending:
            self.visits += np.bincount(np.concatenate(self.pending), minlength=n)
        self.pending, self.npending = [], 0

    def bank(self) -> None:
        """Add the counts of the states expanded so far to each action's totals."""
        self.flush()
        v, n = self.visits, self.table.n
        for am in self.acts:
            am.transitions += int(v @ am.ens.buf[:n])
            am.pruned += int(v @ am.prn.buf[:n])
            am.coverage += v @ am.cov.buf[:n]
        v[:] = 0

    def clear(self) -> None:
        """Forget every slot (the counts so far are banked)."""
        self.bank()
        self.table = _Table()
        self.visits = np.zeros(0, np.int64)
        for am in self.acts:
            am.clear()

    def nbytes(self) -> int:
        return (self.table.keys.nbytes + self.table.vals.nbytes + self.visits.nbytes
                + sum(a.buf.nbytes for am in self.acts for a in am.arrays()))


class _Memo:
    """The search's view of the compiled actions: each action evaluated once per distinct
    projection of a state onto the fields it reads (compile_np.CompiledAction.reads), its
    results scattered back to every frontier state with that projection."""

    def __init__(self, ex: Explorer) -> None:
        self.ex = ex
        pk = ex.packer
        groups: dict[int, _Group] = {}
        self.acts: list[tuple[_ActMemo, _Group]] = []
        for ca in ex.actions:
            mask = 0
            for n, sh, b in pk.layout:
                if n in ca.reads:
                    mask |= ((1 << b) - 1) << sh
            g = groups.setdefault(mask, _Group(mask))
            am = _ActMemo(ex, ca)
            g.acts.append(am)
            self.acts.append((am, g))
        self.groups = list(groups.values())
        self.unfound = list(range(len(ex.aprops)))
        self.resets = 0

    def expand(self, keys: Arr, lo: int, depth: int,
               found: dict[str, tuple[int, int, int, int] | None], visited: Arr, kbits: int
               ) -> tuple[Arr, Arr, Arr, Arr]:
        """The successors of frontier rows lo.. (keys) not in `visited`, each once, with the
        (parent row, action, parameter row) first in the layer's transition order."""
        n = keys.size
        gslots = {id(g): g.slots(keys, self.unfound) for g in self.groups}
        bends = np.minimum(np.arange(ORDER_ROWS, n + ORDER_ROWS, ORDER_ROWS), n) - 1
        na = len(self.acts)
        per: list[tuple[Arr, Arr, Arr]] = []
        blk = np.zeros((na, bends.size), np.int64)
        hits: dict[int, tuple[int, int, int, int]] = {}
        for ai, (am, g) in enumerate(self.acts):
            sl = gslots[id(g)]
            if am.succ:
                c = am.cnt.buf[sl]
                cum = np.cumsum(c)  # successors of rows up to each row
                per.append((sl, c, cum))
                blk[ai] = np.diff(cum[bends], prepend=0)
            else:
                per.append((sl, _NONE, _NONE))
            if am.hit_live:
                self._hits(am, ai, sl, keys, g.mask, hits)
        if hits:
            for q, (_, ai, row, j) in hits.items():
                found[self.ex.aprops[q].name] = (depth, lo + row, ai, j)
            self.unfound = [q for q in self.unfound if q not in hits]
            for am, _ in self.acts:
                am.refresh_hits(self.unfound)
        m = int(blk.sum())
        if m == 0:
            return _EMPTY
        # rank of each successor in the layer order (block, action, row, parameter row)
        off = (np.cumsum(blk.T.ravel()) - blk.T.ravel()).reshape(-1, na)  # (block, action)
        bs = np.cumsum(blk, axis=1) - blk  # (action, block): block start in the action's list
        adj = off.T - bs
        rb = max(1, (m - 1).bit_length())
        packed_ok = kbits + rb <= _PACK_BITS
        packed = np.empty(m if packed_ok else 0, np.int64)
        nks: list[Arr] = []
        rks: list[Arr] = []
        ar = _arange(max(m, n))
        keysh = keys << rb if packed_ok else keys
        pos = 0
        for ai, (am, _) in enumerate(self.acts):
            sl, c, cum = per[ai]
            tot = int(cum[-1]) if cum.size else 0
            if not tot:
                continue
            # CSR gather: row r's successors are fd[start[sl[r]]:...+c[r]], in order
            offs = np.repeat(am.start.buf[sl] - cum + c, c)
            offs += ar[:tot]
            d = am.fd.buf[offs]
            rowadj = np.repeat(adj[ai], ORDER_ROWS)[:n]  # rank offset of each row's block
            if packed_ok:  # ((key + d) << rb) + rank
                out = packed[pos:pos + tot]
                np.add(np.repeat(keysh + rowadj, c), ar[:tot], out=out)
                d <<= rb
                out += d
            else:
                nks.append(np.repeat(keys, c) + d)
                rks.append(np.repeat(rowadj, c) + ar[:tot])
            pos += tot
        if packed_ok:
            uk, ur = _min_per_key(packed, rb)
        else:
            allk, allr = np.concatenate(nks), np.concatenate(rks)
            order = np.lexsort((allr, allk))
            sk = allk[order]
            first = _run_starts(sk)
            uk = sk[first]
            ur = allr[order][first]
        p = np.searchsorted(visited, uk)
        p[p >= visited.size] = 0
        fresh = visited[p] != uk
        uk, ur = uk[fresh], ur[fresh]
        # decode each rank: its (block, action), its place in that action's list, its row
        offf = off.ravel()
        bid = np.searchsorted(offf, ur, side="right") - 1
        b, aix = np.divmod(bid, na)
        gi = ur - offf[bid] + bs[aix, b]
        par = np.empty(uk.size, np.int64)
        pj = np.empty(uk.size, np.int32)
        for ai in np.unique(aix):
            am = self.acts[ai][0]
            sl, c, cum = per[ai]
            sel = aix == ai
            g = gi[sel]
            row = np.searchsorted(cum, g, side="right")
            par[sel] = row + lo
            pj[sel] = am.fj.buf[am.start.buf[sl[row]] + g - cum[row] + c[row]]
        return uk, par, aix.astype(np.int16), pj

    def _hits(self, am: _ActMemo, ai: int, sl: Arr, keys: Arr, mask: np.int64,
              hits: dict[int, tuple[int, int, int, int]]) -> None:
        rows = np.flatnonzero(am.hitany.buf[sl])
        if not rows.size:
            return
        hb = am.hb.buf[sl[rows]]
        for q in self.unfound:
            w = np.flatnonzero(hb[:, q])
            if not w.size:
                continue
            row = int(rows[w[0]])
            if q not in hits or (row >> _ORDER_SHIFT, ai) < hits[q][:2]:
                hits[q] = (row >> _ORDER_SHIFT, ai, row, am.first_hit(int(keys[row] & mask), q))

    def nbytes(self) -> int:
        return sum(g.nbytes() for g in self.groups)

    def bound(self, states: int) -> None:
        """Keep the memo within MEMO_BYTES_PER_STATE a state visited (or MEMO_MIN_BYTES):
        where projections are hardly shared, slots are forgotten and recomputed rather than
        kept for every state."""
        if self.nbytes() > max(MEMO_MIN_BYTES, MEMO_BYTES_PER_STATE * states):
            self.resets += 1
            for g in self.groups:
                g.clear()

    def totals(self) -> tuple[int, int, dict[str, dict[str, int]]]:
        transitions = pruned = 0
        coverage: dict[str, dict[str, int]] = {}
        for g in self.groups:
            g.bank()
        for am, _ in self.acts:
            transitions += am.transitions
            pruned += am.pruned
            cv = dict.fromkeys(am.ca.labels, 0)
            for i, lab in enumerate(am.ca.labels):
                cv[lab] += int(am.coverage[i])
            coverage[am.ca.action.name] = cv
        return transitions, pruned, coverage


def _run_starts(sk: Arr) -> Arr:
    """Where each run of equal values in a sorted array starts (a mask)."""
    first = np.empty(sk.size, bool)
    first[:1] = True
    np.not_equal(sk[1:], sk[:-1], out=first[1:])
    return first


def _min_per_key(packed: Arr, rb: int) -> tuple[Arr, Arr]:
    """For (key << rb) | rank values: the distinct keys, sorted, and each one's least rank.
    Sorts `packed` in place."""
    packed.sort()
    sk = packed >> rb
    first = _run_starts(sk)
    return sk[first], packed[first] & ((1 << rb) - 1)


def _first_of_runs(keys: Arr, kbits: int) -> tuple[Arr, Arr]:
    """np.unique(keys, return_index=True): distinct keys, sorted, and where each first occurs."""
    rb = max(1, (keys.size - 1).bit_length())
    if kbits + rb > _PACK_BITS:
        uk, first = np.unique(keys, return_index=True)
        return uk, first
    packed = keys << rb
    packed |= _arange(keys.size)
    return _min_per_key(packed, rb)


_NONE = np.zeros(0, np.int64)
_AR: list[Arr] = [np.arange(1 << 16)]


def _arange(n: int) -> Arr:
    """0, 1, ... n-1 (a view of one cached array)."""
    if _AR[0].size < n:
        _AR[0] = np.arange(max(n, 2 * _AR[0].size))
    return _AR[0][:n]
_EMPTY = (_NONE, _NONE, np.zeros(0, np.int16), np.zeros(0, np.int32))


class Explorer:
    """BFS over a design within a scope, checking the given properties."""

    def __init__(self, design: Design, scope: Mapping[str, int], props: Sequence[Property],
                 *, max_depth: int | None = None, keep_layers: bool = False,
                 progress: Callable[[str], None] | None = None,
                 max_memory: int | None = None) -> None:
        from checker.wellformed import validate

        validate(design)  # a design that is not well formed is refused, never masked
        self.design = design
        self.max_memory = max_memory  # bytes of resident memory (checker/memory.py)
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
        spreds = {p.name: compile_state_pred_reads(design.schema, p.state_pred(design.schema))
                  for p in self.props if p.kind in ("always", "sometimes")}
        self.sprops = {n: fn for n, (fn, _) in spreds.items()}
        self._sreads = {n: reads for n, (_, reads) in spreds.items()}
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
        found: dict[str, tuple[int, int, int, int] | None] = {p.name: None for p in self.props}
        self._check_states(init, 0, found)
        memo = _Memo(self)
        kbits = pk.bits
        depth = 0
        last_report = t0
        frontier = init
        stopped: str | None = None
        while frontier.size and (self.max_depth is None or depth < self.max_depth):
            new_k: list[Arr] = []
            new_p: list[Arr] = []
            new_a: list[Arr] = []
            new_j: list[Arr] = []
            for lo in range(0, frontier.size, CHUNK):
                uk, par, act, pj = memo.expand(frontier[lo:lo + CHUNK], lo, depth, found,
                                               visited, kbits)
                memo.bound(visited.size + sum(k.size for k in new_k))
                if uk.size:
                    new_k.append(uk)
                    new_p.append(par)
                    new_a.append(act)
                    new_j.append(pj)
                # the layer's merge copies the visited array and the new states once more
                pending = sum(k.size for k in new_k) * 8
                if over(self.max_memory, 2 * (visited.nbytes + pending)):
                    stopped = (f"memory bound {human(self.max_memory or 0)} reached while "
                               f"expanding depth {depth} ({visited.size:,} states visited, "
                               f"resident {human(rss_bytes())}); every state and "
                               f"transition within depth {depth} was checked")
                    break
            if stopped or not new_k:
                break
            if len(new_k) == 1:
                uk, par, act, pj = new_k[0], new_p[0], new_a[0], new_j[0]
            else:
                # a state reached from several chunks keeps its first (earliest-chunk) parent
                uk, first = _first_of_runs(np.concatenate(new_k), kbits)
                par = np.concatenate(new_p)[first]
                act = np.concatenate(new_a)[first]
                pj = np.concatenate(new_j)[first]
            depth += 1
            layers.append((uk, par, act, pj))
            visited = np.concatenate([visited, uk])
            visited.sort(kind="stable")  # a merge of two sorted runs
            self._check_states(uk, depth, found)
            frontier = uk
            now = time.perf_counter()
            if self.progress and now - last_report > 1.0:
                last_report = now
                self.progress(f"states={visited.size} depth={depth} "
                              f"states/s={visited.size / (now - t0):,.0f}")
        transitions, pruned, coverage = memo.totals()
        seconds = time.perf_counter() - t0
        complete = not stopped and (not frontier.size or self.max_depth is None
                                    or depth < self.max_depth)
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
                             layers if self.keep_layers else [], memo.nbytes(), stopped)

    def _check_states(self, keys: Arr, depth: int,
                      found: dict[str, tuple[int, int, int, int] | None]) -> None:
        todo = [p for p in self.props
                if p.kind in ("always", "sometimes") and found[p.name] is None]
        if not todo:
            return
        S = self.packer.fields(keys, sorted({f for p in todo for f in self._sreads[p.name]}))
        for p in todo:
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
                    self.packer.wmask.get(f.name, -1))
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

