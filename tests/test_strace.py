"""`shmemcheck strace` (issue 16): reading raw strace logs, following memfds, judging calls."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checker.cli import main
from checker.strace_judge import Report, judge_log
from traces.strace_log import LogCall, LogExit, LogSignal, parse_log
from traces.textfmt import TraceSyntaxError, format_arg, format_step, parse_trace
from traces.trace import Err, Int, Lst, New, Ret, Str, Sym

PROGS = Path(__file__).parent / "strace_progs"

SEALED = """\
memfd_create("t", MFD_ALLOW_SEALING) = 3
ftruncate(3, 4096) = 0
mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = 0x7f0000000000
fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = -1 EBUSY (Device or resource busy)
munmap(0x7f0000000000, 4096) = 0
fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0
fcntl(3, F_GET_SEALS) = 0x8 (seals F_SEAL_WRITE)
close(3) = 0
"""


def verdicts(text: str, noexec: int = 0) -> list[tuple[int, str]]:
    return [(v.line, v.verdict) for v in judge_log(parse_log(text), noexec).verdicts]


def only_call(text: str) -> LogCall:
    evs = parse_log(text).events
    assert len(evs) == 1 and isinstance(evs[0], LogCall)
    return evs[0]


# ---- the parser, one log feature at a time ----------------------------------------------------
def test_plain_log_is_judged() -> None:
    assert verdicts(SEALED) == [(i, "agrees") for i in range(1, 9)]


@pytest.mark.parametrize("prefix,pid", [("[pid  123] ", 123), ("123   ", 123), ("", None)])
@pytest.mark.parametrize("stamp", ["", "12:34:56 ", "12:34:56.123456 ",
                                   "1700000000.123456 ", "     0.000123 "])
def test_pid_columns_and_timestamps(prefix: str, pid: int | None, stamp: str) -> None:
    c = only_call(f'{prefix}{stamp}memfd_create("t", MFD_CLOEXEC) = 3 <0.000012>\n')
    assert (c.pid, c.name, c.args, c.ret) == (pid, "memfd_create", ('"t"', "MFD_CLOEXEC"), 3)
    assert verdicts("".join(f"{prefix}{stamp}{line}\n" for line in SEALED.splitlines())) \
        == [(i, "agrees") for i in range(1, 9)]


def test_unfinished_and_resumed_are_joined_at_the_first_line() -> None:
    log = parse_log('[pid 7] fcntl(3, F_GET_SEALS <unfinished ...>\n'
                    '[pid 8] getpid() = 8\n'
                    '[pid 7] <... fcntl resumed>) = 0x8 (seals F_SEAL_WRITE)\n')
    c = log.events[0]
    assert isinstance(c, LogCall) and c.line == 1 and c.done
    assert (c.args, c.ret, c.note) == (("3", "F_GET_SEALS"), 8, "seals F_SEAL_WRITE")
    with pytest.raises(TraceSyntaxError, match=r"^<log>:2:"):
        parse_log("[pid 7] read(3, <unfinished ...>\n[pid 7] <... write resumed>) = 1\n")


def test_fd_decorations() -> None:
    c = only_call('ftruncate(3</memfd:t (deleted)>, 4096) = 0\n')
    assert c.args == ("3", "4096") and c.paths == {0: "/memfd:t (deleted)"}
    yy = SEALED.replace("(3,", "(3</memfd:t (deleted)>,").replace(" = 3\n",
                                                                   " = 3</memfd:t (deleted)>\n")
    assert "memfd:t" in yy
    assert verdicts(yy) == [(i, "agrees") for i in range(1, 9)]
    shift = only_call('memfd_create("", MFD_HUGETLB|21<<MFD_HUGE_SHIFT) = -1 EINVAL (Invalid '
                      'argument)\n')
    assert shift.arg(1) == Sym("MFD_HUGETLB|0x54000000")  # 21 << 26: MFD_HUGE_2MB


def test_X_raw_and_verbose() -> None:
    raw = only_call("fcntl(3, 0x409, 0x8) = 0\n")
    assert raw.arg(1) == Int(0x409, "0x409")
    verbose = only_call("fcntl(3, 0x409 /* F_ADD_SEALS */, 0x8 /* F_SEAL_WRITE */) = 0\n")
    assert verbose.args == ("3", "0x409", "0x8")
    log = SEALED.replace("F_ADD_SEALS, F_SEAL_WRITE", "0x409 /* F_ADD_SEALS */, 0x8")
    assert verdicts(log) == [(i, "agrees") for i in range(1, 9)]


def test_truncated_strings() -> None:
    c = only_call('pwrite64(3, "\\0\\0\\0"..., 65536, 0) = 8192\n')
    assert c.arg(1) == Str("\0\0\0", truncated=True)
    v = judge_log(parse_log('memfd_create("' + "a" * 32 + '"..., 0) = 3\n'), 0).verdicts
    assert v[0].verdict == "outside" and "strace -s" in (v[0].reason or "")


def test_signals_and_exits() -> None:
    evs = parse_log("--- SIGBUS {si_signo=SIGBUS, si_code=BUS_ADRERR, si_addr=0x7f01} ---\n"
                    "+++ killed by SIGBUS (core dumped) +++\n"
                    "[pid 9] +++ exited with 3 +++\n"
                    "--- stopped by SIGSTOP ---\n").events
    assert evs[0] == LogSignal(1, None, "SIGBUS", 0x7F01)
    assert evs[1] == LogExit(2, None, None, "SIGBUS")
    assert evs[2] == LogExit(3, 9, 3, None)
    assert isinstance(evs[3], LogSignal) and evs[3].addr is None


def test_fault_in_a_memfd_mapping_is_a_store_or_load() -> None:
    log = ('memfd_create("t", 0) = 3\n'
           "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = 0x7f0000000000\n"
           "--- SIGBUS {si_signo=SIGBUS, si_code=BUS_ADRERR, si_addr=0x7f0000000000} ---\n")
    assert verdicts(log) == [(1, "agrees"), (2, "agrees"), (3, "agrees")]
    rep = judge_log(parse_log(log))
    assert rep.judged[0].steps[-1].outcome.__class__.__name__ == "Sig"


def test_filtered_log_and_unrelated_calls() -> None:
    log = ("execve(\"./p\", [\"./p\"], 0x7ffc /* 3 vars */) = 0\n"
           "brk(NULL) = 0x5600\n"
           "openat(AT_FDCWD, \"/etc/ld.so.cache\", O_RDONLY|O_CLOEXEC) = 3\n"
           "close(3) = 0\n" + SEALED.replace("close(3) = 0\n", "") +
           "exit_group(0) = ?\n+++ exited with 0 +++\n")
    rep = judge_log(parse_log(log))
    assert [v.verdict for v in rep.verdicts] == ["agrees"] * 7  # only the memfd's calls


@pytest.mark.parametrize("line,col", [
    ("memfd_create(\"t\", 0 = 3", 25), ("fcntl(3, F_GET_SEALS)", 22), ("--- SIGBUS", 1),
    ("+++ exited +++", 1), ("3 = 4", 1), ("ftruncate(3</memfd:t, 4) = 0", 12),
    ("ftruncate(3, 4096) = 01", 22),  # found by the fuzz test: int("01", 0) raised
])
def test_unreadable_lines_are_named(line: str, col: int) -> None:
    with pytest.raises(TraceSyntaxError) as e:
        parse_log("getpid() = 1\n" + line + "\n", "x.log")
    assert (e.value.path, e.value.line, e.value.col) == ("x.log", 2, col)


# ---- following descriptors -------------------------------------------------------------------
def test_fork_copies_the_table_and_exit_closes_it() -> None:
    log = ('1 memfd_create("t", MFD_ALLOW_SEALING) = 3\n'
           "1 clone(child_stack=NULL, flags=CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x1) = 2\n"
           "2 fcntl(3, F_ADD_SEALS, F_SEAL_SEAL) = 0\n"
           "2 +++ exited with 0 +++\n"
           "1 fcntl(3, F_GET_SEALS) = 0x1 (seals F_SEAL_SEAL)\n"
           "1 close(3) = 0\n")
    rep = judge_log(parse_log(log))
    assert [(v.line, v.verdict) for v in rep.verdicts] == [
        (1, "agrees"), (3, "agrees"), (5, "agrees"), (6, "agrees")]
    calls = [s.call for s in rep.judged[0].steps]
    assert calls == ["memfd_create", "dup", "fcntl", "close", "fcntl", "close"]


#: a memfd mapped shared and writable, a fork, and the parent's munmap of its own copy
FORKED_MAP = ('1 memfd_create("t", MFD_ALLOW_SEALING) = 3\n'
              "1 mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = 0x7f0000000000\n"
              "1 clone(child_stack=NULL, flags=CLONE_CHILD_SETTID|SIGCHLD, "
              "child_tidptr=0x1) = 2\n"
              "1 munmap(0x7f0000000000, 4096) = 0\n")


def test_fork_copies_a_mapping_and_exit_unmaps_it() -> None:
    """dup_mmap(): the child's copy of a shared writable mapping is a mapping of its own
    (fork_vma), so F_SEAL_WRITE stays EBUSY after the parent unmaps its own until the child
    exits (memfd_test's SEAL-FUTURE-WRITE forks with live mappings)."""
    log = (FORKED_MAP
           + "1 fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = -1 EBUSY (Device or resource busy)\n"
           "2 +++ exited with 0 +++\n"
           "1 fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0\n")
    rep = judge_log(parse_log(log))
    assert [(v.line, v.verdict) for v in rep.verdicts] == [
        (1, "agrees"), (2, "agrees"), (4, "agrees"), (5, "agrees"), (7, "agrees")]
    steps = [(s.call, str(s.outcome)) for s in rep.judged[0].steps]
    assert ("fork_vma", "New(name='m2')") in steps
    assert [c for c, _ in steps].count("munmap") == 2  # the parent's and the child's exit


def test_a_claimed_seal_under_a_childs_copy_disagrees() -> None:
    rep = judge_log(parse_log(FORKED_MAP + "1 fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0\n"))
    assert [v.verdict for v in rep.verdicts][-1] == "disagrees"


def test_clone_files_shares_and_execve_closes_cloexec() -> None:
    log = ('1 memfd_create("t", MFD_CLOEXEC) = 3\n'
           "1 clone(child_stack=0x1, flags=CLONE_VM|CLONE_FS|CLONE_FILES|SIGCHLD) = 2\n"
           "2 close(3) = 0\n"
           "1 fcntl(3, F_GET_SEALS) = -1 EBADF (Bad file descriptor)\n"
           "2 +++ exited with 0 +++\n"
           '1 memfd_create("u", MFD_CLOEXEC) = 3\n'
           '1 execve("/bin/true", ["true"], 0x1 /* 0 vars */) = 0\n'
           "1 fcntl(3, F_GET_SEALS) = -1 EBADF (Bad file descriptor)\n")
    rep = judge_log(parse_log(log))
    assert [(v.line, v.verdict) for v in rep.verdicts] == [(1, "agrees"), (3, "agrees"),
                                                           (6, "agrees")]
    assert [s.call for s in rep.judged[1].steps] == ["memfd_create", "close"]


def test_dup_family_and_proc_reopen_map_to_trace_numbers() -> None:
    log = ('memfd_create("t", 0) = 5\n'
           "dup(5) = 9\n"
           "dup2(5, 9) = 9\n"
           "dup3(9, 40, O_CLOEXEC) = 40\n"
           "fcntl(40, F_DUPFD_CLOEXEC, 100) = 100\n"
           'openat(AT_FDCWD, "/proc/self/fd/100", O_RDONLY) = 6\n'
           "close(5) = 0\nclose(9) = 0\nclose(40) = 0\nclose(100) = 0\nclose(6) = 0\n")
    rep = judge_log(parse_log(log))
    assert {v.verdict for v in rep.verdicts} == {"agrees"}
    assert [s.outcome for s in rep.judged[0].steps[:6]] == [
        Ret(5), Ret(9), Ret(9), Ret(40), Ret(100), Ret(6)]


def test_mapping_addresses_become_handles() -> None:
    rep = judge_log(parse_log(SEALED))
    steps = rep.judged[0].steps
    assert steps[2].outcome == New("m1") and steps[4].args[0].__class__.__name__ == "Ref"


def test_partial_munmap_is_outside_with_a_reason_and_blocks_later_calls() -> None:
    log = SEALED.replace("munmap(0x7f0000000000, 4096)", "munmap(0x7f0000000000, 2048)")
    rep = judge_log(parse_log(log))
    v = {x.line: x for x in rep.verdicts}
    assert v[5].verdict == "outside" and "4096" in (v[5].reason or "")
    assert v[6].verdict == "outside" and v[6].reason == "after an unjudged call at 5"


def test_a_part_of_a_mapping_is_named_by_its_address() -> None:
    """munmap and mprotect of a part of a mapping (a VMA split) are judged: the trace names
    the part by its address (m1+4096), a fault by its offset from the mapping's start, and
    an exit unmaps each piece."""
    log = ('memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, 12288) = 0\n'
           "mmap(NULL, 12288, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = 0x7f0000000000\n"
           "mprotect(0x7f0000001000, 4096, PROT_READ) = 0\n"
           "munmap(0x7f0000000000, 4096) = 0\n"
           "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = -1 EBUSY (Device or resource busy)\n"
           "--- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_ACCERR, si_addr=0x7f0000001000} ---\n"
           "+++ killed by SIGSEGV +++\n")
    rep = judge_log(parse_log(log))
    assert {v.verdict for v in rep.verdicts} == {"agrees"}, rep.verdicts
    text = [format_step(s) for s in rep.judged[0].steps]
    assert "mprotect(m1+4096, 4096, PROT_READ) = 0" in text
    assert any(t.startswith("store(m1, 4096) = SIGSEGV") for t in text), text
    assert any(t.startswith("munmap(m1+8192, 4096) = 0") for t in text), text


def test_map_fixed_over_a_part_and_a_munmap_over_pieces() -> None:
    """mmap(MAP_FIXED) of the memfd over a part of its mapping is a new mapping and a munmap
    of the part it replaced; a munmap over several pieces is one munmap per piece."""
    log = ('memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, 12288) = 0\n'
           "mmap(NULL, 12288, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = 0x7f0000000000\n"
           "mmap(0x7f0000001000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED, 3, 0) = 0x7f0000001000\n"
           "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = -1 EBUSY (Device or resource busy)\n"
           "munmap(0x7f0000000000, 12288) = 0\n"
           "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0\n")
    rep = judge_log(parse_log(log))
    assert {v.verdict for v in rep.verdicts} == {"agrees"}, rep.verdicts
    text = [format_step(s).split("  #")[0] for s in rep.judged[0].steps]
    assert text[2:] == [
        "mmap(NULL, 12288, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1",
        "munmap(m1+4096, 4096) = 0",
        "mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 3, 0) = m2",
        "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = -1 EBUSY (Device or resource busy)",
        "munmap(m1, 4096) = 0", "munmap(m2, 4096) = 0", "munmap(m1+8192, 4096) = 0",
        "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0"], text


def test_a_fork_copies_a_mapping_once_whatever_its_records() -> None:
    """mprotect to the protection a part has splits no VMA; the follower's records of it are
    still one mapping, which a fork copies once (found by review: three copies, and a false
    DISAGREES on the seal after the child's exit)."""
    log = ('1 memfd_create("t", MFD_ALLOW_SEALING) = 3\n1 ftruncate(3, 12288) = 0\n'
           "1 mmap(NULL, 12288, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = 0x7f0000000000\n"
           "1 mprotect(0x7f0000001000, 4096, PROT_READ|PROT_WRITE) = 0\n"
           "1 clone(child_stack=NULL, flags=SIGCHLD) = 2\n2 +++ exited with 0 +++\n"
           "1 munmap(0x7f0000000000, 12288) = 0\n"
           "1 fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0\n")
    rep = judge_log(parse_log(log))
    assert {v.verdict for v in rep.verdicts} == {"agrees"}, rep.verdicts
    text = [format_step(s).split("  #")[0] for s in rep.judged[0].steps]
    assert sum(t.startswith("fork_vma") for t in text) == 1, text


def test_noexec_sysctl_writes_follow_pid_namespaces() -> None:
    log = ('1 openat(AT_FDCWD, "/proc/sys/vm/memfd_noexec", O_WRONLY|O_CLOEXEC) = 4\n'
           '1 write(4, "2", 1) = 1\n'
           '1 memfd_create("a", MFD_EXEC) = -1 EACCES (Permission denied)\n')
    assert verdicts(log) == [(3, "agrees")]
    # the same line with vm.memfd_noexec=0 throughout disagrees: the write is followed
    assert verdicts(log.replace('"2"', '"0"')) == [(3, "disagrees")]


# ---- judging and the command ---------------------------------------------------------------
def test_disagreement_exit_1_and_a_minimal_reproducer(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = SEALED.replace("= -1 EBUSY (Device or resource busy)", "= 0")
    (tmp_path / "bad.log").write_text(bad)
    out = tmp_path / "out"
    assert main(["strace", str(tmp_path / "bad.log"), "--out", str(out)]) == 1
    text = capsys.readouterr().out
    assert "1 disagree" in text and "model: -1 EBUSY, kernel: 0" in text
    repro = parse_trace((out / "memfd-1-disagrees.trace").read_text())
    assert [s.call for s in repro.steps] == ["memfd_create", "mmap", "fcntl"]
    assert repro.steps[-1].outcome == Ret(0)
    assert main(["replay", str(out / "memfd-1-disagrees.trace")]) != 0  # it reproduces
    assert parse_trace((out / "memfd-1.trace").read_text()).steps[-1].call == "mmap"


def test_agreement_exit_0_annotate_and_json(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ok.log").write_text(SEALED + "write(3, \"x\", 1) = -1 EBADF (Bad file "
                                     "descriptor)\n")
    assert main(["strace", "--annotate", str(tmp_path / "ok.log")]) == 0
    text = capsys.readouterr().out
    assert "fcntl(3, F_GET_SEALS) = 0x8 (seals F_SEAL_WRITE)   ## memfd 1: agrees" in text
    assert "8 memfd calls (1 memfds): 8 agree, 0 disagree, 0 outside" in text
    assert main(["strace", "--format", "json", str(tmp_path / "ok.log")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["calls"], data["agrees"], data["disagrees"]) == (8, 8, 0)


def test_unreadable_log_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.log").write_text("getpid() = 1\nfcntl(3, F_GET_SEALS\n")
    assert main(["strace", str(tmp_path / "bad.log")]) == 2
    assert capsys.readouterr().err.startswith(f"{tmp_path / 'bad.log'}:2:")
    assert main(["strace", str(tmp_path / "missing.log")]) == 2
    assert main(["strace"]) == 2


# ---- robustness ------------------------------------------------------------------------------
_PIECES = [*SEALED.splitlines(), "[pid 1] ", "<unfinished ...>", "<... fcntl resumed>", "---",
           "+++", "0x7f", "\"", "(", ")", "{", "}", "[", "]", "<", ">", "/*", "*/", ",", "=",
           "-1", "?", "\\", " ", "\n", "SIGBUS", "si_addr=0x7f0000000000", "clone(", "dup2(3, 9)"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=40), st.text(max_size=30))
def test_fuzzed_logs_raise_only_clean_errors(pieces: list[str], noise: str) -> None:
    for text in ("".join(pieces), "".join(pieces) + noise, noise + SEALED):
        try:
            log = parse_log(text, "f.log")
        except TraceSyntaxError as e:
            assert e.line >= 1 and e.col >= 1 and str(e).startswith("f.log:")
            continue
        judge_log(log)  # never raises


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(SEALED) - 1), st.integers(0, 8), st.text(max_size=4))
def test_mutated_logs_raise_only_clean_errors(at: int, cut: int, put: str) -> None:
    text = SEALED[:at] + put + SEALED[at + cut:]
    try:
        log = parse_log(text)
    except TraceSyntaxError:
        return
    judge_log(log)


# ---- a real program under strace -------------------------------------------------------------
def _tools() -> None:
    for tool in ("gcc", "strace"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def _traced(tmp_path: Path, prog: str) -> tuple[Report, Path]:
    """tests/strace_progs/PROG.c built and run under `strace -f`: its judged log and the
    log's path (skips where strace cannot trace)."""
    _tools()
    exe, log = tmp_path / prog, tmp_path / f"{prog}.log"
    subprocess.run(["gcc", "-Wall", "-Werror", "-o", str(exe), str(PROGS / f"{prog}.c")],
                   check=True, capture_output=True)
    r = subprocess.run(["strace", "-f", "-o", str(log), str(exe)], capture_output=True,
                       check=False, timeout=60)
    if r.returncode != 0 and b"PTRACE" in r.stderr:
        pytest.skip(f"strace cannot trace here: {r.stderr.decode(errors='replace')[:200]}")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return judge_log(parse_log(log.read_text(), str(log)), 0), log


@pytest.mark.kernel
def test_seal_ipc_program_under_strace(tmp_path: Path) -> None:
    rep, log = _traced(tmp_path, "seal_ipc")
    assert rep.count("disagrees") == 0
    assert all(v.reason for v in rep.verdicts if v.verdict == "outside")
    text = log.read_text().splitlines()
    agreed = {text[v.line - 1].split(None, 1)[1].split("(")[0] for v in rep.verdicts
              if v.verdict == "agrees"}
    # sealing, the receiver's F_GET_SEALS, dup2, the /proc reopen and the SIGBUS all judged
    assert {"memfd_create", "fcntl", "mmap", "munmap", "dup2", "openat", "close",
            "pwritev2", "preadv", "--- SIGBUS"} <= agreed | {"--- SIGBUS" for v in rep.verdicts
                                       if "SIGBUS" in v.text and v.verdict == "agrees"}
    assert rep.count("agrees") >= 20
    # the mapping at an offset (page 1 of a two-page file) is judged, not outside
    at = [v for v in rep.verdicts if "MAP_SHARED, 4, 0x1000)" in text[v.line - 1]]
    assert [v.verdict for v in at] == ["agrees"], at
    assert not [v for v in rep.verdicts if v.verdict == "outside"]


@pytest.mark.kernel
def test_hugetlbfs_buffer_passed_over_a_socket_under_strace(tmp_path: Path) -> None:
    """tests/strace_progs/huge_pass.c: an MFD_HUGETLB memfd of two huge pages, filled through
    a mapping, sealed, passed with SCM_RIGHTS to a forked receiver that checks its seals and
    size (fstat), maps it read-only, read()s it and is refused a writable mapping: every memfd
    call of the log agrees with the model."""
    from traces.hugepages import hugepages_reserved

    _tools()
    exe, log = tmp_path / "huge_pass", tmp_path / "huge_pass.log"
    subprocess.run(["gcc", "-Wall", "-Werror", "-o", str(exe), str(PROGS / "huge_pass.c")],
                   check=True, capture_output=True)
    with hugepages_reserved(4) as why:
        if why is not None:
            pytest.skip(why)
        r = subprocess.run(["strace", "-f", "-o", str(log), str(exe)], capture_output=True,
                           check=False, timeout=60)
    if r.returncode != 0 and b"PTRACE" in r.stderr:
        pytest.skip(f"strace cannot trace here: {r.stderr.decode(errors='replace')[:200]}")
    assert r.returncode == 0, r.stdout
    rep = judge_log(parse_log(log.read_text(), str(log)), 0)
    assert [v.verdict for v in rep.verdicts] == ["agrees"] * 14, rep.verdicts
    text = log.read_text().splitlines()
    calls = [text[v.line - 1].split(None, 1)[1].split("(")[0] for v in rep.verdicts]
    stat = {"fstat", "newfstatat"} & set(calls)  # glibc's fstat(): newfstatat on 2.33+
    assert len(stat) == 1 and {"memfd_create", "ftruncate", "mmap", "fcntl", "read", "munmap",
                               "close", *stat} == set(calls)


@pytest.mark.kernel
def test_exec_of_a_memfd_under_strace(tmp_path: Path) -> None:
    """tests/strace_progs/exec_memfd.c: fexecve() and execve("/proc/self/fd/N") of a memfd
    (ENOEXEC, ETXTBSY while a description open()ed for writing lives, EACCES without an x
    bit) agree with the model; the #! script that then runs is outside it (the model holds no
    content), and so is what follows on that memfd (the running image holds it)."""
    rep, log = _traced(tmp_path, "exec_memfd")
    assert [v.verdict for v in rep.verdicts] == ["agrees"] * 12 + ["outside"] * 2, rep.verdicts
    text = log.read_text().splitlines()
    calls = [text[v.line - 1].split(None, 1)[1].split("(")[0] for v in rep.verdicts]
    assert calls.count("execveat") == 3 and calls.count("execve") == 1
    assert "exec runs the file's content" in (rep.verdicts[12].reason or "")


@pytest.mark.kernel
def test_mremap_of_memfd_mappings_under_strace(tmp_path: Path) -> None:
    """tests/strace_progs/mremap_memfd.c: strace prints mremap's addresses; the follower names
    the mapping it returns (the same mN when resized or moved, a new one for old_len 0 and
    MREMAP_DONTUNMAP, whose source stays mapped), and every call agrees with the model."""
    rep, _ = _traced(tmp_path, "mremap_memfd")
    assert [v.verdict for v in rep.verdicts] == ["agrees"] * 14, rep.verdicts
    steps = rep.judged[0].steps
    assert [s.outcome for s in steps if s.call == "mremap"] == [
        New("m1"), Err("ENOMEM"), New("m1"), New("m2"), New("m3")]


@pytest.mark.kernel
def test_chattr_of_a_memfd_under_strace(tmp_path: Path) -> None:
    """tests/strace_progs/chattr_memfd.c: strace prints FS_IOC_SETFLAGS's int as
    `[FS_IMMUTABLE_FL]`, and FS_IOC_GETFLAGS's as the flags the kernel wrote; every call
    agrees with the model, the two GETFLAGS outputs included."""
    rep, _ = _traced(tmp_path, "chattr_memfd")
    assert [v.verdict for v in rep.verdicts] == ["agrees"] * 15, rep.verdicts
    steps = rep.judged[0].steps
    assert sum(s.call == "ioctl" for s in steps) == 5
    gets = [format_arg(s.args[2]) for s in steps if s.call == "ioctl" and
            format_arg(s.args[1]) == "FS_IOC_GETFLAGS"]
    assert gets == ["[FS_APPEND_FL|FS_NODUMP_FL]", "[0]"]


@pytest.mark.kernel
def test_sendfile_within_a_memfd_under_strace(tmp_path: Path) -> None:
    """tests/strace_progs/sendfile_memfd.c: strace prints the offset sendfile wrote back as
    `[0] => [20000]`; the follower keeps it (judged against the outcome) and every call
    agrees with the model up to the NULL offset, outside the model with its reason."""
    rep, _ = _traced(tmp_path, "sendfile_memfd")
    assert [v.verdict for v in rep.verdicts] == ["agrees"] * 8 + ["outside"] * 2, \
        rep.verdicts
    assert "sendfile off_in NULL" in rep.verdicts[8].reason
    sends = [s for s in rep.judged[0].steps if s.call == "sendfile"]
    assert [(s.outcome, s.updated) for s in sends] == [
        (Ret(20000), ((2, Lst((Int(20000),))),)), (Ret(384), ((2, Lst((Int(384),))),))]


def test_a_written_back_value_in_a_log_is_checked() -> None:
    """A log whose `=>` value is not the offset plus the bytes moved contradicts itself: the
    call is outside the model with that reason, not judged."""
    log = 'memfd_create("t", 0) = 3\nsendfile(3, 3, [0] => [5], 10) = 0\n'
    rep = judge_log(parse_log(log), 0)
    assert rep.verdicts[-1].verdict == "outside"
    assert "writes back [0]" in rep.verdicts[-1].reason


@pytest.mark.kernel
def test_strace_runs_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _tools()
    exe = tmp_path / "seal_ipc"
    subprocess.run(["gcc", "-o", str(exe), str(PROGS / "seal_ipc.c")], check=True,
                   capture_output=True)
    assert main(["strace", "--", str(exe)]) == 0
    text = capsys.readouterr().out
    assert "0 disagree" in text and "(the command exited with status 0)" in text


def test_pread64_with_any_count_is_judged() -> None:
    """Python's os.pread() under strace (6.18.44): pread64 with the data read, or the
    buffer's address where it failed, and a count other than a page; each line is judged."""
    log = """\
7426  memfd_create("dev", MFD_ALLOW_SEALING) = 3
7426  write(3, "hello world", 11)       = 11
7426  pread64(3, "hello", 5, 0)         = 5
7426  pread64(3, "world", 100, 6)       = 5
7426  pread64(3, "", 10, 50)            = 0
7426  pread64(3, 0x7f1a41111a30, 10, -1) = -1 EINVAL (Invalid argument)
7426  fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0
7426  close(3)                          = 0
"""
    assert verdicts(log) == [(i, "agrees") for i in range(1, 9)]
    wrong = log.replace('"world", 100, 6)       = 5', '"world", 100, 6)       = 6')
    assert (4, "disagrees") in verdicts(wrong)


def test_err_outcomes_are_kept() -> None:
    rep = judge_log(parse_log(SEALED))
    assert rep.judged[0].steps[3].outcome == Err("EBUSY")


def test_scm_rights_passes_a_memfd_to_another_process() -> None:
    log = ('1 memfd_create("t", MFD_ALLOW_SEALING) = 3\n'
           "1 clone(child_stack=NULL, flags=SIGCHLD) = 2\n"
           "1 close(3) = 0\n"
           "2 close(3) = 0\n"
           '1 memfd_create("u", 0) = 3\n'
           "1 sendmsg(5, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base=\"x\", iov_len=1}], "
           "msg_iovlen=1, msg_control=[{cmsg_len=20, cmsg_level=SOL_SOCKET, "
           "cmsg_type=SCM_RIGHTS, cmsg_data=[3]}], msg_controllen=24, msg_flags=0}, 0) = 1\n"
           "1 close(3) = 0\n"
           "2 recvmsg(4, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base=\"x\", iov_len=1}], "
           "msg_iovlen=1, msg_control=[{cmsg_len=20, cmsg_level=SOL_SOCKET, "
           "cmsg_type=SCM_RIGHTS, cmsg_data=[7]}], msg_controllen=24, msg_flags=0}, 0) = 1\n"
           "2 fcntl(7, F_GET_SEALS) = 0x1 (seals F_SEAL_SEAL)\n"
           "2 close(7) = 0\n")
    rep = judge_log(parse_log(log))
    assert [(v.line, v.memfd, v.verdict) for v in rep.verdicts] == [
        (1, 1, "agrees"), (3, 1, "agrees"), (4, 1, "agrees"), (5, 2, "agrees"),
        (7, 2, "agrees"), (9, 2, "agrees"), (10, 2, "agrees")]
    assert [s.call for s in rep.judged[1].steps] == ["memfd_create", "dup", "close", "fcntl",
                                                     "close"]


def test_a_receive_split_around_the_send_waits_for_it() -> None:
    """strace -f under load: the receiver's recvmsg() starts (`<unfinished ...>`) before the
    sender's sendmsg(), so the joined call sits earlier in the log than the send; the
    descriptor it installs is still the memfd's (seen in tests/strace_progs/huge_pass.c's
    log)."""
    cmsg = ("{msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base=\"x\", iov_len=1}], "
            "msg_iovlen=1, msg_control=[{cmsg_len=20, cmsg_level=SOL_SOCKET, "
            "cmsg_type=SCM_RIGHTS, cmsg_data=[%d]}], msg_controllen=24, msg_flags=0}")
    log = ('1 memfd_create("t", MFD_ALLOW_SEALING) = 3\n'
           "1 clone(child_stack=NULL, flags=SIGCHLD) = 2\n"
           "2 recvmsg(4,  <unfinished ...>\n"
           f"1 sendmsg(5, {cmsg % 3}, 0) = 1\n"
           f"2 <... recvmsg resumed>{cmsg % 7}, 0) = 1\n"
           "2 fcntl(7, F_GET_SEALS) = 0\n")
    rep = judge_log(parse_log(log))
    assert [(v.line, v.memfd, v.verdict) for v in rep.verdicts] == [
        (1, 1, "agrees"), (6, 1, "agrees")]


def test_judged_prefixes_replay_as_project_traces(tmp_path: Path) -> None:
    """--out's memfd-N.trace files are ordinary traces: they replay on the model (and, where
    it runs, on this kernel: test_seal_ipc_program_under_strace's program is the log's)."""
    log = Path(__file__).parent.parent / "examples" / "seal-ipc.strace.log"
    assert main(["strace", str(log), "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memfd-1.trace", "memfd-2.trace"]
    assert main(["replay", str(tmp_path)]) == 0
    two = parse_trace((tmp_path / "memfd-2.trace").read_text())
    # judged to the end: the mapping at an offset (page 1) included
    assert [s.call for s in two.steps][-7:] == ["store", "munmap", "ftruncate", "mmap", "munmap",
                                                "close", "close"]


@pytest.mark.kernel
def test_judged_prefixes_replay_on_the_kernel(tmp_path: Path) -> None:
    log = Path(__file__).parent.parent / "examples" / "seal-ipc.strace.log"
    assert main(["strace", str(log), "--out", str(tmp_path)]) == 0
    assert main(["replay", str(tmp_path), "--on", "both"]) == 0


def test_a_udmabuf_stops_the_judging_of_the_memfds_it_may_pin() -> None:
    """strace prints UDMABUF_CREATE's struct as an address: which memfd it pins is not in the
    log, so the process's memfds are not judged after a successful one (the kernel's EBUSY
    below is the pin the model would not know of); a failed one pins nothing."""
    log = ('memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, 4096) = 0\n'
           "fcntl(3, F_ADD_SEALS, F_SEAL_SHRINK) = 0\n"
           'openat(AT_FDCWD, "/dev/udmabuf", O_RDWR) = 4\n'
           "ioctl(4, UDMABUF_CREATE, 0x7ffd1000) = -1 EINVAL (Invalid argument)\n"
           "fcntl(3, F_GET_SEALS) = 0x2 (seals F_SEAL_SHRINK)\n"
           "ioctl(4, UDMABUF_CREATE, 0x7ffd1000) = 5\n"
           "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = -1 EBUSY (Device or resource busy)\n")
    v = {x.line: x for x in judge_log(parse_log(log)).verdicts}
    assert v[6].verdict == "agrees"
    assert v[7].verdict == "outside" and "udmabuf" in (v[7].reason or "")
    assert v[8].verdict == "outside" and v[8].reason == "after an unjudged call at 7"


def test_file_setattr_is_judged_and_an_undecoded_one_stops_the_judging() -> None:
    """strace 6.17 decodes file_setattr/file_getattr: judged as the model's calls (else the
    EPERM of a later fchmod, the flag they set, would be a disagreement). An older strace prints
    them as syscall_0x1d5/syscall_0x1d4 with the descriptor first: outside, and the set stops
    the judging of the memfd (the get changes nothing)."""
    set_ = ('file_setattr(3, "", {fa_xflags=FS_XFLAG_IMMUTABLE, fa_extsize=0, fa_projid=0, '
            "fa_cowextsize=0}, 24, AT_EMPTY_PATH) = 0\n")
    get = ('file_getattr(3, "", {fa_xflags=FS_XFLAG_IMMUTABLE, fa_extsize=0, fa_nextents=0, '
           "fa_projid=0, fa_cowextsize=0}, 24, AT_EMPTY_PATH) = 0\n")
    head = 'memfd_create("t", MFD_ALLOW_SEALING) = 3\n'
    tail = "fchmod(3, 0600) = -1 EPERM (Operation not permitted)\n"
    v = {x.line: x for x in judge_log(parse_log(head + set_ + get + tail)).verdicts}
    assert [v[n].verdict for n in (1, 2, 3, 4)] == ["agrees"] * 4
    old = (head + "syscall_0x1d4(0x3, 0x55d0c1a2b004, 0x7ffd3b1c2a40, 0x18, 0x1000, 0) = 0\n"
           + "syscall_0x1d5(0x3, 0x55d0c1a2b004, 0x7ffd3b1c2a40, 0x18, 0x1000, 0) = 0\n" + tail)
    v = {x.line: x for x in judge_log(parse_log(old)).verdicts}
    assert v[2].verdict == "outside" and v[3].verdict == "outside"
    assert v[4].verdict == "outside" and v[4].reason == "after an unjudged call at 3"


def test_a_memfd_named_by_a_path_is_outside_and_a_failed_get_is_an_observer() -> None:
    """A call naming the memfd by /proc/self/fd/N (not open or execve) is not judged: one
    that changes the inode (file_setattr, truncate) stops the judging, one that only reads
    (newfstatat, a refused file_getattr) does not."""
    log = ('memfd_create("t", MFD_ALLOW_SEALING) = 3\n'
           'file_getattr(3, "", NULL, 24, AT_EMPTY_PATH) = -1 EFAULT (Bad address)\n'
           "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0\n"
           'newfstatat(AT_FDCWD, "/proc/self/fd/3", {st_mode=S_IFREG|0777, st_size=0, ...}, '
           "0) = 0\nftruncate(3, 0) = 0\n"
           'file_setattr(AT_FDCWD, "/proc/self/fd/3", {fa_xflags=FS_XFLAG_IMMUTABLE, '
           "fa_extsize=0, fa_projid=0, fa_cowextsize=0}, 24, 0) = 0\n"
           "fchmod(3, 0600) = -1 EPERM (Operation not permitted)\n"
           'truncate("/proc/self/fd/4", 0) = -1 ENOENT (No such file or directory)\n')
    v = {x.line: x for x in judge_log(parse_log(log)).verdicts}
    assert v[2].verdict == "outside" and v[3].verdict == "agrees"
    assert v[4].verdict == "outside" and "by a path" in (v[4].reason or "")
    assert v[5].verdict == "agrees"
    assert v[6].verdict == "outside" and "by a path" in (v[6].reason or "")
    assert v[7].verdict == "outside" and v[7].reason == "after an unjudged call at 6"
    assert 8 not in v  # /proc/self/fd/4 names no followed memfd


def test_seek_data_is_judged_until_the_memfd_is_mapped() -> None:
    """A log shows no load or store, and a fault makes a page data (NOTES.md "Pages that
    hold data"): SEEK_DATA/SEEK_HOLE are judged before the memfd's first mapping, and
    outside the model after it (here the kernel's 12288 follows a load strace did not show)."""
    log = ('memfd_create("seek", MFD_ALLOW_SEALING) = 3\nftruncate(3, 12288) = 0\n'
           'pwrite64(3, "abc", 3, 4096) = 3\nfallocate(3, 0, 8192, 4096) = 0\n'
           "lseek(3, 4096, SEEK_HOLE) = 8192\nlseek(3, 0, SEEK_DATA) = 4096\n"
           "mmap(NULL, 12288, PROT_READ, MAP_PRIVATE, 3, 0) = 0x7f63125fd000\n"
           "lseek(3, 4096, SEEK_HOLE) = 12288\n")
    v = {x.line: x for x in judge_log(parse_log(log)).verdicts}
    assert v[5].verdict == v[6].verdict == "agrees"
    assert v[8].verdict == "outside" and "strace does not show" in (v[8].reason or "")
    wrong = judge_log(parse_log(log.replace("= 4096\nmmap", "= 0\nmmap"))).verdicts
    assert {x.line: x for x in wrong}[6].verdict == "disagrees"
