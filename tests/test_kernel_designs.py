"""The designs of the other kernels (model/designs/memfd_kernels.py) and `conform --design D`
on the kernel D claims (checker/conform_guest.py): the deltas differ from memfd exactly where
their docstrings say, a design's kernel is found (host, fetched guest, or a one-line error), and
one bounded conform of memfd@6.1 on the fetched 6.1 guest (marker `qemu`)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from checker.conform import ConformOptions
from checker.conform_guest import NoGuestKernel, run_conform_guest, series, target_of
from checker.diff import Differ
from model import designs
from model.designs.memfd import PR_RO
from properties.catalogue import HOLDS, NOT_WITNESSED, VIOLATED, WITNESSED, load
from traces import kernels
from traces.guest import parse_ktap, parse_observation
from traces.kernel import Observation
from traces.trace import Ret

ROOT = Path(__file__).resolve().parent.parent
KERNEL_DESIGNS = ["memfd@6.1", "memfd@6.12", "memfd@7.2", "memfd@7.3-rc"]
CREATE = 'memfd_create("t", MFD_ALLOW_SEALING) = 3\n'
SEALED_RO_MAP = (CREATE + "ftruncate(3, 4096) = 0\nfcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0\n"
                 "mmap(NULL, 4096, PROT_READ, MAP_SHARED, 3, 0) = ")


def test_each_claims_its_kernel_and_is_listed_on_request_only() -> None:
    """Checked when named (check/conform --design), not by a default `check`."""
    assert {n: designs.get(n).kernel for n in KERNEL_DESIGNS} == {
        "memfd@6.1": "6.1", "memfd@6.12": "6.12", "memfd@7.2": "7.2", "memfd@7.3-rc": "7.3-rc"}
    assert not set(KERNEL_DESIGNS) & set(designs.names())
    assert set(KERNEL_DESIGNS) <= set(designs.names(include_corpus=True))
    assert all(designs.on_request(n) for n in KERNEL_DESIGNS)
    assert all(designs.get(n).base == "memfd" for n in KERNEL_DESIGNS)


#: the one mem_write rule each later kernel adds (found by conformance in its guest): 6.12.118
#: refuses FOLL_FORCE into read-only hugetlb mappings, Debian's 7.x builds write
#: /proc/self/mem without FOLL_FORCE (CONFIG_PROC_MEM_FORCE_PTRACE)
MEM_WRITE_RULE = {"memfd@6.12": "force_hugetlb", "memfd@7.2": "no_foll_force",
                  "memfd@7.3-rc": "no_foll_force"}


@pytest.mark.parametrize("name", ["memfd@6.12", "memfd@7.2", "memfd@7.3-rc"])
def test_the_later_kernels_are_the_618_rules_but_write_chunks(name: str) -> None:
    """The same schema, initial states and actions as memfd but pwrite, whose only change is
    F_SEAL_GROW's chunk (2 MiB: found by the scenario library run as a selftest in their
    guests), splice_write, copy_file_range, sendfile and pwritev2 (the same
    shmem_write_begin() chunks: seen on 7.2.13, NOTES), mem_write (one added rule,
    MEM_WRITE_RULE), on 6.12 pwritev2/preadv2's RWF_SUPPORTED (no RWF_DONTCACHE or
    RWF_NOSIGNAL: source-read), and FS_IOC_FSSETXATTR's xflag masks (probed: 6.12.118 has
    6.1's, none; 7.3-rc7 has 7.2's), and file_setattr()'s (7.2, 7.3-rc: their masks; 6.12
    has neither it nor file_getattr, both v6.17, and leaves them out)."""
    from checker.diff import rule_changes

    d, m = designs.get(name), designs.get("memfd")
    if name == "memfd@6.12":
        assert {a.name for a in m.actions} - {a.name for a in d.actions} == {
            "file_setattr", "file_getattr"}
        m = m.derive(m.name, m.doc, kernel=m.kernel, drop=("file_setattr", "file_getattr"))
    assert d.schema == m.schema and d.init == m.init and d.kernel != m.kernel
    rwf = name == "memfd@6.12"
    # FS_IOC_FSSETXATTR's masks differ by release (probed bit by bit, tests/test_fsxattr.py)
    xattr = (["fs_setxattr: ~ has_fsx", "fs_setxattr: - xflags_mask"] if rwf else
             ["fs_setxattr: ~ xflags_mask", "fs_setxattr: ~ has_fsx"])
    assert [a.name for a, b in zip(d.actions, m.actions, strict=True) if a != b] == [
        "pwrite", "uring_write", "splice_write", "copy_file_range", "pwritev2",
        *(["preadv2"] if rwf else []), "pwritev",
        "write", "writev", "pwritev2_fpos", *(["preadv2_fpos"] if rwf else []), "sendfile",
        "mem_write", "fs_setxattr", *([] if rwf else ["file_setattr"])]
    assert rule_changes(m, d) == [
        "pwrite: ~ grow_seal", "pwrite: ~ grow_seal_short", "uring_write: ~ grow_seal",
        "uring_write: ~ grow_seal_short", "splice_write: ~ grow_seal",
        "splice_write: ~ grow_seal_short",
        "copy_file_range: ~ grow_seal", "copy_file_range: ~ grow_seal_short",
        *(["pwritev2: ~ unsupported_flags"] if rwf else []),
        "pwritev2: ~ grow_seal", "pwritev2: ~ grow_seal_short",
        *(["preadv2: ~ unsupported_flags"] if rwf else []),
        "pwritev: ~ grow_seal", "pwritev: ~ grow_seal_short",
        "write: ~ grow_seal", "write: ~ grow_seal_short",
        "writev: ~ grow_seal", "writev: ~ grow_seal_short",
        *(["pwritev2_fpos: ~ unsupported_flags"] if rwf else []),
        "pwritev2_fpos: ~ grow_seal", "pwritev2_fpos: ~ grow_seal_short",
        *(["preadv2_fpos: ~ unsupported_flags"] if rwf else []),
        "sendfile: ~ grow_seal", "sendfile: ~ grow_seal_short",
        f"mem_write: + {MEM_WRITE_RULE[name]}", *xattr,
        *([] if rwf else ["file_setattr: ~ xflags_mask", "file_setattr: ~ has_fsx"])]


def test_write_paths_are_the_actions_with_shmem_write_begin_rules() -> None:
    """model.designs.memfd.WRITE_PATHS, which the write-path deltas edit, is exactly the set
    of memfd actions whose rules include the short write at F_SEAL_GROW (generic_perform_write()
    stopping at the chunk shmem_write_begin() refuses): ftruncate and fallocate have a
    grow_seal rule of their own, never a short one."""
    from model.designs.memfd import WRITE_PATHS

    d = designs.get("memfd")
    s = d.schema.state_vars("s")
    have = {a.name for a in d.actions
            if "grow_seal_short" in {r.label for r in a.rules(s, a.param_vars())}}
    assert have == set(WRITE_PATHS)


@pytest.mark.parametrize("name", ["memfd@6.12", "memfd@7.2", "memfd@7.3-rc"])
def test_grow_sealed_writes_go_by_2_mib_chunks(name: str,
                                               replay: Callable[..., str | None]) -> None:
    """Probed under QEMU on 6.12.118, 7.2.13, 7.3-rc7: EPERM for a write whose first chunk
    crosses i_size, and short writes at 2 MiB boundaries (the 6.18.44 machine: 4 KiB)."""
    head = ('memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, {n}) = 0\n'
            "fcntl(3, F_ADD_SEALS, F_SEAL_GROW) = 0\n")
    small = head.format(n=6144) + 'pwrite64(3, "x"..., 8192, 0) = '
    assert replay(small + "-1 EPERM", name) is None
    assert replay(small + "4096", "memfd") is None
    big = head.format(n=2101248) + 'pwrite64(3, "x"..., 2105344, 0) = '
    assert replay(big + "2097152", name) is None
    assert replay(big + "2101248", "memfd") is None
    mid = head.format(n=3145728) + 'pwrite64(3, "x"..., 2101248, 1048576) = '
    assert replay(mid + "1048576", name) is None
    assert replay(mid + "2097152", "memfd") is None


def test_61_refuses_the_63_flags_and_seal(replay: Callable[..., str | None]) -> None:
    """105ff5339f49 and 6fd7353829ca (6.3): EINVAL on 6.1, accepted on 6.18."""
    noexec = 'memfd_create("t", MFD_NOEXEC_SEAL) = '
    assert replay(noexec + "-1 EINVAL", "memfd@6.1") is None
    assert replay(noexec + "3", "memfd") is None
    execf = 'memfd_create("t", MFD_EXEC) = '
    assert replay(execf + "-1 EINVAL", "memfd@6.1") is None
    assert replay(execf + "3", "memfd") is None
    seal = CREATE + "fcntl(3, F_ADD_SEALS, 0x20) = "
    assert replay(seal + "-1 EINVAL", "memfd@6.1") is None
    assert replay(seal + "0", "memfd") is None
    # every 6.1 memfd is 0777 with the seals ALLOW_SEALING gives, as 6.18's MFD_EXEC ones
    assert replay(CREATE + "fcntl(3, F_GET_SEALS) = 0", "memfd@6.1") is None


def test_61_has_the_b9_fix_unlike_517(replay: Callable[..., str | None]) -> None:
    """The 6.7 series (e8e17ee90eaf ...) is in 6.1.192: a read-only shared mapping of a
    write-sealed memfd is allowed, as on 6.18; memfd@5.17 refuses it."""
    assert replay(SEALED_RO_MAP + "m1", "memfd@6.1") is None
    assert replay(SEALED_RO_MAP + "-1 EPERM", "memfd@5.17") is None
    madv = (CREATE + "ftruncate(3, 4096) = 0\nmmap(NULL, 4096, PROT_READ, MAP_SHARED, 3, 0) = "
            "m1\nmadvise(m1, 4096, MADV_REMOVE) = ")
    assert replay(madv + "0", "memfd@6.1") is None
    assert replay(madv + "-1 EACCES", "memfd@5.17") is None


@pytest.mark.slow
def test_61_differs_from_618_exactly_in_the_63_calls() -> None:
    """The explicit product of memfd and memfd@6.1 (from the states both start in): every
    divergence is a memfd_create with MFD_NOEXEC_SEAL or MFD_EXEC, an F_ADD_SEALS asking
    for bit 0x20 (F_SEAL_EXEC), or a FOLL_FORCE write through a read-only private mapping of
    a hugetlbfs file (6.1's check_vma_flags() refuses it), or an FS_IOC_FSSETXATTR of the
    explored xflag outside 6.18's FS_XFLAGS_MASK (0x4) on hugetlbfs (6.1 has no mask: ENOTTY,
    not EOPNOTSUPP): nothing else the delta touched (fchmod's dropped exec-seal rule) is
    observable. (6.1 has no file_getattr/file_setattr, v6.17: the product is of 6.18 without
    them, else the flags they set would make every later call differ.)"""
    m = designs.get("memfd")
    m = m.derive(m.name, m.doc, kernel=m.kernel, drop=("file_setattr", "file_getattr"))
    r = Differ(m, designs.get("memfd@6.1"), {"pages": 1, "maps": 1, "pins": 0, "fds": 1}).run()
    assert r.divergences
    assert {d.action for d in r.divergences} == {"memfd_create", "fcntl_add_seals", "mem_write",
                                                 "fs_setxattr"}
    for d in r.divergences:
        run = d.example[1]
        p = run.steps[-1].params
        if d.action == "mem_write":
            assert run.states()[-2]["hugetlb"] and p["m"] == PR_RO, d
        elif d.action == "fs_setxattr":
            assert run.states()[-2]["hugetlb"] and p["xflags"] == 0x4, d
        else:
            assert (p["flags"] & 0x18) if d.action == "memfd_create" else (p["seals"] & 0x20), d


def test_61_catalogue_expectations_are_the_pre_63_ones() -> None:
    cat = load()
    d = designs.get("memfd@6.1")
    assert cat["sometimes-all-seals"].expected(d) == NOT_WITNESSED
    assert cat["sometimes-exec-sealed-nonempty"].expected(d) == NOT_WITNESSED
    assert cat["exec-seal-mode-fixed"].expected(d) == HOLDS
    assert cat["noexec-seal-never-executable"].expected(d) == HOLDS
    assert cat["grow-seal-size-monotone"].expected(d) == VIOLATED  # hugetlbfs mmap, as 6.18
    later = designs.get("memfd@7.2")
    assert cat["sometimes-all-seals"].expected(later) == WITNESSED
    assert cat["exec-seal-mode-fixed"].expected(later) == VIOLATED  # B15, as 6.18


# ---- where conform runs -------------------------------------------------------------------------
def test_series_of_kernel_releases() -> None:
    assert [series(v) for v in ("6.1.192", "6.18.44-fc-v1147", "7.3-rc7", "6.12")] == [
        "6.1", "6.18", "7.3-rc", "6.12"]


def test_the_host_series_runs_here_others_need_a_fetched_kernel(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    here = designs.get("memfd").derive("memfd-here", "", kernel=series(platform.release()))
    t = target_of(here)
    assert t.kernel is None and t.version == platform.release()
    assert t.label == f"kernel {platform.release()} (this machine)"
    with pytest.raises(NoGuestKernel, match=r"`shmemcheck kernels fetch 6\.1`"):
        target_of(designs.get("memfd@6.1"))
    # on a machine of another series: that series' design runs here; memfd (the reference,
    # 6.18) still runs on the host when no 6.18 build is fetched, as it always has
    monkeypatch.setattr(platform, "release", lambda: "6.12.5-test")
    assert target_of(designs.get("memfd@6.12")).kernel is None
    assert target_of(designs.get("memfd")).version == "6.12.5-test"
    with pytest.raises(NoGuestKernel, match=r"not this machine's \(6\.12\.5-test\)"):
        target_of(designs.get("memfd@7.2"))


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "checker.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT, env={**os.environ, **env})


def _fake_kernel(cache: Path, version: str = "6.1.9") -> None:
    k = cache / "shmemcheck" / "kernels" / version
    k.mkdir(parents=True)
    (k / "vmlinuz").write_bytes(b"not a kernel")
    (k / "meta.json").write_text('{"package": "fake", "deb_version": "6.1.9-1"}')


SMALL = ["--scope", "pages=1,maps=1,pins=1,fds=1,depth=1", "--random", "0", "--quiet"]


def test_conform_on_an_unfetched_kernel_names_the_fetch_command(tmp_path: Path) -> None:
    p = _cli("conform", "--design", "memfd@6.1", *SMALL, env={"XDG_CACHE_HOME": str(tmp_path)})
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().splitlines() == [
        "shmemcheck: conform: design memfd@6.1 claims kernel 6.1, which is not this machine's "
        f"({platform.release()}) and is not fetched: run `shmemcheck kernels fetch 6.1` "
        f"(cache: {tmp_path / 'shmemcheck' / 'kernels'})"]


def test_conform_without_qemu_is_a_skip(tmp_path: Path) -> None:
    _fake_kernel(tmp_path)
    empty = tmp_path / "bin"
    empty.mkdir()
    p = _cli("conform", "--design", "memfd@6.1", *SMALL,
             env={"XDG_CACHE_HOME": str(tmp_path), "PATH": str(empty)})
    assert p.returncode == 3, p.stdout + p.stderr
    assert p.stdout.strip() == (
        "conform: SKIP design memfd@6.1: its kernel 6.1.9 runs under QEMU, and "
        "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")


def test_a_guest_that_reports_nothing_is_never_a_pass(tmp_path: Path) -> None:
    """A boot that prints no result for any trace: every trace is skipped with the guest's
    problem, nothing agrees, exit 3 (inconclusive), and the verdict names the kernel."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: the batch program cannot be built here")
    _fake_kernel(tmp_path)
    fake = tmp_path / "bin"
    fake.mkdir()
    q = fake / "qemu-system-x86_64"
    q.write_text("#!/bin/sh\necho 'KTAP version 1'\necho '# shmemcheck: batch done'\n")
    q.chmod(0o755)
    p = _cli("conform", "--design", "memfd@6.1", *SMALL,
             env={"XDG_CACHE_HOME": str(tmp_path),
                  "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"})
    assert p.returncode == 3, p.stdout + p.stderr
    assert "conform: SKIP " in p.stdout and "no result from the guest" in p.stdout
    assert p.stdout.rstrip().splitlines()[-1].startswith("conform: 0 traces, 0 steps, 0 ")
    assert p.stdout.rstrip().endswith("on kernel 6.1.9 (QEMU guest)")


