"""fork()'s copy of a mapping (model/designs/memfd_fork.py fork_vma, traces/kernel_fork.py).

The decision table is written from kernel/fork.c dup_mmap() and mm/madvise.c (6.18) and the
fork probes of NOTES.md LIMITATIONS (Python, 6.18.44, a real fork() whose child waits while
the parent unmaps its own copy and seals), not from the model: a child's copy of a
VM_SHARED|VM_MAYWRITE mapping counts in i_mmap_writable (mapping_allow_writable()), so
F_SEAL_WRITE is EBUSY until the child unmaps it or exits, for PROT_READ|PROT_WRITE and for
PROT_READ with VM_MAYWRITE alike; a copy of an O_RDONLY description's shared mapping (no
VM_MAYWRITE) and a private copy do not count; a child's shared store reaches the file; the
copy keeps the parent's flags, so mprotect() in the child may add PROT_WRITE exactly where
the parent's could. Each row's last line carries the cell; the kernel test runs every line.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import replay_text, run
from tests.test_decision_tables import run_rows

SCENARIOS = Path(__file__).resolve().parent.parent / "traces" / "scenarios"

CREATE = 'memfd_create("t", MFD_ALLOW_SEALING) = 3\n'
HUGE = 'memfd_create("t", MFD_ALLOW_SEALING|MFD_HUGETLB) = 3\n'
WSEAL = "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE)"
RW, RO = "PROT_READ|PROT_WRITE", "PROT_READ"


def mm(length: int, prot: str, share: str, fd: int = 3) -> str:
    return f"mmap(NULL, {length}, {prot}, {share}, {fd}, 0)"


SH_RW = mm(4096, RW, "MAP_SHARED") + " = m1\n"

FORK = {
    "a shared rw copy keeps F_SEAL_WRITE EBUSY after the parent's munmap": CREATE + SH_RW
        + "fork_vma(m1) = m2\nmunmap(m1, 4096) = 0\n" + WSEAL + " = -1 EBUSY",
    "the child's munmap (its exit) frees it": CREATE + SH_RW
        + "fork_vma(m1) = m2\nmunmap(m1, 4096) = 0\nmunmap(m2, 4096) = 0\n" + WSEAL + " = 0",
    "a shared PROT_READ copy keeps VM_MAYWRITE: EBUSY": CREATE
        + mm(4096, RO, "MAP_SHARED") + " = m1\nfork_vma(m1) = m2\nmunmap(m1, 4096) = 0\n"
        + WSEAL + " = -1 EBUSY",
    "a shared copy through an O_RDONLY description has no VM_MAYWRITE": CREATE
        + 'open("/proc/self/fd/3", O_RDONLY) = 4\n' + mm(4096, RO, "MAP_SHARED", 4)
        + " = m1\nfork_vma(m1) = m2\n" + WSEAL + " = 0",
    "a private copy does not count; its store is a copy": CREATE + "ftruncate(3, 4096) = 0\n"
        + mm(4096, RW, "MAP_PRIVATE") + " = m1\nfork_vma(m1) = m2\n" + WSEAL + " = 0\n"
        "store(m2, 0) = 0\nstore(m1, 0) = 0\npwrite64(3, \"x\", 1, 0) = -1 EPERM",
    "the child's shared store reaches the file; past EOF SIGBUS": CREATE
        + "ftruncate(3, 4096) = 0\n" + mm(8192, RW, "MAP_SHARED") + " = m1\n"
        "fork_vma(m1) = m2\nmunmap(m1, 8192) = 0\nstore(m2, 4095) = 0\nstore(m2, 4096) = SIGBUS",
    "the child's copy may gain PROT_WRITE after F_SEAL_FUTURE_WRITE": CREATE
        + mm(4096, RO, "MAP_SHARED") + " = m1\nfork_vma(m1) = m2\n"
        "fcntl(3, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) = 0\nmunmap(m1, 4096) = 0\n"
        "mprotect(m2, 4096, PROT_READ|PROT_WRITE) = 0",
    "a write-sealed file's shared read copy cannot gain PROT_WRITE": CREATE + WSEAL + " = 0\n"
        + mm(4096, RO, "MAP_SHARED") + " = m1\nfork_vma(m1) = m2\n"
        "mprotect(m2, 4096, PROT_READ|PROT_WRITE) = -1 EACCES",
    "a copy of the child's copy (its own fork)": CREATE + SH_RW
        + "fork_vma(m1) = m2\nmunmap(m1, 4096) = 0\nfork_vma(m2) = m3\nmunmap(m2, 4096) = 0\n"
        + WSEAL + " = -1 EBUSY\nmunmap(m3, 4096) = 0\n" + WSEAL + " = 0",
    "the copy is of that mapping only": CREATE + SH_RW + mm(4096, RW, "MAP_PRIVATE")
        + " = m2\nfork_vma(m2) = m3\nmunmap(m1, 4096) = 0\n" + WSEAL + " = 0",
    "a pin through the child's copy, then its release": CREATE + "ftruncate(3, 4096) = 0\n"
        + SH_RW + "fork_vma(m1) = m2\nmunmap(m1, 4096) = 0\nstore(m2, 0) = 0\npin(m2) = p1\n"
        "munmap(m2, 4096) = 0\n" + WSEAL + " = -1 EBUSY\nunpin(p1) = 0\n" + WSEAL + " = 0",
    "hugetlbfs: a shared rw copy keeps F_SEAL_WRITE EBUSY": HUGE
        + mm(2097152, RW, "MAP_SHARED") + " = m1\nfork_vma(m1) = m2\n"
        "munmap(m1, 2097152) = 0\n" + WSEAL + " = -1 EBUSY",
}


@pytest.mark.parametrize("name", list(FORK))
def test_fork(name: str) -> None:
    assert replay_text(FORK[name]) is None


def test_a_wrong_fork_cell_is_reported() -> None:
    """The model holds the child's copy: claiming the seal succeeds is a divergence."""
    out = replay_text(CREATE + SH_RW + "fork_vma(m1) = m2\nmunmap(m1, 4096) = 0\n"
                      + WSEAL + " = 0")
    assert out is not None and "model says -1 EBUSY" in out


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(FORK))
def test_fork_on_kernel(name: str) -> None:
    """The same rows on the live kernel: every outcome, not only the last."""
    steps, run_ = run_rows(FORK[name])
    assert run_.outcomes == [s.outcome for s in steps]


