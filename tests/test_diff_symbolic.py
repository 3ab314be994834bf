"""Design diff without a scope (z3): a refinement relation or Spacer, re-checked."""

from __future__ import annotations

from checker.diff_symbolic import symbolic_diff
from model import designs


def test_flags_variant_equivalent_for_every_scope() -> None:
    r = symbolic_diff(designs.get("v5-inaccessible"), designs.get("v5-flags"), timeout=120)
    assert r.verdict == "equivalent" and r.rechecked
    assert r.invariant is not None and "B.s.iflags" in r.invariant  # the flags relate


def test_reader_left_on_vm_locked_is_different() -> None:
    mutant = designs.get("v5-flags").derive(
        "v5-flags-mutant", "writepage reads VM_LOCKED",
        layout={"writepage:LOCKED": ("iflags", 0x2000)})
    r = symbolic_diff(designs.get("v5-inaccessible"), mutant, timeout=120)
    assert r.verdict == "different"


def test_patch_is_different_and_self_is_equivalent() -> None:
    assert symbolic_diff(designs.get("memfd@5.17"), designs.get("v5-inaccessible"),
                         timeout=120).verdict == "different"
    d = designs.get("memfd")
    assert symbolic_diff(d, d, timeout=120).verdict == "equivalent"
