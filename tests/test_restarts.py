"""Solver restarts (checker/bmc.py RestartingSolver): a query's timeout is spent in slices of
2, 2, 4, 4, 8 ... s, each with another random seed; only a timeout is retried, and the slices
never add up to more than the budget. z3's check is stood in for, so the schedule itself is
tested."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import z3

from checker import bmc
from checker.bmc import RestartingSolver

ROOT = Path(__file__).resolve().parent.parent


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
    assert [ms for ms, _ in sc.calls] == [2000, 2000, 4000]


def test_the_slices_never_exceed_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    sc = Script([z3.unknown] * 10)
    sc.install(monkeypatch)
    assert RestartingSolver(20.0).check() == z3.unknown
    # 2 + 2 + 4 + 4 s, then what is left (about 8 s) in one last slice rather than 8 + 8
    assert [ms for ms, _ in sc.calls][:4] == [2000, 2000, 4000, 4000] and len(sc.calls) == 5
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


def test_pdr_restarts_in_a_new_solver_each_slice() -> None:
    """pdr with a first slice of 0.05 s restarts Spacer several times on a query that takes
    longer, and still answers; in a child process, since re-checking one HORN solver after a
    timeout crashed z3 5.4.1 (SIGSEGV) — each slice now gets its own solver."""
    code = (
        "import checker.bmc as B; B.RESTART_FIRST = 0.05\n"
        "import z3\n"
        "from model import designs\n"
        "from properties.catalogue import for_design\n"
        "from checker.symbolic import encoder, goal_for\n"
        "from checker.pdr import pdr\n"
        "made = []\n"
        "real = z3.SolverFor\n"
        "z3.SolverFor = lambda logic: made.append(logic) or real(logic)\n"
        "d = designs.get('guest_memfd@6.8-rc')\n"
        "p = next(p for p in for_design(d) if p.name == 'gmem-bindings-in-bounds')\n"
        "enc = encoder(d)\n"
        "print(pdr(enc, goal_for(enc, p), 20.0).status, len(made))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    status, solvers = p.stdout.split()
    assert status == "safe" and int(solvers) > 1


def test_slices_double_every_second_and_end_with_what_is_left() -> None:
    assert list(bmc.slices(20.0)) == [(2.0, 0, False), (2.0, 1, False), (4.0, 2, False),
                                       (4.0, 3, False), (8.0, 4, True)]
    assert list(bmc.slices(60.0)) == [(2.0, 0, False), (2.0, 1, False), (4.0, 2, False),
                                       (4.0, 3, False), (8.0, 4, False), (8.0, 5, False),
                                       (16.0, 6, False), (16.0, 7, True)]
    assert list(bmc.slices(1.0)) == [(1.0, 0, True)]
    assert list(bmc.slices(20.0, repeat=1)) == [(2.0, 0, False), (4.0, 1, False),
                                                (8.0, 2, False), (6.0, 3, True)]


def test_every_second_slice_asks_a_copy_in_a_fresh_context(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """The first slice (the solver's own context) times out; the second asks a translated copy
    whose model is translated back, so the caller evaluates its own terms in it."""
    real = z3.Solver.check
    contexts: list[Any] = []

    def check(solver: Any, *a: Any) -> Any:
        contexts.append(solver.ctx)
        return z3.unknown if len(contexts) == 1 else real(solver, *a)

    monkeypatch.setattr(z3.Solver, "check", check)
    monkeypatch.setattr(z3.Solver, "reason_unknown", lambda solver: "timeout")
    x, g = z3.Int("x"), z3.Bool("g")
    s = RestartingSolver(60.0)
    s.set("arith.solver", 2)
    s.add(z3.Implies(g, z3.And(x * x == 49, x < 0)))
    assert s.check(g) == z3.sat
    assert contexts[0] is s.ctx and contexts[1] is not s.ctx
    assert s.model().eval(x).as_long() == -7
    assert len(contexts) == 2
