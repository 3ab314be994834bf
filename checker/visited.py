"""The explicit search's containers: an append-only growable array, and vectorised
open-addressing hash tables (linear probing, -1 empty) over non-negative int64 keys: a map from
a projection to its memo slot, and the visited set. Whole arrays are probed and filled at once;
where a key lands does not change membership, so the search does not depend on it."""

from __future__ import annotations

from typing import Any

import numpy as np

from checker.compile_np import Arr

__all__ = ["HASH", "Grow", "KeySet", "Table"]


class Grow:
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


HASH = np.uint64(0x9E3779B97F4A7C15)


class Table:
    """Open-addressing hash map (linear probing, vectorised) from distinct non-negative int64
    keys to dense slot numbers, given in order of insertion; at most half full."""

    def __init__(self) -> None:
        self.bits = 12
        self.keys = np.full(1 << self.bits, -1, np.int64)
        self.vals = np.zeros(1 << self.bits, np.int32)
        self.n = 0

    def _hash(self, k: Arr) -> Arr:
        return ((k.view(np.uint64) * HASH) >> np.uint64(64 - self.bits)).view(np.int64)

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
        if 2 * self.n > (1 << self.bits):
            old = self.keys != -1
            ok, ov = self.keys[old], self.vals[old]
            while 2 * self.n > (1 << self.bits):
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


class KeySet:
    """The visited set: distinct non-negative int64 keys in an open-addressing table (linear
    probing, -1 empty, at most half full: 16-32 bytes a key), probed and filled a whole array
    at a time. Membership does not depend on where a key lands, so neither does the search."""

    def __init__(self, keys: Arr) -> None:
        self.bits = 10
        self.keys = np.full(1 << self.bits, -1, np.int64)
        self.n = 0
        self.add(keys)

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes)

    def _home(self, k: Arr) -> Arr:
        h = k.view(np.uint64) * HASH  # Fibonacci hashing: the product's top bits
        h >>= np.uint64(64 - self.bits)
        return h.view(np.int64)

    def missing(self, k: Arr) -> Arr:
        """Where each key (a contiguous int64 array) is not in the set."""
        m = (1 << self.bits) - 1
        h = self._home(k)
        tk = self.keys.take(h)
        out: Arr = tk != k
        pend = np.flatnonzero(out & (tk != -1))
        while pend.size:
            hp = (h[pend] + 1) & m
            h[pend] = hp
            tk = self.keys.take(hp)
            hit = tk == k[pend]
            out[pend[hit]] = False
            pend = pend[~hit & (tk != -1)]
        return out

    def add(self, k: Arr) -> None:
        """Add distinct keys none of which is in the set."""
        self.n += k.size
        if 2 * self.n > self.keys.size:
            old = self.keys[self.keys != -1]  # in table order: nearly in order of new homes
            del self.keys  # before the new table is allocated: the peak is the new one
            bits = self.bits
            while 2 * self.n > (1 << bits):
                bits += 1
            self.bits = bits
            self.keys = np.full(1 << bits, -1, np.int64)
            for lo in range(0, old.size, 1 << 20):  # the temporaries stay small
                self._put(old[lo:lo + (1 << 20)])
        self._put(k)

    def _put(self, k: Arr) -> None:
        m = (1 << self.bits) - 1
        h = self._home(k)
        while k.size:
            fi = np.flatnonzero(self.keys.take(h) == -1)
            fh = h[fi]
            fk = k[fi]
            self.keys[fh] = fk  # keys are distinct: one writer per position wins
            won = self.keys.take(fh) == fk
            rest = np.ones(k.size, bool)
            rest[fi[won]] = False
            k, h = k[rest], h[rest]
            h = np.where(self.keys.take(h) == -1, h, (h + 1) & m)
