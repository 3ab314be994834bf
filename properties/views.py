"""What a property may talk about: a state, or a transition (before, after, outcome, effects).

Properties are functions of these views returning model expressions, so every engine interprets
them exactly as it interprets the actions.
"""

from __future__ import annotations

from model.lang.action import Action, Semantics, errno_code
from model.lang.expr import BV, INT, E, false, var
from model.lang.schema import Schema, StateView

EFF_SORT = BV(8)


class TransitionView:
    """One action's transitions: `s` before, `n` after, `out` the encoded outcome, `eff` the
    effect bits, `action` the action's name (a Python string: properties may branch on it)."""

    def __init__(self, schema: Schema, action: Action, sem: Semantics) -> None:
        self.schema = schema
        self.action = action.name
        self._action = action
        self._sem = sem
        self.s = StateView(schema, "s")
        self.n = StateView(schema, "n")
        self.out = var("o", "out", INT)
        self.eff = var("x", "eff", EFF_SORT)
        self.branch = var("b", "br", INT)

    @property
    def ok(self) -> E:
        return self.out >= 0

    def failed(self, errno: str) -> E:
        return self.out == errno_code(errno)

    def param(self, name: str) -> E:
        for p in self._action.params:
            if p.name == name:
                return var("p", name, p.sort.expr_sort)
        raise KeyError(f"action {self.action} has no parameter {name}")

    def has_param(self, name: str) -> bool:
        return any(p.name == name for p in self._action.params)

    def fired(self, label: str) -> E:
        """The rule labelled `label` decided this call."""
        for b in self._sem.branches:
            if b.rule.label == label:
                return self.branch == b.index
        return false

    def is_(self, *names: str) -> bool:
        return self.action in names

