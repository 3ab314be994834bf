"""Differential conformance (checker/conform.py) and kernel replay (checker/kernel_replay.py).

Kernel tests skip with the reason when a capability is missing; the bad-input tests prove that
nothing reaches the kernel by replacing run_on_kernel."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from checker import kernel_replay
from checker.cli import main
from model import designs, vocab
from model.lang.design import Design
from tests.conftest import run
from traces import kernel
from traces.kernel import KernelRun, Observation, capability
from traces.textfmt import parse_trace
from traces.trace import Err, Ret

SCENARIOS = Path(__file__).resolve().parent.parent / "traces" / "scenarios"
HEADER = "# shmemcheck trace 1: bad input\n# design: memfd\n# expect: conforms\n"


def need(*kinds: str) -> None:
    for kind in kinds:
        reason = capability(kind)
        if reason is not None:
            pytest.skip(reason)


# ---- bad input: exit 2 with file:line:col, nothing run on the kernel -------------------------
@pytest.fixture
def no_kernel(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    calls: list[object] = []

    def refuse(*args: object, **kw: object) -> KernelRun:
        calls.append(args)
        raise AssertionError("run_on_kernel was called")

    monkeypatch.setattr(kernel, "run_on_kernel", refuse)
    monkeypatch.setattr(kernel_replay, "run_on_kernel", refuse)
    return calls


@pytest.mark.parametrize(("line", "why"), [
    ("frobnicate(3, 0) = 0", "has no call 'frobnicate'"),
    ("ftruncate(5, 4096) = 0", "fd 5 is not open"),
    ("munmap(m3, 4096) = 0", "m3 does not exist"),
])
@pytest.mark.parametrize("on", ["kernel", "both"])
def test_bad_input_exits_2_before_the_kernel(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             no_kernel: list[object], line: str, why: str,
                                             on: str) -> None:
    path = tmp_path / "bad.trace"
    path.write_text(HEADER + 'memfd_create("t", MFD_ALLOW_SEALING) = 3\n'
                    "ftruncate(3, 4096) = 0\n" + line + "\n")
    assert main(["replay", "--on", on, str(path)]) == 2
    err = capsys.readouterr().err
    assert re.search(rf"^{re.escape(str(path))}:6:\d+: .*{re.escape(why)}", err, re.M), err
    assert no_kernel == []


def test_bad_input_first_stops_a_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       no_kernel: list[object]) -> None:
    bad, good = tmp_path / "a-bad.trace", tmp_path / "b-good.trace"
    bad.write_text(HEADER + "close(4) = 0\n")
    good.write_text(HEADER + 'memfd_create("t", 0) = 3\n')
    assert main(["replay", "--on", "both", str(bad), str(good)]) == 2
    assert f"{bad}:4:" in capsys.readouterr().err
    assert no_kernel == []


# ---- replay_on_kernel's reports (a stand-in kernel) ------------------------------------------
def _replay(tmp_path: Path, text: str, run: KernelRun, against: str,
            monkeypatch: pytest.MonkeyPatch) -> kernel_replay.KernelReplay:
    from checker.replay import check_expectation
    from traces.textfmt import load_trace

    path = tmp_path / "t.trace"
    path.write_text(text)
    t = load_trace(str(path))
    t.path = str(path)
    d = designs.get("memfd")
    rep = check_expectation(d, t)
    assert rep.expectation_met, rep.message
    monkeypatch.setattr(kernel_replay, "run_on_kernel", lambda *a, **k: run)
    return kernel_replay.replay_on_kernel(d, t, rep, against=against)


SEAL = (HEADER + 'memfd_create("t", MFD_ALLOW_SEALING) = 3\n'
        "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = ?\n")


@pytest.mark.parametrize("against", ["kernel", "both"])
def test_divergence_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           against: str) -> None:
    run = KernelRun([Ret(3), Err("EBUSY")], None, None, None)
    kr = _replay(tmp_path, SEAL, run, against, monkeypatch)
    assert kr.skipped is None and kr.divergence is not None
    lines = kr.divergence.splitlines()
    assert lines[0] == f"{tmp_path / 't.trace'}:5:1: step 2 diverges on the kernel"
    assert "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE)" in lines[1]
    assert "model:  0" in kr.divergence and "kernel: -1 EBUSY" in kr.divergence
    assert "model state before the step:" in lines[-1] and "exists=true" in lines[-1]
    assert kr.outcomes == [Ret(3), Err("EBUSY")]


def test_skip_and_agreement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kr = _replay(tmp_path, SEAL, KernelRun([], None, "io_uring: nope", None), "kernel",
                 monkeypatch)
    assert kr.skipped == "io_uring: nope" and kr.divergence is None
    kr = _replay(tmp_path, SEAL, KernelRun([Ret(3), Ret(0)], None, None, None), "kernel",
                 monkeypatch)
    assert kr.divergence is None and kr.skipped is None and "2 steps agree" in kr.summary
    kr = _replay(tmp_path, SEAL, KernelRun([Ret(3)], None, None, "step 2: boom"), "both",
                 monkeypatch)
    assert kr.divergence is not None and "step 2: boom" in kr.divergence


def test_conform_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conform", "--scope", "bogus=1", "--quiet"]) == 2
    assert "no scope parameter 'bogus'" in capsys.readouterr().err
    assert main(["conform", "--jobs", "0", "--quiet"]) == 2
    assert main(["conform", "--design", "nosuch", "--quiet"]) == 2



# ---- the model side of conform (no kernel) ---------------------------------------------------
def test_conformance_scope_has_what_it_must() -> None:
    """The default conformance scope reaches two mappings, a pin, both fd modes, and offers
    every seal; each state once (ghost fields aside)."""
    from checker.cli_common import parse_scope
    from checker.conform import DEFAULT_SCOPES, Model, explore

    d = designs.get("memfd")
    sc = parse_scope(DEFAULT_SCOPES["memfd"])
    depth = sc.pop("depth")
    m = Model(d, {k: 1 for k in d.default_scope})
    g = explore(d, d.scope(sc), depth, m.ghost)
    states = [g.ex.path(dd, i).states()[-1] for dd, i in g.reps]
    assert len({tuple(v for k, v in sorted(st.items()) if k not in m.ghost)
                for st in states}) == len(states)
    maps = [sum(st[f] for f in st if f.startswith("map_")) for st in states]
    assert max(maps) >= 2
    assert any(st["pin_ref"] + st["pin_gup"] for st in states)
    assert any(st["fd_ro"] for st in states) and any(st["fd_rw"] for st in states)
    seals = d.action("fcntl_add_seals").params[1].domain
    for bit in (vocab.F_SEAL_SEAL, vocab.F_SEAL_SHRINK, vocab.F_SEAL_GROW, vocab.F_SEAL_WRITE,
                vocab.F_SEAL_FUTURE_WRITE, vocab.F_SEAL_EXEC):
        assert bit in seals
    assert g.transitions > 10 * len(states)


def test_each_unobserved_step_is_another_traces_observed_last_step() -> None:
    """transition_cases observes only a trace's last step where the path runs through reps:
    every step before it must then be the observed last step of another trace from the same
    initial state (its prefix), so no state after a step goes unobserved."""
    from checker.conform import Model, explore, transition_cases

    d = bounded_design(vocab.MFD_ALLOW_SEALING, only=(
        "memfd_create", "ftruncate", "fcntl_add_seals", "mmap", "store", "close"))
    m = Model(d, {k: 1 for k in d.default_scope})
    g = explore(d, d.scope({}), 3, m.ghost)
    cases = [c for chunk in transition_cases(m, g) for c in chunk]

    def key(c_init: dict[str, int], asteps: list[Any]) -> tuple[object, ...]:
        return (tuple(sorted(c_init.items())),
                *((a.action, tuple(sorted(a.params.items()))) for a in asteps))

    ran = {key(c.init, c.asteps) for c in cases}
    short = [c for c in cases if c.observe_from]
    assert short and all(c.observe_from == len(c.asteps) - 1 for c in short)
    assert len(short) > len(cases) // 2  # most traces share their path's observations
    for c in short:
        for j in range(1, c.observe_from + 1):
            assert key(c.init, c.asteps[:j]) in ran, (c.label, j)
    # a trace observed whole is one whose path leaves the reps (a ghost-equal state)
    assert all(c.observe_from == 0 for c in cases if len(c.asteps) == 1)


def test_observe_from_skips_the_probes_before_it() -> None:
    """run_on_kernel(observe_from=k): no observation for steps 1..k (None), one after each
    later step; compare() checks only the observed ones."""
    from checker.conform import Case, compare
    from traces.kernel import run_on_kernel

    t = parse_trace("# shmemcheck trace 1\nmemfd_create(\"t\", MFD_ALLOW_SEALING) = 3\n"
                    "ftruncate(3, 4096) = 0\nfcntl(3, F_ADD_SEALS, F_SEAL_GROW) = 0\n", "<t>")
    run = run_on_kernel(t.steps, observe=True, observe_from=2)
    if run.skipped:
        pytest.skip(run.skipped)
    assert run.error is None and run.observations is not None
    assert run.observations[:2] == [None, None]
    assert run.observations[2] == Observation(vocab.F_SEAL_GROW, 4096, 0o777, {}, 0)
    wrong = [Observation(0x99, 1, 0o1, {}), Observation(0x99, 1, 0o1, {}),
             run.observations[2]]
    c = Case("t", {}, [], list(t.steps), wrong, None, False)
    assert compare(c, run) is None
    c.expect = [*wrong[:2], Observation(0, 4096, 0o777, {}, 0)]
    mm = compare(c, run)
    assert mm is not None and (mm.index, mm.aspect) == (2, "seals")


def _probe_kinds() -> dict[str, tuple[tuple[str, str], tuple[str, str]]]:
    """In this process: each kind of mapping's (load_then_store, two separate probes)."""
    import ctypes
    import mmap

    from traces.memaccess import in_grandchild, load_then_store, peek

    def own_touch(addr: int) -> Any:
        return lambda: ctypes.memmove(addr, ctypes.string_at(addr, 1), 1)

    fd = os.memfd_create("t")
    os.ftruncate(fd, 4096)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    got = {}
    for what, prot, off in (("rw", mmap.PROT_READ | mmap.PROT_WRITE, 0),
                            ("ro", mmap.PROT_READ, 0), ("none", 0, 0),  # PROT_NONE
                            ("past EOF", mmap.PROT_READ | mmap.PROT_WRITE, 4096)):
        a = libc.mmap(None, 4096, prot, mmap.MAP_SHARED, fd, off)
        assert a not in (None, ctypes.c_void_p(-1).value)
        got[what] = (load_then_store(a), (in_grandchild(peek(a)), in_grandchild(own_touch(a))))
    return got


