"""Typed state schemas: booleans, named flag words, scope-bounded naturals and enums.

A field's *sort* says what values it may take; the explicit engine packs a state into one 64-bit
key (each field in its own bit range) and the symbolic engines give each field a z3 variable
(naturals become unbounded integers there, so proofs hold for every scope).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from model.lang.expr import BOOL, BV, INT, E, SortT, var


@dataclass(frozen=True)
class Sort:
    """kind: bool | nat | int | word | enum.

    nat: 0..bound where bound comes from the scope key `scope` (or is `fixed`); a nat with a
    `unit` counts bytes: its bound is scope[scope] pages of unit[1][i] bytes each, i being
    the sum of the state's fields unit[0] (the page size they select) and, with `grain`, the
    explicit engine keeps only multiples of a page / scope[grain] (nat_bytes());
    int: a signed or unsigned machine integer lo..hi (a parameter only: loff_t, size_t);
    word: a bit-vector of `width` bits whose bits may carry `names` (bit value -> name);
    enum: 0..len(values)-1, printed by name.
    """

    kind: str
    scope: str | None = None
    fixed: int | None = None
    width: int = 0
    names: tuple[tuple[str, int], ...] = ()
    values: tuple[str, ...] = ()
    unit: tuple[tuple[str, ...], tuple[int, ...]] | None = None
    grain: str | None = None
    lo: int = 0
    hi: int = 0

    @property
    def expr_sort(self) -> SortT:
        if self.kind == "bool":
            return BOOL
        if self.kind == "word":
            return BV(self.width)
        return INT

    def bound(self, scope: Mapping[str, int]) -> int:
        """Largest value the explicit engine admits."""
        if self.kind == "bool":
            return 1
        if self.kind == "word":
            return (1 << self.width) - 1
        if self.kind == "enum":
            return len(self.values) - 1
        if self.kind == "int":
            return self.hi
        if self.fixed is not None:
            return self.fixed
        assert self.scope is not None
        if self.unit is not None:
            return scope[self.scope] * max(self.unit[1])
        return scope[self.scope]

    def quantum(self, scope: Mapping[str, int], unit: int | None = None) -> int:
        """The step of the values the explicit engine keeps: a byte count's page (the smallest
        one, or `unit`) divided by the scope's grain (a power of two); 1 for every other
        sort."""
        if self.unit is None:
            return 1
        page = min(self.unit[1]) if unit is None else unit
        g = scope.get(self.grain, 1) if self.grain is not None else 1
        # the grain rounded down to a power of two: page sizes are powers of two, so every
        # coarser grid is contained in a finer one (grain 3 keeps what grain 2 keeps)
        return max(1, page >> (max(1, g).bit_length() - 1))

    def outside(self, v: int) -> str | None:
        """Why `v` is not a value of this sort (None: it is one). A scope-bounded natural has
        no upper limit here: replay does not pack states, and an engine's scope is checked by
        Design.scope(); the caller bounds byte values (traces/concretize.py)."""
        if self.kind == "int":
            return None if self.lo <= v <= self.hi else \
                f"not a value of the call's {self.lo}..{self.hi} integer argument"
        if v < 0:
            return "negative (the model's value is a count or bit set, >= 0)"
        if self.kind == "word" and v >> self.width:
            return f"does not fit the model's {self.width}-bit field"
        if self.kind in ("bool", "enum") or (self.kind == "nat" and self.fixed is not None):
            top = self.bound({})
            if v > top:
                return f"the model's values are 0..{top}"
        return None

    def render(self, v: int) -> str:
        if self.kind == "bool":
            return "true" if v else "false"
        if self.kind == "enum":
            return self.values[v] if 0 <= v < len(self.values) else str(v)
        if self.kind == "word" and self.names:
            if v == 0:
                return "∅"
            parts = [n for n, b in self.names if v & b == b and b]
            rest = v & ~sum(b for _, b in self.names)
            if rest:
                parts.append(hex(rest))
            return "{" + ",".join(parts) + "}"
        if self.kind == "word":
            return oct(v) if self.width == 9 else hex(v)
        return str(v)


def boolean() -> Sort:
    return Sort("bool")


def nat(scope: str | None = None, fixed: int | None = None) -> Sort:
    if (scope is None) == (fixed is None):
        raise ValueError("nat() takes exactly one of scope= or fixed=")
    return Sort("nat", scope=scope, fixed=fixed)


def nat_bytes(scope: str, unit_field: str | tuple[str, ...], units: tuple[int, ...],
              grain: str | None = None) -> Sort:
    """A byte count (a file size): at most scope[scope] pages, a page being units[v] bytes where
    v is the state's field `unit_field` (or the sum of several: memfd's hugetlb + huge_1g
    selects shmem's 4 KiB, hugetlbfs's 2 MiB or 1 GiB); the explicit engine keeps multiples
    of a page / scope[grain] only (a finite grid, see NOTES.md)."""
    fields = (unit_field,) if isinstance(unit_field, str) else tuple(unit_field)
    return Sort("nat", scope=scope, unit=(fields, tuple(units)), grain=grain)


def integer(lo: int, hi: int) -> Sort:
    """A machine integer parameter lo..hi (loff_t: -2**63..2**63-1; size_t: 0..2**64-1)."""
    return Sort("int", lo=lo, hi=hi)


#: loff_t / off_t and size_t, as the syscalls take them (x86-64)
LOFF_T = (-(1 << 63), (1 << 63) - 1)
SIZE_T = (0, (1 << 64) - 1)


def word(width: int, names: Mapping[str, int] | None = None) -> Sort:
    return Sort("word", width=width, names=tuple((names or {}).items()))


def enum(*values: str) -> Sort:
    return Sort("enum", values=tuple(values))


@dataclass(frozen=True)
class Field:
    """A state variable. `ghost` fields are bookkeeping for properties, not kernel state: the
    conformance engine never compares them. `handle` marks a counter of open handles of one
    kind ("fd", "map", "pin") so traces can name individual handles (traces/concretize.py).
    `replayed` fields are kernel state only calls the search does not take read (lseek's
    SEEK_DATA reads which pages hold data): explored actions update them, from themselves,
    and read them for nothing else (checked, checker/interpreter.py replayed_fields), so the
    explicit engines never pack them and the z3 encoding leaves them out; replay holds them."""

    name: str
    sort: Sort
    doc: str = ""
    ghost: bool = False
    handle: tuple[str, str] | None = None  # (family, kind), e.g. ("map", "shared_rw")
    replayed: bool = False


@dataclass
class Schema:
    """Fields, plus a *layout*: where each named inode flag lives (field, bit). An access site
    may have its own entry ("writepage:LOCKED"), which is how a patch that converts readers
    one by one, or forgets one, is expressed."""

    fields: tuple[Field, ...]
    flag_layout: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    by_name: dict[str, Field] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {f.name: f for f in self.fields}
        if len(self.by_name) != len(self.fields):
            raise ValueError("duplicate field names")

    def state_vars(self, scope: str = "s") -> StateView:
        return StateView(self, scope)

    def layout(self, scope: Mapping[str, int]) -> list[tuple[str, int, int]]:
        """(name, shift, bits) for each field under `scope`; raises if the key needs > 63 bits."""
        out, shift = [], 0
        for f in self.fields:
            bits = max(1, (f.sort.bound(scope) // f.sort.quantum(scope)).bit_length())
            out.append((f.name, shift, bits))
            shift += bits
        if shift > 63:
            raise ValueError(f"state needs {shift} bits at this scope (limit 63)")
        return out

    def handles(self, family: str) -> list[Field]:
        return [f for f in self.fields if f.handle and f.handle[0] == family]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.fields)


class StateView:
    """`s.seals` -> the expression for field seals in state scope s (or n for the next state)."""

    def __init__(self, schema: Schema, scope: str) -> None:
        self._schema = schema
        self._scope = scope

    def __getattr__(self, name: str) -> E:
        try:
            f = self._schema.by_name[name]
        except KeyError:
            raise AttributeError(f"no state field {name!r}") from None
        return var(self._scope, name, f.sort.expr_sort)

    def __getitem__(self, name: str) -> E:
        return self.__getattr__(name)

    def where(self, flag: str, site: str | None = None) -> tuple[str, int]:
        lay = self._schema.flag_layout
        key = f"{site}:{flag}" if site and f"{site}:{flag}" in lay else flag
        if key not in lay:
            raise AttributeError(f"no inode flag {flag!r} in this design's layout")
        return lay[key]

    def flag(self, flag: str, site: str | None = None) -> E:
        """The inode flag `flag` as the code at `site` tests it."""
        fname, bit = self.where(flag, site)
        return self[fname].has(bit)

    def with_flag(self, flag: str, on: E | bool, site: str | None = None) -> dict[str, E]:
        """Updates setting (on) or clearing the flag, as the code at `site` writes it."""
        from model.lang.expr import If
        fname, bit = self.where(flag, site)
        f = self[fname]
        return {fname: If(on, f | bit, f & ~bit)}


def render_state(schema: Schema, values: Mapping[str, int], *, only: Sequence[str] | None = None
                 ) -> str:
    names = only if only is not None else [f.name for f in schema.fields]
    return ", ".join(f"{n}={schema.by_name[n].sort.render(values[n])}" for n in names)


__all__ = ["BOOL", "BV", "INT", "LOFF_T", "SIZE_T", "Field", "Schema", "Sort", "StateView",
           "boolean", "enum", "integer", "nat", "nat_bytes", "render_state", "word"]
