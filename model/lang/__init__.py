"""The modelling language: expressions, state schemas, actions with ordered rules, designs."""

from model.lang.action import (
    Action,
    Param,
    Rule,
    fail,
    ok,
    requires,
    signal,
)
from model.lang.design import Design, Init
from model.lang.expr import And, E, If, Implies, Not, Or, bv, false, true
from model.lang.schema import Field, Schema, Sort, boolean, enum, integer, nat, nat_bytes, word

__all__ = [
    "Action", "And", "Design", "E", "Field", "If", "Implies", "Init", "Not", "Or", "Param",
    "Rule", "Schema", "Sort", "boolean", "bv", "enum", "fail", "false", "integer", "nat",
    "nat_bytes", "ok", "requires",
    "signal", "true", "word",
]
