"""`shmemcheck export --selftest DIR` (checker/selftest.py): a kselftest directory whose
program runs the scenario library and a sample of conform's random walks, each step
expecting what the design predicts for its kernel; on this kernel, and as /init of every
fetched kernel under QEMU (skipped with the reason where QEMU or a kernel is missing)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from checker.cli import main
from checker.selftest import cases, run_in_guest
from model import designs
from traces import kernels


def _export(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["export", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_directory_holds_what_kselftest_needs(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "memfd-model"
    code, out, err = _export(capsys, "--selftest", str(d), "--walks", "10")
    assert code == 0 and err == ""
    assert sorted(os.listdir(d)) == ["Makefile", "README", "config", "settings",
                                     "shmemcheck_test.c"]
    m = re.search(r"(\d+) cases for memfd \((\d+) scenarios, (\d+) random walks", out)
    assert m and int(m.group(1)) == int(m.group(2)) + int(m.group(3)) and int(m.group(3)) > 0
    mk = (d / "Makefile").read_text()
    assert "include ../lib.mk" in mk and "TEST_GEN_PROGS := shmemcheck_test" in mk
    assert "CONFIG_MEMFD_CREATE=y" in (d / "config").read_text()
    c = (d / "shmemcheck_test.c").read_text()
    assert c.startswith("// SPDX-License-Identifier: GPL-2.0")
    assert "return n_not_ok ? KSFT_FAIL : KSFT_PASS;" in c
    readme = (d / "README").read_text()
    # left out with the reason: another design's traces, and 1 GiB hugetlbfs files
    assert "gmem-bind.trace: memfd does not replay it" in readme
    assert "hugetlb-1g.trace: creates a 1 GiB hugetlbfs file" in readme


def test_each_step_expects_the_designs_prediction() -> None:
    """A trace recorded on 6.18 (MFD_NOEXEC_SEAL accepted) expects EINVAL in memfd@6.1's
    selftest: the outcome is the target design's, not the trace's."""
    from traces.textfmt import parse_trace

    t = parse_trace('# shmemcheck trace 1\n# design: memfd\n'
                    'memfd_create("t", MFD_NOEXEC_SEAL) = 3\n')
    new, old = (cases(designs.get(n), [t], 0, 1) for n in ("memfd", "memfd@6.1"))
    assert len(new.items) == len(old.items) == 1
    assert str(new.items[0].replayed.steps[0].outcome) == "Ret(value=3)"
    assert "EINVAL" in str(old.items[0].replayed.steps[0].outcome)


@pytest.mark.parametrize("argv, msg", [
    (["--selftest", "{d}", "--design", "v5-inaccessible"], "not a model of a live kernel"),
    (["--selftest", "{d}", "--to", "c"], "takes no trace, --to or --output"),
    (["--design", "memfd", "x.trace", "--to", "c"], "go with --selftest"),
    (["x.trace", "--to", "c", "--walks", "200"], "go with --selftest"),
    (["--to", "c"], "needs a TRACE and --to FORMAT"),
])
def test_bad_input_is_exit_2_and_writes_nothing(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                argv: list[str], msg: str) -> None:
    d = tmp_path / "out"
    code, out, err = _export(capsys, *[a.replace("{d}", str(d)) for a in argv])
    assert code == 2 and out == "" and msg in err and "Traceback" not in err
    assert not d.exists()


@pytest.mark.kernel
@pytest.mark.slow
def test_the_selftest_passes_on_this_kernel(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Built with its own Makefile, outside the kernel tree, run as kselftest would."""
    if shutil.which("make") is None or shutil.which("gcc") is None:
        pytest.skip("make or gcc is not installed: the selftest cannot be built here")
    d = tmp_path / "st"
    assert _export(capsys, "--selftest", str(d), "--walks", "40")[0] == 0
    subprocess.run(["make", "-s", "-C", str(d)], check=True, capture_output=True)
    p = subprocess.run([str(d / "shmemcheck_test")], capture_output=True, text=True,
                       timeout=600, check=False)
    assert p.stdout.startswith("KTAP version 1\n")
    bad = [ln for ln in p.stdout.splitlines() if ln.startswith("not ok")]
    assert bad == [] and p.returncode == 0, bad
    assert re.search(r"# Totals: pass:\d+ fail:0 skip:\d+", p.stdout)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("name", ["memfd@6.1", "memfd@6.12", "memfd@7.2", "memfd@7.3-rc"])
def test_the_selftest_passes_as_init_of_each_fetched_kernel(name: str) -> None:
    from checker.conform_guest import NoGuestKernel, target_of

    if kernels.qemu_binary() is None:
        pytest.skip("QEMU is not installed (apt-get install qemu-system-x86)")
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: the selftest cannot be built here")
    d = designs.get(name)
    try:
        target = target_of(d)
    except NoGuestKernel:
        pytest.skip(f"no build of {d.kernel} is fetched (shmemcheck kernels fetch {d.kernel})")
    if target.kernel is None or target.qemu is None:
        pytest.skip(f"{name}'s kernel is this machine's: test_the_selftest_passes_on_this_kernel")
    from checker.mutate import load_scenarios, scenario_dir

    st = cases(d, load_scenarios(scenario_dir()), 20, 1)
    run = run_in_guest(st, str(target.kernel.vmlinuz), target.qemu)
    assert run.problem is None, run.problem
    res = run.results()
    assert len(res) == len(st.items)
    bad = {n: r for n, r in res.items() if r.startswith("not ok")}
    assert bad == {}, bad
    assert re.search(r"# Totals: pass:\d+ fail:0 skip:\d+", run.ktap)
