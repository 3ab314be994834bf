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

from checker.compile_np import Arr, CompiledAction, live_fields
from checker.interpreter import Interpreter
from checker.memory import human, over, rss_bytes
from checker.packer import Packer
from checker.visited import Grow, KeySet, Table
from model.lang.design import Design
from properties.catalogue import Property
from traces.run import ARun

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

#: One breadth-first layer: (state keys, each state's parent index in the layer before (-1 in
#: layer 0), the action taking the parent to it, that action's parameter row). Shared by the
#: explicit search and the design diff's product search (checker/diff.py). Without
#: keep_layers the search keeps the keys of layer 0 and of its frontier only.
Layer = tuple[Arr, Arr, Arr, Arr]


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
    layers: list[Layer] = field(default_factory=list, repr=False)
    memo_bytes: int = 0  # the per-projection transition tables (grow with projections, not states)
    stopped: str | None = None  # why the search stopped before its end (the memory bound)
    elided: list[str] = field(default_factory=list)  # fields not stored (unread_fields)

    @property
    def states_per_second(self) -> float:
        return self.states / self.seconds if self.seconds else float("inf")

    def uncovered(self) -> list[tuple[str, str]]:
        return [(a, r) for a, rules in self.coverage.items() for r, n in rules.items() if n == 0]


