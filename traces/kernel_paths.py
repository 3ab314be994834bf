"""The live-kernel executor's calls that reach the file by another path than a plain system
call of the trace's process: exec (in a forked child, so the trace's process survives) and
one io_uring operation (IORING_OP_WRITE/READ/FALLOCATE, traces/uring.py). traces/kernel.py's
executor inherits them."""

from __future__ import annotations

import ctypes
import os
import signal
from contextlib import suppress

from traces import uring
from traces.rawsys import ename as _ename
from traces.rawsys import syscall as _syscall
from traces.syscalls import SYSCALLS
from traces.trace import Err, Outcome, Ret

__all__ = ["PathCalls", "exec_in_child"]


def exec_in_child(nr: int, *args: int) -> tuple[int, int]:
    """execve/execveat (`nr`) in a forked child: (-1, errno) when the exec fails, (0, 0) once
    the child runs the file (the close-on-exec pipe closes without a word; the new program is
    then killed)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            _, e = _syscall(nr, *args)
            os.write(w, e.to_bytes(4, "little"))
        finally:
            os._exit(0)
    os.close(w)
    try:
        data = os.read(r, 4)
    finally:
        os.close(r)
    if not data:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return (-1, int.from_bytes(data, "little")) if data else (0, 0)


def _strings(items: tuple[bytes, ...] | None) -> ctypes.Array[ctypes.c_char_p]:
    """A NULL-terminated char *[] (an address the trace showed instead: an empty one)."""
    seq = items or ()
    return (ctypes.c_char_p * (len(seq) + 1))(*seq, None)


def _nr(call: str) -> int:
    nr = SYSCALLS[call].nr
    assert nr is not None, call
    return nr


class PathCalls:
    """exec and io_uring calls; the executor provides real(), result(), path(), payload()."""

    def real(self, tfd: int) -> int:
        raise NotImplementedError

    @staticmethod
    def result(r: int, e: int) -> Outcome:
        raise NotImplementedError

    def path(self, path: bytes) -> ctypes.Array[ctypes.c_char]:
        raise NotImplementedError

    @staticmethod
    def payload(data: bytes, count: int) -> ctypes.Array[ctypes.c_char]:
        raise NotImplementedError

    def do_execveat(self, fd: int, path: bytes, argv: tuple[bytes, ...] | None,
                    envp: tuple[bytes, ...] | None, flags: int) -> Outcome:
        name, av, ev = ctypes.create_string_buffer(path), _strings(argv), _strings(envp)
        return self.result(*exec_in_child(_nr("execveat"), self.real(fd),
                                          ctypes.addressof(name), ctypes.addressof(av),
                                          ctypes.addressof(ev), flags))

    def do_execve(self, path: bytes, argv: tuple[bytes, ...] | None,
                  envp: tuple[bytes, ...] | None) -> Outcome:
        name, av, ev = self.path(path), _strings(argv), _strings(envp)
        return self.result(*exec_in_child(_nr("execve"), ctypes.addressof(name),
                                          ctypes.addressof(av), ctypes.addressof(ev)))

    def uring_op(self, op: int, fd: int, off: int, addr: int, length: int) -> Outcome:
        """One io_uring operation on the trace's fd: the CQE's result."""
        res = uring.one_op(op, self.real(fd), off, addr, length)
        return Err(_ename(-res)) if res < 0 else Ret(res)

    def do_io_uring_write(self, fd: int, data: bytes, count: int, off: int) -> Outcome:
        buf = self.payload(data, count)
        return self.uring_op(uring.IORING_OP_WRITE, fd, off, ctypes.addressof(buf), count)

    def do_io_uring_read(self, fd: int, count: int, off: int) -> Outcome:
        buf = self.payload(b"", count)
        return self.uring_op(uring.IORING_OP_READ, fd, off, ctypes.addressof(buf), count)

    def do_io_uring_fallocate(self, fd: int, mode: int, off: int, length: int) -> Outcome:
        return self.uring_op(uring.IORING_OP_FALLOCATE, fd, off, length, mode)
