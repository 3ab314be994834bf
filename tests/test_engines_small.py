"""Every engine on a small fixture design (tests/conftest.py counter_design: 2 fields,
7 reachable states), where each number can be worked out by hand."""

from __future__ import annotations

import pytest

from checker.explicit import Explorer
from checker.symbolic import check_symbolic
from checker.verdict import Verdict
from model.lang import Design
from properties.catalogue import Property

NEVER_FULL = Property("never-full", "always", lambda s: s.n != 3, "test", "test")
LOCKED_NONEMPTY = Property("locked-nonempty", "always", lambda s: ~s.locked | (s.n >= 1),
                           "test", "test")
LOCK_FREEZES = Property("lock-freezes", "action", lambda t: ~t.s.locked | (t.n.n == t.s.n),
                        "test", "test")
SOMETIMES_LOCKED_FULL = Property("sometimes-locked-full", "sometimes",
                                 lambda s: s.locked & (s.n == 3), "test", "test")
PROPS = [NEVER_FULL, LOCKED_NONEMPTY, LOCK_FREEZES, SOMETIMES_LOCKED_FULL]


def test_explicit_counts_and_verdicts(counter: Design) -> None:
    r = Explorer(counter, counter.scope(), PROPS).run()
    assert r.complete and r.states == 7 and r.depth == 4  # inc, inc, inc, lock
    assert r.transitions == 14  # two actions, no parameters, from each of 7 states
    assert r.uncovered() == []
    assert not r.props["never-full"].holds
    run = r.props["never-full"].run
    assert run is not None and [s.action for s in run.steps] == ["inc"] * 3
    assert r.props["locked-nonempty"].holds and r.props["lock-freezes"].holds
    w = r.props["sometimes-locked-full"]
    assert w.holds and w.run is not None and len(w.run) == 4


def test_explicit_coverage_names_a_rule_that_never_fires(counter: Design) -> None:
    """Without `lock`'s EINVAL reachable (start at n = 1), that rule is reported as never
    fired."""
    import dataclasses

    from model.lang import Init
    d = dataclasses.replace(counter, init=Init({"n": 1, "locked": False}))
    r = Explorer(d, d.scope(), []).run()
    assert r.uncovered() == [("lock", "empty")] and r.states == 6


@pytest.mark.parametrize("engine", ["pdr", "kind"])
def test_symbolic_proofs_and_violations(counter: Design, engine: str) -> None:
    for p in (LOCKED_NONEMPTY, LOCK_FREEZES):
        r = check_symbolic(counter, p, engine, depth=6, timeout=60.0)
        assert r.verdict is Verdict.PROVED and r.certificate_smt2, (p.name, r.method)
    r = check_symbolic(counter, NEVER_FULL, engine, depth=6, timeout=60.0)
    assert r.verdict is Verdict.VIOLATED and r.run is not None and len(r.run) == 3


def test_bmc_finds_the_explicit_shortest_runs(counter: Design) -> None:
    ex = Explorer(counter, counter.scope(), PROPS).run()
    for p in (NEVER_FULL, SOMETIMES_LOCKED_FULL):
        r = check_symbolic(counter, p, "bmc", depth=6, timeout=60.0)
        run = ex.props[p.name].run
        assert r.run is not None and run is not None and len(r.run) == len(run), p.name
    b = check_symbolic(counter, LOCKED_NONEMPTY, "bmc", depth=6, timeout=60.0)
    assert b.verdict is Verdict.BOUNDED and ex.props["locked-nonempty"].holds
