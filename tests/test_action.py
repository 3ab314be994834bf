"""model/lang/action.py: an action's ordered rules, resolved into exclusive branches; deltas."""

from __future__ import annotations

import dataclasses

import pytest

from model import designs
from model.lang import Design, fail, ok
from model.lang.expr import show


def test_delta_errors_name_the_missing_rule() -> None:
    with pytest.raises(KeyError, match="no rule labelled 'nope'"):
        designs.get("memfd").derive("x", "x", edit={
            "fcntl_add_seals": lambda a: a.drop_rule("nope")}).action(
            "fcntl_add_seals").semantics(designs.get("memfd").schema)


def test_ordered_rules_become_exclusive_branches(counter: Design) -> None:
    """The first rule whose condition holds decides: each branch fires only when no earlier
    rule did (the kernel's check order)."""
    sem = counter.action("inc").semantics(counter.schema)
    assert [(b.rule.kind, b.rule.label) for b in sem.branches] == [
        ("fail", "frozen"), ("fail", "full"), ("ok", "ok")]
    assert "locked" in show(sem.branches[1].fires)  # full fires only when not frozen


def test_duplicate_rule_labels_are_refused(counter: Design) -> None:
    a = counter.action("lock")
    twice = dataclasses.replace(a, body=lambda s: [fail("EINVAL", when=s.n == 0, label="x"),
                                                   ok(0, label="x")])
    with pytest.raises(ValueError, match="duplicate rule labels"):
        twice.semantics(counter.schema)


def test_insert_and_drop_rule(counter: Design) -> None:
    a = counter.action("inc").insert_rule(
        lambda s: fail("EBUSY", when=s.n == 1, label="busy"), before="full")
    assert [b.rule.label for b in a.semantics(counter.schema).branches] == [
        "frozen", "busy", "full", "ok"]
    b = counter.action("inc").drop_rule("frozen")
    assert [r.rule.label for r in b.semantics(counter.schema).branches] == ["full", "ok"]
