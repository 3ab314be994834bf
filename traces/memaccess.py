"""The kernel executor's own memory accesses (traces/kernel.py): its mapping and pin records,
writes into its own mappings, and loads/stores run in a forked process so that a SIGSEGV or
SIGBUS is observed, not suffered."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from traces import uring
from traces.rawsys import ename as _ename
from traces.rawsys import sig_name as _sig_name
from traces.syscalls import TraceError
from traces.trace import Err, Outcome, Ret


@dataclass
class Map:
    addr: int
    length: int
    live: bool = True
    #: address ranges [lo, hi) of it the trace unmapped (munmap of a part): the executor
    #: never touches them (another mapping may lie there now)
    gone: list[tuple[int, int]] = field(default_factory=list)

    def holds(self, addr: int) -> bool:
        """addr is still this mapping's (it was never unmapped)."""
        return self.live and not any(lo <= addr < hi for lo, hi in self.gone)

    def parts(self) -> list[tuple[int, int]]:
        """The address ranges [lo, hi) of it still mapped by the trace."""
        if not self.live:
            return []
        out, lo = [], self.addr
        for glo, ghi in sorted(self.gone):
            if glo > lo:
                out.append((lo, glo))
            lo = max(lo, ghi)
        return [*out, (lo, self.addr + self.length)] if lo < self.addr + self.length else out


def map_ref(v: str) -> tuple[str, int]:
    """A mapping operand (traces/syscalls.py): its name and the bytes past its start
    (`m1+8192` -> ("m1", 8192))."""
    name, _, plus = v.partition("+")
    return name, int(plus or 0)


@dataclass
class Pin:
    fds: tuple[int, ...] = ()  # pipe (r, w) of a vmsplice pin
    ring: uring.Ring | None = None  # the io_uring of a gup_pin
    dmabuf: int = -1  # the dmabuf fd of a udmabuf pin
    released: bool = False


def own_write(mp: Map, write: Callable[[], int], addr: int) -> Outcome:
    """A write into this process's own memory at a mapping (`write`: bytes written, or a
    negative errno). At an address the trace unmapped it runs in a forked process (the
    address may have been reused here), which reports the errno as its exit status."""
    if mp.holds(addr):
        r = write()
    else:
        pid = os.fork()
        if pid == 0:
            w = write()
            os._exit(0 if w >= 0 else min(-w, 255))
        _, status = os.waitpid(pid, 0)
        r = -os.waitstatus_to_exitcode(status) or 1
    return Err(_ename(-r)) if r < 0 else Ret(r)


def in_grandchild(fn: Callable[[], None]) -> str:
    """Run fn in a forked process: "ok", or the name of the signal that killed it."""
    pid = os.fork()
    if pid == 0:
        try:
            fn()
        except BaseException:
            os._exit(99)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return _sig_name(os.WTERMSIG(status))
    if os.WEXITSTATUS(status) != 0:
        raise TraceError(f"probe process exited with status {os.WEXITSTATUS(status)}")
    return "ok"


def load_then_store(addr: int) -> tuple[str, str]:
    """The (load, load-then-store) probes of `addr` in one forked process: it loads the byte,
    says so on a pipe, and stores it back; each is "ok" or the signal's name. A load that
    kills the process fails the load-then-store the same way, as a process of its own would
    (forked from the same state, it would load first). The same answers as in_grandchild(
    peek(addr)) and a load-then-store in a grandchild of its own, with one fork instead of
    two."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            b = ctypes.string_at(addr, 1)
            os.write(w, b"L")
            ctypes.memmove(addr, b, 1)
        except BaseException:
            os._exit(99)
        os._exit(0)
    os.close(w)
    try:
        _, status = os.waitpid(pid, 0)
        loaded = os.read(r, 1) == b"L"
    finally:
        os.close(r)
    if os.WIFSIGNALED(status):
        sig = _sig_name(os.WTERMSIG(status))
        return ("ok" if loaded else sig), sig
    if os.WEXITSTATUS(status) != 0:
        raise TraceError(f"probe process exited with status {os.WEXITSTATUS(status)}")
    return "ok", "ok"


def poke(addr: int) -> Callable[[], None]:
    """Store 0x5a at addr."""
    def fn() -> None:
        ctypes.memmove(addr, uring.STORE_BYTE, 1)
    return fn


def peek(addr: int) -> Callable[[], None]:
    """Load the byte at addr."""
    def fn() -> None:
        ctypes.string_at(addr, 1)
    return fn


__all__ = ["Map", "Pin", "in_grandchild", "load_then_store", "map_ref", "own_write", "peek", "poke"]

