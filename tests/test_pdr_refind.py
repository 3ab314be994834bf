"""pdr's run for a goal Spacer calls reachable (checker/symbolic.py `_Ctx.pdr`): the explicit
search's shortest run within the default scope, once bmc finds none shorter (else bmc's own,
shorter run); where bmc times out, that run is shown as shortest within the scope (replayed,
and the method says so); where that scope holds none, the verdict stays UNKNOWN. bmc's
time-out is stood in for, so the fallback itself is tested."""

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


def test_the_explicit_run_stops_at_its_layer_and_bmc_finds_none_shorter() -> None:
    """The explicit search asked only for a run stops at the layer holding it (not a complete
    search), with the full search's shortest length; pdr shows that run once bmc has found
    none shorter over every parameter value."""
    from checker.explicit import Explorer

    d = designs.get("memfd")
    p = _prop("memfd", "sometimes-write-seal-busy-pin")
    full = Explorer(d, d.scope(), [p], elide=True).run()
    first = Explorer(d, d.scope(), [p], elide=True, until_found=True).run()
    run, run1 = full.props[p.name].run, first.props[p.name].run
    assert run is not None and run1 is not None and len(run1) == len(run)
    assert not first.complete and first.depth == len(run) < full.depth
    assert first.stopped and "every property's run found" in first.stopped
    assert first.states < full.states
    r = check_symbolic(d, p, "pdr", timeout=60.0)
    assert r.verdict is Verdict.WITNESSED and r.run is not None and len(r.run) == len(run)
    assert (f"shortest run ({len(run)} steps) found by the explicit search within scope "
            "pages=1,maps=1") in r.method
    assert "none shorter by bmc" in r.method and "replayed" in r.method


def test_a_shorter_run_through_values_the_search_skips_is_bmcs() -> None:
    """Every seal in one F_ADD_SEALS is outside the explored seal domain: the explicit run
    takes 3 steps, bmc's over every value 2, and pdr shows bmc's."""
    d = designs.get("memfd")
    r = check_symbolic(d, _prop("memfd", "sometimes-all-seals"), "pdr", timeout=60.0)
    assert r.verdict is Verdict.WITNESSED and r.run is not None and len(r.run) == 2
    assert "shortest run (2 steps) found by bmc" in r.method
