"""Ctrl-C stops the whole run, even inside a z3 query.

z3 by default catches SIGINT during a query and only cancels that query (it then answers
`unknown`, reason "interrupted from keyboard" or "canceled"); Python never sees the signal and
the run goes on. `install()` turns z3's handler off (global parameter `ctrl_c`) and lets Python
keep SIGINT: its C-level handler writes the signal number to a wakeup pipe, a watcher thread
reading that pipe interrupts z3's main context (Z3_interrupt is meant to be called from another
thread), and the main thread, back from the solver, raises KeyboardInterrupt at once. The CLI
turns that into exit status 130, with no output file written. Should the main thread not come
back within GRACE seconds (a long C call), the watcher ends the
process itself with status 130.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

GRACE = 5.0
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process killed by Ctrl-C

_requested = threading.Event()
_active = threading.Event()  # a command is running (the grace exit is for it, not for a caller)
_installed = False
_contexts: list[Any] = []  # z3 contexts besides the main one, while a query runs in them


def requested() -> bool:
    """Has the user asked the run to stop?"""
    return _requested.is_set()


def _interrupt_z3() -> None:
    z3 = sys.modules.get("z3.z3")
    # the main context, if the main thread made it (creating it here would race with that)
    ctx = getattr(z3, "_main_ctx", None)
    for c in ([ctx] if ctx is not None else []) + list(_contexts):
        try:
            c.interrupt()
        except Exception:  # noqa: BLE001 -- best effort: the grace exit still ends the run
            pass


@contextmanager
def watching(ctx: Any) -> Iterator[None]:
    """While a query runs in another z3 context than the main one: Ctrl-C interrupts it too."""
    _contexts.append(ctx)
    try:
        yield
    finally:
        _contexts.remove(ctx)


def _watch(fd: int) -> None:
    while True:
        try:
            data = os.read(fd, 64)
        except InterruptedError:
            continue
        if not data:
            return
        if signal.SIGINT in data and _active.is_set():
            _requested.set()
            deadline = time.monotonic() + GRACE
            while _active.is_set() and time.monotonic() < deadline:
                _interrupt_z3()  # again and again: a query started after the first is stopped too
                time.sleep(0.1)
            if _active.is_set():
                os.write(2, b"shmemcheck: interrupted\n")
                os._exit(EXIT_INTERRUPTED)


def install(with_z3: bool) -> None:
    """Make Ctrl-C stop a run that makes z3 queries (call from the main thread, before any
    query); with_z3=False: nothing to do."""
    global _installed
    if not with_z3:  # Python's own KeyboardInterrupt reaches everything else
        return
    import z3

    z3.set_param("ctrl_c", False)
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    _installed = True
    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=_watch, args=(r,), name="shmemcheck-sigint", daemon=True).start()


@contextmanager
def active() -> Iterator[None]:
    """Around one command: a Ctrl-C during it stops it (see the module docstring)."""
    _requested.clear()
    _active.set()
    try:
        yield
    finally:
        _active.clear()


def unknown_reason(solver: Any) -> str:
    """Why a solver answered `unknown`, in the user's words: z3 says "canceled" when its timer
    fires inside some tactics; with Ctrl-C handled above, a cancel is a timeout."""
    if requested():
        raise KeyboardInterrupt
    why = str(solver.reason_unknown())
    return "timeout" if why == "canceled" else why
