"""model/lang/expr.py: the typed IR the rule bodies are written in."""

from __future__ import annotations

import pytest

from model import designs
from model.lang import Design, If
from model.lang.expr import show, variables
from model.vocab import F_SEAL_WRITE


def test_literal_that_does_not_fit_a_word_is_refused() -> None:
    s = designs.get("memfd").schema.state_vars("s")
    for bad in (lambda: s.seals == 0x40, lambda: s.seals | 0x40, lambda: s.seals ^ 0x40,
                lambda: s.seals != 0x80):
        with pytest.raises(TypeError, match="does not fit the 6-bit word"):
            bad()
    s.seals & 0x2000  # a bit the word cannot hold reads as 0: exact, allowed


def test_operators_build_typed_terms(counter: Design) -> None:
    s = counter.schema.state_vars("s")
    assert show(s.n + 1 == 2) == "n + 1 = 2"
    assert show(If(s.locked, s.n, 0)) == "(if locked then n else 0)"
    assert variables((s.n + 1 == 2) & s.locked) == {("s", "n"), ("s", "locked")}
    m = designs.get("memfd").schema.state_vars("s")
    assert show(m.seals.has(F_SEAL_WRITE)) == "seals & 0x8 ≠ 0x0"


def test_no_python_truth_value(counter: Design) -> None:
    """`and`/`or`/`if` on a model expression would silently pick one side: refused."""
    s = counter.schema.state_vars("s")
    with pytest.raises(TypeError, match="no Python truth value"):
        bool(s.n == 1)