@pytest.mark.kernel
def test_one_probe_process_answers_as_two() -> None:
    """load_then_store(addr) (one forked process) gives what a load and a load-then-store
    each in a process of its own give, for a shared, a read-only, a PROT_NONE and a
    past-EOF page of a memfd. Run in a child without pytest's faulthandler (a probe's
    fault would print a traceback), as the executor's child runs them."""
    import faulthandler
    import json

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        faulthandler.disable()
        try:
            os.write(w, json.dumps(_probe_kinds()).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    os.waitpid(pid, 0)
    got = {k: (tuple(one), tuple(two)) for k, (one, two) in json.loads(text).items()}
    assert {w: one for w, (one, _) in got.items()} == {
        "rw": ("ok", "ok"), "ro": ("ok", "SIGSEGV"), "none": ("SIGSEGV", "SIGSEGV"),
        "past EOF": ("SIGBUS", "SIGBUS")}
    assert all(one == two for one, two in got.values()), got


def test_walks_are_seeded_and_predict_probes() -> None:
    from checker.conform import Model, random_walks

    d = designs.get("memfd")
    m = Model(d, {k: 1 for k in d.default_scope})
    sc = d.scope({"pages": 2, "maps": 2, "pins": 2, "fds": 2})
    a = random_walks(m, d, sc, 30, 5, 8)
    b = random_walks(m, d, sc, 30, 5, 8)
    c = random_walks(m, d, sc, 30, 6, 8)
    assert [w.steps for w in a] == [w.steps for w in b] != [w.steps for w in c]
    assert all(1 <= len(w.steps) <= 8 and len(w.expect) == len(w.steps) for w in a)
    for w in a:  # counters stay within the walk scope
        for st in (x.after for x in w.asteps):
            assert all(st[f] <= 2 for f in st if f.startswith(("map_", "pin_", "fd_")))
    st = dict(next(iter(d.init.states(d.schema))), exists=1, map_sh_ro=1)
    from traces.concretize import Handles

    h = Handles()
    h.new("map", 2)  # sh_ro
    assert m.observe(st, h).maps == {"m1": ("SIGBUS", "SIGBUS")}
    # sizes are bytes: page 0 holds EOF from the first byte on
    assert m.observe(dict(st, size=1), h).maps == {"m1": ("ok", "SIGSEGV")}
    assert m.observe(dict(st, size=4096), h).maps == {"m1": ("ok", "SIGSEGV")}
    assert m.observe(dict(st, size=2 * 1024 * 1024, hugetlb=1), h).size == 2 * 1024 * 1024

# ---- on the live kernel ----------------------------------------------------------------------
@pytest.mark.kernel
def test_replay_every_scenario_on_both(capsys: pytest.CaptureFixture[str]) -> None:
    from traces.textfmt import load_trace

    every = sorted(glob.glob(str(SCENARIOS / "**" / "*.trace"), recursive=True))
    if not every:
        pytest.skip(f"no scenario traces under {SCENARIOS}")
    # only designs that claim to be the live kernel; historical and proposed designs (the
    # bug corpus, v5) are checked on the model, and against the kernel by their own tests
    files = [f for f in every if designs.get(load_trace(f).design).kernel is not None]
    others = sorted({load_trace(f).design for f in every} - {load_trace(f).design
                                                              for f in files})
    print(f"not replayed on the kernel (designs that do not model it): {', '.join(others)}")
    code = main(["replay", "--on", "both", *files])
    out = capsys.readouterr().out
    assert code == 0, "\n".join(x for x in out.splitlines() if not x.startswith("ok "))
    assert f"replay: {len(files)} traces, {len(files)} as expected, 0 not" in out
    skipped = [x for x in out.splitlines() if "; kernel: SKIP" in x]
    if skipped:  # the rest agreed with the kernel; say which ones never reached it
        pytest.skip(f"{len(skipped)} of {len(files)} traces not run on the kernel: "
                    + "; ".join(x.split("; kernel: SKIP", 1)[1].strip() for x in skipped[:5]))


#: A bounded conformance design: memfd with a few values per parameter, so that depth 4 reaches
#: pins and the writes through them. Same rules, so conforming here is conforming there.
BOUNDED_DOMAINS: dict[str, dict[str, tuple[int, ...]]] = {
    "memfd_create": {"name": (0,)},
    "fcntl_add_seals": {"seals": (vocab.F_SEAL_WRITE, vocab.F_SEAL_FUTURE_WRITE)},
    "pwrite": {"off": (0,), "len": (4096,)},
    "ftruncate": {"len": (0, 4096, vocab.HPAGE_SIZE)},  # bytes: a shmem and a huge page
    "fallocate": {"mode": (vocab.FALLOC_FL_KEEP_SIZE,), "off": (0,)},
    "fchmod": {"mode": (0o666,)}, "reopen": {"how": (0,)},
    "mmap": {"share": (0,)}, "mprotect": {"prot": (1,)},
    # one advice that depends on the mapping and on EOF; writes at offset 0
    "madvise": {"len": (4096,), "advice": (vocab.MADV_ADVICE["MADV_POPULATE_WRITE"],)},
    "mem_write": {"off": (0,)}, "vm_write": {"off": (0,)},
    # the flag that stops the most paths of the domains above (mmap, ftruncate, fallocate,
    # reopen, fchmod); IMMUTABLE and clearing are the decision table's (tests/test_fsflags.py)
    "fs_setflags": {"fd": (0,), "flags": (vocab.FS_APPEND_FL,)},
    "fs_getflags": {"fd": (0,)},  # any description shows them (tests/test_fsflags.py)
    # xfs_io's chattr to the same flag as fs_setflags, so it adds edges, not states (with
    # IMMUTABLE the depth-4 space doubled); the other xflags are the decision table's
    # (tests/test_fsxattr.py)
    "fs_setxattr": {"fd": (0,), "xflags": (vocab.FS_XFLAGS["FS_XFLAG_APPEND"],)},
    "fs_getxattr": {"fd": (0,)},
}


#: the /dev/shm calls get a bounded conform of their own (a tmpfs file instead of the memfd:
#: beside memfd_create they would double the memfd one's space)
SHM_CALLS = ("shm_create", "shm_open", "unlink")
#: file_setattr/file_getattr are left out of the bounded conform: past their own argument
#: checks (no state read) they are FS_IOC_FSSETXATTR/FSGETXATTR's rules, which it compares;
#: they are compared with the kernel by tests/test_file_attr.py's table, tests/test_bytes.py's
#: random lines and the scenario, not at the cost of a larger depth-3 space here
FILE_ATTR_CALLS = ("file_setattr", "file_getattr")


#: the calls around a pin: what unpin and dma_write need (create, map, pin, then the call)
#: and what meets a held pin (seals, size changes, munmap, close)
PIN_CALLS = ("memfd_create", "fcntl_add_seals", "pwrite", "ftruncate", "fallocate", "mmap",
             "munmap", "store", "pin", "gup_pin", "unpin", "dma_write", "close")


def bounded_design(flags: int, tmpfs: bool = False, only: Sequence[str] = ()) -> Design:
    doms = {k: dict(v) for k, v in BOUNDED_DOMAINS.items()}
    doms["memfd_create"]["flags"] = (flags,)
    base = designs.get("memfd")
    drop = set(("memfd_create",) if tmpfs else SHM_CALLS) | set(FILE_ATTR_CALLS)
    if only:
        drop |= {a.name for a in base.actions if a.name not in only}
    return base.derive("memfd", base.doc, kernel=base.kernel, edit={
        k: (lambda a, v=v: a.with_params(**v)) for k, v in doms.items()
        if k not in drop}, drop=sorted(drop & {a.name for a in base.actions}))


@pytest.mark.kernel
@pytest.mark.parametrize("flags", [vocab.MFD_ALLOW_SEALING,
                                   vocab.MFD_ALLOW_SEALING | vocab.MFD_HUGETLB],
                         ids=["shmem", "hugetlb"])
def test_bounded_conform_exercises_every_action(tmp_path: Path, flags: int) -> None:
    from checker.conform import ConformOptions, run_conform

    need("io_uring", "pidns", *(["hugetlb"] if flags & vocab.MFD_HUGETLB else []))
    d = bounded_design(flags)
    # every transition to depth 3, and seeded walks (hugetlb: more of them, every step is
    # slower there and they find what shmem's pin run below does); then, for shmem, every
    # transition to depth 4 among the calls around a pin: unpin and dma_write are a fourth
    # call (create, map, pin). Depth 4 over every call took 370 s in stop 33's suite; these
    # two took 58 s alone
    huge = bool(flags & vocab.MFD_HUGETLB)
    opts = ConformOptions(d.scope({}), 3, walks=300 if huge else 100, seed=7, length=12,
                          walk_scope=d.scope({"pages": 2, "maps": 2, "pins": 2, "fds": 2}),
                          jobs=2, out=str(tmp_path))
    rep = run_conform(d, opts)
    assert not rep.skipped, rep.skipped
    if not huge:
        pd = bounded_design(flags, only=PIN_CALLS)
        prep = run_conform(pd, ConformOptions(pd.scope({}), 4, seed=7, jobs=2,
                                              out=str(tmp_path)))
        assert not prep.skipped, prep.skipped
        assert prep.divergent + prep.unconfirmed == 0, "\n".join(
            f"{dv.where}\n{dv.trace}" for dv in prep.divergences)
        assert prep.tested["unpin"] and prep.tested["dma_write"]
        for a in PIN_CALLS:
            rep.tested[a] += prep.tested[a]
    # every action the search takes; write/read/lseek (f_pos is the trace's, Action.fpos)
    # are compared with the kernel by the scenarios and tests/test_bytes.py instead (sendfile
    # by tests/test_sendfile.py), exec
    # (its write count is the trace's, Action.writers) by tests/test_exec.py; udmabuf, where
    # this kernel has no /dev/udmabuf, in the 6.12/7.2/7.3-rc guests (tests/test_udmabuf.py)
    assert set(rep.left_out) <= {"udmabuf"}, rep.left_out
    assert all(capability(n) == why for n, why in rep.left_out.items()), rep.left_out
    missing = [a.name for a in d.actions
               if rep.tested[a.name] == 0 and a.explored and a.name not in rep.left_out]
    assert not missing, f"actions never compared with the kernel: {missing}"
    assert {a.name for a in d.actions if not a.explored} == {"write", "read", "writev", "readv",
                                                             "lseek", "exec",
                                                             "pwritev2_fpos", "preadv2_fpos",
                                                             "uring_write", "uring_read",
                                                             "setfl", "getfl", "fioclex",
                                                             "fionbio", "ioctl_notty",
                                                             "sendfile"}
    assert rep.divergent + rep.unconfirmed == 0, "\n".join(
        f"{dv.where}\n{dv.trace}" for dv in rep.divergences)
    assert rep.traces == rep.transitions + rep.walks
    assert os.listdir(tmp_path) == []


@pytest.mark.kernel
def test_bounded_conform_of_a_tmpfs_file(tmp_path: Path) -> None:
    """The same every-action conform from a /dev/shm file (F_SEAL_SEAL from birth), to
    depth 3: its own descriptors, names and unlink beside the memfd's paths."""
    from checker.conform import ConformOptions, run_conform

    need("io_uring", "pidns")
    d = bounded_design(vocab.MFD_ALLOW_SEALING, tmpfs=True)
    opts = ConformOptions(d.scope({}), 3, walks=100, seed=7, length=12,
                          walk_scope=d.scope({"pages": 2, "maps": 2, "pins": 2, "fds": 2}),
                          jobs=2, out=str(tmp_path))
    rep = run_conform(d, opts)
    assert not rep.skipped, rep.skipped
    assert all(rep.tested[a] > 0 for a in SHM_CALLS), rep.tested
    assert rep.divergent + rep.unconfirmed == 0, "\n".join(
        f"{dv.where}\n{dv.trace}" for dv in rep.divergences)


@pytest.mark.kernel
def test_conform_cli_summary(capsys: pytest.CaptureFixture[str]) -> None:
    need("pidns")
    assert main(["conform", "--scope", "depth=1", "--random", "20", "--length", "4",
                 "--no-hugetlb", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^conform: [\d,]+ traces, [\d,]+ steps, 0 divergences \(\d+ s\) on "
                     r"kernel \S+ \(this machine\)$", out.splitlines()[-1]), out


@pytest.mark.kernel
def test_conform_actions_restricts_the_run_and_says_so(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    """--actions explores those actions alone, to a depth every call would not reach, and
    the summary names them."""
    need("pidns")
    only = "memfd_create,fcntl_add_seals,ftruncate,fchmod,close"
    assert main(["conform", "--actions", only, "--scope", "pages=1,fds=1,depth=3", "--random",
                 "10", "--length", "5", "--no-hugetlb", "--quiet"]) == 0
    out = capsys.readouterr().out
    tested = re.search(r"^conform: steps compared per action: (.*)$", out, re.M)
    assert tested is not None, out
    assert {t.split()[0] for t in tested.group(1).split(", ")} <= set(only.split(",")), out
    assert out.splitlines()[-1].endswith(f"actions {only.replace(',', ', ')} only"), out


@pytest.mark.parametrize("actions, why", [
    ("memfd_create,teleport", "has no action teleport"),
    (" , ", "no action named"),
])
def test_conform_actions_refuses_what_the_design_lacks(actions: str, why: str) -> None:
    p = run("conform", "--actions", actions, "--random", "1")
    assert p.returncode == 2 and why in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_conform_leaves_out_gigantic_files_unless_asked() -> None:
    """MFD_HUGE_1GB cases need free 1 GiB pages per job: conform drops exactly those flag
    values by default (2 MiB hugetlbfs and shmem stay), and --hugetlb-1g keeps them."""
    from checker.conform_restrict import is_gigantic, restrict_hugetlb

    d = designs.get("memfd")
    flags = next(p.domain for a in d.actions if a.name == "memfd_create"
                 for p in a.params if p.name == "flags")
    r = restrict_hugetlb(d, gigantic_only=True)
    kept = next(p.domain for a in r.actions if a.name == "memfd_create"
                for p in a.params if p.name == "flags")
    dropped = set(flags) - set(kept)
    assert dropped and all(is_gigantic(v) for v in dropped)
    assert not any(is_gigantic(v) for v in kept)
    assert any(v & vocab.MFD_HUGETLB for v in kept)


def test_compare_reports_an_output_the_kernel_filled_otherwise() -> None:
    """conform compares the outputs a step shows, as the model printed them, with those the
    kernel filled (FS_IOC_GETFLAGS's flags here; fstat's st_size and st_mode alike)."""
    from checker.conform import Case, compare
    from traces.textfmt import parse_trace

    t = parse_trace('# shmemcheck trace 1\nmemfd_create("t", 0) = 3\n'
                    "ioctl(3, FS_IOC_GETFLAGS, [FS_APPEND_FL]) = 0\n", "<t>")
    case = Case("t", {}, [], t.steps, [], None, False)
    outcomes = [s.outcome for s in t.steps]
    same = KernelRun(outcomes, None, None, None, [{}, {"fsflags": vocab.FS_APPEND_FL}])
    assert compare(case, same) is None
    mm = compare(case, KernelRun(outcomes, None, None, None, [{}, {"fsflags": 0}]))
    assert mm is not None
    assert (mm.index, mm.aspect, mm.model, mm.kernel) == (1, "fsflags", "0x20", "0x0")
