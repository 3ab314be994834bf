"""Other kernels under QEMU (traces/kernels.py, traces/guest.py, checker/cli_kernels.py): the
initramfs writer, the KTAP parser, the batch program, the archive and cache helpers without the
network, and one boot of a fetched kernel (marker `qemu`, slow; skipped with the reason when
QEMU or a fetched kernel is missing)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from checker.replay import kernel_noexec_scope, replay_for_export
from model import designs, vocab
from traces import kernels
from traces.guest import (
    BatchItem,
    build_program,
    initramfs,
    newc,
    outcome_word,
    parse_ktap,
    parse_outcome,
    program,
)
from traces.kernel import KernelRun
from traces.textfmt import load_trace
from traces.trace import Err, New, Ret, Sig

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "traces" / "scenarios"


def _item(name: str) -> BatchItem:
    t = load_trace(str(SCENARIOS / name))
    t.path = f"traces/scenarios/{name}"
    d = designs.get(t.design)
    return BatchItem(t.path, replay_for_export(d, t), kernel_noexec_scope(d, t))


def _read_newc(data: bytes) -> list[tuple[str, int, bytes, int, int]]:
    """An independent reader of the newc format: (name, mode, data, rdevmajor, rdevminor)."""
    out = []
    pos = 0
    while True:
        assert data[pos:pos + 6] == b"070701", pos
        f = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        assert data[pos + 110 + namesize - 1] == 0
        pos += 110 + namesize
        pos += -pos % 4
        body = data[pos:pos + filesize]
        pos += filesize
        pos += -pos % 4
        if name == "TRAILER!!!":
            assert pos == len(data)
            return out
        out.append((name, f[1], body, f[9], f[10]))


def test_newc_round_trips_names_modes_data_and_devices() -> None:
    entries = [("dev", 0o040755, b"", (0, 0)), ("dev/console", 0o020600, b"", (5, 1)),
               ("init", 0o100755, b"\x7fELF" + bytes(range(7)), (0, 0)),
               ("odd-name.x", 0o100644, b"abc", (0, 0))]
    got = _read_newc(newc(entries))
    assert got == [(n, m, d, r[0], r[1]) for n, m, d, r in entries]


def test_initramfs_is_gzip_with_init_console_and_proc() -> None:
    got = {n: (m, d, ma, mi) for n, m, d, ma, mi in _read_newc(gzip.decompress(
        initramfs(b"program")))}
    assert got["init"] == (0o100755, b"program", 0, 0)
    assert got["dev/console"] == (0o020600, b"", 5, 1)
    assert got["proc"][0] == 0o040555


@pytest.mark.skipif(shutil.which("cpio") is None, reason="cpio is not installed: the archive "
                    "is checked by the reader in this file only")
def test_newc_is_read_by_cpio(tmp_path: Path) -> None:
    arch = newc([("a", 0o040755, b"", (0, 0)), ("a/b", 0o100644, b"hello", (0, 0))])
    p = subprocess.run(["cpio", "-i", "-d", "--quiet"], input=arch, cwd=tmp_path,
                       capture_output=True, check=False)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "a" / "b").read_bytes() == b"hello"


def test_outcome_words_round_trip_through_numbers() -> None:
    for o in (Ret(0), Ret(-5), Ret(3), Err("EINVAL"), Err("EPERM"), Sig("SIGBUS"),
              Sig("SIGSEGV"), New("m2"), New("p1")):
        assert parse_outcome(outcome_word(o)) == o, o
    assert outcome_word(Err("EBUSY")) == f"E {vocab.ERRNO['EBUSY']}"
    assert parse_outcome("E 9999") == Err("E9999")


CONSOLE = """\
[    0.000000] Linux version 6.1.0 (noise)
KTAP version 1
1..4
    KTAP version 1
    # Subtest: a.trace
    1..3
    ok 1 step 1 # outcome R 3
[    1.2] a kernel line in the middle
    not ok 2 step 2 # outcome E 22
    ok 3 step 3 # outcome N m1
not ok 1 a.trace
    KTAP version 1
    # Subtest: b.trace
    1..2
    ok 1 step 1 # SKIP kvm: cannot open /dev/kvm: No such file or directory
    ok 2 step 2 # SKIP kvm: cannot open /dev/kvm: No such file or directory
ok 2 b.trace # SKIP
    KTAP version 1
    # Subtest: c.trace
    1..2
    ok 1 step 1 # outcome S 7
not ok 3 c.trace # TIMEOUT after 60 s
    KTAP version 1
    # Subtest: d.trace
    1..5
    ok 1 step 1 # outcome R 0
