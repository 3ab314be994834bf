"""checker/certificate.py: proofs as re-checkable certificates (SMT-LIB2 scripts a fresh solver
reads), minimised invariants, tampering rejected, literals rendered for a reviewer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import z3

import model.designs as designs
from checker import certificate as cert
from checker.encode_z3 import goal_for
from checker.symbolic import check_symbolic, encoder
from checker.verdict import Verdict
from model.lang import Design
from properties.catalogue import load

TIMEOUT = 120.0


def test_certificate_file_rechecks_and_tampering_is_rejected(memfd: Design,
                                                              tmp_path: Path) -> None:
    p = load()["write-seal-no-writable-mapping"]
    out = tmp_path / "cert.smt2"
    r = check_symbolic(memfd, p, "pdr", timeout=TIMEOUT, certificate=out)
    assert r.verdict is Verdict.PROVED
    text = out.read_text()
    assert text.count("(check-sat)") == 3 and "declare-fun" in text
    assert cert.check_smt2(text) == ["unsat", "unsat", "unsat"]
    assert ";   F_SEAL_WRITE ∈ seals ⇒" in text
    exe = shutil.which("z3")
    if exe:  # the command-line solver reads the file as it is
        done = subprocess.run([exe, str(out)], capture_output=True, text=True, timeout=300)
        assert done.stdout.split() == ["unsat", "unsat", "unsat"], done.stdout + done.stderr
    enc = encoder(memfd)
    goal = goal_for(enc, p)
    from checker.pdr import pdr
    res = pdr(enc, goal, TIMEOUT)
    assert res.invariant is not None
    conj = cert.minimize(enc, goal, cert.conjuncts_of(res.invariant), TIMEOUT)
    assert len(conj) >= 2
    good = cert.make(enc, goal, conj, "t", TIMEOUT)
    assert good.valid
    for i in range(len(conj)):
        tampered = conj[:i] + conj[i + 1:]
        checks = cert.recheck(enc, goal, tampered, TIMEOUT)
        assert "sat" in checks.values(), (i, checks)
        answers = cert.check_smt2(cert.to_smt2(enc, goal, tampered, "tampered"))
        assert "sat" in answers, (i, answers)


def test_action_property_certificate(memfd: Design) -> None:
    """An action property's certificate: Inv ∧ Trans ⇒ P as the third check."""
    r = check_symbolic(memfd, load()["seals-only-grow"], "pdr", timeout=TIMEOUT)
    assert r.verdict is Verdict.PROVED and r.certificate_smt2 is not None
    assert "Inv ∧ Trans ⇒ P" in r.certificate_smt2
    assert cert.check_smt2(r.certificate_smt2) == ["unsat"] * 3


def test_linear_bounds_render_with_positive_terms() -> None:
    """Spacer writes `size + -len + -off > -1`; a reviewer reads `len + off ≤ size`."""
    enc = encoder(designs.get("guest_memfd"))
    s = enc.s
    r = cert.Renderer(enc)
    assert r.literal(s["g0_size"] - s["slot0_len"] - s["slot0_off"] > -1) == \
        "slot0_len + slot0_off ≤ g0_size"
    assert r.literal(s["g0_size"] - s["slot0_len"] <= -2) == "g0_size + 2 ≤ slot0_len"
    assert r.literal(z3.Not(s["g0_size"] - s["slot0_len"] >= 3)) == "g0_size ≤ slot0_len + 2"
    assert r.literal(s["g0_vm"] <= 0) == "g0_vm = vm0"
