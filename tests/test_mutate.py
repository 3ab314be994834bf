"""checker/mutate.py and `shmemcheck mutate`: mutants derived from a design's own rules, their
equivalence decided by the design diff, killed by the catalogue or the scenario library."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from checker.diff import Differ, OneActionDiff
from checker.mutate import (
    DesignScore,
    MutantResult,
    MutantSpec,
    derive_mutants,
    family,
    measure,
    scenario_dir,
    scenario_outcomes,
)
from model import designs
from model.lang import Action, Design, Field, Init, Not, Schema, boolean, fail, nat, ok
from model.lang.expr import show
from model.lang.schema import StateView
from properties.catalogue import load
from tests.conftest import counter_design
from traces.textfmt import load_trace


def tiny() -> Design:
    """A counter `n` (0..3) that `inc` raises until `lock` freezes it; `lock` is EINVAL
    while n = 0, by two rules with the same errno (dropping the first changes nothing);
    `poke` arms a hidden flag on its first call, EAGAIN either way (dropping `arm` changes
    the state only)."""
    sch = Schema((Field("n", nat(fixed=3)), Field("locked", boolean()),
                  Field("armed", boolean())))

    def inc(s: StateView) -> list[object]:
        return [fail("EPERM", when=s.locked, label="frozen"),
                fail("ENOSPC", when=s.n == 3, label="full"),
                ok(0, n=s.n + 1)]

    def lock(s: StateView) -> list[object]:
        return [fail("EINVAL", when=s.n == 0, label="empty"),
                fail("EINVAL", when=s.n == 0, label="empty_again"),
                ok(0, locked=True)]

    def poke(s: StateView) -> list[object]:
        return [fail("EAGAIN", when=~s.armed, label="arm", armed=True),
                fail("EAGAIN", label="armed")]

    return Design("tiny", "test fixture", sch, Init({"n": 0, "locked": False, "armed": False}),
                  (Action("inc", (), inc, "inc", ()),  # type: ignore[arg-type]
                   Action("lock", (), lock, "lock", ()),  # type: ignore[arg-type]
                   Action("poke", (), poke, "poke", ())))  # type: ignore[arg-type]


SCOPE: dict[str, int] = {}


def test_operators_derive_the_expected_mutants() -> None:
    base = tiny()
    ms = derive_mutants(base)
    names = [m.spec.name for m in ms]
    # every fail rule x 3 operators, except where an operator changes nothing: `armed` is
    # unconditional (made true: no change; negated: what drop gives)
    assert names == [f"tiny/{a}/{r}/{op}" for a, r in
                     [("inc", "frozen"), ("inc", "full"), ("lock", "empty"),
                      ("lock", "empty_again"), ("poke", "arm")]
                     for op in ("drop", "negate", "fire-too-often")] + ["tiny/poke/armed/drop"]
    by = {m.spec.name: m for m in ms}
    # dropping the last, unconditional rule leaves calls without an outcome: stillborn
    assert by["tiny/poke/armed/drop"].design is None
    assert "must always decide" in (by["tiny/poke/armed/drop"].stillborn or "")
    # each mutant is the base's design with one action edited by the language's own deltas
    d = by["tiny/lock/empty/drop"].design
    assert d is not None and d.base == "tiny"
    for m in ms:
        if m.design is None:
            continue
        act = m.design.action(m.spec.action)
        sv = base.schema.state_vars("s")
        rules = {r.label: r for r in act.rules(sv, act.param_vars())}
        orig = {r.label: r for r in base.action(m.spec.action).rules(sv, act.param_vars())}
        if m.spec.operator == "drop":
            assert m.spec.rule not in rules
        elif m.spec.operator == "fire-too-often":
            c = rules[m.spec.rule].cond
            assert c.is_const and c.val is True
        else:
            assert show(rules[m.spec.rule].cond) == show(Not(orig[m.spec.rule].cond))
            assert show(rules[m.spec.rule].cond) != show(orig[m.spec.rule].cond)
        # every other action is the base's own object; the edited one is not
        for a, b in zip(m.design.actions, base.actions, strict=True):
            assert (a is b) == (a.name != m.spec.action), (m.spec.name, a.name)


def _diff(design: Design, m: Any) -> tuple[bool, int | None, str | None]:
    r = OneActionDiff(design, SCOPE).compare(m.design, m.spec.action)
    sh = r.shortest
    return bool(r.divergences), (len(sh.example[0]) if sh else None), (sh.what if sh else None)


def test_equivalent_and_state_only_mutants_are_recognised() -> None:
    base = tiny()
    by = {m.spec.name: m for m in derive_mutants(base)}
    # lock without its first EINVAL rule: the second one answers the same
    assert _diff(base, by["tiny/lock/empty/drop"]) == (False, None, None)
    # lock refusing where it should succeed: one inc, then lock
    assert _diff(base, by["tiny/lock/empty/negate"]) == (True, 2, "outcome")
    assert _diff(base, by["tiny/inc/full/drop"])[:2] == (True, 4)
    # poke never arming its flag: the outcome is EAGAIN either way, the state differs
    assert _diff(base, by["tiny/poke/arm/drop"]) == (True, 1, "state armed")


def test_one_action_diff_agrees_with_the_product_search() -> None:
    """OneActionDiff is Differ(states=True) done once for many mutants: same verdicts and
    the same shortest distinguishing trace lengths on every mutant of the fixture."""
    for base in (tiny(), counter_design()):
        one = OneActionDiff(base, SCOPE)
        for m in derive_mutants(base):
            if m.design is None:
                continue
            a = one.compare(m.design, m.spec.action)
            b = Differ(base, m.design, base.scope(), states=True).run()
            assert a.equivalent == b.equivalent, m.spec.name
            sa, sb = a.shortest, b.shortest
            assert (len(sa.example[0]) if sa else None) == \
                (len(sb.example[0]) if sb else None), m.spec.name
    # without comparing states, the product search misses the state-only mutant
    base = tiny()
    m = next(x for x in derive_mutants(base) if x.spec.name == "tiny/poke/arm/drop")
    assert m.design is not None
    assert Differ(base, m.design, base.scope()).run().equivalent
    assert not Differ(base, m.design, base.scope(), states=True).run().equivalent


def test_a_dropped_seal_check_is_killed_by_its_property() -> None:
    """memfd's F_ADD_SEALS without the F_SEAL_SEAL check: seal-seal-final must notice."""
    memfd = designs.get("memfd")
    s = measure(memfd, {"maps": 0, "pins": 0}, operators=("drop",),
                actions=("fcntl_add_seals",))
    by = {m.spec.name: m for m in s.mutants}
    m = by["memfd/fcntl_add_seals/sealed/drop"]
    assert m.status == "killed" and "seal-seal-final" in m.by_properties
    sh = m.shortest
    assert sh is not None and sh.what == "outcome" and sh.rule_a == "sealed"
    # dropping the check on unknown seal bits stores bits the seal word cannot hold
    assert by["memfd/fcntl_add_seals/invalid_bits/drop"].status == "stillborn"
    assert s.score(False) == s.killed_by_properties / len(s.nonequivalent)


