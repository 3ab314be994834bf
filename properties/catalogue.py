"""The property catalogue: each property with its rationale, the kernel function that enforces
it, and its expected verdict per design (as an LKMM litmus test carries a `Result:` line).

Kinds: `always` (a state invariant), `action` (holds of every transition: before `s`, after `n`,
outcome, effects), `sometimes` (some reachable state satisfies it: a non-vacuity witness) and
`sometimes-action` (some reachable transition does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from model.lang.design import Design
from model.lang.designcache import PerDesign
from model.lang.expr import E
from model.lang.schema import Schema, StateView

if TYPE_CHECKING:
    from properties.views import TransitionView

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

    def expected(self, design: str | Design) -> str:
        """The verdict expected on `design`: what the design itself states (Design.expect, a
        what-if's override), else the catalogue's entry for it, else the same for the design
        it was derived from (and so on up), else the kind's default. So a derived design
        inherits every expectation it does not override."""
        seen: set[str] = set()
        d: str | Design | None = design
        while d is not None:
            name = d if isinstance(d, str) else d.name
            if name in seen:
                break
            seen.add(name)
            obj = d if isinstance(d, Design) else _known(name)
            if obj is not None and self.name in obj.expect:
                return obj.expect[self.name]
            if name in self.expect:
                return self.expect[name]
            d = obj.base if obj is not None and obj.base else None
        return self.default

    def expected_of_base(self, design: Design) -> tuple[str, str] | None:
        """(the base's name, the verdict expected on it) if `design` was derived from another
        design, else None."""
        if not design.base or design.base == design.name:
            return None
        return design.base, self.expected(design.base)

    def applies(self, design: Design, views: Sequence[TransitionView] | None = None) -> bool:
        """The design belongs to the property's family (Design.families); a design that names
        no family gets every property whose fields it has. `views`: the design's transition
        views, if the caller has them (for_design builds them once for every property)."""
        if design.families and self.family not in design.families:
            return False
        try:
            if self.kind in ("always", "sometimes"):
                self.state_pred(design.schema)
            else:
                for v in transition_views(design) if views is None else views:
                    self.pred(v)
        except (AttributeError, KeyError):
            return False
        return True


def _known(name: str) -> Design | None:
    """The design registered under `name` (built-in or loaded what-if), if any."""
    from model import designs

    try:
        return designs.get(name)
    except KeyError:
        return None


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


def transition_views(design: Design) -> list[TransitionView]:
    """One view per action of the design's transition (its rules' semantics)."""
    from properties.views import TransitionView

    return [TransitionView(design.schema, a, a.semantics(design.schema)) for a in design.actions]


#: design -> (catalogue size when computed, its properties): the catalogue only grows
#: (prop() refuses a duplicate), so a longer one means a stale entry
_FOR_DESIGN: PerDesign[tuple[int, list[Property]]] = PerDesign()


def for_design(design: Design) -> list[Property]:
    """The catalogue properties that apply to `design`, in catalogue order (computed once per
    design object and catalogue size: the replay of every symbolic run asks)."""
    cat = load()
    hit = _FOR_DESIGN.get(design)
    if hit is None or hit[0] != len(cat):
        views = transition_views(design)
        hit = _FOR_DESIGN.put(design, (len(cat), [p for p in cat.values()
                                                  if p.applies(design, views)]))
    return list(hit[1])


__all__ = ["CATALOGUE", "HOLDS", "NOT_WITNESSED", "VIOLATED", "WITNESSED", "Property",
           "StateView", "for_design", "load", "prop"]


def check_expectations(d: Design) -> None:
    """The expectations a design states (a what-if file's `expect=`) name real properties and
    verdicts of the property's kind; a DesignError at the design's origin otherwise."""
    from model.lang.errors import DesignError

    cat = load()
    for name, v in d.expect.items():
        if name not in cat:
            raise DesignError(f"expect: unknown property {name!r} (see `shmemcheck list`)",
                              d.origin)
        p = cat[name]
        allowed = (HOLDS, VIOLATED) if p.kind in ("always", "action") else (
            WITNESSED, NOT_WITNESSED)
        if v not in allowed:
            raise DesignError(f"expect: {name} is {p.kind}: its verdict is "
                              f"{' or '.join(repr(a) for a in allowed)}, not {v!r}", d.origin)
