"""Shared helpers: replay a trace text on a design and return the divergence, if any."""

from __future__ import annotations

import pytest

from checker.replay import model_outcomes
from model import designs
from traces.textfmt import parse_trace


def replay_text(text: str, design: str = "memfd") -> str | None:
    """None when every outcome written in `text` is the model's; else the divergence."""
    t = parse_trace("# shmemcheck trace 1\n# design: " + design + "\n" + text, "<table>")
    rep = model_outcomes(designs.get(design), t)
    return rep.divergence.text("<table>") if rep.divergence else None


@pytest.fixture
def replay() -> object:
    return replay_text


def pytest_sessionstart(session: pytest.Session) -> None:
    """A run killed while it had vm.nr_hugepages raised left it so: put it back first."""
    from traces.kernel import restore_hugepages

    msg = restore_hugepages()
    if msg:
        print(f"\nshmemcheck tests: {msg}")
