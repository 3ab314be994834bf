"""Huge pages for kernel runs: reserve free 2 MiB pages by raising vm.nr_hugepages, and always
put the sysctl back, even after a run was killed (a state file under /run records the original).

The hugetlbfs capability check lives here too: hugetlb traces need the default huge page size
to be 2 MiB and free pages (or a writable nr_hugepages).
"""

from __future__ import annotations

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


def _read_state() -> tuple[int, int] | None:
    """(original nr_hugepages, pid of the run that raised it) from HUGEPAGES_STATE."""
    try:
        with open(HUGEPAGES_STATE) as f:
            old, pid = f.read().split()
        return int(old), int(pid)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return -1, 0  # unreadable: remove it, restore nothing


def restore_hugepages() -> str | None:
    """Undo a raise of vm.nr_hugepages left by a run that was killed before restoring it: if
    HUGEPAGES_STATE names a process that is gone, write its recorded value back and remove the
    file. Returns what was done (None: nothing to do)."""
    st = _read_state()
    if st is None:
        return None
    old, pid = st
    if pid and _alive(pid) and pid != os.getpid():
        return None  # that run is still going and restores it itself
    msg = None
    if old >= 0:
        try:
            with open(NR_HUGEPAGES, "w") as f:
                f.write(str(old))
            msg = f"restored vm.nr_hugepages to {old} (left raised by killed run pid {pid})"
        except OSError as ex:
            return f"cannot restore vm.nr_hugepages to {old}: {_ename(ex.errno or 0)}"
    with suppress(FileNotFoundError):
        os.unlink(HUGEPAGES_STATE)
    return msg


def _record_state(old: int) -> str | None:
    """Write (old, our pid) to HUGEPAGES_STATE atomically; a reason if it cannot be written."""
    tmp = f"{HUGEPAGES_STATE}.{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(f"{old} {os.getpid()}\n")
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

    The old nr_hugepages value is written back on exit whenever it was changed. Before it is
    raised, the old value is recorded in HUGEPAGES_STATE (unless another live run recorded the
    true original already), so that a kill that skips the restore is undone by the next run."""
    restore_hugepages()
    reason = hugetlb_reason(need_free=False)
    if reason:
        yield reason
        return
    with open(NR_HUGEPAGES) as f:
        old = int(f.read())
    changed = recorded = False
    # a SIGTERM (a CI timeout, a kill) must not skip the restore below: make it an exit
    prev_term = None
    if threading.current_thread() is threading.main_thread():
        def _term(signum: int, frame: object) -> None:
            raise SystemExit(128 + signum)
        prev_term = signal.signal(signal.SIGTERM, _term)
    try:
        free = _meminfo("HugePages_Free")
        if free < n and _read_state() is None:
            reason = _record_state(old)
            recorded = reason is None
        if free < n and reason is None:
            changed = True
            try:
                with open(NR_HUGEPAGES, "w") as f:
                    f.write(str(old + n - free))
            except OSError as ex:
                reason = f"hugetlb: cannot raise {NR_HUGEPAGES}: {_ename(ex.errno or 0)}"
            free = _meminfo("HugePages_Free")
            if reason is None and free < n:
                reason = f"hugetlb: only {free} free huge pages after raising nr_hugepages"
        yield reason
    finally:
        if changed:
            with open(NR_HUGEPAGES, "w") as f:
                f.write(str(old))
        if recorded:
            with suppress(FileNotFoundError):
                os.unlink(HUGEPAGES_STATE)
        if prev_term is not None:
            signal.signal(signal.SIGTERM, prev_term)
