"""Shared fixtures and helpers of the test suite (import plain helpers from here, never from
another test module): replay a trace text on a design, run the command line, explore a design's
catalogue once per session, restrict a design to its explored domains."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from checker.explicit import Explorer, ExploreResult
from checker.replay import model_outcomes
from model import designs
from model.lang.design import Design
from properties.catalogue import for_design
from traces.textfmt import parse_trace
from traces.trace import Err

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`shmemcheck ARGS` in a subprocess from the repository root (so exit status, stdout and
    stderr are what a user sees)."""
    return subprocess.run([sys.executable, "-m", "checker.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


@functools.cache
def explore_catalogue(name: str) -> ExploreResult:
    """The explicit search of a built-in design at its default scope with its whole catalogue:
    run once per session, read by every test that needs it (the manifest, engines-agree,
    the catalogue verdict tests)."""
    d = designs.get(name)
    return Explorer(d, d.scope(), for_design(d)).run()


@pytest.fixture(scope="session")
def memfd() -> Design:
    return designs.get("memfd")


@pytest.fixture(scope="session")
def explored() -> Callable[[str], ExploreResult]:
    return explore_catalogue


@pytest.fixture(scope="session")
def corpus_markdown(tmp_path_factory: pytest.TempPathFactory
                    ) -> tuple[subprocess.CompletedProcess[str], Path]:
    """README's `shmemcheck corpus --format markdown`, run once per session with `--out DIR`
    added (which changes nothing on stdout) so that tests/test_readme.py checks its table and
    tests/test_corpus.py the traces and reproducers it writes: (the process, DIR)."""
    return shared_run(tmp_path_factory, *SHARED["corpus"], timeout=1800)


@pytest.fixture(scope="session")
def pdr_certificates(tmp_path_factory: pytest.TempPathFactory
                     ) -> tuple[subprocess.CompletedProcess[str], Path]:
    """README's `shmemcheck check --engine pdr --certificate c.smt2`, run once per session with
    `--format json` added, so that tests/test_readme.py checks the certificate file and
    tests/test_engines_agree.py reads every pdr verdict from the same run: (the process, the
    directory holding c.smt2)."""
    return shared_run(tmp_path_factory, *SHARED["pdr"], timeout=1800)


#: the shared runs (shared_run: name, then shmemcheck's arguments), longest first;
#: FIXTURES_OF: the fixtures that read each
SHARED: dict[str, tuple[str, ...]] = {
    "pdr": ("pdr", "check", "--engine", "pdr", "--certificate", "{dir}/c.smt2", "--format",
            "json", "--quiet"),
    "corpus": ("corpus", "corpus", "--format", "markdown", "--out", "{dir}"),
}
FIXTURES_OF = {"pdr": ("pdr_certificates", "pdr_later"), "corpus": ("corpus_markdown",)}


@pytest.fixture(scope="session")
def pdr_later(tmp_path_factory: pytest.TempPathFactory
              ) -> Callable[[], tuple[subprocess.CompletedProcess[str], Path]]:
    """pdr_certificates, read when called: a test does its own work first while the run
    finishes in the background."""
    return functools.partial(shared_run, tmp_path_factory, *SHARED["pdr"], timeout=1800)


@pytest.fixture(scope="session", autouse=True)
def _shared_runs_in_background(request: pytest.FixtureRequest,
                               tmp_path_factory: pytest.TempPathFactory) -> None:
    """Start the shared runs the selected tests need (README's pdr run: ~4 min alone) in a
    thread of the first worker as soon as it starts, one after the other, so that no worker
    sits waiting on a run's lock while the other one computes it (stop 32: the suite's
    critical path). A test that asks first still runs it itself (shared_run's lock)."""
    wanted = {f for item in request.session.items for f in getattr(item, "fixturenames", ())}
    todo = [n for n in SHARED if wanted & set(FIXTURES_OF[n])]
    if not todo or not _first_to_start(tmp_path_factory):
        return

    def work() -> None:
        for n in todo:
            with contextlib.suppress(subprocess.TimeoutExpired):
                shared_run(tmp_path_factory, *SHARED[n], timeout=1800)

    threading.Thread(target=work, name="shared-runs").start()


def _first_to_start(factory: pytest.TempPathFactory) -> bool:
    """True in exactly one process of the run (the first to create the marker file)."""
    try:
        fd = os.open(shared_dir(factory) / "shared-runs.started", os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def explored_domains(d: Design) -> Design:
    """The design with every parameter restricted to its explored domain (symbolically)."""
    acts = tuple(dataclasses.replace(a, params=tuple(
        dataclasses.replace(p, symbolic_domain=True) for p in a.params)) for a in d.actions)
    return dataclasses.replace(d, name=d.name, actions=acts)


def judged(text: str, design: str = "memfd") -> Any:
    """A random trace's text judged on the model, every step (design, trace, ModelReplay),
    or the refusal's message when the model refuses a line as outside it."""
    from checker.judge import TraceInputError

    d = designs.get(design)
    t = parse_trace(text, "<random>")
    try:
        return d, t, model_outcomes(d, t, stop_at_divergence=False)
    except TraceInputError as e:
        return str(e)


def random_trace_agrees_on_kernel(text: str) -> None:
    """The kernel gives every outcome the model gives the trace (skipped, with the reason,
    when the model refuses a line or the kernel cannot run it)."""
    from checker.kernel_replay import replay_on_kernel

    r = judged(text)
    if isinstance(r, str):
        pytest.skip(f"refused: {r}")
    d, t, rep = r
    k = replay_on_kernel(d, t, rep, against="both")
    if k.skipped:
        pytest.skip(k.skipped)
    assert k.divergence is None, (text, k.divergence)


def replay_text(text: str, design: str = "memfd") -> str | None:
    """None when every outcome written in `text` is the model's; else the divergence."""
    t = parse_trace("# shmemcheck trace 1\n# design: " + design + "\n" + text, "<table>")
    rep = model_outcomes(designs.get(design), t)
    return rep.divergence.text("<table>") if rep.divergence else None


@pytest.fixture
def replay() -> object:
    return replay_text


def kernel_agrees(text: str, hugepages: int = 0) -> None:
    """The live kernel gives every outcome the trace text writes, from a fresh process (with
    `hugepages` huge pages reserved and restored when the text makes an MFD_HUGETLB file);
    skips with the kernel's reason when it cannot run it."""
    import contextlib

    from checker.processes import flatten
    from traces.kernel import hugepages_reserved, run_on_kernel
    from traces.outputs import shown_outputs

    t = parse_trace("# shmemcheck trace 1\n" + text + "\n", "<table>")
    t = flatten(designs.get(t.design), t)  # processes, lowered as replay runs them
    with (hugepages_reserved(hugepages) if hugepages and "MFD_HUGETLB" in text
          else contextlib.nullcontext()) as why:
        if why:
            pytest.skip(why)
        run = run_on_kernel(t.steps)
    if run.skipped:
        pytest.skip(run.skipped)
    assert run.error is None, run.error
    assert run.outcomes == [s.outcome for s in t.steps]
    # and every output the text shows (fstat's st_size and st_mode, FS_IOC_GETFLAGS's [N])
    shown = [shown_outputs(s) for s in t.steps]
    for s, want, got in zip(t.steps, shown, run.outputs, strict=True):
        assert isinstance(s.outcome, Err) or set(want) <= set(got), (s, want, got)
    assert [{k: v for k, v in got.items() if k in want} for got, want in
            zip(run.outputs, shown, strict=True)] == \
        [{k: v for k, v in want.items() if k in got} for got, want in
         zip(run.outputs, shown, strict=True)]


def pytest_sessionstart(session: pytest.Session) -> None:
    """A run killed while it had vm.nr_hugepages raised left it so: put it back first (once,
    in pytest-xdist's controller, before any worker starts)."""
    from traces.kernel import restore_hugepages

    if os.environ.get("PYTEST_XDIST_WORKER"):
        return

    msg = restore_hugepages()
    if msg:
        print(f"\nshmemcheck tests: {msg}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    """How long tests waited on another worker's lock (run_lock: the kernel tests, the shared
    runs): time a core sat idle, which --durations counts as the waiting test's own."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    factory = getattr(config, "_tmp_path_factory", None)
    log = shared_dir(factory) / "lock-waits.jsonl" if factory else None
    if log is None or not log.exists():
        return
    waits: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        name, secs, _ = json.loads(line)
        waits.setdefault(name, []).append(secs)
    terminalreporter.write_line("lock waits: " + ", ".join(
        f"{n} {len(w)} × {sum(w):.0f} s" for n, w in sorted(waits.items())))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The kernel tests first, then the slow tests (last of them those that read the pdr run
    started in the background: stop 33 waited 213 s for it), then the rest, each in
    collection order: a long test left for the end keeps one core busy while the other has
    nothing left to do (stop 33: 36 min). A worker also writes which tests touch the kernel, for the
    controller's scheduler (`pytest_xdist_make_scheduler`)."""
    def rank(item: pytest.Item) -> int:
        if touches_kernel(item):
            return 0
        if item.get_closest_marker("slow"):  # those that read the background pdr run last
            return 2 if "pdr_later" in getattr(item, "fixturenames", ()) else 1
        return 3

    items.sort(key=rank)
    factory = getattr(config, "_tmp_path_factory", None)
    if os.environ.get("PYTEST_XDIST_WORKER") and factory is not None:
        ids = [item.nodeid for item in items if touches_kernel(item)]
        out = shared_dir(factory) / "kernel-tests.json"
        tmp = out.with_name(f"{out.name}.{os.getpid()}")
        tmp.write_text(json.dumps(ids))
        os.replace(tmp, out)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist's load scheduling, with every kernel test in one unit of work: one worker
    runs them in turn (first: the largest unit goes first), so that no worker waits on the
    other's kernel lock (stop 33: 211 s of waits). (`--dist loadgroup` would do this with an
    xdist_group mark, but pytest 9 ignores the node id xdist 3.8 rewrites for it.)"""
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    factory = getattr(config, "_tmp_path_factory", None)

    class KernelGroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        kernel: frozenset[str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.kernel is None:  # every worker has collected by now
                f = shared_dir(factory) / "kernel-tests.json" if factory else None
                self.kernel = frozenset(json.loads(f.read_text())) if f and f.exists() \
                    else frozenset()
            return "kernel" if nodeid in self.kernel else nodeid

    return KernelGroupScheduling(config, log)


def touches_kernel(item: pytest.Item) -> bool:
    """Marked kernel or qemu, or in a module whose every test touches the kernel's state."""
    mod = getattr(item, "module", None)
    module = mod.__name__.rpartition(".")[2] if mod is not None else ""
    return bool(item.get_closest_marker("kernel") or item.get_closest_marker("qemu")
                or module in KERNEL_MODULES)


#: modules whose every test touches the kernel's state without a `kernel` mark on each test
#: (a kernel executor run, the huge-page state file)
KERNEL_MODULES = frozenset({"test_conform_safety"})


def shared_dir(factory: pytest.TempPathFactory) -> Path:
    """A directory every pytest-xdist worker of this run sees (pyproject addopts `-n 2`)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def run_lock(factory: pytest.TempPathFactory, name: str) -> Iterator[None]:
    """An exclusive lock held across the run's workers while the block runs."""
    with open(shared_dir(factory) / f"{name}.lock", "a") as f:
        t0 = time.monotonic()
        fcntl.flock(f, fcntl.LOCK_EX)
        waited = time.monotonic() - t0
        if waited >= 1.0 and threading.current_thread() is threading.main_thread():
            with open(shared_dir(factory) / "lock-waits.jsonl", "a") as log:
                log.write(json.dumps([name, round(waited, 1),
                                      os.environ.get("PYTEST_CURRENT_TEST", "")]) + "\n")
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def _kernel_tests_one_at_a_time(request: pytest.FixtureRequest,
                                tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The tests that touch the live kernel (marks kernel, qemu; KERNEL_MODULES) run one at a
    time across the workers, as in a serial run: they share vm.nr_hugepages, the huge-page
    pool and the hugepages state file."""
    if touches_kernel(request.node):
        with run_lock(tmp_path_factory, "kernel"):
            yield
    else:
        yield


def shared_run(factory: pytest.TempPathFactory, name: str, *args: str,
               timeout: float) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`shmemcheck ARGS --out/... DIR` run once per test run, whichever worker asks first; the
    others wait for it and read its result: (the process, DIR). `{dir}` in ARGS is DIR."""
    where = shared_dir(factory) / name
    saved = shared_dir(factory) / f"{name}.json"
    with run_lock(factory, name):
        if saved.exists():
            code, out, err = json.loads(saved.read_text())
            return subprocess.CompletedProcess(list(args), code, out, err), where
        where.mkdir(exist_ok=True)
        p = run(*[a.replace("{dir}", str(where)) for a in args], timeout=timeout)
        saved.write_text(json.dumps([p.returncode, p.stdout, p.stderr]))
        return p, where


def counter_design() -> Design:
    """A small fixture design for the engines (not a kernel): a counter `n` (0..3) that `inc`
    raises until `lock` freezes it; `lock` is EINVAL while n = 0. Reachable: n = 0..3 unlocked,
    n = 1..3 locked — 7 states."""
    from model.lang import Action, Field, Init, Schema, boolean, fail, nat, ok
    from model.lang.schema import StateView

    sch = Schema((Field("n", nat(fixed=3)), Field("locked", boolean())))

    def inc(s: StateView) -> list[object]:
        return [fail("EPERM", when=s.locked, label="frozen"),
                fail("ENOSPC", when=s.n == 3, label="full"),
                ok(0, n=s.n + 1)]

    def lock(s: StateView) -> list[object]:
        return [fail("EINVAL", when=s.n == 0, label="empty"), ok(0, locked=True)]

    return Design("counter", "test fixture: a counter and a lock", sch,
                  Init({"n": 0, "locked": False}),
                  (Action("inc", (), inc, "inc", ()),  # type: ignore[arg-type]
                   Action("lock", (), lock, "lock", ())))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def counter() -> Design:
    return counter_design()
