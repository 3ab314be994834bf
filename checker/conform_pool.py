"""The kernel side of conformance testing: traces run by a pool of worker processes, each
trace in its own forked child (traces.kernel.run_on_kernel), in batches."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Protocol, TypeVar

from traces.kernel import KernelRun, die_with_parent, run_on_kernel
from traces.trace import Step


class Case(Protocol):
    """What the pool reads of checker.conform.Case."""

    @property
    def steps(self) -> list[Step]: ...
    @property
    def noexec(self) -> int | None: ...
    @property
    def init(self) -> dict[str, int]: ...
    @property
    def observe_from(self) -> int: ...


C = TypeVar("C", bound=Case)

__all__ = ["BATCH", "KERNEL_TIMEOUT", "Pool", "run_one"]

KERNEL_TIMEOUT = 20.0  # seconds per trace; a pinned F_SEAL_WRITE costs ~0.17 s
BATCH = 24  # traces per task sent to a worker


def _kernel_batch(batch: list[tuple[list[Step], int | None, int | None, int]]
                  ) -> list[KernelRun]:
    """Worker: run each trace in its own forked child, with observations. A run from an
    initial state whose 1 GiB hstate (hstate_1g) is not this machine's is skipped by
    run_on_kernel when it creates an MFD_HUGE_1GB file (and so is one with no free 1 GiB
    page: with --hugetlb-1g run_conform reserves GIGANTIC_PER_JOB a job, when the kernel can
    allocate them)."""
    return [run_on_kernel(steps, observe=True, noexec_scope=noexec, hstate_1g=hstate,
                          timeout=KERNEL_TIMEOUT, observe_from=since)
            for steps, noexec, hstate, since in batch]


def run_one(case: Case) -> KernelRun:
    """One case again, every step observed (confirming, shrinking, minimising)."""
    return run_on_kernel(case.steps, observe=True, noexec_scope=case.noexec,
                         hstate_1g=case.init.get("hstate_1g"), timeout=KERNEL_TIMEOUT)


def _worker_init() -> None:
    """A pool worker dies with its parent and leaves Ctrl-C to it: a terminal's SIGINT reaches
    the whole process group, and one landing in a worker's os.fork() made Python print
    "Exception ignored in ... _releaseLock" with a traceback; the parent stops the run
    (checker/interrupt.py) and the workers with it."""
    import signal

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Pool:
    """Workers started fresh (spawn), so that their forks stay cheap."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_worker_init)

    def run(self, chunks: Iterator[list[C]], done: Callable[[C, KernelRun], None]) -> None:
        pending: dict[Future[list[KernelRun]], list[C]] = {}
        buf: list[C] = []

        def submit(cases: list[C]) -> None:
            fut = self.pool.submit(_kernel_batch, [(c.steps, c.noexec, c.init.get("hstate_1g"),
                                                    c.observe_from) for c in cases])
            pending[fut] = cases

        def drain(limit: int) -> None:
            while len(pending) > limit:
                ready, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in ready:
                    cases = pending.pop(fut)
                    try:
                        runs = fut.result()
                    except Exception as e:  # a dead worker: each case fails, loudly
                        runs = [KernelRun([], None, None, f"worker failed: {e!r}")] * len(cases)
                    for c, r in zip(cases, runs, strict=True):
                        done(c, r)

        for chunk in chunks:
            buf.extend(chunk)
            while len(buf) >= BATCH:
                submit(buf[:BATCH])
                del buf[:BATCH]
                drain(4 * self.jobs)
        if buf:
            submit(buf)
        drain(0)

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


# ---- shrinking and writing ----------------------------------------------------------------
