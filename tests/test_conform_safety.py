"""conform and the kernel executor leave nothing behind: no design that is not a live kernel's,
no file, no worker, no raised vm.nr_hugepages (issue 12 §4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from model import designs
from tests.conftest import run
from traces import hugepages
from traces.hugepages import HUGEPAGES_STATE, NR_HUGEPAGES, restore_hugepages
from traces.kernel import run_on_kernel
from traces.textfmt import parse_trace
from traces.trace import Ret

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", [n for n in designs.names() if designs.get(n).kernel is None])
def test_conform_refuses_designs_that_are_not_a_live_kernel(name: str) -> None:
    before = set(os.listdir("/dev/shm"))
    p = run("conform", "--design", name, "--random", "5", timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().splitlines() == [
        f"shmemcheck: conform: design {name} is not a model of a live kernel (a historical or "
        "proposed design); designs that are: guest_memfd, memfd, memfd@6.1, memfd@6.12, "
        "memfd@7.2, memfd@7.3-rc"]
    assert not _new_in_dev_shm(before)


def _new_in_dev_shm(before: set[str]) -> set[str]:
    """/dev/shm's new entries, less POSIX semaphores (sem.*: another process's
    multiprocessing locks, which come and go while the suite runs)."""
    return {n for n in set(os.listdir("/dev/shm")) - before if not n.startswith("sem.")}

def test_run_conform_refuses_them_too() -> None:
    from checker.conform import ConformOptions, NotAKernelDesign, run_conform

    d = designs.get("v5-flags")
    with pytest.raises(NotAKernelDesign, match="v5-flags is not a model of a live kernel"):
        run_conform(d, ConformOptions(d.scope(), 1, walks=1, seed=1, length=1))


@pytest.mark.parametrize("on", ["kernel", "both"])
def test_replay_on_the_kernel_skips_a_design_that_is_not_a_live_kernel(on: str) -> None:
    """A corpus -broken trace records a historical kernel's outcomes: it is replayed on the
    model only, never judged against this kernel (nothing of it runs here)."""
    trace = "traces/scenarios/corpus/B1-broken.trace"
    before = set(os.listdir("/dev/shm"))
    p = run("replay", trace, "--on", on, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "kernel: SKIP design B1-broken is not a model of a live kernel" in p.stdout
    assert p.stdout.rstrip().endswith("1 as expected, 0 not, 1 skipped on the kernel: "
                                      "everything verified as expected")
    assert not _new_in_dev_shm(before)


def test_files_a_trace_creates_are_removed(tmp_path: Path) -> None:
    """open(O_CREAT) of a path that did not exist: the file is gone after the run; a file that
    existed before is left alone."""
    if os.uname().machine != "x86_64":
        pytest.skip("the kernel executor runs on x86_64 only")
    new, old = tmp_path / "new", tmp_path / "old"
    old.write_text("keep")
    t = parse_trace("# shmemcheck trace 1\n# design: memfd@5.17\n"
                    f'open("{new}", O_RDWR|O_CREAT, 0600) = 3\n'
                    f'open("{old}", O_RDWR|O_CREAT, 0600) = 4\n', "<t>")
    r = run_on_kernel(t.steps)
    assert r.error is None and r.skipped is None, r
    assert r.outcomes == [Ret(3), Ret(4)]
    assert not new.exists() and old.read_text() == "keep"


def test_restore_hugepages_from_the_state_file(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    sysctl, state = tmp_path / "nr_hugepages", tmp_path / "state"
    monkeypatch.setattr(hugepages, "NR_HUGEPAGES", str(sysctl))
    monkeypatch.setattr(hugepages, "HUGEPAGES_STATE", str(state))
    sysctl.write_text("17")
    assert restore_hugepages() is None  # no state file: nothing to do
    dead = subprocess.Popen(["true"])
    dead.wait()
    state.write_text(f"0 {dead.pid}\n")
    assert "restored vm.nr_hugepages to 0" in (restore_hugepages() or "")
    assert sysctl.read_text() == "0" and not state.exists()
    sysctl.write_text("17")
    state.write_text(f"0 {os.getppid()}\n")  # a live run: it restores the value itself
    assert restore_hugepages() is None
    assert sysctl.read_text() == "17" and state.exists()


def _descendants(pid: int) -> set[int]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _nr() -> int:
    return int(Path(NR_HUGEPAGES).read_text())


@pytest.mark.kernel
def test_conform_killed_leaves_no_worker_and_the_next_run_restores_hugepages() -> None:
    """SIGKILL a conform run once it has raised vm.nr_hugepages: its workers (and the
    multiprocessing resource tracker) die with it, the recorded original value survives the
    kill, and the next run puts it back."""
    if os.geteuid() != 0 or not os.access(NR_HUGEPAGES, os.W_OK):
        pytest.skip(f"needs root and a writable {NR_HUGEPAGES} to reserve huge pages")
    restore_hugepages()
    original = _nr()
    if Path(HUGEPAGES_STATE).exists():
        pytest.skip(f"another run holds {HUGEPAGES_STATE} (huge pages raised by it)")
    if int(hugepages._meminfo("HugePages_Free")) >= 5:
        pytest.skip("enough huge pages are free already: conform would not raise the sysctl")
    proc = subprocess.Popen([sys.executable, "-m", "checker.cli", "conform", "--design", "memfd",
                             "--no-exhaustive", "--random", "1500", "--jobs", "2", "--quiet"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        kids: set[int] = set()
        while time.monotonic() < deadline:
            kids = {k for k in _descendants(proc.pid) if _alive(k)}
            if _nr() > original and Path(HUGEPAGES_STATE).exists() and len(kids) >= 3:
                break  # raised, recorded, and two workers plus the resource tracker running
            if proc.poll() is not None:
                pytest.fail(f"conform ended early: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.05)
        else:
            pytest.skip("conform did not raise vm.nr_hugepages and start its workers in 120 s")
        assert Path(HUGEPAGES_STATE).read_text().split() == [str(original), str(proc.pid)]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(k) for k in kids):
            time.sleep(0.05)
        assert not [k for k in kids if _alive(k)], "processes outlived the killed conform"
        assert _nr() > original and Path(HUGEPAGES_STATE).exists()  # the kill left it raised
        p = run("conform", "--design", "memfd", "--no-exhaustive", "--no-hugetlb", "--random",
                "1", "--length", "1", "--jobs", "1", timeout=120)
        assert p.returncode == 0, p.stderr
        assert f"restored vm.nr_hugepages to {original}" in p.stderr
        assert _nr() == original and not Path(HUGEPAGES_STATE).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        restore_hugepages()
        if _nr() != original:
            Path(NR_HUGEPAGES).write_text(str(original))