def test_guest_observations_are_parsed_per_step() -> None:
    """guest.c's `# obs` lines: seals, size, mode after each step (no mapping probes)."""
    assert parse_observation("    # obs - - -") == Observation("EBADF", None, None, {})
    assert parse_observation("    # obs 9 4096 777") == Observation(9, 4096, 0o777, {})
    assert parse_observation("    # obs E9 - -") == Observation("EBADF", None, None, {})
    assert parse_observation("    ok 1 step 1 # outcome R 3") is None
    (run,) = parse_ktap("    KTAP version 1\n    1..2\n    ok 1 step 1 # outcome R 3\n"
                        "    # obs 0 0 777\n    ok 2 step 2 # outcome R 0\n"
                        "    # obs 1 8192 666\nok 1 t\n", 1)
    assert run is not None and run.outcomes == [Ret(3), Ret(0)]
    assert run.observations == [Observation(0, 0, 0o777, {}), Observation(1, 8192, 0o666, {})]


# ---- one boot -----------------------------------------------------------------------------------
def _guest(version: str) -> None:
    if kernels.qemu_binary() is None:
        pytest.skip("QEMU is not installed (apt-get install qemu-system-x86)")
    if kernels.match(version, [k.version for k in kernels.fetched()]) is None:
        pytest.skip(f"kernel {version} is not fetched (shmemcheck kernels fetch {version}; the "
                    "archive may be unreachable from here)")


