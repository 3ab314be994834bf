"""checker/compile_np.py: actions compiled to numpy over arrays of states and parameter rows."""

from __future__ import annotations

import numpy as np

from checker.compile_np import compile_action
from checker.explicit import Explorer
from model import designs
from model.lang import Design
from model.lang.action import errno_code
from properties.catalogue import for_design


def test_actions_read_only_the_fields_they_declare() -> None:
    """Explorer.search_reads (CompiledAction.reads, plus the fields that select a byte
    count's page: the key stores it in quanta of that page) is what the search memoises on:
    on reachable states, the search's results do not change when every other field is zeroed
    (with and without properties)."""
    d = designs.get("memfd")
    keys = None
    for props in (for_design(d), []):
        ex = Explorer(d, d.scope(), props, keep_layers=True)
        if keys is None:
            keys = np.concatenate([layer[0] for layer in ex.run().layers])
            keys = np.random.default_rng(1).choice(keys, 3000, replace=False)
        pk = ex.packer
        for ca in ex.actions:
            reads = ex.search_reads[ca.index]
            # the replayed fields, read only to update themselves, are never packed
            assert set(ca.reads) - set(ex.replayed) <= set(reads)
            mask = sum(((1 << b) - 1) << sh for n, sh, b in pk.layout if n in reads)
            P = ex.pgrids[ca.index]
            fn = ca.search or ca.fn
            full, proj = fn(pk.fields(keys), P), fn(pk.fields(keys & mask), P)
            for name, v in full.items():
                if name not in ("out", "eff"):
                    assert np.array_equal(v, proj[name]), (ca.action.name, name)


def test_compiled_action_on_an_array_of_states(counter: Design) -> None:
    """`inc` on all 8 (n, locked) states at once: outcome and update per state."""
    ca = compile_action(counter.schema, counter.action("inc"), 0)
    assert ca.k == 1 and ca.labels == ["frozen", "full", "ok"]
    P = {"__shape__": np.zeros((1, ca.k), dtype=np.int8)}  # no parameters: one row
    n = np.array([[0], [1], [2], [3], [0], [1], [2], [3]], np.int64)
    locked = np.array([[0]] * 4 + [[1]] * 4, np.int64)
    r = ca.fn({"n": n, "locked": locked, "__shape__": np.zeros((8, 1), np.int8)}, P)
    out = np.broadcast_to(np.asarray(r["out"]), (8, 1)).reshape(-1).tolist()
    eperm, enospc = errno_code("EPERM"), errno_code("ENOSPC")
    assert out == [0, 0, 0, enospc, eperm, eperm, eperm, eperm]
    nxt = np.broadcast_to(np.asarray(r["n"]), (8, 1)).reshape(-1).tolist()
    assert nxt[:3] == [1, 2, 3]


def test_the_search_in_int64_computes_what_exact_evaluation_does() -> None:
    """The search evaluates the rule bodies over int64 arrays, replay over Python integers
    (checker/interpreter.py evaluate()): on reachable states and every explored parameter row,
    both give the same enabledness, outcome and updates. A rule term that leaves int64 for an
    explored value (a constant such as 2**64, or MAX_LFS_FILESIZE + 1) wraps in the search
    only; this catches it for every design action."""
    d = designs.get("memfd")
    ex = Explorer(d, d.scope(), [], keep_layers=True)
    keys = np.concatenate([layer[0] for layer in ex.run().layers])
    keys = np.random.default_rng(2).choice(keys, 400, replace=False)
    pk = ex.packer
    S = pk.fields(keys)
    S_exact = {n: (v if n == "__shape__" else np.asarray(v).astype(object))
               for n, v in S.items()}
    for ca in ex.actions:
        P = ex.pgrids[ca.index]
        P_exact = {n: (v if n == "__shape__" else np.asarray(v).astype(object))
                   for n, v in P.items()}
        fast, exact = ca.fn(S, P), ca.fn(S_exact, P_exact)
        shape = np.broadcast_shapes(S["__shape__"].shape, P["__shape__"].shape)
        en = np.broadcast_to(np.asarray(exact["en"]), shape).astype(bool)
        assert np.array_equal(np.broadcast_to(np.asarray(fast["en"]), shape).astype(bool), en), \
            ca.action.name
        for name in ("out", *ca.updated):
            a = np.broadcast_to(np.asarray(fast[name]), shape)[en].astype(object)
            b = np.broadcast_to(np.asarray(exact[name]), shape)[en]
            assert list(a) == list(b), (ca.action.name, name)


def test_a_64_bit_word_reads_alike_in_the_search_and_in_replay() -> None:
    """A __u64 parameter (file_setattr's fa_xflags) is held in the int64 arrays as its two's
    complement, and so are the constants it meets: ==, has_all and & against values at or
    above 2^63 decide the same rule in the search's grid and in replay's exact evaluation,
    and a row's parameters read back as the unsigned values they are."""
    from checker.interpreter import evaluate, param_arrays
    from checker.packer import Packer
    from model.lang import Action, Design, Field, Init, Param, Schema, boolean, fail, ok, word
    from model.lang.schema import StateView

    top = 1 << 63
    sch = Schema((Field("on", boolean()),))

    def body(s: StateView, x: object) -> list[object]:
        return [fail("EINVAL", when=x == top | 8, label="eq"),  # type: ignore[operator]
                fail("E2BIG", when=x.has_all(top | 1), label="all"),  # type: ignore[attr-defined]
                fail("EPERM", when=(x & ~0xFF) != 0, label="high"),  # type: ignore[operator]
                ok(0, on=True)]

    values = (0, 8, top | 8, top | 1, top, (1 << 64) - 1)
    act = Action("set", (Param("x", word(64), values, "a __u64"),), body, "set",  # type: ignore[arg-type]
                 ())
    ca = compile_action(sch, act, 0)
    r = ca.fn({"on": np.zeros((1, 1), np.int64), "__shape__": np.zeros((1, 1), np.int8)},
              param_arrays(ca))
    grid = [ca.labels[int(b)] for b in np.broadcast_to(np.asarray(r["br"]), (1, ca.k))[0]]
    pk = Packer(Design("u64", "test fixture", sch, Init({"on": False}), (act,)), {})
    exact = [ca.labels[int(np.asarray(evaluate(pk, ca, {"on": 0}, {"x": v})[0]["br"])
                           .reshape(-1)[0])] for v in values]
    assert grid == exact == ["ok", "ok", "eq", "all", "high", "all"]
    assert [ca.params_at(j)["x"] for j in range(ca.k)] == list(values)
