"""The property catalogue: each property with its rationale, the kernel function that enforces
it, and its expected verdict per design (as an LKMM litmus test carries a `Result:` line).

Kinds: `always` (a state invariant), `action` (holds of every transition: before `s`, after `n`,
outcome, effects), `sometimes` (some reachable state satisfies it: a non-vacuity witness) and
`sometimes-action` (some reachable transition does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from model.lang.design import Design
from model.lang.expr import E
from model.lang.schema import Schema, StateView

HOLDS, VIOLATED, WITNESSED, NOT_WITNESSED = "holds", "violated", "witnessed", "not witnessed"


@dataclass(frozen=True)
class Property:
    name: str
    kind: str  # always | action | sometimes | sometimes-action
    pred: Callable[[Any], E]  # StateView -> E, or TransitionView -> E
    rationale: str
    enforced_by: str
    expect: Mapping[str, str] = field(default_factory=dict)  # design -> expected verdict
    family: str = "memfd"  # which designs it speaks of: those whose schema has its fields

    def state_pred(self, schema: Schema) -> E:
        return self.pred(StateView(schema, "s"))

    @property
    def default(self) -> str:
        return HOLDS if self.kind in ("always", "action") else WITNESSED

    def expected(self, design: str) -> str:
        return self.expect.get(design, self.default)

    def applies(self, design: Design) -> bool:
        """The design belongs to the property's family (Design.families); a design that names
        no family gets every property whose fields it has."""
        from properties.views import TransitionView

        if design.families and self.family not in design.families:
            return False
        try:
            if self.kind in ("always", "sometimes"):
                self.state_pred(design.schema)
            else:
                for a in design.actions:
                    self.pred(TransitionView(design.schema, a, a.semantics(design.schema)))
        except (AttributeError, KeyError):
            return False
        return True


CATALOGUE: dict[str, Property] = {}


def prop(name: str, kind: str, rationale: str, enforced_by: str,
         expect: Mapping[str, str] | None = None, family: str = "memfd"
         ) -> Callable[[Callable[[Any], E]], Callable[[Any], E]]:
    def deco(fn: Callable[[Any], E]) -> Callable[[Any], E]:
        if name in CATALOGUE:
            raise ValueError(f"duplicate property {name}")
        CATALOGUE[name] = Property(name, kind, fn, " ".join(rationale.split()), enforced_by,
                                   dict(expect or {}), family)
        return fn
    return deco


def load() -> dict[str, Property]:
    """Import every property module of this package (each registers its properties)."""
    import importlib
    import pkgutil

    import properties

    for m in pkgutil.iter_modules(properties.__path__):
        if m.name not in ("catalogue", "views"):
            importlib.import_module(f"properties.{m.name}")
    return CATALOGUE


def for_design(design: Design) -> list[Property]:
    return [p for p in load().values() if p.applies(design)]


__all__ = ["CATALOGUE", "HOLDS", "NOT_WITNESSED", "VIOLATED", "WITNESSED", "Property",
           "StateView", "for_design", "load", "prop"]