def test_a_scenario_kills_a_mutant_its_outcomes_tell_apart() -> None:
    """share-open.trace reopens the memfd read-only and adds seals through it: EPERM in
    memfd_add_seals() (FMODE_WRITE), which the mutant without the check lets through."""
    memfd = designs.get("memfd")
    (m,) = derive_mutants(memfd, ("drop",), ("fcntl_add_seals",))[:1]
    assert m.spec.rule == "fmode_write" and m.design is not None
    t = load_trace(os.path.join(scenario_dir(), "share-open.trace"))
    base, mut = scenario_outcomes(memfd, t), scenario_outcomes(m.design, t)
    assert base is not None and mut is not None and base != mut
    assert any("EPERM" in x for x in base)
    # an equivalent replay: the same design gives the same outcomes
    assert scenario_outcomes(memfd, t) == base


def test_families_group_properties_by_name() -> None:
    cat = load()
    assert family(cat["seal-seal-final"]) == "seals"
    assert family(cat["sometimes-all-seals"]) == "witness"
    assert family(cat["gmem-bindings-in-bounds"]) == "bounds"
    assert family(cat["gmem-slots-immutable"]) == "guest_memfd"
    assert family(cat["noexec-seal-never-executable"]) == "exec/policy"
    assert family(cat["inaccessible-never-sealable"]) == "inaccessible"


def _score(killed: int, survived: int) -> DesignScore:
    spec = MutantSpec("x", "a", "r", "fail", "drop")
    ms = [MutantResult(spec, "killed", by_properties=["p"]) for _ in range(killed)]
    ms += [MutantResult(spec, "survived") for _ in range(survived)]
    ms.append(MutantResult(spec, "equivalent"))
    return DesignScore(tiny(), {}, ms, [], 0, 1, 0.0, with_scenarios=False)


