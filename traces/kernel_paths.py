"""The live-kernel executor's calls that reach the file by another path than a plain system
call of the trace's process: exec (in a forked child, so the trace's process survives) and
one io_uring operation (IORING_OP_WRITE/READ/FALLOCATE, traces/uring.py). traces/kernel.py's
executor inherits them."""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from model.lang.callspec import ShmPath
from traces import uring
from traces.rawsys import ename as _ename
from traces.rawsys import syscall as _syscall
from traces.syscalls import FILE_ATTR_FIELDS, SYSCALLS
from traces.trace import Err, Outcome, Ret

__all__ = ["SHM_DIR", "PathCalls", "created_paths", "exec_in_child", "private_dev_shm"]

#: the tmpfs mount glibc's shm_open() uses; a trace's names there get a private one
SHM_DIR = ShmPath.prefix.encode()
CLONE_NEWNS, MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 0x20000, 0x2, 0x4, 0x4000, 0x40000
SYS_UNSHARE, SYS_MOUNT = 272, 165  # x86_64; not trace calls, so not in SYSCALLS


def private_dev_shm() -> str | None:
    """A fresh tmpfs on /dev/shm in a new mount namespace of the executor's child, so the
    trace's names meet none of the machine's and vanish with the child (the machine's
    /dev/shm is untouched): None, or why it could not be made (the trace is then skipped)."""
    steps: list[tuple[str, Any]] = [
        ("unshare(CLONE_NEWNS)", lambda: _syscall(SYS_UNSHARE, CLONE_NEWNS)),
        ("mount(/, MS_REC|MS_PRIVATE)", lambda: _syscall(SYS_MOUNT, 0, _c(b"/"), 0,
                                                         MS_REC | MS_PRIVATE, 0)),
        ("mount(tmpfs, /dev/shm)", lambda: _syscall(SYS_MOUNT, _c(b"tmpfs"),
                                                    _c(SHM_DIR), _c(b"tmpfs"),
                                                    MS_NOSUID | MS_NODEV, _c(b"mode=1777")))]
    for what, call in steps:
        r, e = call()
        if r == -1:
            return f"a private /dev/shm for the trace's tmpfs file: {what}: {_ename(e)}"
    return None


_keep: list[ctypes.Array[ctypes.c_char]] = []


def _c(text: bytes) -> int:
    """The address of a NUL-terminated copy of `text`, kept alive for the child's life."""
    _keep.append(ctypes.create_string_buffer(text))
    return ctypes.addressof(_keep[-1])


def created_paths(ops: Sequence[Any]) -> list[bytes]:
    """Paths the ops open with O_CREAT that do not exist yet: removed after the run (a
    /dev/shm name is made in the child's private tmpfs, private_dev_shm())."""
    out = []
    for op in ops:
        if op.call in ("open", "openat"):
            path, flags = (op.args[0], op.args[1]) if op.call == "open" else (op.args[1],
                                                                             op.args[2])
            if (isinstance(path, bytes) and isinstance(flags, int) and flags & os.O_CREAT
                    and not path.startswith((b"/proc/", b"/dev/fd/", SHM_DIR))
                    and not os.path.lexists(path)):
                out.append(path)
    return out


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


def file_attr_buffer(vals: dict[str, int], usize: int, poison: bool) -> ctypes.Array[ctypes.c_char]:
    """struct file_attr (traces.syscalls.FILE_ATTR_FIELDS) in a buffer of usize bytes (at least
    the struct's 24, at most a page and one byte: the kernel refuses more before reading it)
    and zero past the struct (copy_struct_from_user() refuses a non-zero tail: E2BIG); with
    `poison`, every byte 0x5a (file_getattr's output: a field it does not write shows)."""
    n = max(24, min(usize, 4097))
    if poison:
        return ctypes.create_string_buffer(b"\x5a" * n, n)
    raw = b"".join((vals.get(f, 0) % (1 << bits)).to_bytes(bits // 8, "little")
                   for f, bits in FILE_ATTR_FIELDS)
    return ctypes.create_string_buffer(raw + bytes(n - len(raw)), n)


class PathCalls:
    """exec, io_uring and file_[gs]etattr calls; the executor provides real(), result(),
    path(), payload() and `filled` (the step's outputs)."""

    filled: dict[str, int]

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

    def file_attr(self, call: str, fd: int, path: bytes | None, attr: dict[str, int],
                  usize: int, flags: int) -> Outcome:
        name = None if path is None else self.path(path)
        buf = file_attr_buffer(attr, usize, poison=call == "file_getattr")
        r, e = _syscall(_nr(call), self.real(fd), 0 if name is None else ctypes.addressof(name),
                    ctypes.addressof(buf), usize, flags)
        if r == 0 and call == "file_getattr":  # the struct it filled: the step's outputs
            raw, at = buf.raw, 0
            for f, bits in FILE_ATTR_FIELDS:
                self.filled[f] = int.from_bytes(raw[at:at + bits // 8], "little")
                at += bits // 8
        return self.result(r, e)

    def do_file_setattr(self, fd: int, path: bytes | None, attr: dict[str, int], usize: int,
                        flags: int) -> Outcome:
        return self.file_attr("file_setattr", fd, path, attr, usize, flags)

    def do_file_getattr(self, fd: int, path: bytes | None, attr: dict[str, int], usize: int,
                        flags: int) -> Outcome:
        return self.file_attr("file_getattr", fd, path, attr, usize, flags)

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
