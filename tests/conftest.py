"""Shared fixtures and helpers of the test suite (import plain helpers from here, never from
another test module): replay a trace text on a design, run the command line, explore a design's
catalogue once per session, restrict a design to its explored domains."""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from checker.explicit import Explorer, ExploreResult
from checker.replay import model_outcomes
from model import designs
from model.lang.design import Design
from properties.catalogue import for_design
from traces.textfmt import parse_trace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`shmemcheck ARGS` in a subprocess from the repository root (so exit status, stdout and
    stderr are what a user sees)."""
    return subprocess.run([sys.executable, "-m", "checker.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


@functools.cache
def explore_catalogue(name: str) -> ExploreResult:
    """The explicit search of a built-in design at its default scope with its whole catalogue:
    run once per session, read by every test that needs it (the manifest, engines-agree,
    the catalogue verdict tests)."""
    d = designs.get(name)
    return Explorer(d, d.scope(), for_design(d)).run()


@pytest.fixture(scope="session")
def explored() -> Callable[[str], ExploreResult]:
    return explore_catalogue


def explored_domains(d: Design) -> Design:
    """The design with every parameter restricted to its explored domain (symbolically)."""
    acts = tuple(dataclasses.replace(a, params=tuple(
        dataclasses.replace(p, symbolic_domain=True) for p in a.params)) for a in d.actions)
    return dataclasses.replace(d, name=d.name, actions=acts)


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