def test_exit_status_follows_min_score() -> None:
    from checker.cli_mutate import exit_status

    s = _score(3, 1)  # 75 %: the equivalent mutant is not counted
    assert s.score(False) == 0.75
    assert exit_status([s], None) == 0
    assert exit_status([s], 75) == 0
    assert exit_status([s], 80) == 1
    s.mutants.append(MutantResult(s.mutants[0].spec, "inconclusive"))
    assert exit_status([s], None) == 3


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from checker.cli import main

    code = main(["mutate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, msg", [
    (["--design", "nosuch"], "unknown design 'nosuch'"),
    (["--design", "memfd", "--action", "nosuch"], "has no action 'nosuch'"),
    (["--design", "memfd", "--scope", "bogus=1"], "has no scope parameter 'bogus'"),
    (["--design", "memfd", "--scope", "pages=99"], "explores nothing beyond"),
    (["--design", "memfd", "--min-score", "120"], "want a percentage"),
    (["--design", "memfd", "--scenarios", "/nonexistent"], "not a directory"),
    (["--design", "memfd", "--operator", "swap"], "invalid choice"),
    (["--design", "v5-inaccessible", "--conform"], "not a model of a live kernel"),
    (["--design", "memfd@6.1", "--conform"], "this machine's kernel only"),
    (["--design", "memfd", "--conform-scope", "depth=1"], "need --conform"),
    (["--design", "memfd", "--conform-random", "2000"], "need --conform"),
    (["--design", "memfd", "--conform", "--conform-scope", "bogus=1"],
     "has no scope parameter 'bogus'"),
])
def test_bad_input_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str],
                                      msg: str) -> None:
    code, out, err = _main(capsys, *argv)
    assert code == 2 and out == ""
    assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_json_and_min_score(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--design", "memfd", "--action", "mprotect", "--no-scenarios", "--quiet",
            "--scope", "pins=0"]
    code, out, err = _main(capsys, *args, "--format", "json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    (d,) = doc["designs"]
    assert doc["format"] == "shmemcheck-mutate" and d["design"] == "memfd"
    assert d["mutants"] == len(d["results"]) > 0
    assert d["nonequivalent"] == d["mutants"] - d["stillborn"] - d["equivalent"]
    for r in d["results"]:
        assert r["name"] == f"memfd/mprotect/{r['rule']}/{r['operator']}"
        if r["status"] in ("killed", "survived"):
            assert r["divergence"]["trace"], r["name"]
    pct = 100 * d["score_properties"]
    if pct < 100:
        code, out, _ = _main(capsys, *args, "--min-score", f"{pct + 0.5:.1f}")
        assert code == 1 and "BELOW --min-score" in out.splitlines()[-1]
    code, out, _ = _main(capsys, *args, "--min-score", f"{max(0, pct - 0.5):.1f}",
                         "--format", "ktap")
    assert code == 0 and out.startswith("KTAP version 1\n1..1\n")
    assert out.rstrip().splitlines()[-1].startswith("ok 1 memfd # score")


@pytest.mark.slow
def test_mutate_guest_memfd_at_a_small_scope(capsys: pytest.CaptureFixture[str]) -> None:
    """The whole measurement on one design at a small scope, scenarios included, with the
    drop operator, on the two actions where all four statuses occur: bind (13 killed, 2
    survived, 3 equivalent) and read (stillborn); 26 s alone, against 44 s for every action
    (36 non-equivalent mutants, 34 killed, 2 survived, 3 equivalent, 9 stillborn) and 93 s
    with negate too, which the tiny design above and README's `mutate --design memfd`
    exercise."""
    code, out, _ = _main(capsys, "--design", "guest_memfd", "--scope", "pages=1",
                           "--operator", "drop", "--action", "bind", "--action", "read",
                           "--format", "json", "--quiet")
    assert code == 0
    (d,) = json.loads(out)["designs"]
    assert d["scope"]["pages"] == 1 and d["scenarios"] > 0
    assert d["nonequivalent"] > 0
    assert 0 < d["score_properties"] <= d["score_with_scenarios"] <= 1
    statuses = {r["status"] for r in d["results"]}
    assert {"stillborn", "equivalent", "killed", "survived"} <= statuses <= {
        "stillborn", "equivalent", "killed", "survived", "inconclusive"}
    for r in d["results"]:
        if r["status"] == "equivalent":
            assert "equivalent within scope" in r["reason"] and r["divergence"] is None
        if r["status"] == "survived":
            assert r["divergence"]["trace"] and not r["killed_by_properties"]


def _model_as_kernel(d: Design, scope: dict[str, int], depth: int) -> Any:
    """conform's traces of d with d's own predictions standing in for the kernel's runs."""
    from checker.conform import Model, explore, transition_cases
    from checker.mutate import KernelEvidence
    from traces.kernel import KernelRun

    model = Model(d, {k: 1 for k in d.default_scope})
    runs = [(c, KernelRun([s.outcome for s in c.steps], c.expect, None, None))
            for chunk in transition_cases(model, explore(d, d.scope(scope), depth,
                                                         model.ghost))
            for c in chunk]
    return KernelEvidence(runs, "the base's own predictions")


def test_conform_kills_hold_a_mutant_to_the_kernel_runs() -> None:
    """A mutant is held to each kernel run as `conform` compares (outcome, then the
    observations after each step); only traces that take the mutated action are asked."""
    from checker.mutate import KernelEvidence, conform_kills

    memfd = designs.get("memfd")
    ev = _model_as_kernel(memfd, {"pages": 1, "maps": 0, "pins": 0, "fds": 1}, 2)
    # the base against its own predictions, on every tenth trace (all 32,882 took 45 of the
    # test's 57 s)
    sample = KernelEvidence(ev.runs[::10], ev.summary)
    assert len(sample.runs) > 3000 and conform_kills(memfd, sample) == []
    by = {m.spec.name: m for m in derive_mutants(memfd, ("drop",), ("pread", "fallocate"))}
    neg = by["memfd/pread/negative_pos/drop"].design
    assert neg is not None
    (hit,) = conform_kills(neg, ev, "pread", limit=1)
    assert "(pread): outcome: model 1, kernel -1 EINVAL" in hit
    # every trace the mutant gets wrong takes its action: asking only those finds the same
    assert conform_kills(neg, ev, limit=5) == conform_kills(neg, ev, "pread", limit=5)
    mode = by["memfd/fallocate/unsupported_mode/drop"].design
    assert mode is not None and "EOPNOTSUPP" in conform_kills(mode, ev, "fallocate")[0]


def test_measure_counts_conform_kills_only_for_survivors() -> None:
    memfd = designs.get("memfd")
    sc = {"pages": 1, "maps": 0, "pins": 0, "fds": 1}
    ev = _model_as_kernel(memfd, sc, 2)
    s = measure(memfd, sc, operators=("drop",), actions=("pread",), evidence=ev)
    by = {m.spec.name: m for m in s.mutants}
    neg = by["memfd/pread/negative_pos/drop"]
    assert neg.status == "killed" and not neg.by_properties and neg.by_conform
    assert all(not m.by_conform for m in s.mutants if m.by_properties)
    assert s.killed == s.killed_with_scenarios + s.killed_by_conform


@pytest.mark.kernel
def test_mutate_conform_on_the_live_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    """--conform runs conform once on this kernel and holds the mutants properties leave to
    its runs: pread without the negative-offset check (EINVAL in ksys_pread64()) answers 1
    where the kernel said EINVAL."""
    code, out, _ = _main(capsys, "--design", "memfd", "--action", "pread", "--operator",
                         "drop", "--no-scenarios", "--conform", "--conform-scope",
                         "pages=1,maps=0,pins=0,fds=1,depth=1", "--conform-random", "0",
                         "--quiet", "--format", "json")
    assert code == 0
    (d,) = json.loads(out)["designs"]
    assert d["conform"]["traces_kept"] > 0 and d["conform"]["base_diverges"] == 0
    assert "0 divergences" in d["conform"]["summary"]
    r = {x["name"]: x for x in d["results"]}["memfd/pread/negative_pos/drop"]
    assert r["status"] == "killed" and not r["killed_by_properties"]
    assert "(pread): outcome: model 1, kernel -1 EINVAL" in r["killed_by_conform"][0]
    assert d["killed_with_conform"] == d["nonequivalent"] and d["score_with_conform"] == 1.0


def test_a_mutant_equivalent_within_the_scope_but_told_apart_by_a_scenario_is_killed() -> None:
    """pread without its loff_t overflow check is the same on every explored state (no
    explored offset is near LLONG_MAX) but bytes-limits.trace reads there: not equivalent,
    killed by the scenario, and the line says the scope could not see it."""
    memfd = designs.get("memfd")
    scen = [t for t in load_scenarios_for_test() if os.path.basename(t.path or "") in (
        "bytes-limits.trace", "basic-seals-accumulate.trace")]
    s = measure(memfd, {"maps": 0, "pins": 0}, operators=("drop",), actions=("pread",),
                scenarios=scen)
    m = {x.spec.name: x for x in s.mutants}["memfd/pread/pos_overflow/drop"]
    assert m.status == "killed" and m.by_scenarios == ["traces/scenarios/bytes-limits.trace"]
    assert not m.by_properties and "told apart beyond it by a scenario" in m.reason
    assert m in s.nonequivalent


def load_scenarios_for_test() -> list[Any]:
    from checker.mutate import load_scenarios

    return load_scenarios(scenario_dir())
