"""The strengthening k-induction gets from Init turns unreachable-state CTIs into proofs."""

from __future__ import annotations

from checker.symbolic import check_symbolic
from checker.symbolic_lemma import fresh_state_lemma
from model import designs
from properties.catalogue import load


def test_lemma_turns_a_cti_into_a_proof() -> None:
    d = designs.get("memfd")
    p = load()["seals-only-grow"]
    plain = check_symbolic(d, p, "kind", depth=2, timeout=60)
    assert plain.verdict.value == "CTI"  # open descriptors before memfd_create: unreachable
    lemma = fresh_state_lemma(d)
    assert lemma is not None
    r = check_symbolic(d, p, "kind", depth=2, timeout=60, invariant=lemma)
    assert r.verdict.value == "PROVED"


def test_no_lemma_without_an_exists_field() -> None:
    assert fresh_state_lemma(designs.get("guest_memfd")) is None
