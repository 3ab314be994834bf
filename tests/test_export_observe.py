"""A C reproducer of a violation checks the observable the property is about, not only the
outcomes: the grow-seal one reads i_size before and after the mmap (issue 12 §5)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from checker.replay import replay_for_export
from model import designs
from model.lang.design import Design
from traces import export
from traces.kernel import capability, hugepages_reserved
from traces.textfmt import parse_trace
from traces.trace import Trace


def export_c(design: Design, t: Trace) -> str:
    """The C reproducer of a trace, replayed on the model first (as the CLI does)."""
    return export.export_c(design, replay_for_export(design, t))


GROW = """# shmemcheck trace 1: grow-seal-size-monotone on memfd
# design: memfd
# expect: violates grow-seal-size-monotone
memfd_create("t", MFD_ALLOW_SEALING|MFD_HUGETLB) = 3
fcntl(3, F_ADD_SEALS, F_SEAL_GROW) = 0
mmap(NULL, 2097152, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1
"""
BEFORE = "\tcheck_before((struct observe){ 3, 0, 4, -1 });"
AFTER = "\twant_after = (struct observe){ 3, 2097152, 4, -1 };"


def test_grow_seal_reproducer_reads_i_size_before_and_after() -> None:
    c = export_c(designs.get("memfd"), parse_trace(GROW))
    head = " ".join(c.split("*/", 1)[0].replace(" * ", " ").split())
    assert ("Exit 0 means this kernel shows the violation of grow-seal-size-monotone: every "
            "outcome is as the trace says, and i_size (fstat) and the seals (F_GET_SEALS) "
            "before and after the last step match the model.") in head
    body = c.split("int main(void)", 1)[1].splitlines()
    i = body.index("\tcur_step = 3;")
    assert body[i + 1:i + 3] == [BEFORE, AFTER]  # around the mmap, the last step only
    assert body.count(BEFORE) == 1 and "want_after = " not in "\n".join(body[:i])


def test_exec_seal_reproducer_reads_the_mode() -> None:
    t = parse_trace("# shmemcheck trace 1\n# design: memfd\n# expect: violates "
                    'exec-seal-mode-fixed\nmemfd_create("t", MFD_HUGETLB|MFD_NOEXEC_SEAL) = 3\n'
                    "fchmod(3, 0755) = 0\n")
    c = export_c(designs.get("memfd"), t)
    assert "check_before((struct observe){ 3, -1, 32, 438 });" in c  # 0666 before
    assert "want_after = (struct observe){ 3, -1, 32, 493 };" in c  # 0755 after


def test_a_conforms_trace_checks_outcomes_only() -> None:
    t = parse_trace(GROW.replace("violates grow-seal-size-monotone", "conforms"))
    c = export_c(designs.get("memfd"), t)
    assert "Exit 0 means this kernel shows" not in c
    assert "check_before((struct" not in c and "want_after = (struct" not in c


@pytest.mark.kernel
def test_grow_seal_reproducer_on_this_kernel(tmp_path: Path) -> None:
    """On this kernel (hugetlbfs_file_mmap() ignores F_SEAL_GROW) the reproducer exits 0; the
    same program expecting the size a fixed kernel keeps (0) fails on the fstat check."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    reason = capability("hugetlb")
    if reason:
        pytest.skip(reason)
    c = export_c(designs.get("memfd"), parse_trace(GROW))
    fixed = c.replace(AFTER, "\twant_after = (struct observe){ 3, 0, 4, -1 };")
    assert fixed != c
    exes = []
    for name, src in (("grow", c), ("fixed", fixed)):
        (tmp_path / f"{name}.c").write_text(src)
        subprocess.run(["gcc", "-Wall", "-Werror", "-o", str(tmp_path / name),
                        str(tmp_path / f"{name}.c")], check=True, capture_output=True)
        exes.append(tmp_path / name)
    with hugepages_reserved(2) as why:
        if why:
            pytest.skip(why)
        grow = subprocess.run([str(exes[0])], capture_output=True, text=True, timeout=60)
        fix = subprocess.run([str(exes[1])], capture_output=True, text=True, timeout=60)
    assert grow.returncode == 0, grow.stdout
    assert fix.returncode == 1, fix.stdout
    assert ("# step 3: after the step: i_size is 2097152, the trace's model says 0"
            in fix.stdout.splitlines())
