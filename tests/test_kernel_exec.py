"""traces/kernel.py: traces executed on the live kernel (each capability skip has a reason)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from traces.kernel import Observation, capability, hugepages_reserved, run_on_kernel
from traces.trace import Any_, Arg, Err, Int, New, Ref, Ret, Sig, Step, Str, Struct, Sym

pytestmark = pytest.mark.kernel

RW = Sym("PROT_READ|PROT_WRITE")
PAGE = 4096
NOEXEC = Path("/proc/sys/vm/memfd_noexec")
NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")


def S(call: str, *args: Arg) -> Step:
    return Step(call, tuple(args), Any_())


def need(kind: str) -> None:
    reason = capability(kind)
    if reason is not None:
        pytest.skip(reason)


def memfd(flags: str = "MFD_ALLOW_SEALING", size: int = PAGE) -> list[Step]:
    return [S("memfd_create", Str("t"), Sym(flags)), S("ftruncate", Int(3), Int(size))]


def mmap(length: int, prot: Sym, flags: str = "MAP_SHARED", fd: int = 3) -> Step:
    return S("mmap", Sym("NULL"), Int(length), prot, Sym(flags), Int(fd), Int(0))


def add_seals(seals: str, fd: int = 3) -> Step:
    return S("fcntl", Int(fd), Sym("F_ADD_SEALS"), Sym(seals))


def test_example_trace_write_seal() -> None:
    steps = [*memfd(), mmap(PAGE, RW), add_seals("F_SEAL_WRITE"),
             S("munmap", Ref("m1"), Int(PAGE)), add_seals("F_SEAL_WRITE"),
             S("write", Int(3), Str("x"), Int(1)), S("fcntl", Int(3), Sym("F_GET_SEALS"))]
    run = run_on_kernel(steps)
    assert (run.skipped, run.error, run.observations) == (None, None, None)
    assert run.outcomes == [Ret(3), Ret(0), New("m1"), Err("EBUSY"), Ret(0), Ret(0),
                            Err("EPERM"), Ret(8)]


def test_store_faults_segv_and_bus() -> None:
    steps = [*memfd(), mmap(2 * PAGE, Sym("PROT_READ")),
             S("store", Ref("m1"), Int(0)), S("load", Ref("m1"), Int(0)),
             S("load", Ref("m1"), Int(PAGE)),            # past EOF (file is one page)
             mmap(PAGE, RW, "MAP_PRIVATE"), S("store", Ref("m2"), Int(1)),
             S("munmap", Ref("m2"), Int(PAGE)), S("store", Ref("m2"), Int(1))]
    run = run_on_kernel(steps)
    assert run.error is None
    assert run.outcomes == [Ret(3), Ret(0), New("m1"), Sig("SIGSEGV"), Ret(0), Sig("SIGBUS"),
                            New("m2"), Ret(0), Ret(0), Sig("SIGSEGV")]


def test_fd_numbering_and_proc_self_fd_reopen() -> None:
    steps = [S("memfd_create", Str("t"), Sym("MFD_ALLOW_SEALING")),
             S("ftruncate", Int(3), Sym("PAGE")),  # the model's page: 4 KiB here
             S("open", Str("/proc/self/fd/3"), Sym("O_RDONLY")),
             add_seals("F_SEAL_GROW", fd=4), S("fcntl", Int(4), Sym("F_GET_SEALS")),
             add_seals("F_SEAL_GROW"), S("close", Int(3)), S("dup", Int(4)),
             S("fcntl", Int(3), Sym("F_GET_SEALS")), S("close", Int(9)),
             S("lseek", Int(3), Int(10), Sym("SEEK_SET")), S("read", Int(3), Int(100)),
             S("pwrite64", Int(4), Str("ab", truncated=True), Int(5), Int(0))]
    run = run_on_kernel(steps)
    assert run.error is None
    assert run.outcomes == [Ret(3), Ret(0), Ret(4), Err("EPERM"), Ret(0), Ret(0), Ret(0),
                            Ret(3), Ret(4), Err("EBADF"), Ret(10), Ret(100), Err("EBADF")]


def test_pin_blocks_write_seal_until_unpinned() -> None:
    steps = [*memfd(), mmap(PAGE, RW), S("store", Ref("m1"), Int(0)), S("pin", Ref("m1")),
             S("munmap", Ref("m1"), Int(PAGE)), add_seals("F_SEAL_WRITE"),
             S("unpin", Ref("p1")), add_seals("F_SEAL_WRITE")]
    run = run_on_kernel(steps)
    assert run.error is None
    assert run.outcomes == [Ret(3), Ret(0), New("m1"), Ret(0), New("p1"), Ret(0), Err("EBUSY"),
                            Ret(0), Ret(0)]


def test_gup_pin_dma_write_after_future_write_seal() -> None:
    need("io_uring")
    steps = [*memfd(), mmap(PAGE, RW), S("gup_pin", Ref("m1")), S("munmap", Ref("m1"), Int(PAGE)),
             add_seals("F_SEAL_WRITE"), add_seals("F_SEAL_FUTURE_WRITE"),
             S("dma_write", Ref("p1")), S("unpin", Ref("p1")), add_seals("F_SEAL_WRITE"),
             mmap(PAGE, Sym("PROT_READ")), S("load", Ref("m2"), Int(0))]
    run = run_on_kernel(steps)
    assert run.error is None and run.skipped is None
    assert run.outcomes == [Ret(3), Ret(0), New("m1"), New("p1"), Ret(0), Err("EBUSY"), Ret(0),
                            Ret(0), Ret(0), Ret(0), New("m2"), Ret(0)]


def test_noexec_scope_in_child_pid_namespace() -> None:
    need("pidns")
    before = NOEXEC.read_text()
    steps = [S("memfd_create", Str("x"), Sym("MFD_EXEC")), S("memfd_create", Str("y"), Int(0))]
    run = run_on_kernel(steps, observe=True, noexec_scope=2)
    assert NOEXEC.read_text() == before
    assert (run.skipped, run.error) == (None, None)
    assert run.outcomes == [Err("EACCES"), Ret(3)]
    assert run.observations is not None
    assert run.observations[0] == Observation("EBADF", None, None, {})
    assert run.observations[1] == Observation(0x20, 0, 0o666, {})


def _region(flags: str, gmem: int = 5) -> Struct:
    return Struct((("slot", Int(0)), ("flags", Sym(flags)), ("guest_phys_addr", Int(0)),
                   ("memory_size", Int(PAGE)), ("userspace_addr", Ref("m1")),
                   ("guest_memfd_offset", Int(0)), ("guest_memfd", Int(gmem))))


def test_guest_memfd_mmap_and_bind() -> None:
    need("kvm")
    steps = [S("open", Str("/dev/kvm"), Sym("O_RDWR")),
             S("ioctl", Int(3), Sym("KVM_CREATE_VM"), Int(0)),
             S("ioctl", Int(4), Sym("KVM_CREATE_GUEST_MEMFD"),
               Struct((("size", Int(4 * PAGE)), ("flags", Int(0))))),
             mmap(4 * PAGE, RW, fd=5),
             mmap(4 * PAGE, RW, "MAP_PRIVATE|MAP_ANONYMOUS", fd=-1),
             S("ioctl", Int(4), Sym("KVM_SET_USER_MEMORY_REGION2"),
               _region("KVM_MEM_GUEST_MEMFD|KVM_MEM_READONLY")),
             S("ioctl", Int(4), Sym("KVM_SET_USER_MEMORY_REGION2"), _region("KVM_MEM_GUEST_MEMFD")),
             S("read", Int(5), Int(16)), S("pread64", Int(5), Int(16), Int(0)),
             S("ioctl", Int(4), Sym("KVM_CREATE_GUEST_MEMFD"),
               Struct((("size", Int(4 * PAGE)), ("flags", Sym("GUEST_MEMFD_FLAG_MMAP"))))),
             mmap(4 * PAGE, RW, fd=6), S("load", Ref("m2"), Int(0))]
    run = run_on_kernel(steps, observe=True)
    assert (run.skipped, run.error) == (None, None)
    assert run.outcomes == [Ret(3), Ret(4), Ret(5), Err("ENODEV"), New("m1"), Err("EINVAL"),
                            Ret(0), Err("EINVAL"), Err("ESPIPE"), Ret(6), New("m2"),
                            Sig("SIGBUS")]
    assert run.observations is not None
    assert run.observations[2] == Observation("EINVAL", 4 * PAGE, 0o600, {})
    assert run.observations[-1].maps == {"m1": ("ok", "ok"), "m2": ("SIGBUS", "SIGBUS")}


def test_observe_seals_size_mode_and_map_probes() -> None:
    steps = [*memfd(), mmap(PAGE, RW), mmap(PAGE, Sym("PROT_READ")),
             mmap(PAGE, Sym("PROT_READ"), "MAP_PRIVATE"), mmap(2 * PAGE, RW),
             add_seals("F_SEAL_FUTURE_WRITE"), S("fchmod", Int(3), Int(0o644, "0644")),
             S("munmap", Ref("m1"), Int(PAGE)), S("close", Int(3))]
    run = run_on_kernel(steps, observe=True)
    assert run.error is None and run.observations is not None
    assert len(run.observations) == len(steps) == len(run.outcomes)
    first, sealed, last = run.observations[0], run.observations[7], run.observations[-1]
    assert first == Observation(0, 0, 0o777, {})
    assert (sealed.seals, sealed.size, sealed.mode) == (0x10, PAGE, 0o644)
    probes = {"m1": ("ok", "ok"), "m2": ("ok", "SIGSEGV"), "m3": ("ok", "SIGSEGV"),
              "m4": ("ok", "ok")}
    assert sealed.maps == probes
    del probes["m1"]
    assert last == Observation(0x10, PAGE, 0o644, probes)  # fd closed: the file lives on


def test_unsupported_call_runs_nothing(tmp_path: Path) -> None:
    target = tmp_path / "created"
    steps = [S("open", Str(str(target)), Sym("O_RDWR|O_CREAT"), Int(0o600)), S("frobnicate")]
    run = run_on_kernel(steps, observe=True)
    assert run.error == "unsupported call frobnicate"
    assert (run.outcomes, run.observations, run.skipped) == ([], None, None)
    assert not target.exists()


def test_bad_handle_is_an_error() -> None:
    run = run_on_kernel([*memfd(), S("store", Ref("m1"), Int(0))])
    assert run.outcomes == [Ret(3), Ret(0)]
    assert run.error == "step 3: m1 does not exist (no mmap produced it)"


def test_timeout_kills_the_run() -> None:
    slow = [*memfd(), mmap(PAGE, RW), S("pin", Ref("m1")), S("munmap", Ref("m1"), Int(PAGE))]
    slow += [add_seals("F_SEAL_WRITE")] * 4  # each waits ~150 ms for the pin, then EBUSY
    run = run_on_kernel(slow, timeout=0.2)
    assert run.error is not None
    assert re.fullmatch(r"step \d+ timed out after 0\.2 s", run.error)
    n = int(run.error.split()[1])
    assert n == len(run.outcomes) + 1 and n <= len(slow)
    assert all(o == Err("EBUSY") for o in run.outcomes[5:])


def test_hugetlb_write_einval_and_nr_hugepages_restored() -> None:
    need("hugetlb")
    before = NR_HUGEPAGES.read_text()
    with hugepages_reserved(2) as reason:
        if reason is not None:
            pytest.skip(reason)
        steps = [*memfd("MFD_HUGETLB|MFD_ALLOW_SEALING", 2 << 20),
                 S("write", Int(3), Str("x"), Int(1)),
                 S("mmap", Sym("NULL"), Sym("PAGE"), RW, Sym("MAP_SHARED"), Int(3), Int(0)),
                 S("store", Ref("m1"), Int(0)), add_seals("F_SEAL_WRITE")]
        run = run_on_kernel(steps)
    assert NR_HUGEPAGES.read_text() == before
    assert run.error is None
    assert run.outcomes == [Ret(3), Ret(0), Err("EINVAL"), New("m1"), Ret(0), Err("EBUSY")]


def test_unknown_capability() -> None:
    with pytest.raises(ValueError):
        capability("teleport")


@pytest.mark.kernel
def test_hugepages_restored_on_sigterm() -> None:
    """A kill while huge pages are reserved (a CI timeout) still restores nr_hugepages."""
    import signal as _signal
    import subprocess
    import sys

    why = capability("hugetlb")
    if why:
        pytest.skip(why)
    code = ("import time\nfrom traces.hugepages import hugepages_reserved, _meminfo\n"
            "with hugepages_reserved(_meminfo('HugePages_Free') + 2) as why:\n"
            "    print('in', why, flush=True)\n    time.sleep(60)\n")
    with open("/proc/sys/vm/nr_hugepages") as f:
        before = f.read().strip()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    line = p.stdout.readline()
    if not line.startswith("in None"):
        p.kill()
        _, err = p.communicate()
        why = line.strip() or (err.strip().splitlines() or ["the child printed nothing"])[-1]
        pytest.skip(f"could not reserve huge pages: {why}")
    p.send_signal(_signal.SIGTERM)
    p.wait(timeout=30)
    with open("/proc/sys/vm/nr_hugepages") as f:
        assert f.read().strip() == before
