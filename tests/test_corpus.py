"""The bug corpus (checker/corpus.py, model/designs/corpus.py, traces/scenarios/corpus/): every
bug caught on its -broken design, every fix holding on its -fixed design, the committed traces
current and replayable, B15's fix a one-rule change, and the reproducers on the live kernel."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from checker.cli import main
from checker.corpus import CORPUS_DIR, catalogue, search, verdict_changes
from checker.replay import check_expectation
from checker.verdict import Verdict
from model import designs
from model.designs.corpus import BUGS
from properties.catalogue import NOT_WITNESSED, WITNESSED, for_design, load
from properties.corpus import view_name
from traces.textfmt import parse_trace

BUG_IDS = [b.id for b in catalogue()]


#: the pairs whose C reproducers are written by hand (the exporter has no fork())
HAND_WRITTEN_C = ("B2",)
#: pairs with no C reproducer: their calls (LUO sessions) are not in the syscall registry
NO_C = ("L1",)


@pytest.fixture(scope="module")
def corpus_run(corpus_markdown: tuple[subprocess.CompletedProcess[str], Path]
               ) -> tuple[int, list[str], Path]:
    """`shmemcheck corpus --format markdown --out DIR`, once per session and shared with
    README's command (tests/conftest.py): (exit status, stdout lines, DIR)."""
    p, out = corpus_markdown
    return p.returncode, p.stdout.splitlines(), out


@pytest.mark.slow
def test_corpus_catches_every_bug_and_every_fix_holds(
        corpus_run: tuple[int, list[str], Path]) -> None:
    rc, lines, _ = corpus_run
    n = len(BUGS)
    assert rc == 0, "\n".join(lines)
    assert lines[-1].startswith(f"corpus: {n}/{n} bugs caught, {n}/{n} fixes "), lines[-1]
    assert lines[-1].split()[-1] in ("proved", "hold") or "hold (" in lines[-1]
    assert lines[0].split("|")[1:4] == [" bug ", " fix commit ", " property "]
    rows = {ln.split("|")[1].strip(): ln for ln in lines[2:-1]}
    assert sorted(rows) == sorted(BUGS)
    for b in catalogue():
        want = "NOT WITNESSED" if b.sometimes else "VIOLATED"
        assert want in rows[b.id], rows[b.id]


def test_catalogue_matches_the_designs_and_readme() -> None:
    readme = (CORPUS_DIR / "README.md").read_text()
    cat = load()
    assert BUG_IDS == list(BUGS)
    for b in catalogue():
        assert b.broken == f"{b.id}-broken" and b.fixed == f"{b.id}-fixed"
        assert b.property_name in cat
        for d in (b.broken, b.fixed):
            assert [p.name for p in for_design(designs.get(d))] == [
                view_name(b.id, b.property_name)], d
        assert f"### {b.id}:" in readme, f"{b.id} has no paragraph in README.md"
        assert b.kernel in ("fixed", "broken", "absent")
        # "absent": 6.18.44 has no such code (LUO): no kernel column, no reproducer
        assert (b.kernel == "absent") == (b.id in NO_C), b.id