class _ActMemo:
    """One action's results per slot of its projection group, computed once per slot by the
    compiled action: enabled/pruned/branch counts, property hits, and the (parameter row, key
    delta) of every successor that leaves the state and stays in scope, as CSR rows."""

    def __init__(self, ex: Explorer, ca: CompiledAction) -> None:
        self.ex = ex
        self.ca = ca
        self.P = ex.pgrids[ca.index]
        # totals over the states expanded, banked from the per-slot counts
        self.transitions = 0
        self.pruned = 0
        self.coverage = np.zeros(len(ca.labels), np.int64)
        self.clear()

    def clear(self) -> None:
        nq = len(self.ex.aprops)
        ca = self.ca
        # per slot: counts are at most the action's parameter rows, so they are held in the
        # narrowest integer that holds that many (the memo is most of the search's memory)
        small = _count_dtype(ca.k)
        self.ens = Grow(small)  # enabled parameter rows
        self.prn = Grow(small)  # enabled rows whose successor leaves the scope
        self.cov = Grow(small, len(ca.labels))  # enabled rows per deciding rule
        self.cnt = Grow(small)  # successors (CSR row length) ...
        self.start = Grow(np.int64)  # ... and where they start in fd/fj
        self.hb = Grow(np.uint8, (max(nq, 1) + 7) // 8)  # which properties some row hits, as bits
        self.hitany = Grow(np.bool_)  # some row hits a property not found yet
        self.succ = False  # some slot has a successor
        # per successor
        self.fd = Grow(np.int64)  # key delta
        self.fj = Grow(small)  # parameter row
        self.hit_live = False

    def evaluate(self, proj: Arr, unfound: list[int]) -> None:
        # in batches of about EVAL_CELLS (state, parameter row) pairs: temporaries stay in cache
        step = max(1, EVAL_CELLS // max(1, self.ca.k))  # k = 0: no row at this scope
        for lo in range(0, proj.size, step):
            self._evaluate(proj[lo:lo + step], unfound)

    def _evaluate(self, proj: Arr, unfound: list[int]) -> None:
        pk, ca = self.ex.kp, self.ca
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
                if fname not in pk.shift:
                    continue  # an unread field the key does not store (unread_fields)
                u = r[fname]
                if fname in pk.nat:
                    ok &= pk.in_bounds(fname, u, S)
                d += pk.delta(fname, u, S[fname], S, r)
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
            self.hb.append(np.packbits(hb, axis=1))
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
        S = self.ex.kp.fields(np.array([proj], np.int64))
        r = (self.ca.search or self.ca.fn)(S, self.P)
        return int(self._hit(r, q)[0].argmax())

    def arrays(self) -> list[Grow]:
        return [self.ens, self.prn, self.cov, self.cnt, self.start, self.hb, self.hitany,
                self.fd, self.fj]

    def refresh_hits(self, unfound: list[int]) -> None:
        if self.ex.aprops:
            n = self.hb.n
            live = np.zeros(len(self.ex.aprops), bool)
            live[unfound] = True
            self.hitany.buf[:n] = (self.hb.buf[:n] & np.packbits(live)).any(axis=1)
            self.hit_live = bool(self.hitany.buf[:n].any())


class _Group:
    """Actions that read the same fields share one projection (key & mask) -> slot table."""

    def __init__(self, mask: int) -> None:
        self.mask = np.int64(mask)
        self.table = Table()
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
        if self.npending > max(1 << 18, self.table.n):  # bounds the pending slot lists
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
        self.table = Table()
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
        pk = ex.kp
        groups: dict[int, _Group] = {}
        self.acts: list[tuple[_ActMemo, _Group]] = []
        for ca in ex.actions:
            mask = 0
            for n, sh, b in pk.layout:
                if n in ex.search_reads[ca.index]:
                    mask |= ((1 << b) - 1) << sh
            g = groups.setdefault(mask, _Group(mask))
            am = _ActMemo(ex, ca)
            g.acts.append(am)
            self.acts.append((am, g))
        self.groups = list(groups.values())
        self.unfound = list(range(len(ex.aprops)))
        self.resets = 0

    def expand(self, keys: Arr, lo: int, depth: int,
               found: dict[str, tuple[int, int, int, int] | None], visited: KeySet, kbits: int
               ) -> tuple[Arr, Arr, Arr, Arr]:
        """The successors of frontier rows lo.. (keys) not in `visited`, each once, with the
        (parent row, action, parameter row) first in the layer's transition order; they are
        added to `visited`, so a later chunk of the layer does not find them again."""
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
        # only successors not visited yet are sorted (most are: the sort is the cost)
        if packed_ok:
            uk, ur = _min_per_key(packed[visited.missing(packed >> rb)], rb)
        else:
            allk, allr = np.concatenate(nks), np.concatenate(rks)
            fresh = visited.missing(allk)
            allk, allr = allk[fresh], allr[fresh]
            order = np.lexsort((allr, allk))
            sk = allk[order]
            first = _run_starts(sk)
            uk = sk[first]
            ur = allr[order][first]
        visited.add(uk)
        # decode each rank: its (block, action), its place in that action's list, its row
        offf = off.ravel()
        bid = np.searchsorted(offf, ur, side="right") - 1
        b, aix = np.divmod(bid, na)
        gi = ur - offf[bid] + bs[aix, b]
        par = np.empty(uk.size, np.int32)
        pj = np.empty(uk.size, self.ex.pj_dtype)
        for ai in np.unique(aix):
            am = self.acts[ai][0]
            sl, c, cum = per[ai]
            sel = aix == ai
            g = gi[sel]
            row = np.searchsorted(cum, g, side="right")
            par[sel] = row + lo
            pj[sel] = am.fj.buf[am.start.buf[sl[row]] + g - cum[row] + c[row]]
        return uk, par, aix.astype(self.ex.act_dtype), pj

    def _hits(self, am: _ActMemo, ai: int, sl: Arr, keys: Arr, mask: np.int64,
              hits: dict[int, tuple[int, int, int, int]]) -> None:
        rows = np.flatnonzero(am.hitany.buf[sl])
        if not rows.size:
            return
        hb = am.hb.buf[sl[rows]]
        for q in self.unfound:
            w = np.flatnonzero(hb[:, q >> 3] & (0x80 >> (q & 7)))  # np.packbits: big-endian
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


def _count_dtype(k: int) -> type[np.signedinteger[Any]]:
    """The narrowest signed integer that holds 0..k (an action's parameter rows)."""
    for t in (np.int8, np.int16):
        if k <= np.iinfo(t).max:
            return t
    return np.int32


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


def trace_back(layers: Sequence[Layer], depth: int, idx: int
               ) -> tuple[int, list[tuple[int, int]]]:
    """The path to the state at (depth, idx): its initial state's index in layer 0, and each
    step's (action, parameter row), first step first."""
    chain: list[tuple[int, int]] = []
    i = idx
    for d in range(depth, 0, -1):
        _, par, act, pj = layers[d]
        chain.append((int(act[i]), int(pj[i])))
        i = int(par[i])
    chain.reverse()
    return i, chain


def unread_fields(ip: Interpreter) -> tuple[list[str], list[list[str]]]:
    """The fields the search can leave out of its key, and each action's reads without them.

    A field is kept when a selected state property reads it, when it is a scope-bounded
    natural (the search prunes on its bound) or sets such a bound (hugetlb, huge_1g), or when
    an action's enabling, its deciding rule, a selected action property or the update of a
    kept field reads it: a least fixed point over the liveness of each explored action's
    generated code (compile_np.live_fields). Every other field is written (if at all) only
    from itself and other unread fields and read by nothing the search computes, so states
    that differ only in them have the same successors modulo them, the same rule coverage and
    the same property values: the search over the projected keys explores exactly the
    quotient graph.
    Enum and word updates fit their field (checker/wellformed.py), so leaving them unchecked
    prunes nothing."""
    schema = ip.design.schema
    names = [f.name for f in schema.fields]
    keep = {f.name for f in schema.fields if f.sort.kind == "nat"}
    keep |= {f for fld, _, _ in ip.packer.per.values() for f in fld}  # sets a counter's bound
    for reads in ip.sreads.values():
        keep |= set(reads)
    while True:
        unused = ("out", "eff", *(n for n in names if n not in keep))
        # an action the search never takes (Action.explored) reads nothing it computes
        per = [live_fields(ca.source, names, unused) if ca.action.explored else []
               for ca in ip.actions]
        grown = keep.union(*per)
        if grown == keep:
            return [n for n in names if n not in keep], per
        keep = grown


class Explorer(Interpreter):
    """BFS over a design within a scope, checking the given properties: the Interpreter's
    compiled actions, expanded a frontier at a time."""

    def __init__(self, design: Design, scope: Mapping[str, int], props: Sequence[Property],
                 *, max_depth: int | None = None, keep_layers: bool = False,
                 progress: Callable[[str], None] | None = None,
                 max_memory: int | None = None, max_states: int | None = None,
                 elide: bool = False, until_found: bool = False) -> None:
        super().__init__(design, scope, props)
        # the key the search stores: with `elide`, without the fields nothing it computes
        # reads (unread_fields); self.packer stays the full state's, for replaying runs
        self.kp = self.packer
        self.search_reads = [ca.reads for ca in self.actions]
        self.elided: list[str] = []
        self._init_rep: dict[int, dict[str, int]] = {}
        # a layer stores each state's action and parameter row in as few bytes as they take
        self.act_dtype: type[np.signedinteger[Any]] = (
            np.int8 if len(self.actions) <= 127 else np.int16)
        self.pj_dtype: type[np.signedinteger[Any]] = (
            np.int16 if max((ca.k for ca in self.actions), default=1) <= 32767 else np.int32)
        # the replayed fields are never in a key (Interpreter.packer omits them), and no
        # explored action reads them (checked: interpreter.replayed_fields)
        self.elided = list(self.replayed)
        self.search_reads = [[f for f in r if f not in self.replayed] for r in self.search_reads]
        if elide:
            elided, reads = unread_fields(self)
            if elided != self.elided:
                self.elided, self.search_reads = elided, reads
                self.kp = Packer(design, scope, elided)
        # the scope check of a byte counter's new value reads the fields that set its bound
        # and quantum (Packer.in_bounds: hugetlbfs's 2 MiB or 1 GiB pages), even where the
        # action's own code does not: they belong to the action's projection, or a hugetlb
        # state would be bounded as shmem and a successor pruned that is in the scope. The
        # same for an action that only reads the counter: the key stores it in quanta of its
        # own page (Packer), so its value is decoded from those fields too
        for i, ca in enumerate(self.actions):
            uses = set(ca.updated) | set(self.search_reads[i])
            bounds = [b for f in uses if f in self.kp.per for b in self.kp.per[f][0]]
            self.search_reads[i] = [*self.search_reads[i],
                                    *sorted(set(bounds) - set(self.search_reads[i]))]
        self.max_memory = max_memory  # bytes of resident memory (checker/memory.py)
        self.max_states = max_states  # stop after the layer that passes this many states
        self.max_depth = max_depth
        self.keep_layers = keep_layers
        self.progress = progress
        # stop after the first layer by which every property has its run (a shortest one:
        # the search is breadth-first); the result is then not complete
        self.until_found = until_found

    # -- the search -------------------------------------------------------------------------
    def run(self) -> ExploreResult:
        t0 = time.perf_counter()
        pk = self.kp
        self._init_rep = {}
        for s in self.design.init.states(self.design.schema):
            self._init_rep.setdefault(pk.pack(s), dict(s))  # first full state of each key
        init = np.unique(np.array(list(self._init_rep), dtype=np.int64))
        visited = KeySet(init)  # every state found, the current layer's so far included
        nstates = int(init.size)  # the states of the completed layers
        layers: list[Layer] = [
            (init, np.full(init.shape, -1, np.int32), np.full(init.shape, -1, self.act_dtype),
             np.full(init.shape, -1, self.pj_dtype))]
        found: dict[str, tuple[int, int, int, int] | None] = {p.name: None for p in self.props}
        self._check_states(init, 0, found)
        memo = _Memo(self)
        kbits = pk.bits
        depth = 0
        last_report = t0
        frontier = init
        stopped: str | None = self._all_found(found, 0)
        while (not stopped and frontier.size
               and (self.max_depth is None or depth < self.max_depth)):
            new_k: list[Arr] = []
            new_p: list[Arr] = []
            new_a: list[Arr] = []
            new_j: list[Arr] = []
            for lo in range(0, frontier.size, CHUNK):
                uk, par, act, pj = memo.expand(frontier[lo:lo + CHUNK], lo, depth, found,
                                               visited, kbits)
                memo.bound(visited.n)
                if uk.size:
                    new_k.append(uk)
                    new_p.append(par)
                    new_a.append(act)
                    new_j.append(pj)
                # the visited set may double, and the layer's merge copies the new states
                pending = sum(k.size for k in new_k) * 8
                if over(self.max_memory, 2 * (visited.nbytes + pending)):
                    stopped = (f"memory bound {human(self.max_memory or 0)} reached while "
                               f"expanding depth {depth} ({nstates:,} states visited, "
                               f"resident {human(rss_bytes())}); every state and "
                               f"transition within depth {depth} was checked")
                    break
            if stopped or not new_k:
                break
            if len(new_k) == 1:
                uk, par, act, pj = new_k[0], new_p[0], new_a[0], new_j[0]
            else:
                # the chunks found distinct states (each the first chunk reaching it, as
                # they share the visited set): the layer in order of keys
                uk, first = _first_of_runs(np.concatenate(new_k), kbits)
                par = np.concatenate(new_p)[first]
                act = np.concatenate(new_a)[first]
                pj = np.concatenate(new_j)[first]
            depth += 1
            layers.append((uk, par, act, pj))
            nstates += uk.size
            if depth >= 2 and not self.keep_layers:
                # an expanded layer's keys are in the visited set; a path needs only the
                # parents, actions and parameter rows (and layer 0's keys)
                layers[depth - 1] = (_NONE, *layers[depth - 1][1:])
            self._check_states(uk, depth, found)
            frontier = uk
            stopped = self._all_found(found, depth)
            if stopped:
                break
            if self.max_states is not None and nstates > self.max_states:
                stopped = (f"more than {self.max_states:,} states ({nstates:,} by depth "
                           f"{depth}, where the search stopped)")
                break
            now = time.perf_counter()
            if self.progress and now - last_report > 1.0:
                last_report = now
                self.progress(f"states={nstates} depth={depth} "
                              f"states/s={nstates / (now - t0):,.0f}")
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
        return ExploreResult(self.design, self.scope, nstates, transitions, depth,
                             seconds, pruned, coverage, props, stored, complete,
                             layers if self.keep_layers else [], memo.nbytes(), stopped,
                             list(self.elided))

    def _all_found(self, found: dict[str, tuple[int, int, int, int] | None], depth: int
                   ) -> str | None:
        """With `until_found`, why the search stops once every property has its run."""
        if self.until_found and all(w is not None for w in found.values()):
            return f"every property's run found by depth {depth}, where the search stopped"
        return None

    def _check_states(self, keys: Arr, depth: int,
                      found: dict[str, tuple[int, int, int, int] | None]) -> None:
        todo = [p for p in self.props
                if p.kind in ("always", "sometimes") and found[p.name] is None]
        if not todo:
            return
        S = self.kp.fields(keys, sorted({f for p in todo for f in self.sreads[p.name]}))
        for p in todo:
            v = self.sprops[p.name](S).reshape(-1)
            hit = ~v if p.kind == "always" else v
            if hit.any():
                found[p.name] = (depth, int(np.argmax(hit)), -1, -1)

    # -- counterexamples ----------------------------------------------------------------------
    def path(self, depth: int, idx: int) -> ARun:
        """The shortest run to the state at (layer depth, index idx)."""
        root, chain = trace_back(self._layers, depth, idx)
        # the full initial state (unread fields included): the run is re-executed on full
        # states, so every field of every step is the design's own value
        init = dict(self._init_rep[int(self._layers[0][0][root])])
        run = ARun(init)
        st = init
        for a, j in chain:
            ca = self.actions[a]
            step = self.apply(ca, st, ca.params_at(j))
            run.steps.append(step)
            st = step.after
        return self.first_init(run)

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
