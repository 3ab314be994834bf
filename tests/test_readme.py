"""README claims that are commands: they must print what README says."""

from __future__ import annotations

import os
import re
import subprocess
import sys

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
                 "fcntl(3, F_ADD_SEALS, F_SEAL_GROW) = 0",
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