@pytest.mark.kernel
def test_the_childs_mapping_is_observed() -> None:
    """The observation probes the child's copy where it lives (conform compares them): it
    loads and stores while mapped, and is gone after its munmap."""
    _, run_ = run_rows(CREATE + "ftruncate(3, 4096) = 0\n" + SH_RW
                           + "fork_vma(m1) = m2\nmunmap(m1, 4096) = 0\nmunmap(m2, 4096) = 0",
                           observe=True)
    maps = [o.maps for o in run_.observations]
    assert maps[3] == {"m1": ("ok", "ok"), "m2": ("ok", "ok")}
    assert maps[4] == {"m2": ("ok", "ok")}
    assert maps[5] == {}


def test_dontfork_is_refused(tmp_path: Path) -> None:
    """dup_mmap() skips a VM_DONTCOPY VMA: after MADV_DONTFORK the child has no copy to name,
    and the trace's fork_vma of it is refused, not judged."""
    f = tmp_path / "t.trace"
    f.write_text("# shmemcheck trace 1\n# design: memfd\n" + CREATE + SH_RW
                 + "madvise(m1, 4096, MADV_DONTFORK) = 0\nfork_vma(m1) = m2\n")
    r = run("replay", str(f))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "outside the model" in r.stderr and "(requires dontcopy)" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def _reproducers(tmp_path: Path, text: str) -> dict[str, subprocess.CompletedProcess[str]]:
    """The C and Python reproducers of trace `text`, run: their results by format."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed: the C reproducer cannot be built here")
    t = tmp_path / "t.trace"
    t.write_text(text)
    out = {}
    for fmt in ("c", "python"):
        src = tmp_path / f"repro.{fmt}"
        r = run("export", str(t), "--to", fmt, "-o", str(src))
        assert r.returncode == 0, r.stderr
        cmd = [sys.executable, str(src)]
        if fmt == "c":
            subprocess.run([gcc, "-Wall", "-Werror", "-o", str(tmp_path / "repro"), str(src)],
                           check=True, capture_output=True, timeout=120)
            cmd = [str(tmp_path / "repro")]
        out[fmt] = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return out


@pytest.mark.kernel
def test_the_reproducers_run_the_childs_steps_in_the_child(tmp_path: Path) -> None:
    """The C and Python reproducers hold a fork's copy in a child, as the executor does: the
    scenario passes, and a wrong outcome of a step the child runs fails there."""
    good = (SCENARIOS / "fork.trace").read_text()
    for fmt, p in _reproducers(tmp_path, good).items():
        assert p.returncode == 0 and "pass:25 fail:0" in p.stdout, (fmt, p.stdout, p.stderr)
    bad = good.replace("store(m2, 4097) = 0\n", "store(m2, 4097) = SIGBUS\n")
    for fmt, p in _reproducers(tmp_path, bad).items():
        assert p.returncode == 1 and "not ok 7 store(m2, 4097)" in p.stdout, (fmt, p.stdout)

