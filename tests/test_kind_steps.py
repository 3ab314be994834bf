"""k-induction passes over a step query the solver cannot answer (checker/kind.py): base(k+1)
and step(k+1) still decide; only the last k's unanswered step is UNKNOWN. The solver's answer
to one step query is stood in for, so the loop itself is tested."""

from __future__ import annotations

from typing import Any

import pytest
import z3

from checker import kind
from checker.encode_z3 import goal_for
from checker.kind import kinduction
from checker.symbolic import encoder
from model import designs
from properties.catalogue import for_design


def _goal(design: str, prop: str) -> tuple[Any, Any]:
    d = designs.get(design)
    p = next(p for p in for_design(d) if p.name == prop)
    enc = encoder(d)
    return enc, goal_for(enc, p)


def _step_times_out(mp: pytest.MonkeyPatch, at: int = 0) -> list[int]:
    """Every solver kinduction makes after its base solver is a step query's, one per k: the
    one of k = `at` answers unknown (reason: timeout). Returns the list solvers are counted
    in."""
    made: list[int] = []
    real = kind.unrolling_solver

    def fake(timeout: float | None) -> Any:
        s = real(timeout)
        made.append(1)
        if len(made) == at + 2:  # the first solver is the base case's
            s.check = lambda *a: z3.unknown
            s.reason_unknown = lambda: "timeout"
        return s

    mp.setattr(kind, "unrolling_solver", fake)
    return made


def test_a_step_that_times_out_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    enc, goal = _goal("memfd", "write-seal-no-writable-mapping")
    plain = kinduction(enc, goal, 8, 60.0)
    assert plain.status == "proved"
    made = _step_times_out(monkeypatch, at=plain.k)
    r = kinduction(enc, goal, 8, 60.0)
    assert r.status == "proved" and r.k == plain.k + 1, (r.status, r.k, plain.k)
    assert len(made) == 1 + (r.k + 1)  # the base solver and one step solver per k


def test_a_run_is_still_found_after_a_step_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    enc, goal = _goal("memfd", "grow-seal-size-monotone")
    plain = kinduction(enc, goal, 8, 60.0, violation="grow-seal-size-monotone")
    assert plain.status == "found" and plain.run is not None
    _step_times_out(monkeypatch)
    r = kinduction(enc, goal, 8, 60.0, violation="grow-seal-size-monotone")
    assert r.status == "found" and r.run is not None and len(r.run) == len(plain.run)


def test_the_last_step_unanswered_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    enc, goal = _goal("memfd", "write-seal-no-writable-mapping")
    _step_times_out(monkeypatch)
    r = kinduction(enc, goal, 0, 60.0)
    assert r.status == "unknown" and r.k == 0 and r.reason == "timeout"
