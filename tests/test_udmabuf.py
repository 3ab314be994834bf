"""udmabuf (UDMABUF_CREATE on /dev/udmabuf) on a memfd, against a decision table written from
drivers/dma-buf/udmabuf.c (udmabuf_create(), check_memfd_seals()) and mm/gup.c
(memfd_pin_folios()) and probed in the 6.12.118, 7.2.13 and 7.3-rc7 guests (this machine's
6.18.44 has no CONFIG_UDMABUF): EINVAL for an unaligned (4 KiB, also on hugetlbfs), empty or
over-64-MiB range, for a file without F_SEAL_SHRINK or with F_SEAL_WRITE or
F_SEAL_FUTURE_WRITE (also on 6.12.118), and for a range reaching EOF; no FMODE_ check, so an
O_RDONLY description makes a udmabuf, and a store through a mapping of the dmabuf wrote the
file (the probe read the byte back through the memfd on all three guests). A held udmabuf
keeps F_SEAL_WRITE EBUSY; closing it releases the pins.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model import designs
from tests.conftest import kernel_agrees, replay_text
from traces.syscalls import lower_steps
from traces.textfmt import parse_trace

SHRUNK = ('memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, 8192) = 0\n'
          "fcntl(3, F_ADD_SEALS, F_SEAL_SHRINK) = 0\n")
EINVAL = "-1 EINVAL"

TABLE = {
    "seals: F_SEAL_SHRINK wanted":
        'memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, 4096) = 0\n'
        f"udmabuf(3, 0, 4096) = {EINVAL}\n"
        "fcntl(3, F_ADD_SEALS, F_SEAL_GROW) = 0\n"
        f"udmabuf(3, 0, 4096) = {EINVAL}\n"
        "fcntl(3, F_ADD_SEALS, F_SEAL_SHRINK) = 0\nudmabuf(3, 0, 4096) = p1",
    "seals: F_SEAL_WRITE and F_SEAL_FUTURE_WRITE denied":
        SHRUNK + "fcntl(3, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) = 0\n"
        f"udmabuf(3, 0, 4096) = {EINVAL}\n"
        "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0\n"
        f"udmabuf(3, 0, 4096) = {EINVAL}",
    "range: 4 KiB aligned, not empty, at most 64 MiB, before EOF":
        SHRUNK + f"udmabuf(3, 1, 4096) = {EINVAL}\n"
        f"udmabuf(3, 0, 4095) = {EINVAL}\n"
        f"udmabuf(3, 0, 0) = {EINVAL}\n"
        f"udmabuf(3, 0, 12288) = {EINVAL}\n"
        f"udmabuf(3, 8192, 4096) = {EINVAL}\n"
        f"udmabuf(3, 0, 67112960) = {EINVAL}\n"
        f"udmabuf(3, 9223372036854775808, 4096) = {EINVAL}\n"
        f"udmabuf(3, 18446744073709547520, 8192) = {EINVAL}\n"
        "udmabuf(3, 0, 8192) = p1",
    "a read-only description: no FMODE_ check, and its dmabuf writes the file":
        SHRUNK + 'open("/proc/self/fd/3", O_RDONLY) = 4\nclose(3) = 0\n'
        "udmabuf(4, 0, 4096) = p1\ndma_write(p1) = 0",
    "a held udmabuf keeps F_SEAL_WRITE EBUSY until it is closed":
        SHRUNK + "udmabuf(3, 0, 4096) = p1\n"
        "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = -1 EBUSY\n"
        "fcntl(3, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) = 0\n"
        "dma_write(p1) = 0\nunpin(p1) = 0\n"
        "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0",
    "a /dev/shm file: F_SEAL_SEAL from birth, so never F_SEAL_SHRINK":
        'open("/dev/shm/t", O_RDWR|O_CREAT|O_EXCL, 0600) = 3\nftruncate(3, 4096) = 0\n'
        f"udmabuf(3, 0, 4096) = {EINVAL}\n"
        "fcntl(3, F_ADD_SEALS, F_SEAL_SHRINK) = -1 EPERM\n"
        f"udmabuf(3, 0, 4096) = {EINVAL}\nunlink(\"/dev/shm/t\") = 0",
    "hugetlbfs: 4 KiB alignment, the huge page holding the range pinned":
        'memfd_create("h", MFD_ALLOW_SEALING|MFD_HUGETLB) = 3\nftruncate(3, 2097152) = 0\n'
        "fcntl(3, F_ADD_SEALS, F_SEAL_SHRINK) = 0\n"
        f"udmabuf(3, 0, 2097153) = {EINVAL}\n"
        f"udmabuf(3, 0, 4194304) = {EINVAL}\n"
        "udmabuf(3, 0, 4096) = p1\n"
        "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = -1 EBUSY\n"
        "unpin(p1) = 0\nfcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0",
}
HUGE = "hugetlbfs: 4 KiB alignment, the huge page holding the range pinned"


@pytest.mark.parametrize("name", list(TABLE))
def test_udmabuf_table(name: str) -> None:
    assert replay_text(TABLE[name]) is None


@pytest.mark.parametrize("design", ["memfd@6.12", "memfd@7.2", "memfd@7.3-rc"])
def test_the_guests_designs_take_it(design: str) -> None:
    for text in TABLE.values():
        assert replay_text(text, design) is None


def test_a_wrong_outcome_is_reported() -> None:
    text = TABLE["a read-only description: no FMODE_ check, and its dmabuf writes the file"]
    got = replay_text(text.replace("udmabuf(4, 0, 4096) = p1\ndma_write(p1) = 0",
                                   "udmabuf(4, 0, 4096) = -1 EBADF"))
    assert got is not None and "EBADF" in got


@pytest.mark.parametrize("text, why", [
    (SHRUNK + "udmabuf(3, 4096, 4096) = p1", "first page"),
])
def test_a_pin_past_the_first_page_is_outside_the_model(text: str, why: str) -> None:
    from checker.replay import TraceInputError

    with pytest.raises(TraceInputError, match=why):
        replay_text(text)


@pytest.mark.parametrize("design", ["memfd@6.1", "memfd@5.17", "memfd+luo"])
def test_designs_without_it_refuse_the_call(design: str) -> None:
    assert "udmabuf" not in {a.name for a in designs.get(design).actions}


def test_a_dmabuf_write_needs_udmabuf_not_io_uring() -> None:
    """A trace's needs come from the step that makes the pin: writing through a udmabuf
    needs /dev/udmabuf, through a gup_pin io_uring."""
    def needs(text: str) -> set[str]:
        t = parse_trace("# shmemcheck trace 1\n" + text + "\n", "<t>")
        return set().union(*(op.needs for op in lower_steps(t.steps)))

    assert needs(TABLE["a held udmabuf keeps F_SEAL_WRITE EBUSY until it is closed"]) \
        == {"udmabuf"}
    assert needs('memfd_create("t", 0) = 3\nftruncate(3, 4096) = 0\n'
                 "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1\n"
                 "gup_pin(m1) = p1\ndma_write(p1) = 0") == {"io_uring"}


def test_reproducers(tmp_path: Path) -> None:
    """The C reproducer builds with -Wall -Werror, the Python one compiles, and the
    syzkaller program uses syzkaller's own names (sys/linux/dev_udmabuf.txt)."""
    src = tmp_path / "t.trace"
    src.write_text("# shmemcheck trace 1: t\n# design: memfd\n# expect: conforms\n"
                   + TABLE["a held udmabuf keeps F_SEAL_WRITE EBUSY until it is closed"] + "\n")
    outs = {}
    for fmt in ("c", "python", "syz"):
        out = tmp_path / f"t.{fmt}"
        p = subprocess.run([sys.executable, "-m", "checker.cli", "export", str(src), "--to", fmt,
                            "-o", str(out)], capture_output=True, text=True, check=False)
        assert p.returncode == 0, p.stderr
        outs[fmt] = out.read_text()
    assert "sys_udmabuf(FD(3), 0ULL, 4096ULL, 1)" in outs["c"]
    compile(outs["python"], "t.py", "exec")
    assert "openat$udambuf(" in outs["syz"] and "ioctl$UDMABUF_CREATE(" in outs["syz"]
    if shutil.which("gcc") is None:
        pytest.skip("no gcc to build the C reproducer")
    p = subprocess.run(["gcc", "-Wall", "-Werror", "-o", str(tmp_path / "repro"),
                        str(tmp_path / "t.c")], capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(TABLE))
