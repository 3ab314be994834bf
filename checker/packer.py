"""A state as one int64 key: the explicit engine's packing of a design's state at a scope.

Each field takes its own contiguous bit range (model/lang/schema.py gives each field's bound at a
scope); a flag word too wide for the key keeps only the bits some update can set (may_set_bits).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from checker.compile_np import Arr
from model.lang.design import Design, scope_text
from model.lang.schema import Sort


class ScopeTooWide(ValueError):
    """A state of this design at this scope does not fit the explicit engine's 63-bit key."""


KEY_BITS = 63


class Packer:
    """A state as one non-negative int64 key: each field in its own contiguous bit range.

    A field takes bit_length(bound) bits. When that does not fit in KEY_BITS, a flag word keeps
    only the bits some initial state or update can set (may_set_bits: the 22-bit inode flags
    word of memfd@5.17 carries just VM_LOCKED and VM_NORESERVE); every value stored is checked
    against that mask, so a bit the analysis missed stops the search instead of being dropped.
    If even that does not fit, ScopeTooWide names the largest scope that does.

    `omit` are fields the key does not store (the explicit search's unread fields,
    checker/explicit.py unread_fields), and the replayed ones are never stored: `fields`
    gives them as 0, and nothing that reads them may run on these keys."""

    def __init__(self, design: Design, scope: Mapping[str, int],
                 omit: Sequence[str] = ()) -> None:
        self.schema = schema = design.schema
        # a replayed field (model/lang/schema.py) is never packed: nothing the explicit
        # engines compute reads it (checker/interpreter.py replayed_fields)
        self.omitted = [f.name for f in schema.fields if f.name in omit or f.replayed]
        self.bound = {f.name: f.sort.bound(scope) for f in schema.fields}
        # a byte count is stored in steps of its quantum; its bound and step follow the page
        # size of the state (field, page bytes per value, scope pages, scope grain)
        self.q = {f.name: f.sort.quantum(scope) for f in schema.fields
                  if f.sort.unit is not None}
        self.per: dict[str, tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...]]] = {
            f.name: (f.sort.unit[0], tuple(scope[f.sort.scope] * u for u in f.sort.unit[1]),
                     tuple(f.sort.quantum(scope, u) for u in f.sort.unit[1]))
            for f in schema.fields if f.sort.unit is not None and f.sort.scope is not None}
        self.nat = [f.name for f in schema.fields if f.sort.kind in ("nat", "enum")]
        self.wmask = {f.name: (1 << f.sort.width) - 1 for f in schema.fields
                      if f.sort.kind == "word"}  # a word's value bits
        # sparse word -> (value bit, key bit, length) runs, in the field's key range
        self.runs: dict[str, list[tuple[int, int, int]]] = {}
        self.keep: dict[str, int] = {}  # sparse word -> the value bits it can hold
        plain = {n: b for n, b in _widths(design, scope).items() if n not in self.omitted}
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
                    f"{scope_text(scope)} and the explicit engine packs a state into "
                    f"{KEY_BITS}; the largest scope that fits: "
                    f"{scope_text(largest_fitting(design, scope))}")
        self.layout: list[tuple[str, int, int]] = []
        sh = 0
        for f in schema.fields:
            if f.name in self.omitted:
                continue
            b = widths[f.name]
            self.layout.append((f.name, sh, b))
            if f.name in self.keep:
                self.runs[f.name] = _runs(self.keep[f.name], sh)
            sh += b
        self.bits = sh
        self.shift = {n: s for n, s, _ in self.layout}
        self.mask = {n: (1 << b) - 1 for n, _, b in self.layout}  # the field's key range

    def pack(self, st: Mapping[str, int]) -> int:
        return int(sum(int(self.encode(n, np.array(int(st[n]), np.int64), self._sel(n, st)))
                       for n in self.shift))

    def keys_of(self, cols: Mapping[str, Arr]) -> Arr:
        """The keys of the states whose field values are the columns `cols` (every stored
        field; a byte count is encoded in quanta of the page its state's fields select)."""
        out: Arr = np.zeros(np.broadcast_shapes(*(np.shape(cols[n]) for n in self.shift)),
                            np.int64)
        for n in self.shift:
            out = out + self.encode(n, np.asarray(cols[n]), self._sel(n, cols))
        return out

    def _sel(self, name: str, S: Mapping[str, Any]) -> Arr | None:
        """For a byte count: which of its page sizes the state(s) S have (the sum of the
        selector fields), else None."""
        per = self.per.get(name)
        if per is None:
            return None
        out: Arr = np.asarray(sum((np.asarray(S[f]).astype(np.int64) for f in per[0]),
                                  np.int64(0)))
        return out

    def _own_q(self, name: str, sel: Arr | None) -> Arr | int:
        """A byte count is stored in quanta of its own page (a 1 GiB file's size in 512 MiB
        steps at grain 2, a shmem file's in 2 KiB steps), so its key bits are those of
        pages x grain whatever the page size."""
        per = self.per.get(name)
        if per is None:
            return self.q[name]
        if sel is None or len(per[2]) == 1:
            return min(per[2])
        out: Arr = np.choose(sel, per[2])
        return out

    def unpack(self, key: int) -> dict[str, int]:
        k = np.array(key, np.int64)
        return {n: int(self.decode(n, k)) for n in self.shift}

    def decode(self, name: str, keys: Arr) -> Arr:
        """Field `name`'s values in these keys."""
        runs = self.runs.get(name)
        if runs is None:
            v = (keys >> self.shift[name]) & self.mask[name]
            if name in self.per:
                sel = sum((self.decode(f, keys) for f in self.per[name][0]), np.int64(0))
                return v * self._own_q(name, np.asarray(sel))
            return v * self.q[name] if name in self.q else v
        out = np.zeros_like(keys)
        for src, ksh, n in runs:
            out |= ((keys >> ksh) & ((1 << n) - 1)) << src
        return out

    def encode(self, name: str, v: Arr, sel: Arr | None = None) -> Arr:
        """The key bits of field values v (a word's bits beyond its width are dropped, as the
        field stores them); `sel`: a byte count's page size (Packer._sel)."""
        runs = self.runs.get(name)
        if runs is None:
            if name in self.q:
                v = v // self._own_q(name, sel)
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

    def in_bounds(self, name: str, u: Arr, S: Mapping[str, Arr] | None = None) -> Arr:
        """Where counter `name`'s new values u stay within the scope (0..bound); a successor
        outside it has no key and is pruned, never clipped. A byte count (a nat with a unit)
        must also be a multiple of its quantum, and its bound and quantum are those of the
        page size of the state S it comes from (memfd: hugetlb + huge_1g selects 4 KiB, 2 MiB
        or 1 GiB)."""
        ok: Arr = (u >= 0) & (u <= self.bound[name])
        per = self.per.get(name)
        if per is None:
            return ok
        fld, tops, qs = per
        if S is None or len(tops) == 1:  # without the state: the loosest page size
            out: Arr = ok & (u <= max(tops)) & (u % min(qs) == 0)
            return out
        sel = sum((np.asarray(S[f]).astype(np.int64) for f in fld), np.int64(0))
        top, q = np.choose(sel, tops), np.choose(sel, qs)
        res: Arr = ok & (u <= top) & (u % q == 0)
        return res

    def delta(self, name: str, u: Arr, s: Arr, S: Mapping[str, Any] | None = None,
              R: Mapping[str, Any] | None = None) -> Arr:
        """key(after) - key(before) for field `name` going from value s to u; a byte count's
        quantum is its page's, from the state before S and the action's results R (which may
        change the page size: memfd_create)."""
        if name in self.per:
            sel0 = self._sel(name, S) if S is not None else None
            sel1 = None
            if S is not None:
                sel1 = self._sel(name, {f: (R[f] if R is not None and f in R else S[f])
                                        for f in self.per[name][0]})
            after: Arr = np.asarray(u // self._own_q(name, sel1), np.int64)
            before: Arr = np.asarray(s // self._own_q(name, sel0), np.int64)
            d: Arr = ((after & self.mask[name]) - before) << self.shift[name]
            return d
        if name in self.q:
            q = self.q[name]
            d = (((u // q) & self.mask[name]) - s // q) << self.shift[name]
            return d
        if name not in self.runs:
            return ((u & self.mask[name]) - s) << self.shift[name]
        return self.encode(name, u) - self.encode(name, s)

    def fields(self, keys: Arr, only: Sequence[str] | None = None) -> dict[str, Arr]:
        """Each field's values as a column; with `only`, just those fields."""
        col = keys.reshape(-1, 1)
        names = self.shift if only is None else only
        out = {n: self.decode(n, col) for n in names if n in self.shift}
        zero = np.zeros_like(col)
        for n in self.omitted if only is None else [n for n in only if n in self.omitted]:
            out[n] = zero
        out["__shape__"] = col
        return out


def _widths(design: Design, scope: Mapping[str, int]) -> dict[str, int]:
    return {f.name: max(1, _top(f.sort, scope).bit_length()) for f in design.schema.fields}


def _top(sort: Sort, scope: Mapping[str, int]) -> int:
    """The largest stored value: a byte count with a page size per state is stored in
    quanta of its own page (at most pages x grain of them)."""
    if sort.unit is not None and sort.scope is not None:
        return max(scope[sort.scope] * u // sort.quantum(scope, u) for u in sort.unit[1])
    return sort.bound(scope) // sort.quantum(scope)


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
    """Bits a state of `design` takes at `scope` (words sparse where that is needed; the
    replayed fields are never packed)."""
    replayed = {f.name for f in design.schema.fields if f.replayed}
    plain = {n: b for n, b in _widths(design, scope).items() if n not in replayed}
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


