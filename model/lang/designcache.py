"""A cache of values computed from a design object, keyed safely by identity.

Designs are immutable but not hashable by value (their actions hold lists), and two equal-looking
designs (a what-if derived twice) must not share results, so caches key by identity. A bare
`id(design)` is not enough: once a design is freed, a new object can get the same id and hit
the old value. Here each entry keeps a weak reference to its design and is dropped when that
design is freed (or, for a value that refers back to its design, evicted oldest first beyond
`limit` designs), so an id reused by a later design can never see a stale value.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from model.lang.design import Design

V = TypeVar("V")


class PerDesign(Generic[V]):
    """design -> value, one entry per live design object (identity, never equality)."""

    def __init__(self, limit: int | None = None) -> None:
        self._d: dict[int, tuple[weakref.ref[Design], V]] = {}
        self.limit = limit

    def get(self, design: Design) -> V | None:
        hit = self._d.get(id(design))
        if hit is None or hit[0]() is not design:
            return None
        return hit[1]

    def put(self, design: Design, value: V) -> V:
        key = id(design)
        self._d.pop(key, None)
        if self.limit is not None:
            while len(self._d) >= self.limit:
                del self._d[next(iter(self._d))]
        d = self._d

        def drop(ref: weakref.ref[Design]) -> None:
            hit = d.get(key)
            if hit is not None and hit[0] is ref:
                del d[key]

        d[key] = (weakref.ref(design, drop), value)
        return value

    def setdefault(self, design: Design, make: Callable[[], V]) -> V:
        """The cached value for `design`, made (and cached) on first use."""
        hit = self.get(design)
        return hit if hit is not None else self.put(design, make())

    def __len__(self) -> int:
        return len(self._d)
