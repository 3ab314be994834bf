"""checker/interpreter.py (one step of a design's compiled actions, one cache) and
model/lang/designcache.py (per-design caches keyed by identity, never by a reusable id)."""

from __future__ import annotations

import gc

import pytest

from checker.explicit import Explorer
from checker.interpreter import Interpreter, interpreter_for
from model import designs
from model.lang.design import Design
from model.lang.designcache import PerDesign
from properties.catalogue import load


def broken_memfd() -> Design:
    """memfd without F_SEAL_WRITE's writable-mapping check (a reachable violation)."""
    return designs.get("memfd").derive(
        "memfd", "broken", edit={"fcntl_add_seals": lambda a: a.drop_rule("deny_writable")})


def test_one_interpreter_per_design_object_scope_and_properties() -> None:
    d = designs.get("guest_memfd")
    p = next(iter(load().values()))
    a = interpreter_for(d, d.scope())
    assert interpreter_for(d, d.scope()) is a
    assert interpreter_for(d) is a  # the default scope is the design's
    assert interpreter_for(d, {k: 1 for k in d.default_scope}) is not a
    assert interpreter_for(d, d.scope(), [p]) is not a
    # an equal-looking design object is another design: never its interpreter
    twin = d.derive(d.name, d.doc)
    assert interpreter_for(twin, twin.scope()) is not a


def test_apply_successors_and_enabled_agree_with_the_search() -> None:
    """The counterexample the search finds is rebuilt step by step by apply; every step is one
    of successors() of the state before it; the state it ends in fails the property."""
    d = broken_memfd()
    p = load()["write-seal-no-writable-mapping"]
    r = Explorer(d, d.scope(), [p]).run()
    run = r.props[p.name].run
    assert run is not None and not r.props[p.name].holds
    it = interpreter_for(d, d.scope(), [p])
    st = dict(run.init)
    assert st in it.initial_states()
    assert it.state_holds(p.name, st)
    for step in run.steps:
        ca = it.by_name[step.action]
        assert it.enabled(ca, st, step.params)
        got = it.apply(ca, st, step.params)
        assert got == step
        assert got in it.successors(st)
        st = got.after
    assert not it.state_holds(p.name, st)


def test_a_disabled_instance_is_refused_and_absent_from_successors() -> None:
    d = designs.get("memfd")
    it = interpreter_for(d, d.scope())
    st = it.initial_states()[0]
    succ = {(s.action, tuple(sorted(s.params.items()))) for s in it.successors(st)}
    checked = 0
    for ca in it.actions:
        for j in range(ca.k):
            params = ca.params_at(j)
            en = it.enabled(ca, st, params)
            assert en == ((ca.action.name, tuple(sorted(params.items()))) in succ)
            if not en:
                checked += 1
                with pytest.raises(ValueError, match="not enabled"):
                    it.apply(ca, st, params)
    assert checked  # some instance is disabled in an initial state


def test_transition_holds_on_an_action_property() -> None:
    """seals-only-grow holds on every transition out of an initial state of memfd."""
    d = designs.get("memfd")
    p = load()["seals-only-grow"]
    it = Interpreter(d, d.scope(), [p])
    st = it.initial_states()[0]
    for s in it.successors(st):
        assert it.transition_holds(p.name, it.by_name[s.action], st, s.params) == (True, True)


def test_per_design_cache_is_keyed_by_identity_and_forgets_freed_designs() -> None:
    cache: PerDesign[str] = PerDesign()
    d = designs.get("memfd")
    twin = d.derive(d.name, d.doc)
    cache.put(twin, "twin")
    assert cache.get(twin) == "twin"
    assert cache.get(d) is None  # equal by value, another object: a miss
    del twin
    gc.collect()
    assert len(cache) == 0  # the entry went with its design: its id cannot be hit again
    assert cache.setdefault(d, lambda: "memfd") == "memfd"
    assert cache.setdefault(d, lambda: "again") == "memfd"


def test_per_design_cache_limit_evicts_oldest() -> None:
    cache: PerDesign[int] = PerDesign(limit=2)
    ds = [designs.get(n) for n in ("memfd", "guest_memfd", "memfd@5.17")]
    for i, d in enumerate(ds):
        cache.put(d, i)
    assert cache.get(ds[0]) is None and cache.get(ds[1]) == 1 and cache.get(ds[2]) == 2


def test_a_step_is_exact_past_int64() -> None:
    """apply() evaluates over Python ints: a u64 of 2^64-1 and a sum past 2^63 are judged as
    the kernel computes them, where int64 arrays would overflow (or refuse the value)."""
    from model.designs.guest_memfd import G0, VM0

    d = designs.get("guest_memfd")
    ex = Interpreter(d, d.scope())
    st = ex.initial_states()[0]
    for name, params in (("open_kvm", {}), ("create_vm", {"fd": 0})):
        st = ex.apply(ex.by_name[name], st, params).after
    create = ex.by_name["create_gmem"]
    for size, out in (((1 << 64) - 1, "EINVAL"), ((1 << 64) - 4096, "EINVAL"),
                      (1 << 63, "EINVAL"), ((1 << 63) - 4096, "ok")):
        step = ex.apply(create, st, {"vm": VM0, "size": size, "flags": 0})
        assert (step.rule == "bad_size") == (out == "EINVAL"), size
    st = ex.apply(create, st, {"vm": VM0, "size": (1 << 63) - 4096, "flags": 0}).after
    assert st["g0_size"] == (1 << 51) - 1
    falloc = ex.by_name["fallocate"]
    keep = 0x01
    big = (1 << 62)
    assert ex.apply(falloc, st, {"fd": G0, "mode": keep, "off": big, "len": big}).rule == \
        "too_big"
    last = (1 << 63) - 8192
    assert ex.apply(falloc, st, {"fd": G0, "mode": keep, "off": last, "len": 4096}).rule == \
        "allocated"