@pytest.mark.qemu
@pytest.mark.slow
def test_memfd_61_conforms_on_the_61_guest_and_618_rules_do_not() -> None:
    """A small bounded conform of memfd@6.1 on the fetched 6.1 kernel: 0 divergences, with
    outcomes and seals/size/mode compared. The same traces from the 6.18 rules diverge there
    (memfd_create with MFD_NOEXEC_SEAL/MFD_EXEC), so the guest run can fail."""
    _guest("6.1")
    d61 = designs.get("memfd@6.1")
    target = target_of(d61)
    assert target.kernel is not None
    opts = ConformOptions({"pages": 1, "maps": 1, "pins": 1, "fds": 1, "grain": 1}, 1,
                          walks=20, walk_scope=dict(d61.default_scope), jobs=1)
    rep, boots = run_conform_guest(d61, opts, target)
    assert rep.divergences == [], [dv.where for dv in rep.divergences]
    assert rep.traces > 500 and rep.steps > 1000 and len(boots) == 1
    assert {"memfd_create", "fcntl_add_seals", "mmap", "ftruncate"} <= set(rep.tested)
    opts.walks = 0
    rep2, _ = run_conform_guest(designs.get("memfd"), opts, target)
    assert rep2.divergent > 0
    assert {dv.where.split(": ")[0].split(" (")[1].rstrip(")") for dv in rep2.divergences
            if dv.reproduced} >= {"memfd_create"}
