"""Huge pages for kernel runs: reserve free 2 MiB pages by raising vm.nr_hugepages (or 1 GiB
pages through /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages), and always put the
count back, even after a run was killed (a state file under /run per page size records the
original).

The hugetlbfs capability checks live here too: hugetlb traces need the default huge page size
to be 2 MiB and free pages (or a writable nr_hugepages); MFD_HUGE_1GB traces need the 1 GiB
hstate (X86_FEATURE_GBPAGES) and a free 1 GiB page, which a fragmented machine may not give.
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
# The 1 GiB hstate (x86-64 with X86_FEATURE_GBPAGES): its own count and its own state file.
GIGANTIC_DIR = "/sys/kernel/mm/hugepages/hugepages-1048576kB"
GIGANTIC_STATE = "/run/shmemcheck-nr_hugepages-1048576kB"
GIGANTIC_KB = 1 << 20
# reservations of this process that raised a count and are not over yet, per page size (kB)
_HELD: dict[int, int] = {}

__all__ = ["GIGANTIC_DIR", "GIGANTIC_KB", "GIGANTIC_STATE", "HUGEPAGES_STATE", "NR_HUGEPAGES",
           "gigantic_need", "gigantic_reason", "hstate_1g_present", "hugepages_reserved",
           "hugetlb_reason", "restore_hugepages"]


class _Pool:
    """One hstate's count, state file and free count (read through the module's names at call
    time, so tests can point them at stand-in files)."""

    def __init__(self, size_kb: int) -> None:
        self.kb = size_kb

    @property
    def giga(self) -> bool:
        return self.kb == GIGANTIC_KB

    @property
    def sysctl(self) -> str:
        return f"{GIGANTIC_DIR}/nr_hugepages" if self.giga else NR_HUGEPAGES

    @property
    def state(self) -> str:
        return GIGANTIC_STATE if self.giga else HUGEPAGES_STATE

    @property
    def name(self) -> str:
        return "the 1 GiB nr_hugepages" if self.giga else "vm.nr_hugepages"

    def free(self) -> int:
        if not self.giga:
            return _meminfo("HugePages_Free")
        with open(f"{GIGANTIC_DIR}/free_hugepages") as f:
            return int(f.read())

    def reason(self) -> str | None:
        return gigantic_reason(need_free=False) if self.giga else hugetlb_reason(need_free=False)


def _pool(size_kb: int) -> _Pool:
    if size_kb not in (vocab.HPAGE_SIZE // 1024, GIGANTIC_KB):
        raise ValueError(f"no huge page size of {size_kb} kB on x86-64")
    return _Pool(size_kb)


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


def hstate_1g_present() -> bool:
    """The machine has a 1 GiB hstate (hugetlb_add_hstate() at boot with X86_FEATURE_GBPAGES):
    memfd_create(MFD_HUGETLB|MFD_HUGE_1GB) is then not ENODEV (the model's hstate_1g)."""
    return os.path.isdir(GIGANTIC_DIR)


def gigantic_reason(*, need_free: bool) -> str | None:
    """None if 1 GiB hugetlbfs files can be run here, else why not."""
    if not hstate_1g_present():
        return f"hugetlb 1 GiB: no {GIGANTIC_DIR} (no 1 GiB hstate on this machine)"
    try:
        free = _Pool(GIGANTIC_KB).free()
    except (OSError, ValueError) as ex:
        return f"hugetlb 1 GiB: cannot read its free_hugepages: {ex}"
    if need_free and free == 0:
        return "hugetlb 1 GiB: no free 1 GiB huge page (reserve one with hugepages_reserved())"
    if free == 0 and not os.access(f"{GIGANTIC_DIR}/nr_hugepages", os.W_OK):
        return "hugetlb 1 GiB: no free 1 GiB page and its nr_hugepages is not writable"
    return None


def gigantic_need(hstate_1g: int | None) -> str | None:
    """Why an MFD_HUGE_1GB trace cannot run here (None: it can): the trace's initial state
    says the machine has (1) or lacks (0) a 1 GiB hstate, which this one must match; with
    one, a free 1 GiB page is needed (hugepages_reserved(n, GIGANTIC_KB) makes one)."""
    here = hstate_1g_present()
    if hstate_1g is not None and bool(hstate_1g) != here:
        return ("hugetlb 1 GiB: the trace starts with hstate_1g="
                f"{hstate_1g} and this machine {'has' if here else 'has no'} a 1 GiB hstate "
                "(hstates are fixed at boot)")
    return gigantic_reason(need_free=True) if here else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_state(pool: _Pool) -> tuple[int, set[int]] | None:
    """(original nr_hugepages, pids of the runs holding a raise) from the pool's state file."""
    try:
        with open(pool.state) as f:
            old, *pids = f.read().split()
        return int(old), {int(p) for p in pids}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return -1, set()  # unreadable: remove it, restore nothing


@contextmanager
def _locked(pool: _Pool) -> Iterator[None]:
    """Serialise the read-modify-write of nr_hugepages and HUGEPAGES_STATE between runs (two
    test runs, or a conform beside a replay, reserve at the same time)."""
    fd = os.open(pool.state + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write_sysctl(pool: _Pool, v: int) -> str | None:
    try:
        with open(pool.sysctl, "w") as f:
            f.write(str(v))
    except OSError as ex:
        return f"cannot write {v} to {pool.sysctl}: {_ename(ex.errno or 0)}"
    return None


def _put_back(pool: _Pool, old: int, holders: set[int]) -> str | None:
    """With the lock held: the original value back once no live run holds a raise, else the
    state file rewritten with the live holders. Returns what was done (None: nothing)."""
    live = {p for p in holders if p != os.getpid() and _alive(p)}
    if live:
        return _record_state(pool, old, live)
    msg = None
    if old >= 0:
        msg = _write_sysctl(pool, old) or f"restored {pool.name} to {old}"
    with suppress(FileNotFoundError):
        os.unlink(pool.state)
    return msg


def restore_hugepages(size_kb: int | None = None) -> str | None:
    """Undo a raise of vm.nr_hugepages (or of the 1 GiB count: size_kb=GIGANTIC_KB; None:
    both) left by runs that were killed before restoring it: if no process the state file
    names is alive, write the recorded original value back and remove the file. Returns what
    was done (None: nothing to do)."""
    if size_kb is None:
        msgs = [m for m in (restore_hugepages(vocab.HPAGE_SIZE // 1024),
                            restore_hugepages(GIGANTIC_KB)) if m]
        return "; ".join(msgs) or None
    pool = _pool(size_kb)
    if pool.giga and not os.path.exists(pool.state):
        return None  # nothing recorded (and no lock file to create under /run)
    with _locked(pool):
        st = _read_state(pool)
        if st is None:
            return None
        old, pids = st
        if any(p != os.getpid() and _alive(p) for p in pids):
            return None  # a run still going restores it itself
        msg = _put_back(pool, old, set())
    if msg and msg.startswith("restored"):
        who = " ".join(str(p) for p in sorted(pids)) or "?"
        return f"{msg} (left raised by killed run pid {who})"
    return msg


def _record_state(pool: _Pool, old: int, holders: set[int]) -> str | None:
    """Write (old, holders) to the pool's state file atomically; a reason if it cannot be."""
    tmp = f"{pool.state}.{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(" ".join(str(x) for x in (old, *sorted(holders))) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, pool.state)
    except OSError as ex:
        with suppress(OSError):
            os.unlink(tmp)
        return (f"hugetlb: cannot record {pool.name} in {pool.state} before raising "
                f"it: {_ename(ex.errno or 0)}")
    return None


@contextmanager
def hugepages_reserved(n: int, size_kb: int = vocab.HPAGE_SIZE // 1024
                       ) -> Iterator[str | None]:
    """Ensure >= n free 2 MiB huge pages by raising vm.nr_hugepages (1 GiB pages with
    size_kb=GIGANTIC_KB: the hstate's own nr_hugepages, recorded in GIGANTIC_STATE); yield
    None or a reason (no 1 GiB hstate, or the kernel could not allocate the pages).

    Before the sysctl is raised, the original value and this run's pid are recorded in
    HUGEPAGES_STATE (a run that finds the file adds its pid: the original stays the value
    before the first raise). On exit the run removes its pid, and the last live holder writes
    the original back, so concurrent runs never leave a raise behind; a kill that skips the
    exit is undone by the next run (restore_hugepages)."""
    pool = _pool(size_kb)
    restore_hugepages(size_kb)
    reason = pool.reason()
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
        with _locked(pool):
            free = pool.free()
            if free < n:
                with open(pool.sysctl) as f:
                    cur = int(f.read())
                st = _read_state(pool)
                old, holders = st if st is not None and st[0] >= 0 else (cur, set())
                reason = _record_state(pool, old, holders | {os.getpid()})
                holding = reason is None
                _HELD[size_kb] = _HELD.get(size_kb, 0) + holding
                if reason is None:
                    err = _write_sysctl(pool, cur + n - free)
                    reason = f"hugetlb: {err}" if err else None
                free = pool.free()
                if reason is None and free < n:
                    what = "1 GiB" if pool.giga else "2 MiB"
                    reason = (f"hugetlb: only {free} free {what} huge pages after raising "
                              f"{pool.name} (the kernel could not allocate {n})")
        yield reason
    finally:
        if holding:
            _HELD[size_kb] -= 1
        if holding and _HELD[size_kb] == 0:  # a nested reservation leaves it to the outer one
            with _locked(pool):
                st = _read_state(pool)
                if st is not None:
                    _put_back(pool, st[0], st[1] - {os.getpid()})
        if prev_term is not None:
            signal.signal(signal.SIGTERM, prev_term)
