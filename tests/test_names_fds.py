"""Issue 14, names and descriptors: any memfd_create name (judged by its length as
alloc_name() reads it), the trace's own descriptor numbers, open/openat of /proc/self/fd/N with
O_CREAT and a mode, and dup2/dup3/fcntl(F_DUPFD[_CLOEXEC]) as spellings of dup. Through the
command line (exit status and one-line refusals), on the model's resolution, and on the live
kernel (marker `kernel`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from checker.replay import model_outcomes
from model import designs
from tests.conftest import run
from traces.concretize import Handles
from traces.export import EXPORTERS
from traces.export.lower import UNSUPPORTED
from traces.kernel import run_on_kernel
from traces.syscalls import TraceError, Unrunnable, lower_steps
from traces.textfmt import parse_trace
from traces.trace import Ret

HEAD = "# shmemcheck trace 1\n# design: memfd\n# expect: conforms\n"
CREATE = 'memfd_create("t", MFD_ALLOW_SEALING) = 3\n'
N = "n"
TRUNC32 = '"' + "x" * 32 + '"...'

#: traces the model judges (every outcome is the kernel's on 6.18.44: test_judged_on_the_kernel)
JUDGED = {
    "a selftest name": 'memfd_create("kern_memfd_basic", MFD_CLOEXEC|MFD_ALLOW_SEALING) = 3\n',
    "any name": 'memfd_create("foo", MFD_ALLOW_SEALING) = 3\n',
    "the empty name": 'memfd_create("", MFD_CLOEXEC) = 3\n',
    "escapes": 'memfd_create("a\\"b\\1\\377\\\\", 0) = 3\n',
    "249 bytes": f'memfd_create("{N * 249}", 0) = 3\n',
    "250 bytes: EINVAL": f'memfd_create("{N * 250}", 0) = -1 EINVAL (Invalid argument)\n',
    "a NUL ends the name": f'memfd_create("\\0{N * 250}", 0) = 3\n',
    "hex escapes": 'memfd_create("\\x00\\x41", 0) = 3\n',
    "NULL: EFAULT": "memfd_create(NULL, 0) = -1 EFAULT (Bad address)\n",
    "truncated past 249 bytes: EINVAL":
        f'memfd_create("{N * 249}"..., 0) = -1 EINVAL (Invalid argument)\n',
    "fd 7": 'memfd_create("t", 0) = 7\nfcntl(7, F_GET_SEALS) = 0x1 (seals F_SEAL_SEAL)\n',
    "a reused number is a new descriptor":
        CREATE + 'open("/proc/self/fd/3", O_RDONLY) = 4\nclose(4) = 0\ndup(3) = 4\n'
        "ftruncate(4, 4096) = 0\n",
    "reopen with O_CREAT and a mode":
        CREATE + 'open("/proc/self/fd/3", O_RDWR|O_CREAT, 0600) = 4\nftruncate(4, 4096) = 0\n',
    "reopen O_RDONLY|O_CLOEXEC through openat":
        CREATE + 'openat(AT_FDCWD, "/proc/self/fd/3", O_RDONLY|O_CLOEXEC) = 4\n'
        "ftruncate(4, 4096) = -1 EINVAL (Invalid argument)\n",
    "dup2 onto a free number": CREATE + "dup2(3, 10) = 10\nftruncate(10, 4096) = 0\n",
    "dup2 onto an open number closes it":
        CREATE + 'open("/proc/self/fd/3", O_RDONLY) = 4\ndup2(3, 4) = 4\n'
        "ftruncate(4, 4096) = 0\nclose(4) = 0\nclose(3) = 0\n",
    "dup3 O_CLOEXEC": CREATE + "dup3(3, 9, O_CLOEXEC) = 9\n"
                      "fcntl(9, F_ADD_SEALS, F_SEAL_SEAL) = 0\n"
                      "fcntl(3, F_GET_SEALS) = 0x1 (seals F_SEAL_SEAL)\n",
    "F_DUPFD": CREATE + "fcntl(3, F_DUPFD, 30) = 30\nfcntl(3, F_DUPFD, 30) = 31\nclose(30) = 0\n"
                        "fcntl(31, F_DUPFD_CLOEXEC, 0) = 4\n",
}

#: (trace body, the reason after "outside the model: "), refused with exit 2
REFUSED = {
    "a name truncated before its length is known":
        (f"memfd_create({TRUNC32}, MFD_ALLOW_SEALING) = 3\n",
         "strace shows only its first 32 bytes; a name of 33..249 bytes and a longer one"),
    "a name given as an address": ("memfd_create(0x1234, 0) = -1 EFAULT\n", "an address"),
    "an fd the trace did not open": (CREATE + "close(5) = -1 EBADF\n",
                                     "close fd 5 is not open at this point of the trace"),
    "a negative fd": (CREATE + "ftruncate(-1, 0) = -1 EBADF\n", "ftruncate fd -1 is negative"),
    "a closed fd": (CREATE + "close(3) = 0\nclose(3) = -1 EBADF\n",
                    "close fd 3 is not open"),
    "reopen of a number not open": (CREATE + 'open("/proc/self/fd/9", O_RDWR) = -1 ENOENT\n',
                                    "fd 9 is not open"),
    "reopen O_EXCL": (CREATE + 'open("/proc/self/fd/3", O_RDWR|O_CREAT|O_EXCL, 0600) = -1 '
                      "EEXIST\n", "the model's how is one of O_RDONLY, O_RDWR"),
    "openat relative to a descriptor": (CREATE + 'openat(3, "/proc/self/fd/3", O_RDWR) = 4\n',
                                        "the model's is always AT_FDCWD"),
    "dup2 onto itself": (CREATE + "dup2(3, 3) = 3\n", "dup2 onto its own descriptor 3"),
    "dup2 onto a negative number": (CREATE + "dup2(3, -1) = -1 EBADF\n",
                                    "the model knows descriptor numbers 0..1023"),
    "dup3 with an unknown flag": (CREATE + "dup3(3, 9, 0x1) = -1 EINVAL\n",
                                  "the model's is one of 0, O_CLOEXEC"),
    "F_DUPFD from a negative number": (CREATE + "fcntl(3, F_DUPFD, -1) = -1 EINVAL\n",
                                       "the kernel's EINVAL outside RLIMIT_NOFILE"),
}

#: (trace body, divergence text): the trace's number is not one the kernel can give
DIVERGES = {
    "a live number returned again": (CREATE + "dup(3) = 3\n", "model says 4, trace says 3"),
    "F_DUPFD below its argument": (CREATE + "fcntl(3, F_DUPFD, 30) = 29\n",
                                   "model says 30, trace says 29"),
    "dup2 returning another number": (CREATE + "dup2(3, 10) = 11\n",
                                      "model says 10, trace says 11"),
    "a number past RLIMIT_NOFILE": ('memfd_create("t", 0) = 9223372036854775807\n',
                                    "model says 3, trace says 9223372036854775807"),
}


def replay(tmp_path: Path, body: str, *extra: str) -> tuple[int, str, str]:
    f = tmp_path / "t.trace"
    f.write_text(HEAD + body)
    r = run("replay", *extra, str(f))
    return r.returncode, r.stdout, r.stderr.replace(str(f), "T")


@pytest.mark.parametrize("name", list(JUDGED))
def test_judged_by_the_model(tmp_path: Path, name: str) -> None:
    rc, out, err = replay(tmp_path, JUDGED[name])
    assert (rc, err) == (0, ""), (out, err)
    assert "conforms" in out


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_with_the_reason(tmp_path: Path, name: str) -> None:
    body, why = REFUSED[name]
    rc, out, err = replay(tmp_path, body)
    assert rc == 2, (out, err)
    assert err.startswith(f"T:{body.count(chr(10)) + 3}:1: outside the model: "), err
    assert why in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("name", list(DIVERGES))
def test_an_impossible_number_diverges(tmp_path: Path, name: str) -> None:
    body, why = DIVERGES[name]
    rc, out, err = replay(tmp_path, body)
    assert rc == 1 and why in out, (out, err)


def test_a_truncated_name_is_judged_when_its_length_cannot_matter() -> None:
    """Unknown flags are EINVAL before the name is read (sanitize_flags()): any length of the
    truncated name gives that outcome, so the model judges it (the same name with valid flags
    is refused, test_refused_with_the_reason)."""
    t = parse_trace(HEAD + f"memfd_create({TRUNC32}, 0x100) = -1 EINVAL (Invalid argument)\n")
    rep = model_outcomes(designs.get("memfd"), t)
    assert rep.divergence is None and rep.outcomes == [t.steps[0].outcome]


def test_dup2_onto_an_open_number_applies_close() -> None:
    """The displaced O_RDONLY description's descriptor is closed: the counters after the step
    are dup's (+1 O_RDWR) and close's (-1 O_RDONLY)."""
    t = parse_trace(HEAD + CREATE + 'open("/proc/self/fd/3", O_RDONLY) = 4\ndup2(3, 4) = 4\n')
    rep = model_outcomes(designs.get("memfd"), t)
    assert rep.divergence is None and rep.run is not None
    last = rep.run.steps[-1].after
    assert (last["fd_rw"], last["fd_ro"]) == (2, 0)


def test_handles_take_the_trace_s_numbers() -> None:
    h = Handles()
    assert h.new("fd", 0, want=7) == "7"
    assert h.new("fd", 0) == "3"  # no number given: the lowest free from 3
    assert h.new("fd", 0, want=7) == "4"  # 7 is taken: never a live number
    assert h.new("fd", 1, want=2, least=30) == "30"  # F_DUPFD: not below its argument
    assert h.new("fd", 1, want=40, least=30) == "40"
    assert h.new("fd", 1, want=1024) == "5"  # past RLIMIT_NOFILE's default: never given
    assert h.live["fd"] == {"3": 0, "4": 0, "5": 1, "7": 0, "30": 1, "40": 1}


def test_the_executor_refuses_an_unknown_name_length() -> None:
    """A truncated name shorter than MFD_NAME_MAX_LEN is not run (its length decides the
    outcome); one of 249 shown bytes is run as 250 bytes (every longer name is EINVAL)."""
    t = parse_trace(HEAD + f"memfd_create({TRUNC32}, 0) = 3\n")
    with pytest.raises(Unrunnable, match="truncated by strace after 32 bytes"):
        lower_steps(t.steps)
    t = parse_trace(HEAD + f'memfd_create("{N * 249}"..., 0) = -1 EINVAL\n')
    assert lower_steps(t.steps)[0].args[0] == (N * 249 + ".").encode()


#: the dup family through the reproducers (open, not openat: the reproducers do not take openat)
DUP_TRACE = (HEAD + CREATE + "dup2(3, 20) = 20\ndup3(20, 21, O_CLOEXEC) = 21\n"
             "fcntl(21, F_DUPFD, 30) = 30\nfcntl(30, F_DUPFD_CLOEXEC, 30) = 31\n"
             'open("/proc/self/fd/3", O_RDONLY) = 4\ndup2(4, 21) = 21\n'
             "ftruncate(21, 4096) = -1 EINVAL (Invalid argument)\n"
             "fcntl(31, F_ADD_SEALS, F_SEAL_SEAL) = 0\n"
             "fcntl(20, F_GET_SEALS) = 0x1 (seals F_SEAL_SEAL)\n")


def exported(fmt: str) -> str:
    from checker.replay import replay_for_export

    memfd = designs.get("memfd")
    return EXPORTERS[fmt][1](memfd, replay_for_export(memfd, parse_trace(DUP_TRACE)))


def test_the_exporters_render_the_dup_family() -> None:
    """dup2/dup3 are plain registry calls (newfd: NEWFD(), the runtime's descriptor at that
    trace number or a free one); F_DUPFD's result is a new trace descriptor."""
    c, py, syz = exported("c"), exported("python"), exported("syz")
    assert "res_of(syscall(SYS_dup2, FD(3), NEWFD(20)))" in c
    assert "mfd_assert_fd(res_of(fcntl(FD(21), F_DUPFD, 30)), 30)" in c
    assert 'sysc("dup3", FD(20), NEWFD(21), O_CLOEXEC)' in py
    assert "r1 = dup2(r0, 0x14)" in syz and "= fcntl$dupfd(" in syz
    assert "dup2" not in UNSUPPORTED and "dup3" not in UNSUPPORTED