"""


def test_ktap_parser_reads_outcomes_skips_timeouts_and_missing_results() -> None:
    runs = parse_ktap(CONSOLE, 4)
    assert runs[0] == KernelRun([Ret(3), Err("EINVAL"), New("m1")], None, None, None)
    assert runs[1] is not None and runs[1].skipped == (
        "kvm: cannot open /dev/kvm: No such file or directory") and runs[1].outcomes == []
    assert runs[2] == KernelRun([Sig("SIGBUS")], None, None, "in the guest: timeout after 60 s")
    assert runs[3] is None  # the guest stopped inside d.trace: no result, never a pass


def test_ktap_parser_survives_kernel_messages_and_unreadable_lines() -> None:
    """Where the results share the console, a kernel message may cut into a line (seen on
    7.2.13: memfd_create()'s vm.memfd_noexec=2 message); an unreadable outcome makes the
    trace's run an error, never an exception."""
    text = ("    KTAP version 1\n    1..2\n    ok 1 step 1 # outcome R 3\n"
            "    ok 2 step 2 # outcome R 32[    6.607845] init[155]: memfd_create() requires "
            "MFD_NOEXEC_SEAL with vm.memfd_noexec=2\nok 1 x\n"
            "    KTAP version 1\n    1..1\n    ok 1 step 1 # outcome R 3x\nok 2 y\n")
    runs = parse_ktap(text, 2)
    assert runs[0] == KernelRun([Ret(3), Ret(32)], None, None, None)
    assert runs[1] is not None and runs[1].error is not None
    assert runs[1].error.startswith("in the guest: unreadable result line")


def test_ktap_parser_ignores_out_of_range_and_foreign_lines() -> None:
    assert parse_ktap("ok 7 x\nnot ok 0 y\nrandom\n", 2) == [None, None]


def test_batch_program_builds_statically_and_lowers_each_step_once(tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: the batch program cannot be built here")
    items = [_item("seal-write.trace"), _item("gmem-guest.trace"),
             _item("sysctl-noexec-1.trace"), _item("hugetlb-grow-seal-mmap.trace")]
    text, left_out = program(items)
    assert left_out == {}
    for k, it in enumerate(items, 1):
        assert f"static void trace_{k}(void)" in text
        assert text.count(f"run_one({k}, ") == 1
        assert text.split(f"static void trace_{k}(void)")[1].split("\n}\n")[0].count(
            "observe(") == len(it.replayed.steps)
    assert "setup_noexec(1);" in text  # sysctl-noexec-1 starts at vm.memfd_noexec=1
    assert "sys_memfd_create(" in text and "sys_open_kvm(" in text
    assert "//@ section" not in text and "@ERRNO_CASES@" not in text
    build_program(text, tmp_path / "init")
    p = subprocess.run(["file", str(tmp_path / "init")], capture_output=True, text=True,
                       check=False)
    if p.returncode == 0:
        assert "statically linked" in p.stdout or "static-pie" in p.stdout


def test_kernel_versions_from_debian_versions_and_prefix_match() -> None:
    assert kernels.upstream_version("6.1.176-1") == "6.1.176"
    assert kernels.upstream_version("6.12.95-1~bpo12+1") == "6.12.95"
    assert kernels.upstream_version("7.3~rc7-1~exp1") == "7.3-rc7"
    have = ["6.1.176", "6.1.192", "6.12.117", "7.2.13", "7.3-rc7"]
    assert kernels.match("6.1", have) == "6.1.192"
    assert kernels.match("6.12", have) == "6.12.117"
    assert kernels.match("7.3", have) == "7.3-rc7"
    assert kernels.match("7.3-rc", have) == "7.3-rc7"
    assert kernels.match("6.1.176", have) == "6.1.176"
    assert kernels.match("6", have) == "6.12.117"
    assert kernels.match("6.2", have) is None
    assert sorted(["7.3", "7.3-rc7", "6.12.9", "6.12.10"], key=kernels._version_key) == [
        "6.12.9", "6.12.10", "7.3-rc7", "7.3"]


def test_private_sources_take_the_archive_and_keyring_from_the_machine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /k.gpg\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\nSigned-By: /k.gpg\n")
    monkeypatch.setattr(kernels, "APT_SOURCES", (str(d), str(tmp_path / "none.list")))
    text = kernels.private_sources()
    assert text.splitlines() == [
        "deb [signed-by=/k.gpg] http://mirror.example/debian bookworm main",
        "deb [signed-by=/k.gpg] http://mirror.example/debian bookworm-backports main",
        "deb [signed-by=/k.gpg] http://mirror.example/debian stable main",
        "deb [signed-by=/k.gpg] http://mirror.example/debian unstable main",
        "deb [signed-by=/k.gpg] http://mirror.example/debian experimental main",
        "deb [signed-by=/k.gpg] http://mirror.example/debian-security bookworm-security main"]
    (d / "debian.sources").unlink()
    with pytest.raises(kernels.ArchiveError, match="no Debian archive"):
        kernels.private_sources()


def test_a_half_fetched_kernel_never_looks_fetched(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    kp = kernels.KernelPackage("6.1.1", "linux-image-x", "6.1.1-1", None, 1)

    def fake_run(cmd: list[str], what: str, cwd: Path | None = None,
                 timeout: float = 0) -> str:
        if cmd[0] == "apt-get":
            assert cwd is not None
            (cwd / "x.deb").write_bytes(b"not a deb")
            return ""
        raise kernels.ArchiveError(f"{what}: dpkg-deb failed: not a Debian archive")

    monkeypatch.setattr(kernels, "_run", fake_run)
    with pytest.raises(kernels.ArchiveError, match="dpkg-deb"):
        kernels.fetch(kp)
    assert kernels.fetched() == []
    assert [p.name for p in (tmp_path / "shmemcheck" / "kernels").iterdir()] == []
    # a directory without meta.json (an interrupted copy) is not a kernel either
    half = tmp_path / "shmemcheck" / "kernels" / "6.1.2"
    half.mkdir()
    (half / "vmlinuz").write_bytes(b"x")
    assert kernels.fetched() == []
    (half / "meta.json").write_text(json.dumps({"package": "p", "deb_version": "6.1.2-1"}))
    assert [k.version for k in kernels.fetched()] == ["6.1.2"]


def _cli(*args: str, env: dict[str, str] | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "checker.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


def test_replay_on_a_bad_or_unfetched_kernel_is_a_usage_error(tmp_path: Path) -> None:
    trace = "traces/scenarios/seal-write.trace"
    p = _cli("replay", trace, "--on", "kernel@")
    assert p.returncode == 2 and "--on" in p.stderr and "Traceback" not in p.stderr
    p = _cli("replay", trace, "--on", "kernel@6.1", env={"XDG_CACHE_HOME": str(tmp_path)})
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "shmemcheck: no kernel is fetched: run `shmemcheck kernels fetch [VERSION...]` "
        f"(cache: {tmp_path / 'shmemcheck' / 'kernels'})"]
    half = tmp_path / "shmemcheck" / "kernels" / "6.1.2"
    half.mkdir(parents=True)
    (half / "vmlinuz").write_bytes(b"x")
    (half / "meta.json").write_text("{}")
    p = _cli("replay", trace, "--on", "kernel@7.2", env={"XDG_CACHE_HOME": str(tmp_path)})
    assert p.returncode == 2 and "no fetched kernel matches 7.2 (fetched: 6.1.2;" in p.stderr
    assert p.stdout == ""


@pytest.mark.qemu
@pytest.mark.slow
def test_one_boot_runs_scenarios_on_a_fetched_kernel() -> None:
    """One boot of a fetched kernel: two scenarios. On a 6.1 build (no MFD_EXEC before 6.3)
    exec-no-seal diverges at step 1 with EINVAL; elsewhere both agree with the trace."""
    if kernels.qemu_binary() is None:
        pytest.skip("QEMU is not installed (apt-get install qemu-system-x86)")
    have = kernels.fetched()
    if not have:
        pytest.skip("no kernel is fetched (shmemcheck kernels fetch 6.1; the archive may be "
                    "unreachable from here)")
    old = [k for k in have if kernels.match("6.1", [k.version])]
    kern = old[0] if old else have[-1]
    second = "exec-no-seal.trace" if old else "create-cloexec.trace"
    p = _cli("replay", "traces/scenarios/seal-write.trace", f"traces/scenarios/{second}",
             "--on", f"kernel@{kern.version}", timeout=900)
    out = p.stdout
    assert "ok   traces/scenarios/seal-write.trace: kernel " + kern.version in out, out
    if old:
        assert p.returncode == 1, out
        assert f"FAIL kernel {kern.version}: traces/scenarios/exec-no-seal.trace:4:1: step 1 " \
               "diverges on the kernel" in out, out
        assert "  kernel: -1 EINVAL" in out
    else:
        assert p.returncode == 0, out + p.stderr
        assert "2 agree, 0 diverge" in out, out


def _fake_kernel(cache: Path) -> None:
    k = cache / "shmemcheck" / "kernels" / "6.1.9"
    k.mkdir(parents=True)
    (k / "vmlinuz").write_bytes(b"not a kernel")
    (k / "meta.json").write_text(json.dumps({"package": "fake", "deb_version": "6.1.9-1"}))


def _fake_qemu(bindir: Path, console: str, then: str) -> None:
    """A qemu-system-x86_64 that prints `console` and then runs `then` (exec'd)."""
    bindir.mkdir()
    q = bindir / "qemu-system-x86_64"
    q.write_text("#!/bin/sh\ncat <<'END'\n" + console + "END\n" + then + "\n")
    q.chmod(0o755)


def test_a_hung_guest_is_inconclusive_never_a_pass(tmp_path: Path) -> None:
    """The guest finished one trace and hung in the next: the first is judged, the second
    has no result; exit 3, and QEMU does not outlive the boot's timeout."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: the batch program cannot be built here")
    _fake_kernel(tmp_path / "cache")
    _fake_qemu(tmp_path / "bin", "KTAP version 1\n1..2\n    KTAP version 1\n"
               "    # Subtest: x\n    1..2\n    ok 1 step 1 # outcome R 3\n"
               "    ok 2 step 2 # outcome R 1\nok 1 x\n    KTAP version 1\n"
               "    # Subtest: y\n    1..19\n    ok 1 step 1 # outcome R 3\n",
               "exec sleep 300")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "SHMEMCHECK_GUEST_TIMEOUT": "3",
           "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    p = _cli("replay", "traces/scenarios/create-cloexec.trace",
             "traces/scenarios/seal-write.trace", "--on", "kernel@6.1", env=env, timeout=120)
    assert p.returncode == 3, p.stdout + p.stderr
    assert "ok   traces/scenarios/create-cloexec.trace: kernel 6.1.9: 2 steps agree" in p.stdout
    assert "???  traces/scenarios/seal-write.trace: kernel 6.1.9: no result (the guest " \
           "stopped: the guest did not finish within 3 s" in p.stdout
    assert "6.1.9: 2 traces, 2 steps run, 1 agree, 0 diverge, 0 skipped, 1 inconclusive" \
        in p.stdout
    assert p.stdout.rstrip().endswith("INCONCLUSIVE")


def test_a_guest_outcome_unlike_the_trace_is_a_divergence(tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: the batch program cannot be built here")
    _fake_kernel(tmp_path / "cache")
    _fake_qemu(tmp_path / "bin", "KTAP version 1\n1..1\n    KTAP version 1\n"
               "    # Subtest: x\n    1..2\n    ok 1 step 1 # outcome R 3\n"
               "    not ok 2 step 2 # outcome R 0\nnot ok 1 x\n# shmemcheck: batch done\n",
               "exit 0")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    p = _cli("replay", "traces/scenarios/create-cloexec.trace", "--on", "kernels", env=env,
             timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "FAIL kernel 6.1.9: traces/scenarios/create-cloexec.trace:5:1: step 2 diverges " \
           "on the kernel" in p.stdout
    assert "  kernel: 0\n" in p.stdout


def test_an_unreachable_archive_lists_the_fetched_kernels_and_refuses_a_fetch(
        tmp_path: Path) -> None:
    """apt-get failing (no network, no archive): `kernels` still lists what is fetched (exit
    0, saying why nothing else is), `kernels fetch` is one line and exit 2."""
    try:
        kernels.private_sources()
    except kernels.ArchiveError as e:
        pytest.skip(f"this machine's apt names no Debian archive: {e}")
    _fake_kernel(tmp_path / "cache")
    fake = tmp_path / "bin"
    fake.mkdir()
    apt = fake / "apt-get"
    apt.write_text("#!/bin/sh\necho 'E: Failed to fetch http://archive/dists/x/InRelease' >&2\n"
                   "exit 100\n")
    apt.chmod(0o755)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    p = _cli("kernels", env=env)
    assert p.returncode == 0, p.stderr
    assert "archive: unreachable (apt-get update: apt-get failed: E: Failed to fetch " \
           "http://archive/dists/x/InRelease)" in p.stdout
    assert "  6.1.9      fetched" in p.stdout
    p = _cli("kernels", "fetch", "6.1", env=env)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().splitlines() == [
        "shmemcheck: the archive: apt-get update: apt-get failed: E: Failed to fetch "
        "http://archive/dists/x/InRelease"]
