"""checker/encode_z3.py: the z3 encoding of the one IR agrees with the interpreter on concrete
values, and has no scope."""

from __future__ import annotations

import random

import z3

from checker.encode_z3 import Encoder, concrete_step
from checker.explicit import Explorer
from checker.interpreter import evaluate
from checker.symbolic import encoder
from model.lang import Design


def test_encoding_matches_interpreter_on_random_states(memfd: Design) -> None:
    enc = Encoder(memfd)
    ex = Explorer(memfd, memfd.scope(), [])
    rng = random.Random(7)

    def value(sort: object, dom: tuple[int, ...] = ()) -> int:
        k = sort.kind  # type: ignore[attr-defined]
        if k == "bool":
            return rng.randint(0, 1)
        if k == "word":
            w = sort.width  # type: ignore[attr-defined]
            return rng.choice([rng.getrandbits(w), *dom]) if dom else rng.getrandbits(w)
        if k == "enum":
            return rng.randrange(len(sort.values))  # type: ignore[attr-defined]
        if sort.fixed is not None:  # type: ignore[attr-defined]
            return rng.randint(0, sort.fixed)  # type: ignore[attr-defined]
        return rng.choice([0, 0, 1, 2, 3, 7])

    checked = 0
    for ca in ex.actions:
        if not ca.action.explored:  # no value to take: the encoding never enables it
            continue
        for _ in range(40):
            st = {f.name: value(f.sort) for f in memfd.schema.fields}
            # a parameter with a symbolic domain ranges over it in the encoding too
            ps = {p.name: rng.choice(sv) if (sv := p.symbolic_values()) is not None
                  else value(p.sort, p.domain) for p in ca.action.params}
            en, out, eff, rule, nxt = concrete_step(enc, ca.index, st, ps)
            _, en_x = evaluate(ex.packer, ca, st, ps)
            assert en == en_x, (ca.action.name, st, ps)
            if not en:
                continue
            step = ex.apply(ca, st, ps)
            assert (out, eff, rule) == (step.out, step.eff, step.rule), (ca.action.name, st, ps)
            # the encoding leaves the replayed fields out (as the packer does)
            assert nxt == {k: v for k, v in step.after.items() if k not in enc.replayed}, (
                ca.action.name, st, ps)
            checked += 1
    assert checked > 200


def test_proof_is_scope_independent(memfd: Design) -> None:
    """The encoding has no scope: nat fields are unbounded Ints, so a model may use large
    counts (here: the CTI of k-induction has counters far beyond any explicit scope)."""
    enc = encoder(memfd)
    s = z3.Solver()
    s.add(enc.dom(enc.s), enc.s["map_sh_rw"] > 1000)
    assert s.check() == z3.sat


def test_machine_integer_parameters_stay_in_their_sort(memfd: Design) -> None:
    """A loff_t/size_t parameter ranges over lo..hi symbolically, never beyond: k-induction
    once handed the interpreter ftruncate(len=2**63+4097), which no syscall can pass (CI)."""
    enc = Encoder(memfd)
    ints = [(ae, p) for ae in enc.actions for p in ae.action.params if p.sort.kind == "int"
            and not p.symbolic_domain]
    assert ints
    for ae, p in ints:
        v = ae.params[p.name]
        for outside in (p.sort.hi + 1, p.sort.lo - 1):
            s = z3.Solver()
            s.add(ae.pdom, v == outside)
            assert s.check() == z3.unsat, (ae.action.name, p.name, outside)
        s = z3.Solver()
        s.add(ae.pdom, v == p.sort.hi)
        assert s.check() == z3.sat, (ae.action.name, p.name)


def test_the_replayed_fields_are_not_encoded(memfd: Design) -> None:
    """The pages that hold data are `replayed` (no explored action and no property reads
    them): the encoding has no variable for them, a decoded initial state is whole."""
    enc = Encoder(memfd)
    assert enc.replayed == ("data0", "data1", "data2", "falloc0", "falloc1", "falloc2",
                            "data_far")
    assert not set(enc.replayed) & set(enc.s)
    assert {str(v) for v in enc.variables()}.isdisjoint({f"s.{n}" for n in enc.replayed})
    s = z3.Solver()
    s.add(enc.init(enc.s))
    assert s.check() == z3.sat
    init = enc.decode_init(s.model(), enc.s)
    assert {f.name for f in memfd.schema.fields} == set(init)
    assert all(init[n] == 0 for n in enc.replayed)
