"""The explicit engine: verdicts, shortest counterexamples, coverage, scope honesty."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from checker.explicit import Explorer, ExploreResult
from model import designs
from model.lang import fail
from properties.catalogue import for_design, load
from traces.concretize import run_to_trace
from traces.textfmt import format_step


def _check(design, names, scope=None):  # type: ignore[no-untyped-def]
    cat = load()
    ex = Explorer(design, design.scope(scope or {}), [cat[n] for n in names])
    return ex.run()


def test_catalogue_on_memfd_as_expected(explored: Callable[[str], ExploreResult]) -> None:
    r = explored("memfd")
    for name, o in r.props.items():
        exp = o.prop.expected("memfd")
        if o.prop.kind in ("always", "action"):
            assert o.holds == (exp == "holds"), name
        else:
            assert o.holds == (exp == "witnessed"), name
    from model.designs.memfd import REPLAY_ACTIONS, REPLAY_ONLY

    # every other rule fires in the search; the replay-only actions fire none
    assert [u for u in r.uncovered() if u[0] not in REPLAY_ACTIONS] == list(REPLAY_ONLY)
    assert {a for a, _ in r.uncovered()} >= set(REPLAY_ACTIONS)
    assert r.states > 100_000


def test_hugetlbfs_exec_seal_counterexample_is_shortest() -> None:
    d = designs.get("memfd")
    r = _check(d, ["exec-seal-mode-fixed"])
    run = r.props["exec-seal-mode-fixed"].run
    assert run is not None
    lines = [format_step(s) for s in run_to_trace(d, run).steps]
    assert lines == ['memfd_create("t", MFD_HUGETLB|MFD_NOEXEC_SEAL) = 3', "fchmod(3, 0755) = 0"]


def test_broken_rule_caught_with_shortest_counterexample() -> None:
    """F_ADD_SEALS that forgets the writable-mapping check (mapping_deny_writable())."""
    base = designs.get("memfd")
    broken = base.derive("memfd-no-deny-writable", "F_ADD_SEALS without the mapping check",
                         edit={"fcntl_add_seals": lambda a: a.drop_rule("deny_writable")})
    r = _check(broken, ["write-seal-no-writable-mapping", "write-seal-content-frozen"])
    o = r.props["write-seal-no-writable-mapping"]
    assert not o.holds and o.run is not None
    lines = [format_step(s) for s in run_to_trace(broken, o.run).steps]
    assert lines == [
        'memfd_create("t", MFD_ALLOW_SEALING) = 3',
        "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1",
        "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0",
    ]
    # the content property needs a store through the surviving mapping; on hugetlbfs the
    # writable mmap itself sizes the file, which makes that the shortest run
    c = r.props["write-seal-content-frozen"]
    assert c.run is not None and [s.action for s in c.run.steps] == [
        "memfd_create", "mmap", "fcntl_add_seals", "store"]
    # and the correct design holds both
    ok = _check(base, ["write-seal-no-writable-mapping"])
    assert ok.props["write-seal-no-writable-mapping"].holds


def test_replaced_rule_delta() -> None:
    """B12 as a delta: the EXEC implication applied after the WRITE checks."""
    from model.designs.memfd import adds_write, writable_maps

    def late(s, fd, seals):  # type: ignore[no-untyped-def]
        return fail("EBUSY", when=adds_write(s, seals) & (writable_maps(s) > 0),
                    label="deny_writable")

    b12 = designs.get("memfd").derive(
        "memfd-b12", "pre-3b041514cb6e", edit={"fcntl_add_seals": lambda a: a.replace_rule(
            "deny_writable", late)})
    r = _check(b12, ["write-seal-no-writable-mapping"])
    run = r.props["write-seal-no-writable-mapping"].run
    assert run is not None
    assert [s.action for s in run.steps] == ["memfd_create", "mmap", "fcntl_add_seals"]
    assert run.steps[-1].params["seals"] == 0x20  # F_SEAL_EXEC


def test_scope_pruning_is_reported() -> None:
    d = designs.get("memfd").derive("memfd-shmem", "shmem only", edit={
        "memfd_create": lambda a: a.with_params(flags=(0x2,), name=(0,))})
    r = _check(d, ["seals-only-grow"])
    assert r.pruned > 0  # counters hit the scope: the verdict is within the scope only
    bigger = _check(d, ["seals-only-grow"], {"maps": 2})
    assert bigger.states > r.states


def test_state_graph_agrees_with_search() -> None:
    """The on-demand networkx graph has exactly the states the search counted."""
    from checker.graph import state_graph, to_dot

    d = designs.get("memfd").derive("memfd-small", "no hugetlb, no mappings", drop=[
        "mmap", "mprotect", "munmap", "store", "load", "pin", "gup_pin", "unpin",
        "dma_write"])
    scope = d.scope()
    g = state_graph(d, scope, max_states=50_000)
    r = Explorer(d, scope, []).run()
    assert g.number_of_nodes() == r.states
    assert g.number_of_edges() > 0
    assert to_dot(d, g).startswith('digraph "memfd-small"')


def test_state_graph_stops_the_search_at_max_states() -> None:
    """--max-states bounds the search itself: it stops at the first layer past the limit
    instead of exploring the whole space (1,086,150 states for memfd) and refusing afterwards."""
    import re

    import pytest

    from checker.graph import TooLarge, state_graph

    d = designs.get("memfd")
    with pytest.raises(TooLarge) as e:
        state_graph(d, d.scope(), max_states=100)
    m = re.fullmatch(r"more than 100 states \(([0-9,]+) by depth ([0-9]+), where the search "
                     r"stopped\)", str(e.value))
    assert m, str(e.value)
    visited, depth = int(m.group(1).replace(",", "")), int(m.group(2))
    assert 100 < visited < 802_374 and depth < 19
    r = Explorer(d, d.scope(), [], max_depth=depth).run()
    assert r.states == visited  # exactly the layers up to the stop, nothing beyond


@pytest.mark.slow
def test_layers_do_not_depend_on_how_the_frontier_is_cut(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Parents and counterexamples follow one fixed transition order, whatever the chunk size,
    whether (key, rank) pairs are sorted packed or by lexsort, and whether the memo is kept
    or forgotten after every chunk. At pins=0: 376,710 states in layers of up to 75,791,
    which every chunk size below but 2^20 cuts (15 s alone; five searches of the default
    scope took 61 s of the suite)."""
    import numpy as np

    import checker.explicit as explicit

    d = designs.get("memfd")
    props = for_design(d)

    def run():  # type: ignore[no-untyped-def]
        r = Explorer(d, d.scope({"pins": 0}), props, keep_layers=True).run()
        traces = {n: o.run and [(s.action, s.params) for s in o.run.steps]
                  for n, o in r.props.items()}
        return r, traces

    ref, ref_traces = run()
    for chunk, pack_bits, memo_bytes in ((explicit.ORDER_ROWS, 63, 1 << 30),
                                         (8 * explicit.ORDER_ROWS, 0, 1 << 30),
                                         (1 << 20, 63, 1 << 30), (1 << 15, 63, 0)):
        monkeypatch.setattr(explicit, "CHUNK", chunk)
        monkeypatch.setattr(explicit, "_PACK_BITS", pack_bits)
        monkeypatch.setattr(explicit, "MEMO_MIN_BYTES", memo_bytes)
        monkeypatch.setattr(explicit, "MEMO_BYTES_PER_STATE", 0)
        r, traces = run()
        assert (r.states, r.transitions, r.pruned, r.coverage) == (
            ref.states, ref.transitions, ref.pruned, ref.coverage)
        assert traces == ref_traces
        for a, b in zip(r.layers, ref.layers, strict=True):
            for x, y in zip(a, b, strict=True):
                assert np.array_equal(x, y)


