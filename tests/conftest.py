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
from pathlib import Path

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
def memfd() -> Design:
    return designs.get("memfd")


@pytest.fixture(scope="session")
def explored() -> Callable[[str], ExploreResult]:
    return explore_catalogue


@pytest.fixture(scope="session")
def corpus_markdown(tmp_path_factory: pytest.TempPathFactory
                    ) -> tuple[subprocess.CompletedProcess[str], Path]:
    """README's `shmemcheck corpus --format markdown`, run once per session with `--out DIR`
    added (which changes nothing on stdout) so that tests/test_readme.py checks its table and
    tests/test_corpus.py the traces and reproducers it writes: (the process, DIR)."""
    out = tmp_path_factory.mktemp("corpus")
    return run("corpus", "--format", "markdown", "--out", str(out), timeout=1800), out


@pytest.fixture(scope="session")
def pdr_certificates(tmp_path_factory: pytest.TempPathFactory
                     ) -> tuple[subprocess.CompletedProcess[str], Path]:
    """README's `shmemcheck check --engine pdr --certificate c.smt2`, run once per session with
    `--format json` added, so that tests/test_readme.py checks the certificate file and
    tests/test_engines_agree.py reads every pdr verdict from the same run: (the process, the
    directory holding c.smt2)."""
    out = tmp_path_factory.mktemp("pdr")
    return run("check", "--engine", "pdr", "--certificate", str(out / "c.smt2"), "--format",
               "json", "--quiet", timeout=1800), out


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
    """A run killed while it had vm.nr_hugepages raised left it so: put it back first (once,
    in pytest-xdist's controller, before any worker starts)."""
    from traces.kernel import restore_hugepages

    if os.environ.get("PYTEST_XDIST_WORKER"):
        return

    msg = restore_hugepages()
    if msg:
        print(f"\nshmemcheck tests: {msg}")


#: modules whose every test runs in the live-kernel worker: they touch the kernel's state
#: without a `kernel` mark on each test (a kernel executor run, the huge-page state file)
KERNEL_MODULES = frozenset({"test_conform_safety"})
#: session fixtures that run a long command once: their tests share one worker
SHARED_FIXTURES = ("pdr_certificates", "corpus_markdown")


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the groups into node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Groups for pytest-xdist's `--dist loadgroup` (pyproject addopts `-n 2`): every test that
    touches the live kernel (marks kernel, qemu; KERNEL_MODULES) runs in one worker, one after
    another, as in a serial run, since they share vm.nr_hugepages, the huge-page pool and the
    hugepages state file; the tests of a long shared session fixture share one worker so it runs
    once. Everything else is spread over the workers."""
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if item.module else ""
        if (item.get_closest_marker("kernel") or item.get_closest_marker("qemu")
                or module in KERNEL_MODULES):
            group = "kernel"
        else:
            group = next((f for f in SHARED_FIXTURES if f in item.fixturenames), "")
        if group and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))


def counter_design() -> Design:
    """A small fixture design for the engines (not a kernel): a counter `n` (0..3) that `inc`
    raises until `lock` freezes it; `lock` is EINVAL while n = 0. Reachable: n = 0..3 unlocked,
    n = 1..3 locked — 7 states."""
    from model.lang import Action, Field, Init, Schema, boolean, fail, nat, ok
    from model.lang.schema import StateView

    sch = Schema((Field("n", nat(fixed=3)), Field("locked", boolean())))

    def inc(s: StateView) -> list[object]:
        return [fail("EPERM", when=s.locked, label="frozen"),
                fail("ENOSPC", when=s.n == 3, label="full"),
                ok(0, n=s.n + 1)]

    def lock(s: StateView) -> list[object]:
        return [fail("EINVAL", when=s.n == 0, label="empty"), ok(0, locked=True)]

    return Design("counter", "test fixture: a counter and a lock", sch,
                  Init({"n": 0, "locked": False}),
                  (Action("inc", (), inc, "inc", ()),  # type: ignore[arg-type]
                   Action("lock", (), lock, "lock", ())))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def counter() -> Design:
    return counter_design()
