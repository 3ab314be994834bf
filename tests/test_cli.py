"""The command line: verdict lines, formats, exit codes, and clean input errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import z3

from checker.cli import main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "checker.cli", *args], capture_output=True,
                          text=True, timeout=600)


def test_check_one_property_text(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["check", "--design", "memfd", "--property", "exec-seal-mode-fixed", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "VIOLATED" in out and "fchmod(3, 0755) = 0" in out
    assert out.rstrip().splitlines()[-1].endswith("everything verified as expected")


def test_check_json_is_stable(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["check", "--property", "seals-only-grow", "--format", "json", "--quiet"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["format"] == "shmemcheck-results" and doc["version"] == 1
    (r,) = [x for x in doc["results"] if x["design"] == "memfd"]
    assert r["verdict"] == "EXHAUSTED" and r["as_expected"] and "scope" in r["method"]


def test_check_ktap(capsys: pytest.CaptureFixture[str]) -> None:
    main(["check", "--design", "memfd", "--property", "exec-seal-mode-fixed",
          "--property", "seals-only-grow", "--format", "ktap", "--quiet"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "KTAP version 1" and out[1] == "1..1"
    assert out[2] == "  KTAP version 1" and out[3] == "  1..2"
    assert any(ln.startswith("  ok 2 exec-seal-mode-fixed:explicit # XFAIL") for ln in out)
    assert "ok 1 memfd" in out


@pytest.mark.parametrize("args,needle", [
    (["check", "--design", "nope"], "unknown design 'nope'"),
    (["check", "--property", "nope"], "unknown property 'nope'"),
    (["check", "--scope", "pages=x"], "bad --scope item"),
    (["check", "--scope", "bogus=1"], "no scope parameter 'bogus'"),
])
def test_usage_errors(args: list[str], needle: str) -> None:
    p = run(*args)
    assert p.returncode == 2
    assert needle in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_unexpected_result_exits_1(tmp_path: object, capsys: pytest.CaptureFixture[str]
                                   ) -> None:
    """A design where an expected-to-hold property fails makes `check` exit 1."""
    from checker.cli import run_explicit
    from checker.verdict import exit_code
    from model import designs
    from properties.catalogue import load

    broken = designs.get("memfd").derive(
        "memfd", "broken", edit={"fcntl_add_seals": lambda a: a.drop_rule("deny_writable")})
    rs, _ = run_explicit(broken, [load()["write-seal-no-writable-mapping"]],
                         broken.scope(), True)
    assert rs[0].verdict.value == "VIOLATED" and exit_code(rs) == 1


def test_out_dir_written(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    import os
    out = str(tmp_path)
    rc = main(["check", "--design", "memfd", "--property", "exec-seal-mode-fixed", "--quiet",
               "--out", out])
    assert rc == 0
    names = os.listdir(out)
    assert "memfd.exec-seal-mode-fixed.explicit.trace" in names
    assert not [n for n in names if n.startswith(".tmp-")]


def test_replay_bad_input(tmp_path: object) -> None:
    import os
    p = os.path.join(str(tmp_path), "bad.trace")
    with open(p, "w") as f:
        f.write("# shmemcheck trace 1\n# design: memfd\n"
                'memfd_create("t", 0) = 3\nfcntl(7, F_GET_SEALS) = 1\n')
    r = run("replay", p)
    assert r.returncode == 2
    assert f"{p}:4:1:" in r.stderr and "fd 7 is not open" in r.stderr
    assert "Traceback" not in r.stderr


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "memfd" in out and "write-seal-no-writable-mapping" in out and "fcntl_add_seals" in out


def test_certificate_file_rechecks_in_a_fresh_solver(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`--certificate FILE`: one SMT-LIB2 script, each certificate labelled and reset; a fresh
    z3 context answers unsat three times per certificate; `--out` also writes each one."""
    f = tmp_path / "certs.smt2"
    rc = main(["check", "--design", "memfd", "--property", "write-seal-no-writable-mapping",
               "--property", "exec-seal-mode-fixed", "--engine", "pdr", "--engine", "kind",
               "--certificate", str(f), "--out", str(tmp_path / "out"), "--quiet"])
    capsys.readouterr()
    assert rc == 0
    text = f.read_text()
    ctx = z3.Context()
    answers = str(z3.Z3_eval_smtlib2_string(ctx.ref(), text)).split()
    # exec-seal-mode-fixed is VIOLATED (hugetlbfs): no certificate for it
    assert answers == ["memfd", "write-seal-no-writable-mapping", "pdr", "unsat", "unsat",
                       "unsat", "memfd", "write-seal-no-writable-mapping", "kind", "unsat",
                       "unsat", "unsat"]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.smt2")) == [
        "memfd.write-seal-no-writable-mapping.kind.smt2",
        "memfd.write-seal-no-writable-mapping.pdr.smt2"]


def test_export_limits_are_errors_not_tracebacks(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A call no exporter can write (fork, a v5-only flag) is a one-line error with the
    trace's line and column (exit 2); under `check --out` that format is skipped with a note
    and everything else is written."""
    b2 = str(Path(__file__).parent.parent / "traces/scenarios/corpus/B2-fixed.trace")
    assert main(["export", b2, "--to", "c"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{b2}:10:1: cannot export to c: step 6: no reproducer for call "
                          "'fork'"), err
    assert "Traceback" not in err
    rc = main(["check", "--design", "v5-inaccessible", "--property",
               "mfd-inaccessible-honoured", "--quiet", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 0
    names = {p.name for p in tmp_path.iterdir()}
    base = "v5-inaccessible.mfd-inaccessible-honoured.explicit"
    assert f"{base}.trace" in names and f"{base}.itf.json" in names and f"{base}.c" not in names
    (line,) = err.splitlines()  # the skipped exports, summarised in one line
    assert line.startswith("shmemcheck: 3 export file(s) not written: ")
    assert f"no c export: unknown constant MFD_INACCESSIBLE (1: {tmp_path}/{base}.c)" in line


def test_outputs_get_the_usual_file_mode(tmp_path: Path) -> None:
    import os

    from checker.atomic import write_text

    old = os.umask(0o022)
    try:
        write_text(str(tmp_path / "x.trace"), "x\n")
    finally:
        os.umask(old)
    assert (tmp_path / "x.trace").stat().st_mode & 0o777 == 0o644