def test_udmabuf_table_on_kernel(name: str) -> None:
    """Skips with the reason where the kernel has no /dev/udmabuf (this machine's 6.18.44)."""
    kernel_agrees(TABLE[name], hugepages=2 if name == HUGE else 0)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("version", ["6.12", "7.2", "7.3-rc"])
def test_table_and_scenarios_on_the_guests(version: str, tmp_path: Path) -> None:
    """The table and the two scenarios, replayed in the fetched guest of each kernel that has
    CONFIG_UDMABUF (Debian's 6.1 build has not)."""
    from tests.test_kernel_designs import _guest

    _guest(version)
    for k, text in enumerate(TABLE.values()):
        (tmp_path / f"row{k}.trace").write_text(
            f"# shmemcheck trace 1\n# design: memfd@{version}\n{text}\n")
    scenarios = Path(__file__).parent.parent / "traces" / "scenarios"
    for name in ("udmabuf", "udmabuf-hugetlb"):
        text = (scenarios / f"{name}.trace").read_text()
        (tmp_path / f"{name}.trace").write_text(
            text.replace("# design: memfd\n", f"# design: memfd@{version}\n"))
    p = subprocess.run([sys.executable, "-m", "checker.cli", "replay", str(tmp_path), "--on",
                        f"kernel@{version}"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    n = len(TABLE) + 2
    assert f"{n} agree, 0 diverge" in p.stdout, p.stdout
