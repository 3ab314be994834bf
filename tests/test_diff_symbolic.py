"""Design diff without a scope (z3): a refinement relation or Spacer, re-checked."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

import pytest

from checker.diff_symbolic import symbolic_diff
from model import designs


def test_flags_variant_equivalent_for_every_scope() -> None:
    r = symbolic_diff(designs.get("v5-inaccessible"), designs.get("v5-flags"), timeout=120)
    assert r.verdict == "equivalent" and r.rechecked
    assert r.invariant is not None and "B.s.iflags" in r.invariant  # the flags relate


def _reader_left_on_vm_locked() -> str:
    mutant = designs.get("v5-flags").derive(
        "v5-flags-mutant", "writepage reads VM_LOCKED",
        layout={"writepage:LOCKED": ("iflags", 0x2000)})
    # every common property's value compared too, as `shmemcheck diff` does: the bounded
    # search finds the distinguishing run where Spacer alone took past 120 s (NOTES)
    return symbolic_diff(designs.get("v5-inaccessible"), mutant, timeout=120).verdict


T = TypeVar("T")


def in_fresh_process(fn: Callable[[], T]) -> T:
    """fn() in a new interpreter, as the CLI runs one diff per process: Spacer's time is
    heavy-tailed in the history of the z3 context (13 s alone, past 120 s inside a test
    session that built many other terms; NOTES.md "Solver restarts")."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as ex:
        return ex.submit(fn).result()


@pytest.mark.slow
def test_reader_left_on_vm_locked_is_different() -> None:
    assert in_fresh_process(_reader_left_on_vm_locked) == "different"


@pytest.mark.slow
def test_patch_is_different_and_self_is_equivalent() -> None:
    assert symbolic_diff(designs.get("memfd@5.17"), designs.get("v5-inaccessible"),
                         timeout=120).verdict == "different"
    d = designs.get("memfd")
    assert symbolic_diff(d, d, timeout=120).verdict == "equivalent"
