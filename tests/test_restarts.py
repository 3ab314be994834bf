"""Solver restarts (checker/bmc.py RestartingSolver): a query's timeout is spent in doubling
slices, each with another random seed; only a timeout is retried, and the slices never add
up to more than the budget. z3's check is stood in for, so the schedule itself is tested."""

from __future__ import annotations

from typing import Any

import pytest
import z3

from checker import bmc
from checker.bmc import RestartingSolver


class Script:
    """Stands in for z3.Solver.check/set/reason_unknown: answers from a list, records the
    timeout (ms) and seed each check ran with."""

    def __init__(self, answers: list[Any], reason: str = "timeout") -> None:
        self.answers, self.reason = list(answers), reason
        self.calls: list[tuple[int, int]] = []
        self.params: dict[str, Any] = {}

    def install(self, mp: pytest.MonkeyPatch) -> None:
        def check(solver: Any, *a: Any) -> Any:
            self.calls.append((self.params["timeout"], self.params["random_seed"]))
            return self.answers.pop(0)

        def set_(solver: Any, key: str, value: Any) -> None:
            self.params[key] = value

        mp.setattr(z3.Solver, "check", check)
        mp.setattr(z3.Solver, "set", set_)
        mp.setattr(z3.Solver, "reason_unknown", lambda solver: self.reason)


def test_a_timed_out_slice_is_retried_with_the_next_seed(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    sc = Script([z3.unknown, z3.unknown, z3.sat])
    sc.install(monkeypatch)
    assert RestartingSolver(60.0).check() == z3.sat
    assert [seed for _, seed in sc.calls] == [0, 1, 2]
    assert [ms for ms, _ in sc.calls] == [2000, 4000, 8000]


def test_the_slices_never_exceed_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    sc = Script([z3.unknown] * 10)
    sc.install(monkeypatch)
    assert RestartingSolver(20.0).check() == z3.unknown
    # 2 + 4 + 8 s, then what is left (about 6 s) in one last slice rather than 16
    assert [ms for ms, _ in sc.calls][:3] == [2000, 4000, 8000] and len(sc.calls) == 4
    assert sum(ms for ms, _ in sc.calls) <= 20000


def test_only_a_timeout_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    sc = Script([z3.unknown, z3.sat], reason="incomplete quantifiers")
    sc.install(monkeypatch)
    assert RestartingSolver(60.0).check() == z3.unknown and len(sc.calls) == 1


def test_ctrl_c_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    sc = Script([z3.unknown, z3.sat], reason="canceled")
    sc.install(monkeypatch)
    monkeypatch.setattr(bmc, "requested", lambda: True)
    assert RestartingSolver(60.0).check() == z3.unknown and len(sc.calls) == 1


def test_a_real_query_is_answered() -> None:
    x = z3.Int("x")
    s = RestartingSolver(5.0)
    s.add(x * x == 49, x < 0)
    assert s.check() == z3.sat and s.model().eval(x).as_long() == -7
    assert s.check(x > 0) == z3.unsat


def test_spacer_slices_take_spacers_seed_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """pdr's Horn solver restarts the same way, and each slice also reseeds Spacer."""
    sc = Script([z3.unknown, z3.unsat])
    sc.install(monkeypatch)
    s = RestartingSolver(60.0, logic="HORN")
    assert s.check() == z3.unsat
    assert [seed for _, seed in sc.calls] == [0, 1] and sc.params["fp.spacer.random_seed"] == 1


def test_a_real_horn_query_is_answered() -> None:
    """x=0 ⇒ Inv(x); Inv(x) ∧ x<5 ⇒ Inv(x+1): Inv(7) is unreachable (sat), Inv(3) is not."""
    x = z3.Int("x")
    inv = z3.Function("Inv", z3.IntSort(), z3.BoolSort())
    base = [z3.ForAll([x], z3.Implies(x == 0, inv(x))),
            z3.ForAll([x], z3.Implies(z3.And(inv(x), x < 5), inv(x + 1)))]
    for bad, answer in ((7, z3.sat), (3, z3.unsat)):
        s = RestartingSolver(10.0, logic="HORN")
        s.add(*base, z3.ForAll([x], z3.Implies(z3.And(inv(x), x == bad), False)))
        assert s.check() == answer
