"""model/lang/schema.py: field sorts, their value ranges and the packed state layout."""

from __future__ import annotations

import pytest

from model.lang import Design, Field, Schema, boolean, nat, word
from model.lang.schema import render_state


def test_layout_gives_each_field_its_bits(counter: Design) -> None:
    assert counter.schema.layout({}) == [("n", 0, 2), ("locked", 2, 1)]
    wide = Schema((Field("a", nat("maps")), Field("b", nat("maps"))))
    assert wide.layout({"maps": 7}) == [("a", 0, 3), ("b", 3, 3)]
    with pytest.raises(ValueError, match="state needs 80 bits"):
        wide.layout({"maps": (1 << 40) - 1})


def test_outside_names_why_a_value_is_not_of_the_sort() -> None:
    assert word(2).outside(3) is None
    assert word(2).outside(4) == "does not fit the model's 2-bit field"
    assert nat(fixed=3).outside(4) == "the model's values are 0..3"
    assert boolean().outside(2) == "the model's values are 0..1"
    assert nat("maps").outside(10**9) is None  # bounded by a scope, not by the sort
    assert nat("maps").outside(-1) == "negative (the model's value is a count or bit set, >= 0)"


def test_render_state_names_every_field(counter: Design) -> None:
    text = render_state(counter.schema, {"n": 2, "locked": 1})
    assert "n=2" in text.replace(" ", "") and "locked" in text
