"""README claims that are commands: they must print what README says."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def shmemcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "checker.cli", *args], capture_output=True,
                          text=True, timeout=900, cwd=ROOT)


def test_ci_runs_the_readme_test_command() -> None:
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
        ci = f.read()
    cmds = re.findall(r"^    (python3 -m venv .*)$", readme(), re.M)
    assert len(cmds) == 2, "README has exactly two set-up commands"
    assert cmds[0].endswith("shmemcheck check")
    assert cmds[1] in ci


@pytest.mark.slow
def test_compare_table_is_generated() -> None:
    text = readme()
    a = text.index("<!-- compare:begin -->\n") + len("<!-- compare:begin -->\n")
    b = text.index("<!-- compare:end -->")
    p = shmemcheck("compare", "--engine", "pdr")
    assert p.returncode == 0, p.stderr
    assert p.stdout == text[a:b]


def test_whatif_example_works_as_printed() -> None:
    p = shmemcheck("check", "--design", "examples/whatif-inaccessible-grow-seal.py",
                   "--property", "inaccessible-never-sealable", "--property",
                   "inaccessible-never-user-mappable", "--engine", "pdr")
    assert p.returncode == 1
    text = readme()
    for line in ['memfd_create("t", MFD_INACCESSIBLE) = 3',
                 "fcntl(3, F_ADD_SEALS, 0) = 0",
                 "shmemcheck: 1/2 as expected over 1 design(s), 1 unexpected, 0 inconclusive: "
                 "UNEXPECTED results"]:
        assert line in p.stdout and line in text
    assert re.search(r"FAIL v5\+grow-seal +inaccessible-never-sealable +VIOLATED", p.stdout)
    assert re.search(r"ok   v5\+grow-seal +inaccessible-never-user-mappable PROVED", p.stdout)


def test_whatif_errors_name_file_and_line(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "bad.py")
    with open(path, "w") as f:
        f.write('design = base("v5-inaccessible").derive(\n    "x", "y",\n'
                '    edit={"mmap": lambda a: a.drop_rule("nope")})\n')
    p = shmemcheck("check", "--design", path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert f"{path}:" in p.stderr and "no rule labelled 'nope'" in p.stderr


# ---- every README command, run verbatim ------------------------------------------------------
def readme_commands() -> list[str]:
    """Every `shmemcheck ...` command in README's indented blocks: a `$ ` prompt dropped,
    `\\` continuation lines joined, a trailing `# comment` dropped."""
    lines = readme().splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = re.match(r"^    (?:\$ )?shmemcheck(?: (.*))?$", lines[i])
        i += 1
        if not m:
            continue
        cmd = m.group(1) or ""
        while cmd.endswith("\\") and i < len(lines):
            cmd = cmd[:-1].rstrip() + " " + lines[i].strip()
            i += 1
        out.append(cmd.split("  #")[0].strip())
    return out


@dataclass
class Case:
    exit: int
    marks: tuple[str, ...] = ()
    run_as: str | None = None  # a reduced form, only where the test says why
    check: Callable[[subprocess.CompletedProcess[str], Path], None] | None = None
    skip: str = ""
    shared: str = ""  # a session fixture that ran the command: (process, dir)


def _results_dir(p: subprocess.CompletedProcess[str], cwd: Path) -> None:
    names = os.listdir(cwd / "results")
    for ext in (".trace", ".c", ".smt2"):
        assert any(n.endswith(ext) for n in names), (ext, names)


def _certificates(p: subprocess.CompletedProcess[str], cwd: Path) -> None:
    import z3

    ctx = z3.Context()  # kept alive while z3 uses it
    answers = str(z3.Z3_eval_smtlib2_string(ctx.ref(), (cwd / "c.smt2").read_text())).split()
    assert answers.count("unsat") >= 3 and "sat" not in answers and "unknown" not in answers


def _prints(*needles: str) -> Callable[[subprocess.CompletedProcess[str], Path], None]:
    def check(p: subprocess.CompletedProcess[str], cwd: Path) -> None:
        for n in needles:
            assert n in p.stdout, n
    return check


def _flags_word_block(p: subprocess.CompletedProcess[str], cwd: Path) -> None:
    """README's flags-word block is the command's output, verbatim."""
    text = readme()
    a = text.index("<!-- flagsword:begin -->\n```\n") + len("<!-- flagsword:begin -->\n```\n")
    b = text.index("```\n<!-- flagsword:end -->")
    assert p.stdout == text[a:b]


def _ktap_one_design(p: subprocess.CompletedProcess[str], cwd: Path) -> None:
    """One KTAP subtest for the design asked for, ok, and the summary line."""
    assert p.stdout.startswith("KTAP version 1")
    tops = [ln for ln in p.stdout.splitlines() if ln.startswith(("ok ", "not ok "))]
    assert tops == ["ok 1 guest_memfd"]
    assert "# shmemcheck: " in p.stdout
    assert p.stdout.rstrip().endswith("everything verified as expected")


def _corpus_table(p: subprocess.CompletedProcess[str], cwd: Path) -> None:
    """README's corpus table (the one after the command, not `--kernels`'), every column but
    the time, and its summary line."""
    text = readme()
    table = text[text.index("$ shmemcheck corpus --format markdown"):
                 text.index("corpus: 9/9 bugs caught")]
    rows = [ln.rsplit("|", 2)[0] for ln in table.splitlines() if re.match(r"\| [BGL]\d", ln)]
    got = [ln.rsplit("|", 2)[0] for ln in p.stdout.splitlines() if re.match(r"\| [BGL]\d", ln)]
    assert got == rows and len(rows) == 9
    assert "corpus: 9/9 bugs caught, 9/9 fixes proved" in p.stdout


#: Each README command: its exit status and what else it must do. A command added to README
#: without a case here fails test_every_readme_command_has_a_case.
CASES: dict[str, Case] = {
    "list": Case(0, check=_prints("designs:", "properties:", "actions:")),
    "check": Case(0, check=_prints("everything verified as expected")),
    "check --design memfd --property write-seal-no-writable-mapping":
        Case(0, check=_prints("write-seal-no-writable-mapping", "EXHAUSTED")),
    # Reduced to guest_memfd (5.6 s alone): every memfd design is 1 to 1.5 minutes at this
    # scope (README says so), and at the default scope `check` runs them all. The wide states
    # (v5-inaccessible needs 68 bits here, plainly packed) were this case's point until stop
    # 43 (90 s of the suite); tests/test_wide_states.py searches a forced sparse layout
    "check --scope pages=2,maps=2 --format ktap": Case(
        0, ("slow",), run_as="check --scope pages=2,maps=2 --format ktap --design "
        "guest_memfd", check=_ktap_one_design),
    # Reduced: the full `--engine all` is 1,588 results and 16 minutes of CPU (README says so),
    # too much for every CI run on a 2-core machine; two properties (one violated, one that
    # holds) exercise the same path: every engine, every output format and certificate written.
    "check --engine all --out results/": Case(
        0, run_as="check --engine all --design memfd --property exec-seal-mode-fixed "
        "--property write-seal-no-writable-mapping --out results/", check=_results_dir),
    # run once per session, shared with tests/test_engines_agree.py (conftest.pdr_certificates:
    # the same command with --format json, which changes only how stdout is printed)
    "check --engine pdr --certificate c.smt2": Case(0, ("slow",), check=_certificates,
                                                    shared="pdr_certificates"),
    "lemmas --design memfd": Case(0, check=_prints("memfd: ", "inductive")),
    "strace examples/seal-ipc.strace.log --annotate":
        Case(0, check=_prints("## memfd 1: agrees", "0 disagree", "0 outside the model",
                              "MAP_SHARED, 4, 0x1000) = 0x7f13b4e5d000   ## memfd 2: agrees")),
    "strace --out judged -- python3 -c \"import os; os.close(os.memfd_create('t'))\"":
        Case(0, ("kernel",), check=lambda p, cwd: _prints("2 memfd calls (1 memfds): 2 agree")(
            p, cwd) if (cwd / "judged" / "memfd-1.trace").exists() else pytest.fail("no trace")),
    "replay traces/scenarios": Case(0, check=_prints("everything verified as expected")),
    "replay FILE.trace --on both": Case(0, ("kernel",), check=_prints("FILE.trace: conforms")),
    "export FILE.trace --to c": Case(0, check=_prints("int main(")),
    "export --selftest memfd-selftest": Case(0, check=lambda p, cwd: _prints(
        "cases for memfd", "files: shmemcheck_test.c, Makefile")(p, cwd) if (
        cwd / "memfd-selftest" / "Makefile").exists() else pytest.fail("no Makefile")),
    "explore --design guest_memfd --graph gmem.dot":
        Case(0, check=lambda p, cwd: _prints("digraph")(
            subprocess.CompletedProcess([], 0, (cwd / "gmem.dot").read_text()), cwd)),
    # Reduced: over the whole catalogue this is every engine on 2 x 74 properties, past 10
    # minutes on a 2-core machine (k-induction alone: 427 s on v5-flags); one property that
    # holds and one violated run every engine on both designs. Every property's pdr verdict is
    # compared with the explicit one by tests/test_engines_agree.py. (write-seal-content-frozen,
    # the violated one until stop 24, has a 6-step bmc query whose z3 time is heavy-tailed:
    # 1 to 33 s over 12 histories (bench/restarts.py); its 3-step neighbour here is not.)
    "check --design v5-inaccessible --design v5-flags --engine all": Case(
        0, ("slow",), run_as="check --design v5-inaccessible --design v5-flags --engine all "
        "--property inaccessible-never-sealable --property inaccessible-size-fixed-once-set",
        check=_prints("inaccessible-never-sealable", "inaccessible-size-fixed-once-set",
                      "[pdr]", "[kind]", "[bmc]", "[explicit]")),
    # Reduced (both diffs): at README's scope the explicit product is 802,044 pairs, about
    # 165 s and 120 s alone; without pins and mappings (scope pins=0,maps=0) the same code
    # paths and the same symbolic refinement proof (every scope: mappings included) run in
    # 22 s and 5 s alone (pins=0 alone: 75 s and 40 s, stop 43).
    "diff v5-inaccessible v5-flags": Case(
        0, ("slow",), run_as="diff v5-inaccessible v5-flags --scope pins=0,maps=0",
        check=_prints(
            "diff: EQUIVALENT (explicit within scope pages=1,maps=0,pins=0,fds=1,grain=1)",
            "symbolic: EQUIVALENT for every scope")),
    "diff memfd@5.17 v5-inaccessible --exclude-flag memfd_create.flags=0x8": Case(
        0, ("slow",), run_as="diff memfd@5.17 v5-inaccessible --exclude-flag "
        "memfd_create.flags=0x8 --scope pins=0,maps=0", check=_prints(
            "calls only in v5-inaccessible: kvm_register, kvm_map_pfn, guest_write",
            "diff: EQUIVALENT on every common call (explicit within scope pages=1,maps=0,"
            "pins=0,fds=1,grain=1)")),
    "diff --flags-word v5-flags memfd+luo": Case(1, check=_flags_word_block),
    "diff memfd+flags examples/flags-as-6.18.py --engine symbolic": Case(0, check=_prints(
        "  NORESERVE: memfd+flags iflags:0x1, memfd+flags@6.18 iflags:0x200000",
        "diff: EQUIVALENT for every scope (refinement relation")),
    # Reduced: every property with every engine is about 5 minutes (NOTES.md, issue 18); one
    # that holds and one violated (a finding: the widened F_SEAL_EXEC) run every engine the
    # same way. (live-update-keeps-mode instead made the explicit search read the mode: 72 s
    # of the run's 123 against 17 s)
    "check --design memfd+luo --engine all": Case(
        0, ("slow",), run_as="check --design memfd+luo --engine all --property "
        "preserved-is-frozen --property live-update-keeps-seals",
        check=_prints("preserved-is-frozen", "live-update-keeps-seals", "[pdr]", "[kind]",
                      "[bmc]", "[explicit]", "everything verified as expected")),
    "encoding --compose memfd v5-inaccessible": Case(1, check=_prints(
        "collision: memfd_create.flags: 0x0008 is MFD_NOEXEC_SEAL in memfd and "
        "MFD_INACCESSIBLE in v5-inaccessible")),
    "check --design examples/whatif-inaccessible-grow-seal.py --property "
    "inaccessible-never-sealable --property inaccessible-never-user-mappable --engine pdr":
        Case(1, skip="its printed output is checked by test_whatif_example_works_as_printed"),
    "replay traces/scenarios --on both": Case(0, ("slow", "kernel"),
                                              check=_prints("everything verified as expected")),
    # Reduced: the default conform is about 35 minutes since sizes are bytes (README says so),
    # past CI's budget; depth 1 and 200 walks run the same path, every action compared (2,090
    # traces, 9 s; depth 2 was 28,554 traces and 90-147 s, all of it holding the kernel lock:
    # NOTES.md "Stop 30" has its figures)
    "conform --design memfd": Case(0, ("slow", "kernel"),
                                   run_as="conform --design memfd --scope depth=1 --random 200",
                                   check=_prints("conform: ", " 0 divergences")),
    # other kernels (README "Other kernels under QEMU"): the archive, ~40 MB the first time,
    # two boots; without QEMU or the archive they fail, hence slow and qemu
    "kernels": Case(0, ("slow", "qemu"), check=_prints("QEMU: ", "cache: ")),
    "kernels fetch 6.1 7.2": Case(0, ("slow", "qemu"), check=_prints("6.1.", "7.2.")),
    "replay traces/scenarios/exec-no-seal.trace traces/scenarios/seal-write.trace --on "
    "kernel@6.1,kernel@7.2": Case(1, ("slow", "qemu", "boots"), check=_prints(
        "where the kernels differ from the trace", "-1 EINVAL")),
    "kernels fetch 6.1": Case(0, ("slow", "qemu"), check=_prints("6.1.")),
    # Reduced: as printed, a bounded conform of memfd@6.1 on the 6.1 guest is 17,656 traces
    # and 2,000 walks, about 165 s (NOTES.md "Stop 29"), all of it holding the suite's kernel
    # lock; depth 1 and 200 walks run the same path (boots, guest batches, comparison)
    "conform --design memfd@6.1 --scope pages=2,maps=2,pins=2,fds=2,depth=2": Case(
        0, ("slow", "qemu", "boots"), run_as="conform --design memfd@6.1 --scope "
        "pages=2,maps=2,pins=2,fds=2,depth=1 --random 200",
        check=_prints(" 0 divergences", "on kernel 6.1.")),
    # run once per session, shared with tests/test_corpus.py (conftest.corpus_markdown: the
    # same command with --out DIR, which prints nothing more on stdout)
    # Reduced: the full measurement is about 5 minutes (README's table); one action's
    # mutants at a small scope run the same path, scenarios included (~40 s, busy machine)
    "mutate --design memfd": Case(
        0, ("slow",), run_as="mutate --design memfd --action fcntl_add_seals "
        "--scope maps=0,pins=0", check=_prints("mutate: memfd ", "killed by properties: ")),
    "corpus --format markdown": Case(0, ("slow",), check=_corpus_table,
                                     shared="corpus_markdown"),
}


def test_every_readme_command_has_a_case() -> None:
    assert set(readme_commands()) == set(CASES), set(readme_commands()) ^ set(CASES)


@pytest.mark.parametrize("cmd", [pytest.param(c, marks=[getattr(pytest.mark, m)
                                                          for m in case.marks
                                                          if m != "boots"], id=c)
                                 for c, case in CASES.items()])
def test_readme_command_runs(cmd: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The command as README prints it, in a scratch directory that has README's relative
    paths (traces/, examples/, FILE.trace: a scenario trace) so nothing lands in the tree."""
    case = CASES[cmd]
    if case.skip:
        pytest.skip(case.skip)
    if "boots" in case.marks:
        from traces.kernels import qemu_binary

        if qemu_binary() is None:
            pytest.skip("it boots a kernel under QEMU and qemu-system-x86_64 is not installed "
                        "(apt-get install qemu-system-x86)")
    if case.shared:
        shared, where = request.getfixturevalue(case.shared)
        assert shared.returncode == case.exit, (shared.returncode, shared.stderr[-2000:])
        assert "Traceback" not in shared.stderr
        if case.check:
            case.check(shared, where)
        return
    for name in ("traces", "examples"):
        (tmp_path / name).symlink_to(os.path.join(ROOT, name))
    shutil.copy(os.path.join(ROOT, "traces/scenarios/basic-seals-accumulate.trace"),
                tmp_path / "FILE.trace")
    p = subprocess.run([sys.executable, "-m", "checker.cli",
                        *shlex.split(case.run_as or cmd)], capture_output=True, text=True,
                       timeout=1800, cwd=tmp_path)
    assert p.returncode == case.exit, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    assert "Traceback" not in p.stderr
    if case.check:
        case.check(p, tmp_path)
