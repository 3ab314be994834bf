"""Pinned state counts (tests/manifest.json): every built-in and corpus design's explicit
state space at its default scope — states, transitions, depth, pruned transitions and the rules
that never fire — recomputed and compared exactly, so an unintended model change fails here."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from checker.explicit import ExploreResult
from model import designs
from tests import manifest

PINNED = manifest.load()
BUILTIN = designs.names()
#: memfd+luo's counts are checked by tests/test_luo.py on its catalogue exploration (23 M
#: states: a second search here cost a minute of the suite)
CORPUS = [n for n in designs.names(include_corpus=True)
          if n not in BUILTIN and n != "memfd+luo"]
HOW = ("if the model change is deliberate, regenerate with `python -m tests.manifest --update` "
       "and say in the commit why the counts moved")


def test_manifest_lists_every_design() -> None:
    assert list(PINNED) == designs.names(include_corpus=True), HOW


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_design_counts(name: str, explored: Callable[[str], ExploreResult]) -> None:
    """Shares the session's catalogue exploration (properties do not change the space)."""
    assert manifest.entry(explored(name)) == PINNED[name], f"{name}: {HOW}"


@pytest.mark.slow
@pytest.mark.parametrize("name", CORPUS)
def test_corpus_design_counts(name: str) -> None:
    assert manifest.compute(name) == PINNED[name], f"{name}: {HOW}"


def test_the_check_fails_on_a_changed_count(explored: Callable[[str], ExploreResult]) -> None:
    """The comparison is exact: one state more is a failure."""
    e = manifest.entry(explored("guest_memfd"))
    assert e == PINNED["guest_memfd"]
    assert {**e, "states": e["states"] + 1} != PINNED["guest_memfd"]
