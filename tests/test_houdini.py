"""Tool-found strengthening lemmas (checker/houdini.py): inductive, sound, and strong enough
to turn the catalogue's counterexamples to induction into proofs."""

from __future__ import annotations

import numpy as np
import pytest
import z3
from z3.z3util import get_vars as z3util_vars

from checker.cli import main
from checker.explicit import Explorer
from checker.houdini import Atom, implies, irredundant, lemmas_for, support
from checker.symbolic import check_symbolic, encoder
from checker.verdict import Verdict
from model import designs
from properties.catalogue import load

TIMEOUT = 120.0


@pytest.mark.parametrize("name", ["memfd", "guest_memfd"])
def test_lemmas_are_inductive_by_a_fresh_solver(name: str) -> None:
    d = designs.get(name)
    enc = encoder(d)
    lem = lemmas_for(d, enc, TIMEOUT)
    assert lem.clauses and lem.candidates > len(lem.clauses) > 0
    inv = lem.formula
    inv_n = z3.substitute(inv, *[(enc.s[f], enc.n[f]) for f in enc.s])
    for asserts in ([enc.dom(enc.s), enc.init(enc.s), z3.Not(inv)],
                    [enc.dom(enc.s), inv, enc.trans(), z3.Not(inv_n)]):
        s = z3.Solver()
        s.add(*asserts)
        assert s.check() == z3.unsat


def test_lemmas_hold_in_every_reachable_state() -> None:
    """Houdini runs on the unbounded encoding; its lemmas must still hold in every state the
    explicit engine reaches at the default scope (checked on a sample of them)."""
    d = designs.get("memfd")
    enc = encoder(d)
    lem = lemmas_for(d, enc, TIMEOUT)
    ex = Explorer(d, d.scope(), [], keep_layers=True)
    r = ex.run()
    keys = np.concatenate([layer[0] for layer in r.layers])
    named = {str(x) for x in z3util_vars(lem.formula)}
    assert "s.size" in named  # the lemmas' variables, as the encoder names them
    assert not named & {f"s.{f.name}" for f in d.schema.fields if f.replayed}, named
    rng = np.random.default_rng(1)
    sch = d.schema
    for k in rng.choice(keys, 200, replace=False):
        st = ex.packer.unpack(int(k))
        sub = []
        for f in sch.fields:
            if f.replayed:  # never packed (Packer.omitted): the lemmas do not name them
                continue
            v = st[f.name]
            val = (z3.BoolVal(bool(v)) if f.sort.kind == "bool" else
                   z3.BitVecVal(v, f.sort.width) if f.sort.kind == "word" else z3.IntVal(v))
            sub.append((enc.s[f.name], val))
        assert z3.is_true(z3.simplify(z3.substitute(lem.formula, *sub))), st


def test_lemmas_turn_a_cti_into_a_proof() -> None:
    d = designs.get("guest_memfd")
    p = load()["gmem-bindings-in-bounds"]
    plain = check_symbolic(d, p, "kind", depth=3, timeout=TIMEOUT)
    assert plain.verdict is Verdict.CTI  # a slot bound to a file slot that was reused
    r = check_symbolic(d, p, "kind", depth=3, timeout=TIMEOUT, lemmas=True)
    assert r.verdict is Verdict.PROVED
    assert "Houdini" in r.method and "certificate re-checked" in r.method
    assert r.certificate and "slot" in r.certificate


def test_lemmas_never_hide_a_reachable_violation() -> None:
    d = designs.get("memfd")
    r = check_symbolic(d, load()["exec-seal-mode-fixed"], "kind", depth=3, timeout=TIMEOUT,
                       lemmas=True)
    assert r.verdict is Verdict.VIOLATED and r.run is not None


def test_support_is_a_sufficient_subset() -> None:
    d = designs.get("memfd")
    enc = encoder(d)
    lem = lemmas_for(d, enc, TIMEOUT)
    p = enc.prop_state(load()["noexec-seal-never-executable-shmem"])
    used = support(enc, [p], lem.clauses, TIMEOUT)
    assert used is not None and 0 < len(used) < len(lem.clauses)
    both = z3.And(p, *used)
    s = z3.Solver()
    s.add(enc.dom(enc.s), both, enc.trans(),
          z3.Not(z3.substitute(both, *[(enc.s[f], enc.n[f]) for f in enc.s])))
    assert s.check() == z3.unsat
    # without any lemma the property alone is not inductive
    assert support(enc, [p], [], TIMEOUT) is None


def test_subsumed_and_tautological_clauses_are_left_out() -> None:
    x0, y0 = Atom("x", "eq", 0), Atom("y", "eq", 0)
    xy, e_a, e_b = Atom("x", "sum0", 0, "y"), Atom("e", "eq", 0), Atom("e", "eq", 1)
    assert implies((x0, False), (xy, False))  # x ≠ 0 ⇒ x + y ≠ 0
    assert not implies((x0, True), (xy, False))
    assert implies((e_a, True), (e_b, False))  # e = a ⇒ e ≠ b
    kept = irredundant([((x0, False), (e_a, True)), ((xy, False), (e_a, True)),
                        ((y0, True),), ((y0, True), (e_b, False))])
    assert kept == [((y0, True),), ((x0, False), (e_a, True))]


def test_lemmas_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lemmas", "--design", "guest_memfd"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("guest_memfd: ") and "inductive" in out
    assert "  g0_maps ≠ 0 ⇒ GUEST_MEMFD_FLAG_MMAP ∈ g0_flags\n" in out
    assert main(["lemmas", "--design", "nope"]) == 2