@pytest.mark.kernel
def test_the_dup_family_reproducers_pass_on_the_kernel(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    (tmp_path / "r.c").write_text(exported("c"))
    (tmp_path / "r.py").write_text(exported("python"))
    cc = subprocess.run([gcc, "-Wall", "-Werror", "-o", str(tmp_path / "r"),
                         str(tmp_path / "r.c")], capture_output=True, text=True, timeout=120)
    assert cc.returncode == 0, cc.stderr
    for cmd in ([str(tmp_path / "r")], [sys.executable, str(tmp_path / "r.py")]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "pass:10 fail:0" in r.stdout, r.stdout


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(JUDGED))
def test_judged_on_the_kernel(name: str) -> None:
    """The kernel executor maps the trace's numbers too: every outcome as written."""
    t = parse_trace(HEAD + JUDGED[name])
    kr = run_on_kernel(t.steps)
    if kr.skipped:
        pytest.skip(kr.skipped)
    assert kr.error is None, kr.error
    assert kr.outcomes == [s.outcome for s in t.steps]


@pytest.mark.kernel
def test_the_kernel_does_not_take_an_impossible_number() -> None:
    """The executor names a new descriptor as the trace does only when the kernel could have
    given that number: a live one, or one past RLIMIT_NOFILE, is a divergence on the kernel."""
    t = parse_trace(HEAD + 'memfd_create("t", 0) = 9223372036854775807\ndup(3) = 3\n')
    kr = run_on_kernel(t.steps)
    assert kr.error is None, kr.error
    assert kr.outcomes == [Ret(3), Ret(4)]


@pytest.mark.kernel
def test_the_kernel_run_of_an_unknown_name_length_is_a_skip() -> None:
    t = parse_trace(HEAD + f"memfd_create({TRUNC32}, 0x100) = -1 EINVAL\n")
    kr = run_on_kernel(t.steps)
    assert kr.outcomes == [] and kr.error is None
    assert kr.skipped is not None and "truncated by strace" in kr.skipped


@pytest.mark.kernel
def test_dup2_onto_an_open_number_closes_it_on_the_kernel() -> None:
    """The kernel closed the displaced descriptor: its O_RDONLY description is gone, the
    number now names the O_RDWR one (ftruncate succeeds), and closing it once more is EBADF
    on the kernel (the model refuses a closed number: REFUSED)."""
    t = parse_trace(HEAD + CREATE + 'open("/proc/self/fd/3", O_RDONLY) = 4\ndup2(3, 4) = 4\n'
                    "ftruncate(4, 4096) = 0\nclose(4) = 0\nclose(4) = -1 EBADF\n")
    kr = run_on_kernel(t.steps)
    assert kr.error is None, kr.error
    assert kr.outcomes == [s.outcome for s in t.steps]
    assert isinstance(kr.outcomes[2], Ret)


def test_lowering_keeps_the_trace_s_number() -> None:
    t = parse_trace(HEAD + 'memfd_create("t", 0) = 7\ndup2(7, 12) = 12\nclose(7) = ?\n')
    ops = lower_steps(t.steps)
    assert [op.want for op in ops] == [7, 12, None]
    with pytest.raises(TraceError):
        lower_steps(parse_trace(HEAD + "dup2(3) = 3\n").steps)
