"""Designs: a schema, initial states, actions, and the effect bits actions may report.

A design can be derived from another by a small delta (replace, add or drop actions; edit one
rule of an action), so a kernel version, a historical bug or a proposed patch is a short file.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from model.lang.action import Action, source_site
from model.lang.schema import Field, Schema


@dataclass(frozen=True)
class Init:
    """Initial states: each field is fixed, or ranges over a tuple of values (a choice)."""

    values: Mapping[str, int | tuple[int, ...]]

    def choices(self, schema: Schema) -> dict[str, tuple[int, ...]]:
        out: dict[str, tuple[int, ...]] = {}
        for f in schema.fields:
            v = self.values.get(f.name, 0)
            out[f.name] = v if isinstance(v, tuple) else (v,)
        unknown = set(self.values) - set(schema.by_name)
        if unknown:
            raise ValueError(f"init names unknown fields {sorted(unknown)}")
        return out

    def states(self, schema: Schema) -> Iterator[dict[str, int]]:
        ch = self.choices(schema)
        names = list(ch)
        for combo in itertools.product(*(ch[n] for n in names)):
            yield dict(zip(names, combo, strict=True))


@dataclass(frozen=True)
class Design:
    """A named transition system over one inode (see NOTES.md for the abstraction)."""

    name: str
    doc: str
    schema: Schema
    init: Init
    actions: tuple[Action, ...]
    effects: tuple[str, ...] = ()  # names of effect bits, bit i = 1 << i
    base: str | None = None  # the design this one was derived from
    default_scope: Mapping[str, int] = field(default_factory=dict)
    scope_doc: Mapping[str, str] = field(default_factory=dict)
    kernel: str | None = None  # the live kernel this design claims to match ("6.18"), if any
    families: tuple[str, ...] = ()  # property families that speak of this design
    # expected verdicts this design states itself (property -> verdict); the rest it inherits
    # from `base`, then from the catalogue (properties/catalogue.py Property.expected)
    expect: Mapping[str, str] = field(default_factory=dict)
    origin: tuple[str, int] | None = field(default=None, compare=False)  # where derived
    #: The largest value of a scope key that still changes what the engines explore: the
    #: actions' parameter domains reach no further (memfd: sizes up to 3 pages). Larger values
    #: are refused by scope() rather than explored as the smaller space under a larger name.
    scope_max: Mapping[str, int] = field(default_factory=dict)

    def action(self, name: str) -> Action:
        for a in self.actions:
            if a.name == name:
                return a
        raise KeyError(f"design {self.name} has no action {name!r}")

    def effect(self, name: str) -> int:
        return 1 << self.effects.index(name)

    def derive(self, name: str, doc: str, *,
               edit: Mapping[str, Callable[[Action], Action]] | None = None,
               add: Sequence[Action] = (), drop: Sequence[str] = (),
               fields: Sequence[Field] = (), drop_fields: Sequence[str] = (),
               layout: Mapping[str, tuple[str, int]] | None = None,
               init: Mapping[str, int | tuple[int, ...]] | None = None,
               kernel: str | None = None, effects: Sequence[str] = (),
               default_scope: Mapping[str, int] | None = None,
               families: Sequence[str] = (),
               expect: Mapping[str, str] | None = None) -> Design:
        """A delta on this design: edit actions (name -> function of the old action), add or
        drop actions, add or replace fields (same name) or drop them, move inode flags
        (layout), override initial values. The new design inherits this one's expected
        verdicts except those `expect` (property -> verdict) states."""
        edit = dict(edit or {})
        missing = (set(edit) | set(drop)) - {a.name for a in self.actions}
        if missing:
            raise KeyError(f"design {self.name} has no action(s) {sorted(missing)}")
        acts = [edit[a.name](a) if a.name in edit else a
                for a in self.actions if a.name not in drop]
        acts.extend(add)
        new = {f.name: f for f in fields}
        kept = [new.pop(f.name, f) for f in self.schema.fields if f.name not in drop_fields]
        lay = dict(self.schema.flag_layout)
        lay.update(layout or {})
        schema = Schema(tuple(kept) + tuple(new.values()), lay)
        iv = {k: v for k, v in self.init.values.items() if k not in drop_fields}
        iv.update(init or {})
        sc = dict(self.default_scope)
        sc.update(default_scope or {})
        return replace(self, name=name, doc=doc, schema=schema, init=Init(iv),
                       # a further step of the same delta (same name) keeps its base
                       actions=tuple(acts),
                       base=self.base if name == self.name and self.base else self.name,
                       kernel=kernel,
                       effects=self.effects + tuple(e for e in effects
                                                    if e not in self.effects),
                       default_scope=sc,
                       families=self.families + tuple(f for f in families
                                                      if f not in self.families),
                       expect=dict(expect or {}), origin=source_site())

    def scope(self, overrides: Mapping[str, int] | None = None) -> dict[str, int]:
        """The default scope with `overrides`; KeyError for a key the design does not have,
        ScopeError for a value beyond `scope_max` (it would name a space never explored)."""
        sc = dict(self.default_scope)
        for k, v in (overrides or {}).items():
            if k not in sc:
                raise KeyError(k)
            top = self.scope_max.get(k)
            if top is not None and v > top:
                raise ScopeError(
                    f"design {self.name}: scope {k}={v} explores nothing beyond {k}={top}: its "
                    f"parameter domains reach at most {k}={top} (the largest meaningful value)")
            sc[k] = v
        return sc


class ScopeError(ValueError):
    """A scope value that names more than the design can explore."""


def scope_text(scope: Mapping[str, int], depth: int | None = None) -> str:
    """A scope as the CLI reads it (`pages=1,maps=1,...`), with `depth=N` when depth-bounded."""
    parts = [f"{k}={v}" for k, v in scope.items()]
    if depth is not None:
        parts.append(f"depth={depth}")
    return ",".join(parts)
