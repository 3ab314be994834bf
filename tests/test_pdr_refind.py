"""pdr's run for a goal Spacer calls reachable (checker/symbolic.py `_Ctx.pdr`): bmc re-finds
it; where bmc times out, the explicit search's shortest run within the default scope is shown
(replayed, and the method says so); where that scope holds none, the verdict stays UNKNOWN.
bmc's time-out is stood in for, so the fallback itself is tested."""

from __future__ import annotations

from typing import Any

import pytest

from checker import symbolic
from checker.bmc import SearchResult
from checker.symbolic import check_symbolic
from checker.verdict import Verdict
from model import designs
from properties.catalogue import for_design


def _bmc_times_out(mp: pytest.MonkeyPatch) -> None:
    def gave_up(enc: Any, goal: Any, depth: int, timeout: float | None = None,
                **kw: Any) -> SearchResult:
        return SearchResult("unknown", 2, reason="timeout")

    mp.setattr(symbolic, "bmc", gave_up)


def _prop(design: str, name: str) -> Any:
    return next(p for p in for_design(designs.get(design)) if p.name == name)


def test_a_timed_out_refind_shows_the_explicit_shortest_run(monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    d = designs.get("memfd")
    p = _prop("memfd", "grow-seal-size-monotone")
    plain = check_symbolic(d, p, "pdr", timeout=60.0)
    assert plain.verdict is Verdict.VIOLATED and plain.run is not None
    _bmc_times_out(monkeypatch)
    r = check_symbolic(d, p, "pdr", timeout=60.0)
    assert r.verdict is Verdict.VIOLATED and r.run is not None
    assert "bmc found no run within 2 steps (timeout)" in r.method
    assert "explicit search's shortest within scope pages=1,maps=1" in r.method
    assert "replayed on the explicit interpreter" in r.method
    assert len(r.run) == len(plain.run)


def test_no_run_in_the_scope_stays_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    d = designs.get("memfd")
    p = _prop("memfd", "grow-seal-size-monotone")
    _bmc_times_out(monkeypatch)
    monkeypatch.setattr(symbolic._Ctx, "_explicit_run", lambda self: (None, "pages=1"))
    r = check_symbolic(d, p, "pdr", timeout=60.0)
    assert r.verdict is Verdict.UNKNOWN and r.run is None
    assert "Spacer says reachable but bmc found no run within 2 steps" in r.method
