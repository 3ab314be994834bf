"""Huge pages for kernel runs: reserve free 2 MiB pages by raising vm.nr_hugepages, and always
put the sysctl back, even after a run was killed (a state file under /run records the original).

The hugetlbfs capability check lives here too: hugetlb traces need the default huge page size
to be 2 MiB and free pages (or a writable nr_hugepages).
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from model import vocab
from traces.rawsys import ename as _ename

NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"
# vm.nr_hugepages as it was before a run raised it, and that run's pid: written before the
# sysctl is raised and removed once it is restored, so a run killed in between (SIGKILL) is
# undone by the next one (restore_hugepages). Under /run: gone after a reboot, as the raise is.
HUGEPAGES_STATE = "/run/shmemcheck-nr_hugepages"
_HELD = [0]  # reservations of this process that raised the sysctl and are not over yet

__all__ = ["HUGEPAGES_STATE", "NR_HUGEPAGES", "hugepages_reserved", "hugetlb_reason",
           "restore_hugepages"]


def _meminfo(key: str) -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name == key:
                return int(rest.split()[0])
    raise KeyError(key)


def hugetlb_reason(*, need_free: bool) -> str | None:
    if not os.path.exists(NR_HUGEPAGES):
        return f"hugetlb: no {NR_HUGEPAGES} (kernel without hugetlbfs)"
    size_kb = _meminfo("Hugepagesize")
    if size_kb != vocab.HPAGE_SIZE // 1024:
        return f"hugetlb: default huge page size is {size_kb} kB, not 2048 kB"
    free = _meminfo("HugePages_Free")
    if need_free and free == 0:
        return "hugetlb: no free 2 MiB huge pages (reserve some with hugepages_reserved())"
    if free == 0 and not os.access(NR_HUGEPAGES, os.W_OK):
        return f"hugetlb: no free huge pages and {NR_HUGEPAGES} is not writable"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_state() -> tuple[int, set[int]] | None:
    """(original nr_hugepages, pids of the runs holding a raise) from HUGEPAGES_STATE."""
    try:
        with open(HUGEPAGES_STATE) as f:
            old, *pids = f.read().split()
        return int(old), {int(p) for p in pids}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return -1, set()  # unreadable: remove it, restore nothing


@contextmanager
def _locked() -> Iterator[None]:
    """Serialise the read-modify-write of nr_hugepages and HUGEPAGES_STATE between runs (two
    test runs, or a conform beside a replay, reserve at the same time)."""
    fd = os.open(HUGEPAGES_STATE + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write_sysctl(v: int) -> str | None:
    try:
        with open(NR_HUGEPAGES, "w") as f:
            f.write(str(v))
    except OSError as ex:
        return f"cannot write {v} to {NR_HUGEPAGES}: {_ename(ex.errno or 0)}"
    return None


def _put_back(old: int, holders: set[int]) -> str | None:
    """With the lock held: the original value back once no live run holds a raise, else the
    state file rewritten with the live holders. Returns what was done (None: nothing)."""
    live = {p for p in holders if p != os.getpid() and _alive(p)}
    if live:
        return _record_state(old, live)
    msg = None
    if old >= 0:
        msg = _write_sysctl(old) or f"restored vm.nr_hugepages to {old}"
    with suppress(FileNotFoundError):
        os.unlink(HUGEPAGES_STATE)
    return msg


def restore_hugepages() -> str | None:
    """Undo a raise of vm.nr_hugepages left by runs that were killed before restoring it: if
    no process HUGEPAGES_STATE names is alive, write the recorded original value back and
    remove the file. Returns what was done (None: nothing to do)."""
    with _locked():
        st = _read_state()
        if st is None:
            return None
        old, pids = st
        if any(p != os.getpid() and _alive(p) for p in pids):
            return None  # a run still going restores it itself
        msg = _put_back(old, set())
    if msg and msg.startswith("restored"):
        who = " ".join(str(p) for p in sorted(pids)) or "?"
        return f"{msg} (left raised by killed run pid {who})"
    return msg


def _record_state(old: int, holders: set[int]) -> str | None:
    """Write (old, holders) to HUGEPAGES_STATE atomically; a reason if it cannot be written."""
    tmp = f"{HUGEPAGES_STATE}.{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(" ".join(str(x) for x in (old, *sorted(holders))) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, HUGEPAGES_STATE)
    except OSError as ex:
        with suppress(OSError):
            os.unlink(tmp)
        return (f"hugetlb: cannot record vm.nr_hugepages in {HUGEPAGES_STATE} before raising "
                f"it: {_ename(ex.errno or 0)}")
    return None


@contextmanager
def hugepages_reserved(n: int) -> Iterator[str | None]:
    """Ensure >= n free 2 MiB huge pages by raising vm.nr_hugepages; yield None or a reason.

    Before the sysctl is raised, the original value and this run's pid are recorded in
    HUGEPAGES_STATE (a run that finds the file adds its pid: the original stays the value
    before the first raise). On exit the run removes its pid, and the last live holder writes
    the original back, so concurrent runs never leave a raise behind; a kill that skips the
    exit is undone by the next run (restore_hugepages)."""
    restore_hugepages()
    reason = hugetlb_reason(need_free=False)
    if reason:
        yield reason
        return
    holding = False
    # a SIGTERM (a CI timeout, a kill) must not skip the restore below: make it an exit
    prev_term = None
    if threading.current_thread() is threading.main_thread():
        def _term(signum: int, frame: object) -> None:
            raise SystemExit(128 + signum)
        prev_term = signal.signal(signal.SIGTERM, _term)
    try:
        with _locked():
            free = _meminfo("HugePages_Free")
            if free < n:
                with open(NR_HUGEPAGES) as f:
                    cur = int(f.read())
                st = _read_state()
                old, holders = st if st is not None and st[0] >= 0 else (cur, set())
                reason = _record_state(old, holders | {os.getpid()})
                holding = reason is None
                _HELD[0] += holding
                if reason is None:
                    err = _write_sysctl(cur + n - free)
                    reason = f"hugetlb: {err}" if err else None
                free = _meminfo("HugePages_Free")
                if reason is None and free < n:
                    reason = f"hugetlb: only {free} free huge pages after raising nr_hugepages"
        yield reason
    finally:
        if holding:
            _HELD[0] -= 1
        if holding and _HELD[0] == 0:  # a nested reservation leaves it to the outer one
            with _locked():
                st = _read_state()
                if st is not None:
                    _put_back(st[0], st[1] - {os.getpid()})
        if prev_term is not None:
            signal.signal(signal.SIGTERM, prev_term)