@pytest.mark.slow
def test_committed_traces_are_current_and_replay(corpus_run: tuple[int, list[str], Path],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _, _, out = corpus_run
    made = sorted(out.glob("*.trace")) + sorted(out.glob("*.c"))
    committed = {p.name for p in CORPUS_DIR.iterdir() if p.suffix in (".trace", ".c")}
    # every committed trace and reproducer is the tool's output, not a second copy, except
    # the two B2 reproducers written by hand (the exporter has no fork(); README.md says so)
    assert {p.name for p in made} == committed - {f"{b}-{side}.c" for b in HAND_WRITTEN_C
                                                  for side in ("broken", "fixed")}
    for new in made:
        old = CORPUS_DIR / new.name
        assert old.exists() and old.read_text() == new.read_text(), (
            f"{old} is stale: shmemcheck corpus --out traces/scenarios/corpus")
    for side in ("broken", "fixed"):
        for b in BUGS:
            assert (CORPUS_DIR / f"{b}-{side}.trace").exists()
            assert (CORPUS_DIR / f"{b}-{side}.c").exists() == (b not in NO_C), b
    rc = main(["replay", str(CORPUS_DIR)])
    last = capsys.readouterr().out.splitlines()[-1]
    assert rc == 0 and last.endswith("everything verified as expected"), last


@pytest.mark.slow
def test_b15_fix_changes_only_fchmod() -> None:
    """B15-fixed against mainline: one rule of fchmod, the only divergence, and of the
    mainline catalogue only the two F_SEAL_EXEC properties change verdict."""
    from dataclasses import replace

    from checker.diff import Differ, rule_changes
    from model.designs.corpus import TMPFS_CALLS

    memfd, fixed = designs.get("memfd"), designs.get("B15-fixed")
    # the corpus pairs leave out the /dev/shm calls (model/designs/corpus.py)
    memfd = replace(memfd, actions=tuple(a for a in memfd.actions if a.name not in TMPFS_CALLS))
    assert rule_changes(memfd, fixed) == ["fchmod: ~ exec_seal"]
    # the product without mappings and pins (a sixth of the default scope's pairs: fchmod's
    # rule reads neither; rule_changes above is what says no other rule moved)
    r = Differ(memfd, fixed, memfd.scope({"maps": 0, "pins": 0})).run()
    assert not r.only_a and not r.only_b
    assert {(d.action, d.rule_a, d.rule_b) for d in r.divergences} == {
        ("fchmod", "ok", "exec_seal")}
    s = r.shortest
    assert s is not None and [x.action for x in s.example[0].steps] == [
        "memfd_create", "fchmod"]
    assert verdict_changes(memfd, fixed, for_design(memfd)) == {
        "exec-seal-mode-fixed": (False, True),
        "noexec-seal-never-executable": (False, True)}


def test_b9_sometimes_property_separates_the_pair() -> None:
    cat = load()
    p = cat["sometimes-write-sealed-ro-shared-map-rdwr"]
    rb = search(designs.get("B9-broken"), p, NOT_WITNESSED)
    assert rb.verdict is Verdict.NOT_WITNESSED and rb.run is None
    rf = search(designs.get("B9-fixed"), p, WITNESSED)
    assert rf.verdict is Verdict.WITNESSED and rf.run is not None and len(rf.run) == 3
    # the older witness does not separate them: a MAP_SHARED mapping of an O_RDONLY
    # description is not VM_SHARED, and it always worked
    old = search(designs.get("B9-broken"), cat["sometimes-write-sealed-ro-shared-map"],
                 WITNESSED)
    assert old.verdict is Verdict.WITNESSED
    t = parse_trace("# shmemcheck trace 1\n# design: B9-broken\n"
                    "# expect: witnesses sometimes-write-sealed-ro-shared-map\n"
                    'memfd_create("t", MFD_ALLOW_SEALING) = 3\n'
                    'open("/proc/self/fd/3", O_RDONLY) = 4\n'
                    "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0\n"
                    "mmap(NULL, 4096, PROT_READ, MAP_SHARED, 4, 0) = m1\n", "<B9>")
    rep = check_expectation(designs.get("B9-broken"), t)
    assert rep.expectation_met, rep.message


def test_plain_table_explicit_only(capsys: pytest.CaptureFixture[str]) -> None:
    """The plain-text table (the markdown one is README's), on one pair, explicit only."""
    rc = main(["corpus", "--bug", "B15", "--explicit", "--quiet"])
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0, lines
    assert lines[0].split()[:3] == ["bug", "fix", "commit"]
    assert lines[1].split()[0] == "B15" and "VIOLATED (2 steps)" in lines[1]
    assert lines[-1] == "corpus: 1/1 bugs caught, 1/1 fixes hold (within the explicit scope only)"


def test_check_runs_only_the_pairs_property(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["check", "--design", "B12-broken", "--design", "B12-fixed", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "B12:write-seal-no-writable-mapping" in out
    assert out.rstrip().endswith("everything verified as expected")


# ---- the reproducers on the live kernel ------------------------------------------------------
def _build(src: Path, tmp: Path) -> Path:
    exe = tmp / src.stem
    subprocess.run(["gcc", "-Wall", "-Werror", "-o", str(exe), str(src)], check=True,
                   capture_output=True, text=True)
    return exe


def _needs_gcc() -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")


@pytest.mark.kernel
def test_b15_reproducer_reports_the_bug(tmp_path: Path) -> None:
    """B15-fixed.c encodes the fixed behaviour (fchmod -> EPERM): on 6.18.44, which has the
    bug, it fails with KSFT_FAIL; B15-broken.c (the bug's outcomes) passes."""
    from traces.kernel import hugepages_reserved

    _needs_gcc()
    fixed = _build(CORPUS_DIR / "B15-fixed.c", tmp_path)
    broken = _build(CORPUS_DIR / "B15-broken.c", tmp_path)
    with hugepages_reserved(1) as no_huge:
        if no_huge:
            pytest.skip(no_huge)
        rf = subprocess.run([str(fixed)], capture_output=True, text=True, timeout=60)
        rb = subprocess.run([str(broken)], capture_output=True, text=True, timeout=60)
    assert rf.returncode == 1, rf.stdout  # KSFT_FAIL: the kernel lets fchmod add x bits
    assert "not ok 2 fchmod(3, 0755) = -1 EPERM" in rf.stdout
    assert rb.returncode == 0, rb.stdout


def _same_outcomes(bug: str) -> bool:
    from traces.textfmt import load_trace

    broken, fixed = (load_trace(str(CORPUS_DIR / f"{bug}-{side}.trace"))
                     for side in ("broken", "fixed"))
    return [s.outcome for s in broken.steps] == [s.outcome for s in fixed.steps]


def test_effects_only_pairs() -> None:
    """B2 and B5 return the same values with and without the bug (B2's hand-written
    reproducers read the shared page back; B5's race is not reproduced): every other pair's
    generated reproducers can tell a kernel with the bug from one without."""
    assert [b for b in BUGS if _same_outcomes(b)] == ["B2", "B5"]
    for b in ("B2", "B5"):
        assert "differs in effects only" in (CORPUS_DIR / f"{b}-fixed.trace").read_text()


@pytest.mark.kernel
def test_reproducers_on_this_kernel(tmp_path: Path) -> None:
    """Where 6.18.44 has the fix, `<id>-fixed.c` passes and `<id>-broken.c` fails (the old
    bug does not reproduce); where it has the bug (B15), the other way round."""
    from traces.kernel import capability, hugepages_reserved

    _needs_gcc()
    skipped, checked = [], 0
    with hugepages_reserved(2) as no_huge:
        for b in catalogue():
            lacking = [no_huge if n == "hugetlb" else capability(n) for n in b.needs]
            lacking = [x for x in lacking if x]
            if lacking:
                skipped.append(f"{b.id}: {lacking[0]}")
                continue
            for side in ("fixed", "broken"):
                exe = _build(CORPUS_DIR / f"{b.id}-{side}.c", tmp_path)
                r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
                if r.returncode == 4:
                    skipped.append(f"{b.id}-{side}: KSFT_SKIP")
                    continue
                # a pair that differs in effects only (B5: the file's content) returns the
                # same values on both sides: both reproducers pass on any kernel
                generated_same = _same_outcomes(b.id) and b.id not in HAND_WRITTEN_C
                want = 0 if side == b.kernel or generated_same else 1
                assert r.returncode == want, f"{b.id}-{side}.c:\n{r.stdout}"
                checked += 1
    if skipped:  # every reproducer that ran agreed; name the ones that could not run
        pytest.skip(f"{checked} reproducers checked, not run: " + "; ".join(skipped))
