"""The symbolic engines (bmc, k-induction, pdr) against the explicit engine, on the same IR.

Cross-checks: pdr agrees with explicit exploration at the default scope on every memfd
property; bmc finds runs exactly as short as the explicit shortest ones; a mutant that only
goes wrong with two mappings is caught symbolically while explicit at maps=1 (honestly)
reports a scope-limited pass; k-induction's CTIs are inconclusive. The encoding itself is
tests/test_encode_z3.py; certificates are tests/test_certificate.py.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from checker import certificate as cert
from checker.check import run_explicit
from checker.explicit import Explorer, ExploreResult
from checker.symbolic import (
    Replayer,
    ReplayMismatch,
    check_symbolic,
)
from checker.verdict import Verdict
from model.designs.memfd import adds_write, implied_seals
from model.lang import Action, Design, Field, If, Init, Schema, fail, nat, ok
from model.lang.expr import Implies
from model.lang.schema import StateView
from model.vocab import F_SEAL_WRITE
from properties.catalogue import Property, for_design, load
from tests.conftest import explored_domains
from traces.run import AStep

TIMEOUT = 120.0


@pytest.fixture(scope="module")
def props(memfd: Design) -> list[Property]:
    return for_design(memfd)


@pytest.fixture(scope="module")
def explicit(explored: Callable[[str], ExploreResult]) -> ExploreResult:
    return explored("memfd")


# ---- the encoding against the interpreter, on concrete values ---------------------------------


# ---- pdr vs explicit, on the whole catalogue --------------------------------------------------
@pytest.mark.slow
def test_pdr_agrees_with_explicit(props: list[Property], explicit: ExploreResult,
                                  pdr_certificates: tuple[subprocess.CompletedProcess[str],
                                                          Path]) -> None:
    """pdr's verdict on every memfd property, read from README's whole-catalogue pdr run
    (conftest.pdr_certificates: tests/test_readme.py re-checks its certificate file with a
    fresh z3, tests/test_engines_agree.py its verdicts on every design), against the explicit
    search at the default scope: proofs are for every scope, runs are replayed."""
    assert explicit.complete
    proc, _ = pdr_certificates
    pdr = {r["property"]: r for r in json.loads(proc.stdout)["results"]
           if r["design"] == "memfd" and r["engine"] == "pdr"}
    for p in props:
        j = pdr[p.name]
        v = Verdict(j["verdict"])
        holds = explicit.props[p.name].holds
        if p.kind in ("always", "action"):
            assert v is (Verdict.PROVED if holds else Verdict.VIOLATED), (p.name, j)
        else:
            assert v is (Verdict.WITNESSED if holds else Verdict.NOT_WITNESSED), p.name
        assert j["as_expected"], (p.name, v, j["expected"])
        if v is Verdict.PROVED:
            assert j["certificate"] and "every scope" in j["method"], p.name
        if v in (Verdict.VIOLATED, Verdict.WITNESSED):
            assert "replayed" in j["method"], p.name


def test_pdr_invariant_rendered_with_names(memfd: Design) -> None:
    r = check_symbolic(memfd, load()["write-seal-no-writable-mapping"], "pdr", timeout=TIMEOUT)
    assert r.verdict is Verdict.PROVED and r.certificate is not None
    assert r.certificate.startswith("F_SEAL_WRITE ∈ seals ⇒ ")
    for part in ("map_sh_rw = 0", "map_sh_ro_mw = 0", "pin_gup = 0"):
        assert part in r.certificate
    assert "Extract" not in r.certificate


# ---- bmc: shortest runs -----------------------------------------------------------------------
@pytest.mark.slow
def test_bmc_shortest_equals_explicit_shortest(memfd: Design, props: list[Property],
                                              explicit: ExploreResult) -> None:
    for p in props:
        o = explicit.props[p.name]
        found = (not o.holds) if p.kind in ("always", "action") else o.holds
        if not found:
            r = check_symbolic(memfd, p, "bmc", depth=6, timeout=TIMEOUT)
            assert r.verdict in (Verdict.BOUNDED, Verdict.NOT_WITNESSED), p.name
            assert "depth 6" in r.method
            continue
        assert o.run is not None
        # on the explored parameter domains a run of the explicit shortest length is found:
        # tests/test_engines_agree.py (memfd too, by k-induction's base case), witnesses
        # included; here every parameter value, on the violations: the same length. (The
        # witnesses' "never longer" over every value was 87 s of this test's 99 s alone,
        # stop 43, and is implied by the explored-domain runs engines-agree finds.)
        if p.kind not in ("always", "action"):
            continue
        r2 = check_symbolic(memfd, p, "bmc", depth=20, timeout=TIMEOUT)
        assert r2.run is not None and len(r2.run) == len(o.run), p.name
        assert r2.verdict is Verdict.VIOLATED and r2.run.violation == p.name


def test_bmc_uses_whole_parameter_sorts(memfd: Design) -> None:
    """F_SEAL_SHRINK|GROW|WRITE|FUTURE_WRITE|SEAL in one call is not in the explored seal
    domain; symbolically it is, so every seal is set after 2 steps instead of 3."""
    p = load()["sometimes-all-seals"]
    r = check_symbolic(memfd, p, "bmc", depth=5, timeout=TIMEOUT)
    assert r.verdict is Verdict.WITNESSED and r.run is not None and len(r.run) == 2
    r3 = check_symbolic(explored_domains(memfd), p, "bmc", depth=5, timeout=TIMEOUT)
    assert r3.run is not None and len(r3.run) == 3


# ---- a bug beyond the default scope -----------------------------------------------------------
def needs_two_mappings(d: Design) -> Design:
    """deny_writable forgets to refuse once two MAP_SHARED|PROT_WRITE mappings exist."""
    def rule(s: StateView, fd: object, seals: object) -> object:
        w = adds_write(s, implied_seals(s, seals))  # type: ignore[arg-type]
        return fail("EBUSY", when=w & (s.map_sh_rw + s.map_sh_ro_mw > 0) & (s.map_sh_rw < 2),
                    label="deny_writable")
    return d.derive("memfd-deny-writable-needs-2", "mutant: two writable maps slip through",
                    edit={"fcntl_add_seals": lambda a: a.replace_rule("deny_writable", rule)})


def test_bug_beyond_default_scope(memfd: Design) -> None:
    mut = needs_two_mappings(memfd)
    p = load()["write-seal-no-writable-mapping"]
    ex = run_explicit(mut, [p], mut.scope())[0][0]
    assert ex.verdict is Verdict.EXHAUSTED
    assert "maps=1" in ex.method and "within the scope only" in ex.method
    for engine in ("pdr", "bmc"):
        r = check_symbolic(mut, p, engine, depth=10, timeout=TIMEOUT)
        assert r.verdict is Verdict.VIOLATED, engine
        assert r.run is not None and r.run.states()[-1]["map_sh_rw"] == 2
        assert len(r.run) == 4  # create, mmap, mmap, F_ADD_SEALS
    # explicit at maps=2 agrees (bounded depth: the run is 4 steps)
    ex2 = Explorer(mut, mut.scope({"maps": 2}), [p], max_depth=5).run()
    assert not ex2.props[p.name].holds and len(ex2.props[p.name].run or []) == 4


# ---- certificates -----------------------------------------------------------------------------


def test_sometimes_unreachable_is_proved_not_witnessed(memfd: Design) -> None:
    """A sometimes predicate nothing reaches: pdr proves it (NOT WITNESSED, with a
    certificate whose third check is Inv ⇒ ¬Q); bmc only says "within depth"."""
    never = Property("never-content-before-create", "sometimes",
                     lambda s: ~s.exists & (s.size > 0), "test", "test")
    r = check_symbolic(memfd, never, "pdr", timeout=TIMEOUT)
    assert r.verdict is Verdict.NOT_WITNESSED and "proved unreachable" in r.method
    assert r.certificate_smt2 is not None and "Inv ⇒ ¬Q" in r.certificate_smt2
    assert cert.check_smt2(r.certificate_smt2) == ["unsat"] * 3
    b = check_symbolic(memfd, never, "bmc", depth=4, timeout=TIMEOUT)
    assert b.verdict is Verdict.NOT_WITNESSED and "within depth 4" in b.method
    never_t = Property("never-fd-write-when-sealed", "sometimes-action",
                       lambda t: t.eff.has(1) & t.s.seals.has(F_SEAL_WRITE), "test", "test")
    r2 = check_symbolic(memfd, never_t, "pdr", timeout=TIMEOUT)
    assert r2.verdict is Verdict.NOT_WITNESSED
    assert r2.certificate_smt2 is not None and "Inv ∧ Trans ⇒ ¬Q" in r2.certificate_smt2


# ---- k-induction ------------------------------------------------------------------------------
def test_kind_proves_inductive_property(memfd: Design) -> None:
    r = check_symbolic(memfd, load()["write-seal-no-writable-mapping"], "kind", depth=3,
                       timeout=TIMEOUT)
    assert r.verdict is Verdict.PROVED and "k=1" in r.method
    assert r.certificate is not None and r.certificate.startswith("F_SEAL_WRITE ∈ seals ⇒")
    assert r.certificate_smt2 is not None
    assert cert.check_smt2(r.certificate_smt2) == ["unsat"] * 3


def test_kind_cti_is_inconclusive_and_strengthening_proves(memfd: Design) -> None:
    p = load()["write-seal-content-frozen"]
    r = check_symbolic(memfd, p, "kind", depth=2, timeout=TIMEOUT)
    assert r.verdict is Verdict.CTI and r.inconclusive and not r.as_expected
    assert r.run is None and "NOT known to be reachable" in r.note

    def inv(s: StateView) -> object:
        return Implies(s.seals.has(F_SEAL_WRITE),
                       (s.map_sh_rw == 0) & (s.map_sh_ro_mw == 0) & (s.pin_gup == 0))

    r2 = check_symbolic(memfd, p, "kind", depth=2, timeout=TIMEOUT,
                        invariant=inv)  # type: ignore[arg-type]
    assert r2.verdict is Verdict.PROVED and "strengthening" in r2.method


def two_inductive() -> Design:
    """x: 0 -> 1 -> 0 ..., and 2 -> 3 -> 3; x = 2 is unreachable, so x ≠ 3 holds, but only
    2-inductively (x = 2 satisfies it and steps to 3)."""
    sch = Schema((Field("x", nat(fixed=3)),))

    def body(s: StateView) -> list[object]:
        return [ok(0, x=If(s.x == 0, 1, If(s.x == 1, 0, 3)))]

    return Design("two-inductive", "test", sch, Init({"x": 0}),
                  (Action("step", (), body, "step", ()),))


def test_kind_beyond_one_and_the_engines_agree() -> None:
    d = two_inductive()
    p = Property("never-3", "always", lambda s: s.x != 3, "test", "test")
    r = check_symbolic(d, p, "kind", depth=4, timeout=TIMEOUT)
    assert r.verdict is Verdict.PROVED and "k=2" in r.method and "fresh solver" in r.method
    assert check_symbolic(d, p, "kind", depth=1, timeout=TIMEOUT).verdict is Verdict.CTI
    pr = check_symbolic(d, p, "pdr", timeout=TIMEOUT)
    assert pr.verdict is Verdict.PROVED and pr.certificate is not None
    assert check_symbolic(d, p, "bmc", depth=10, timeout=TIMEOUT).verdict is Verdict.BOUNDED
    assert Explorer(d, d.scope(), [p]).run().props[p.name].holds


def test_kind_finds_violation_in_base_case(memfd: Design) -> None:
    r = check_symbolic(memfd, load()["exec-seal-mode-fixed"], "kind", depth=3,
                       timeout=TIMEOUT)
    assert r.verdict is Verdict.VIOLATED and r.run is not None and len(r.run) == 2


# ---- internal errors and timeouts -------------------------------------------------------------
def test_replay_rejects_a_doctored_run(memfd: Design) -> None:
    p = load()["grow-seal-size-monotone"]
    r = check_symbolic(memfd, p, "bmc", depth=5, timeout=TIMEOUT)
    assert r.run is not None
    rp = Replayer(memfd, p)
    rp.replay(r.run)  # the genuine run replays
    last = r.run.steps[-1]
    wrong_out = AStep(last.action, last.params, last.out + 1, last.eff, last.after, last.rule)
    doctored = dataclasses.replace(r.run, steps=[*r.run.steps[:-1], wrong_out])
    with pytest.raises(ReplayMismatch):
        rp.replay(doctored)
    bad_after = dict(last.after, size=last.after["size"] + 5)
    wrong_after = AStep(last.action, last.params, last.out, last.eff, bad_after, last.rule)
    doctored2 = dataclasses.replace(r.run, steps=[*r.run.steps[:-1], wrong_after])
    with pytest.raises(ReplayMismatch):
        rp.replay(doctored2)


def test_timeout_is_unknown_never_proved(memfd: Design) -> None:
    r = check_symbolic(memfd, load()["write-seal-content-frozen"], "pdr", timeout=0.001)
    assert r.verdict is Verdict.UNKNOWN and r.inconclusive


def test_unknown_engine(memfd: Design) -> None:
    with pytest.raises(ValueError):
        check_symbolic(memfd, load()["seals-only-grow"], "tlc")


