"""Execute a trace's steps on the live kernel (x86_64) and report what the kernel did.

`run_on_kernel` forks a child that performs the steps with raw system calls (ctypes), so that the
kernel sees exactly the arguments of the trace, and streams one result per step back through a
pipe.  Everything the child creates (fds, mappings, pipes, io_uring rings, VMs) dies with it; the
parent kills the child's whole process group after `timeout` seconds.

Trace handles are translated: trace fds (3, 4, ... lowest free number first) map to the child's
real fds, mappings m1, m2, ... and pins p1, p2, ... to addresses, pipes and rings.  Accesses that
may fault (`store`, `load`, the observation probes) are first tried in a forked grandchild.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import faulthandler
import json
import os
import platform
import select
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from model import vocab
from traces.trace import Err, Int, New, Outcome, Ref, Ret, Sig, Step, Str, Struct, Sym

__all__ = ["KernelRun", "Observation", "capability", "die_with_parent", "hugepages_reserved",
           "restore_hugepages", "run_on_kernel"]


@dataclass
class Observation:
    """Observable state of the (single) memfd/gmem after a step."""

    seals: int | str  # F_GET_SEALS value, or errno name (e.g. "EINVAL"); "EBADF" before creation
    size: int | None  # fstat st_size (None before the file exists)
    mode: int | None  # st_mode & 0o7777
    maps: dict[str, tuple[str, str]]  # live mapping -> (read probe, write probe): ok|SIGSEGV|SIGBUS


@dataclass
class KernelRun:
    """The kernel's outcomes for the executed steps (see run_on_kernel)."""

    outcomes: list[Outcome]
    observations: list[Observation] | None
    skipped: str | None
    error: str | None


# ---- syscalls --------------------------------------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

SYS_READ, SYS_WRITE, SYS_OPEN, SYS_CLOSE, SYS_LSEEK = 0, 1, 2, 3, 8
SYS_MMAP, SYS_MPROTECT, SYS_MUNMAP, SYS_IOCTL = 9, 10, 11, 16
SYS_PREAD64, SYS_PWRITE64, SYS_DUP, SYS_FCNTL, SYS_FTRUNCATE, SYS_FCHMOD = 17, 18, 32, 72, 77, 91
SYS_UNSHARE, SYS_OPENAT, SYS_VMSPLICE, SYS_FALLOCATE, SYS_MEMFD_CREATE = 272, 257, 278, 285, 319
SYS_IO_URING_SETUP, SYS_IO_URING_ENTER, SYS_IO_URING_REGISTER = 425, 426, 427

PAGE = 4096
CLONE_NEWPID = 0x20000000
F_DUPFD = 0
MAP_ANONYMOUS, MAP_NORESERVE = 0x20, 0x4000
IORING_OFF_SQ_RING, IORING_OFF_CQ_RING, IORING_OFF_SQES = 0, 0x8000000, 0x10000000
IORING_ENTER_GETEVENTS = 1
IORING_REGISTER_BUFFERS, IORING_UNREGISTER_BUFFERS = 0, 1
IORING_OP_READ_FIXED = 4
KVM_GET_API_VERSION = 0xAE00
_BAD_FD = 1 << 30  # stands for a trace fd that is not open: always EBADF
_MAX_BUF = 64 << 20  # largest write() payload we materialise
_STORE_BYTE = b"\x5a"
NOEXEC_SYSCTL = "/proc/sys/vm/memfd_noexec"
NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"
# vm.nr_hugepages as it was before a run raised it, and that run's pid: written before the
# sysctl is raised and removed once it is restored, so a run killed in between (SIGKILL) is
# undone by the next one (restore_hugepages). Under /run: gone after a reboot, as the raise is.
HUGEPAGES_STATE = "/run/shmemcheck-nr_hugepages"
PR_SET_PDEATHSIG = 1

#: Names a trace may use beyond model.vocab.CONSTANTS.
EXTRA_CONSTANTS: dict[str, int] = {
    "NULL": 0, "AT_FDCWD": -100,
    "SEEK_SET": 0, "SEEK_CUR": 1, "SEEK_END": 2, "SEEK_DATA": 3, "SEEK_HOLE": 4,
    "F_GETFD": 1, "F_SETFD": 2, "F_GETFL": 3, "F_SETFL": 4, "FD_CLOEXEC": 1,
    "O_EXCL": 0o200, "O_APPEND": 0o2000, "O_NONBLOCK": 0o4000, "O_LARGEFILE": 0o100000,
    "O_PATH": 0o10000000,
    "MAP_SHARED_VALIDATE": 0x03, "MAP_FIXED": 0x10, "MAP_ANONYMOUS": MAP_ANONYMOUS,
    "MAP_NORESERVE": MAP_NORESERVE, "MAP_POPULATE": 0x8000,
    "FALLOC_FL_INSERT_RANGE": 0x20, "FALLOC_FL_UNSHARE_RANGE": 0x40,
    "KVM_GET_API_VERSION": KVM_GET_API_VERSION,
    "KVM_CAP_GUEST_MEMFD": vocab.KVM_CAP_GUEST_MEMFD,
    "KVM_CAP_GUEST_MEMFD_FLAGS": vocab.KVM_CAP_GUEST_MEMFD_FLAGS,
    **{f"MFD_HUGE_{n}": log << vocab.MFD_HUGE_SHIFT for n, log in (
        ("64KB", 16), ("512KB", 19), ("1MB", 20), ("2MB", 21), ("8MB", 23), ("16MB", 24),
        ("32MB", 25), ("256MB", 28), ("512MB", 29), ("1GB", 30), ("2GB", 31), ("16GB", 34))},
}


def _carg(v: int) -> ctypes.c_long | ctypes.c_ulong:
    if -(1 << 63) <= v < (1 << 63):
        return ctypes.c_long(v)
    return ctypes.c_ulong(v & ((1 << 64) - 1))


def _sys(nr: int, *args: int) -> tuple[int, int]:
    """syscall(nr, args...) -> (return value, errno or 0); pointers are passed as ints."""
    ctypes.set_errno(0)
    r = int(_libc.syscall(ctypes.c_long(nr), *(_carg(a) for a in args)))
    return r, (ctypes.get_errno() if r == -1 else 0)


def _ename(e: int) -> str:
    return vocab.ERRNO_NAME.get(e) or _errno.errorcode.get(e, f"E{e}")


def _sig_name(sig: int) -> str:
    return vocab.SIGNAL_NAME.get(sig) or signal.Signals(sig).name


def _u32(addr: int) -> ctypes.c_uint32:
    return ctypes.c_uint32.from_address(addr)


def _mmap_anon(length: int) -> int | None:
    r, _ = _sys(SYS_MMAP, 0, max(length, 1), vocab.PROT_READ | vocab.PROT_WRITE,
                vocab.MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
    return None if r == -1 else r


# ---- compiling steps (validation happens here, before anything runs) ------------------------
class TraceError(Exception):
    """A step that cannot be executed as written (bad argument, unknown handle...)."""


# Argument kinds: f trace fd, i number/flags, s string, S string or NULL, m mapping, p pin,
# a ioctl argument (number or struct); kinds after '?' are optional.
_SIGNATURES: dict[str, str] = {
    "memfd_create": "Si", "ftruncate": "fi", "fallocate": "fiii", "fchmod": "fi", "close": "f",
    "dup": "f", "write": "fsi", "pwrite64": "fsii", "read": "fi", "pread64": "fii",
    "lseek": "fii", "open": "si?i", "openat": "fsi?i", "fcntl": "fi?i", "mmap": "iiiifi",
    "munmap": "mi", "mprotect": "mii", "store": "m?i", "load": "m?i", "pin": "m?i",
    "gup_pin": "m?i", "unpin": "p", "dma_write": "p", "ioctl": "fi?a",
}
SUPPORTED_CALLS = frozenset(_SIGNATURES)
_FCNTL_CMDS = {vocab.F_ADD_SEALS, vocab.F_GET_SEALS, 1, 2, 3, 4}
_STRUCT_FIELDS: dict[int, tuple[str, ...]] = {
    vocab.KVM_CREATE_GUEST_MEMFD: ("size", "flags"),
    vocab.KVM_SET_USER_MEMORY_REGION2: ("slot", "flags", "guest_phys_addr", "memory_size",
                                        "userspace_addr", "guest_memfd_offset", "guest_memfd"),
}
_INT_IOCTLS = {vocab.KVM_CREATE_VM, vocab.KVM_CHECK_EXTENSION, KVM_GET_API_VERSION}


def _const(text: str, page: int = PAGE) -> int:
    """Evaluate a flag expression; "PAGE" is the model's page (4 KiB, 2 MiB for hugetlbfs)."""
    value = 0
    for word in text.split("|"):
        word = word.strip()
        if word == "PAGE":
            value |= page
        elif word in EXTRA_CONSTANTS:
            value |= EXTRA_CONSTANTS[word]
        else:
            try:
                value |= vocab.parse_flags(word)
            except KeyError:
                raise TraceError(f"unknown constant {word}") from None
    return value


def _data(s: str) -> bytes:
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class _Op:
    call: str
    args: tuple[Any, ...]
    needs: frozenset[str]


def _compile(step: Step, page: int = PAGE) -> _Op:
    call, args = step.call, list(step.args)
    if call in ("read", "pread64") and len(args) >= 2 and isinstance(args[1], Str):
        del args[1]  # strace form read(fd, "buf", count): the buffer is output only
    sig = _SIGNATURES[call]
    required, _, optional = sig.partition("?")
    if not len(required) <= len(args) <= len(required) + len(optional):
        raise TraceError(f"{call} takes {len(required)}..{len(required) + len(optional)} "
                         f"arguments, got {len(args)}")
    vals: list[Any] = []
    for n, (kind, arg) in enumerate(zip(required + optional, args, strict=False), 1):
        where = f"{call} argument {n}"
        if kind in "fi":
            if isinstance(arg, Int):
                vals.append(arg.value)
            elif isinstance(arg, Sym):
                vals.append(_const(arg.text, page))
            else:
                raise TraceError(f"{where}: expected a number, got {arg!r}")
        elif kind in "sS":
            if isinstance(arg, Str):
                vals.append(_data(arg.text))
            elif kind == "S" and (arg == Sym("NULL") or (isinstance(arg, Int) and arg.value == 0)):
                vals.append(None)
            else:
                raise TraceError(f"{where}: expected a string, got {arg!r}")
        elif kind in "mp":
            if not (isinstance(arg, Ref) and arg.name.startswith(kind)):
                raise TraceError(f"{where}: expected a {'mapping' if kind == 'm' else 'pin'} "
                                 f"handle {kind}N, got {arg!r}")
            vals.append(arg.name)
        else:  # 'a': ioctl argument
            if isinstance(arg, Struct):
                vals.append(_compile_struct(arg, where, page))
            elif isinstance(arg, Int):
                vals.append(arg.value)
            elif isinstance(arg, Sym):
                vals.append(_const(arg.text, page))
            else:
                raise TraceError(f"{where}: expected a number or struct, got {arg!r}")
    needs: set[str] = set()
    if call == "memfd_create" and vals[1] & vocab.MFD_HUGETLB:
        needs.add("hugetlb")
    if call in ("gup_pin", "dma_write"):
        needs.add("io_uring")
    if call in ("open", "openat") and b"/dev/kvm" in vals:
        needs.add("kvm")
    if call == "ioctl":
        needs.add("kvm")
        req = vals[1]
        iarg: Any = vals[2] if len(vals) > 2 else 0
        if req in _STRUCT_FIELDS:
            if not isinstance(iarg, dict):
                raise TraceError(f"ioctl {req:#x} needs a struct argument")
            unknown = set(iarg) - set(_STRUCT_FIELDS[req])
            if unknown:
                raise TraceError(f"ioctl {req:#x}: unknown struct fields {sorted(unknown)}")
        elif req in _INT_IOCTLS:
            if isinstance(iarg, dict):
                raise TraceError(f"ioctl {req:#x} takes a number, not a struct")
        else:
            raise TraceError(f"unsupported ioctl request {req:#x}")
        if len(vals) == 2:
            vals.append(0)
    if call == "fcntl" and vals[1] not in _FCNTL_CMDS:
        raise TraceError(f"unsupported fcntl command {vals[1]}")
    return _Op(call, tuple(vals), frozenset(needs))


def _compile_struct(arg: Struct, where: str, page: int) -> dict[str, int | str]:
    out: dict[str, int | str] = {}
    for name, v in arg.fields:
        if isinstance(v, Int):
            out[name] = v.value
        elif isinstance(v, Sym):
            out[name] = _const(v.text, page)
        elif isinstance(v, Ref) and v.name.startswith("m"):
            out[name] = v.name
        else:
            raise TraceError(f"{where}: field {name}: unsupported value {v!r}")
    return out


# ---- the executor (runs in the child) --------------------------------------------------------
@dataclass
class _Map:
    addr: int
    length: int
    live: bool = True


@dataclass
class _Pin:
    fds: tuple[int, ...]  # pipe (r, w), or (ring fd,)
    ring: tuple[tuple[int, int], ...] = ()  # io_uring: (addr, len) of the sq, cq, sqe mappings
    sq_off: Any = None
    cq_off: Any = None
    addr: int = 0
    released: bool = False


def _in_grandchild(fn: Callable[[], None]) -> str:
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


def _poke(addr: int) -> Callable[[], None]:
    """Store 0x5a at addr."""
    def fn() -> None:
        ctypes.memmove(addr, _STORE_BYTE, 1)
    return fn


def _peek(addr: int) -> Callable[[], None]:
    """Load the byte at addr."""
    def fn() -> None:
        ctypes.string_at(addr, 1)
    return fn


def _touch(addr: int) -> Callable[[], None]:
    """Load the byte at addr and store it back (a write that changes no content)."""
    def fn() -> None:
        ctypes.memmove(addr, ctypes.string_at(addr, 1), 1)
    return fn


_U32 = ctypes.c_uint32


class _SqOff(ctypes.Structure):
    _fields_ = (("head", _U32), ("tail", _U32), ("ring_mask", _U32), ("ring_entries", _U32),
                ("flags", _U32), ("dropped", _U32), ("array", _U32), ("resv1", _U32),
                ("user_addr", ctypes.c_uint64))


class _CqOff(ctypes.Structure):
    _fields_ = (("head", _U32), ("tail", _U32), ("ring_mask", _U32), ("ring_entries", _U32),
                ("overflow", _U32), ("cqes", _U32), ("flags", _U32), ("resv1", _U32),
                ("user_addr", ctypes.c_uint64))


class _UringParams(ctypes.Structure):
    """struct io_uring_params (120 bytes)."""

    _fields_ = (("sq_entries", _U32), ("cq_entries", _U32), ("flags", _U32),
                ("sq_thread_cpu", _U32), ("sq_thread_idle", _U32), ("features", _U32),
                ("wq_fd", _U32), ("resv", _U32 * 3), ("sq_off", _SqOff), ("cq_off", _CqOff))


class _Iovec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


class _Executor:
    """Trace state of the child: handle tables and the private observation fd."""

    def __init__(self, observe: bool) -> None:
        self.fds: dict[int, int] = {0: 0, 1: 1, 2: 2}
        self.maps: dict[str, _Map] = {}
        self.pins: dict[str, _Pin] = {}
        self.observe = observe
        self.file_seen = False
        self.file_fd: int | None = None

    # -- helpers
    def real(self, tfd: int) -> int:
        return self.fds.get(tfd, tfd if tfd < 0 else _BAD_FD)

    def new_fd(self, real: int) -> Ret:
        n = 0
        while n in self.fds:
            n += 1
        self.fds[n] = real
        return Ret(n)

    def note_file(self, real: int) -> None:
        if self.file_seen:
            return
        self.file_seen = True
        if self.observe:
            r, e = _sys(SYS_FCNTL, real, F_DUPFD, 900)
            if r < 0:
                raise TraceError(f"cannot keep an observation fd: {_ename(e)}")
            self.file_fd = r

    def map_of(self, name: str) -> _Map:
        if name not in self.maps:
            raise TraceError(f"{name} does not exist (no mmap produced it)")
        return self.maps[name]

    def pin_of(self, name: str) -> _Pin:
        if name not in self.pins:
            raise TraceError(f"{name} does not exist (no pin produced it)")
        pin = self.pins[name]
        if pin.released:
            raise TraceError(f"{name} was already unpinned")
        return pin

    @staticmethod
    def result(r: int, e: int) -> Outcome:
        return Err(_ename(e)) if r == -1 else Ret(r)

    def fd_result(self, r: int, e: int) -> Outcome:
        return Err(_ename(e)) if r == -1 else self.new_fd(r)

    # -- dispatch
    def run(self, op: _Op) -> Outcome:
        method: Callable[..., Outcome] = getattr(self, "do_" + op.call)
        return method(*op.args)

    def do_memfd_create(self, name: bytes | None, flags: int) -> Outcome:
        buf = ctypes.create_string_buffer(name) if name is not None else None
        r, e = _sys(SYS_MEMFD_CREATE, ctypes.addressof(buf) if buf is not None else 0, flags)
        if r >= 0:
            self.note_file(r)
        return self.fd_result(r, e)

    def do_ftruncate(self, fd: int, length: int) -> Outcome:
        return self.result(*_sys(SYS_FTRUNCATE, self.real(fd), length))

    def do_fallocate(self, fd: int, mode: int, off: int, length: int) -> Outcome:
        return self.result(*_sys(SYS_FALLOCATE, self.real(fd), mode, off, length))

    def do_fchmod(self, fd: int, mode: int) -> Outcome:
        return self.result(*_sys(SYS_FCHMOD, self.real(fd), mode))

    def do_close(self, fd: int) -> Outcome:
        r, e = _sys(SYS_CLOSE, self.real(fd))
        if r == 0:
            del self.fds[fd]
        return self.result(r, e)

    def do_dup(self, fd: int) -> Outcome:
        return self.fd_result(*_sys(SYS_DUP, self.real(fd)))

    @staticmethod
    def payload(data: bytes, count: int) -> ctypes.Array[ctypes.c_char]:
        n = max(count, 0)
        if n > _MAX_BUF:
            raise TraceError(f"write of {n} bytes is larger than the executor supports")
        unit = data or b"\0"
        return ctypes.create_string_buffer((unit * (n // len(unit) + 1))[:n], max(n, 1))

    def do_write(self, fd: int, data: bytes, count: int) -> Outcome:
        buf = self.payload(data, count)
        return self.result(*_sys(SYS_WRITE, self.real(fd), ctypes.addressof(buf), count))

    def do_pwrite64(self, fd: int, data: bytes, count: int, off: int) -> Outcome:
        buf = self.payload(data, count)
        return self.result(*_sys(SYS_PWRITE64, self.real(fd), ctypes.addressof(buf), count, off))

    def read_into(self, nr: int, fd: int, count: int, *rest: int) -> Outcome:
        length = min(max(count, 1), 1 << 46)
        addr = _mmap_anon(length)
        if addr is None:
            length, addr = PAGE, _mmap_anon(PAGE)
        if addr is None:
            raise TraceError("cannot allocate a read buffer")
        try:
            return self.result(*_sys(nr, self.real(fd), addr, count, *rest))
        finally:
            _sys(SYS_MUNMAP, addr, length)

    def do_read(self, fd: int, count: int) -> Outcome:
        return self.read_into(SYS_READ, fd, count)

    def do_pread64(self, fd: int, count: int, off: int) -> Outcome:
        return self.read_into(SYS_PREAD64, fd, count, off)

    def do_lseek(self, fd: int, off: int, whence: int) -> Outcome:
        return self.result(*_sys(SYS_LSEEK, self.real(fd), off, whence))

    def path(self, path: bytes) -> ctypes.Array[ctypes.c_char]:
        for prefix in (b"/proc/self/fd/", b"/dev/fd/"):
            tail = path[len(prefix):]
            if path.startswith(prefix) and tail.isdigit():
                path = prefix + str(self.real(int(tail))).encode()
        return ctypes.create_string_buffer(path)

    def do_open(self, path: bytes, flags: int, mode: int = 0) -> Outcome:
        buf = self.path(path)
        return self.fd_result(*_sys(SYS_OPEN, ctypes.addressof(buf), flags, mode))

    def do_openat(self, dirfd: int, path: bytes, flags: int, mode: int = 0) -> Outcome:
        buf = self.path(path)
        return self.fd_result(*_sys(SYS_OPENAT, self.real(dirfd), ctypes.addressof(buf),
                                    flags, mode))

    def do_fcntl(self, fd: int, cmd: int, arg: int = 0) -> Outcome:
        return self.result(*_sys(SYS_FCNTL, self.real(fd), cmd, arg))

    def do_mmap(self, addr: int, length: int, prot: int, flags: int, fd: int,
                off: int) -> Outcome:
        r, e = _sys(SYS_MMAP, addr, length, prot, flags, self.real(fd), off)
        if r == -1:
            return Err(_ename(e))
        name = f"m{len(self.maps) + 1}"
        self.maps[name] = _Map(r, -(-length // PAGE) * PAGE)
        return New(name)

    def do_munmap(self, m: str, length: int) -> Outcome:
        start = self.map_of(m).addr
        r, e = _sys(SYS_MUNMAP, start, length)
        if r == 0:
            for mp in self.maps.values():
                if start <= mp.addr and mp.addr + mp.length <= start + length:
                    mp.live = False
        return self.result(r, e)

    def do_mprotect(self, m: str, length: int, prot: int) -> Outcome:
        return self.result(*_sys(SYS_MPROTECT, self.map_of(m).addr, length, prot))

    def access(self, m: str, off: int, fn: Callable[[int], Callable[[], None]]) -> Outcome:
        mp = self.map_of(m)
        addr = mp.addr + off
        res = _in_grandchild(fn(addr))
        if res != "ok":
            return Sig(res)
        if mp.live:  # never touch an address the trace unmapped (it may be reused)
            fn(addr)()
        return Ret(0)

    def do_store(self, m: str, off: int = 0) -> Outcome:
        return self.access(m, off, _poke)

    def do_load(self, m: str, off: int = 0) -> Outcome:
        return self.access(m, off, _peek)

    def new_pin(self, pin: _Pin) -> Outcome:
        name = f"p{len(self.pins) + 1}"
        self.pins[name] = pin
        return New(name)

    def do_pin(self, m: str, off: int = 0) -> Outcome:
        addr = (self.map_of(m).addr + off) & ~(PAGE - 1)
        rfd, wfd = os.pipe()
        iov = _Iovec(addr, PAGE)
        r, e = _sys(SYS_VMSPLICE, wfd, ctypes.addressof(iov), 1, 0)
        if r == -1:
            os.close(rfd)
            os.close(wfd)
            return Err(_ename(e))
        return self.new_pin(_Pin((rfd, wfd)))

    def do_gup_pin(self, m: str, off: int = 0) -> Outcome:
        addr = (self.map_of(m).addr + off) & ~(PAGE - 1)
        params = _UringParams()
        ring, e = _sys(SYS_IO_URING_SETUP, 4, ctypes.addressof(params))
        if ring == -1:
            raise TraceError(f"io_uring_setup: {_ename(e)}")
        pin = _Pin((ring,), sq_off=params.sq_off, cq_off=params.cq_off, addr=addr)
        regions = []
        for offset, length in ((IORING_OFF_SQ_RING, params.sq_off.array + params.sq_entries * 4),
                               (IORING_OFF_CQ_RING, params.cq_off.cqes + params.cq_entries * 16),
                               (IORING_OFF_SQES, params.sq_entries * 64)):
            a, e = _sys(SYS_MMAP, 0, length, vocab.PROT_READ | vocab.PROT_WRITE,
                        vocab.MAP_SHARED, ring, offset)
            if a == -1:
                raise TraceError(f"mmap of the io_uring ring: {_ename(e)}")
            regions.append((a, length))
        pin.ring = tuple(regions)
        iov = _Iovec(addr, PAGE)
        r, e = _sys(SYS_IO_URING_REGISTER, ring, IORING_REGISTER_BUFFERS, ctypes.addressof(iov), 1)
        if r == -1:
            self.release(pin)
            return Err(_ename(e))
        return self.new_pin(pin)

    def do_dma_write(self, p: str) -> Outcome:
        pin = self.pin_of(p)
        if not pin.ring:
            raise TraceError(f"dma_write needs a gup_pin handle, {p} is a pipe pin")
        (sq, _), (cq, _), (sqes, _) = pin.ring
        so, co = pin.sq_off, pin.cq_off
        rfd, wfd = os.pipe()
        try:
            os.write(wfd, _STORE_BYTE)
            tail = _u32(sq + so.tail).value
            idx = tail & _u32(sq + so.ring_mask).value
            sqe = struct.pack("<BBHiQQIIQHHiQQ", IORING_OP_READ_FIXED, 0, 0, rfd, 0, pin.addr,
                              1, 0, 1, 0, 0, 0, 0, 0)
            ctypes.memmove(sqes + idx * 64, sqe, 64)
            _u32(sq + so.array + idx * 4).value = idx
            _u32(sq + so.tail).value = tail + 1
            r, e = _sys(SYS_IO_URING_ENTER, pin.fds[0], 1, 1, IORING_ENTER_GETEVENTS, 0, 0)
            if r == -1:
                raise TraceError(f"io_uring_enter: {_ename(e)}")
            head = _u32(cq + co.head).value
            if head == _u32(cq + co.tail).value:
                raise TraceError("io_uring: no completion")
            cqe = cq + co.cqes + (head & _u32(cq + co.ring_mask).value) * 16
            res = ctypes.c_int32.from_address(cqe + 8).value
            _u32(cq + co.head).value = head + 1
        finally:
            os.close(rfd)
            os.close(wfd)
        return Err(_ename(-res)) if res < 0 else Ret(0)

    @staticmethod
    def release(pin: _Pin) -> None:
        if pin.ring:
            _sys(SYS_IO_URING_REGISTER, pin.fds[0], IORING_UNREGISTER_BUFFERS, 0, 0)
            for a, length in pin.ring:
                _sys(SYS_MUNMAP, a, length)
        else:
            os.set_blocking(pin.fds[0], False)
            try:
                while os.read(pin.fds[0], 1 << 16):
                    pass
            except BlockingIOError:
                pass
        for fd in pin.fds:
            os.close(fd)
        pin.released = True

    def do_unpin(self, p: str) -> Outcome:
        self.release(self.pin_of(p))
        return Ret(0)

    def do_ioctl(self, fd: int, req: int, arg: int | dict[str, int | str]) -> Outcome:
        real = self.real(fd)
        if isinstance(arg, int):
            r, e = _sys(SYS_IOCTL, real, req, arg)
            return self.fd_result(r, e) if req == vocab.KVM_CREATE_VM else self.result(r, e)
        vals = {k: (self.map_of(v).addr if isinstance(v, str) else v) for k, v in arg.items()}
        if req == vocab.KVM_CREATE_GUEST_MEMFD:
            raw = struct.pack("<QQ6Q", vals.get("size", 0) % (1 << 64),
                              vals.get("flags", 0) % (1 << 64), *[0] * 6)
        else:
            gfd = vals.get("guest_memfd", 0)
            raw = struct.pack("<IIQQQQII14Q", *(vals.get(k, 0) % (1 << 32) for k in
                                               ("slot", "flags")),
                              *(vals.get(k, 0) % (1 << 64) for k in
                                ("guest_phys_addr", "memory_size", "userspace_addr",
                                 "guest_memfd_offset")),
                              self.real(gfd) % (1 << 32), 0, *[0] * 14)
        buf = ctypes.create_string_buffer(raw, len(raw))
        r, e = _sys(SYS_IOCTL, real, req, ctypes.addressof(buf))
        if req == vocab.KVM_CREATE_GUEST_MEMFD:
            if r >= 0:
                self.note_file(r)
            return self.fd_result(r, e)
        return self.result(r, e)

    # -- observation
    def observation(self) -> dict[str, Any]:
        seals: int | str = "EBADF"
        size = mode = None
        if self.file_fd is not None:
            r, e = _sys(SYS_FCNTL, self.file_fd, vocab.F_GET_SEALS, 0)
            seals = _ename(e) if r == -1 else r
            st = os.fstat(self.file_fd)
            size, mode = st.st_size, st.st_mode & 0o7777
        # Probes run in grandchildren; the write probe stores back the byte it read, so it
        # changes no content even through a shared mapping (a private one COWs in the probe).
        maps = {name: [_in_grandchild(_peek(mp.addr)), _in_grandchild(_touch(mp.addr))]
                for name, mp in self.maps.items() if mp.live}
        return {"seals": seals, "size": size, "mode": mode, "maps": maps}


# ---- the child process -----------------------------------------------------------------------
def _send(fd: int, msg: dict[str, Any]) -> None:
    data = (json.dumps(msg) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def _encode(o: Outcome) -> list[Any]:
    if isinstance(o, Ret):
        return ["Ret", o.value]
    if isinstance(o, Err):
        return ["Err", o.errno]
    if isinstance(o, Sig):
        return ["Sig", o.name]
    if isinstance(o, New):
        return ["New", o.name]
    raise TypeError(o)


def _decode(v: list[Any]) -> Outcome:
    kinds: dict[str, Callable[[Any], Outcome]] = {"Ret": Ret, "Err": Err, "Sig": Sig, "New": New}
    return kinds[v[0]](v[1])


def _child(ops: list[_Op], out: int, observe: bool, noexec_scope: int | None) -> None:
    """Body of the forked child; never returns."""
    try:
        faulthandler.disable()
        for s in (signal.SIGSEGV, signal.SIGBUS):
            signal.signal(s, signal.SIG_DFL)
        os.closerange(3, out)
        os.closerange(out + 1, 1 << 20)
        for fd in range(3):  # the trace's numbering assumes stdin/out/err are open
            try:
                os.fstat(fd)
            except OSError:
                os.dup2(os.open(os.devnull, os.O_RDWR), fd)
        if noexec_scope is not None:
            r, e = _sys(SYS_UNSHARE, CLONE_NEWPID)
            if r == -1:
                _send(out, {"skipped": f"pidns: unshare(CLONE_NEWPID): {_ename(e)}"})
                os._exit(0)
            pid = os.fork()
            if pid:
                os.close(out)
                os.waitpid(pid, 0)
                os._exit(0)
            try:
                with open(NOEXEC_SYSCTL, "w") as f:
                    f.write(str(noexec_scope))
            except OSError as ex:
                _send(out, {"skipped": f"pidns: cannot set memfd_noexec={noexec_scope} in a "
                                       f"child pid namespace: {_ename(ex.errno or 0)}"})
                os._exit(0)
        ex_ = _Executor(observe)
        for i, op in enumerate(ops, 1):
            try:
                msg: dict[str, Any] = {"o": _encode(ex_.run(op))}
                if observe:
                    msg["obs"] = ex_.observation()
            except Exception as err:
                text = str(err) if isinstance(err, TraceError) else f"executor failed: {err!r}"
                _send(out, {"error": f"step {i}: {text}"})
                os._exit(0)
            _send(out, msg)
        _send(out, {"done": True})
    except BaseException as err:  # report, never fall back into the caller's code
        try:
            _send(out, {"error": f"internal error in the executor: {err!r}"})
        except BaseException:
            pass
    os._exit(0)


# ---- the parent side -------------------------------------------------------------------------
def _created_paths(ops: Sequence[_Op]) -> list[bytes]:
    """Paths the ops open with O_CREAT that do not exist yet: removed after the run."""
    out = []
    for op in ops:
        if op.call in ("open", "openat"):
            path, flags = (op.args[0], op.args[1]) if op.call == "open" else (op.args[1],
                                                                             op.args[2])
            if (isinstance(path, bytes) and isinstance(flags, int) and flags & os.O_CREAT
                    and not path.startswith((b"/proc/", b"/dev/fd/"))
                    and not os.path.lexists(path)):
                out.append(path)
    return out


def run_on_kernel(steps: Sequence[Step], *, observe: bool = False, timeout: float = 10.0,
                  noexec_scope: int | None = None) -> KernelRun:
    """Execute `steps` in a forked child and return the kernel's outcome of each.

    Nothing runs when a call is unsupported (error) or a needed capability is missing (skipped).
    With `observe`, an Observation is recorded after every step.  With `noexec_scope`, the steps
    run in a new pid namespace whose vm.memfd_noexec is set to that value (the host's is kept).
    """
    for step in steps:
        if step.call not in SUPPORTED_CALLS:
            return KernelRun([], None, None, f"unsupported call {step.call}")
    if platform.machine() != "x86_64":
        return KernelRun([], None, f"unsupported architecture {platform.machine()}", None)
    ops: list[_Op] = []
    page, created = PAGE, False  # "PAGE" means a huge page when the (first) file is hugetlbfs
    for i, step in enumerate(steps, 1):
        try:
            ops.append(_compile(step, page))
            if step.call == "memfd_create" and not created:
                created = True
                page = vocab.HPAGE_SIZE if "hugetlb" in ops[-1].needs else PAGE
        except TraceError as err:
            return KernelRun([], None, None, f"step {i}: {err}")
    needs: set[str] = set().union(*(op.needs for op in ops))
    for kind in sorted(needs):
        reason = _hugetlb_reason(need_free=True) if kind == "hugetlb" else capability(kind)
        if reason:
            return KernelRun([], None, reason, None)

    rfd, wfd = os.pipe()
    new_files = _created_paths(ops)
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        with suppress(OSError):
            os.setpgid(0, 0)
        with suppress(Exception):
            die_with_parent()
        _child(ops, wfd, observe, noexec_scope)
    os.close(wfd)
    with suppress(OSError):  # the child may have done it already
        os.setpgid(pid, pid)
    outcomes: list[Outcome] = []
    observations: list[Observation] = []
    skipped = error = None
    final = False
    deadline = time.monotonic() + timeout
    pending = b""
    try:
        while not final:
            left = deadline - time.monotonic()
            if left <= 0:
                error = f"step {len(outcomes) + 1} timed out after {float(timeout)} s"
                break
            if not select.select([rfd], [], [], left)[0]:
                continue
            chunk = os.read(rfd, 1 << 16)
            if not chunk:
                break
            pending += chunk
            while b"\n" in pending and not final:
                line, pending = pending.split(b"\n", 1)
                msg = json.loads(line)
                if "o" in msg:
                    outcomes.append(_decode(msg["o"]))
                    if "obs" in msg:
                        ob = msg["obs"]
                        observations.append(Observation(
                            ob["seals"], ob["size"], ob["mode"],
                            {k: (v[0], v[1]) for k, v in ob["maps"].items()}))
                else:
                    final = True
                    skipped, error = msg.get("skipped"), msg.get("error")
    finally:
        os.close(rfd)
        with suppress(OSError):  # also reaps probes and the pid-namespace init
            os.killpg(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        for path in new_files:  # a file the trace created (open O_CREAT) does not outlive it
            with suppress(OSError):
                os.unlink(path)
    if not final and error is None:
        how = (f"was killed by {_sig_name(os.WTERMSIG(status))}" if os.WIFSIGNALED(status)
               else f"exited with status {os.WEXITSTATUS(status)}")
        error = f"step {len(outcomes) + 1}: the executor {how}"
    return KernelRun(outcomes, observations if observe else None, skipped, error)


# ---- capabilities ----------------------------------------------------------------------------
_CAPS: dict[str, str | None] = {}


def capability(kind: str) -> str | None:
    """None if `kind` ("kvm", "hugetlb", "pidns", "io_uring") is usable here, else a reason."""
    if kind == "hugetlb":
        return _hugetlb_reason(need_free=False)
    checks: dict[str, Callable[[], str | None]] = {
        "kvm": _cap_kvm, "pidns": _cap_pidns, "io_uring": _cap_io_uring}
    if kind not in checks:
        raise ValueError(f"unknown capability {kind!r}")
    if kind not in _CAPS:
        _CAPS[kind] = checks[kind]()
    return _CAPS[kind]


def _cap_kvm() -> str | None:
    if not os.path.exists("/dev/kvm"):
        return "no /dev/kvm"
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as ex:
        return f"kvm: cannot open /dev/kvm: {_ename(ex.errno or 0)}"
    try:
        r, _ = _sys(SYS_IOCTL, fd, vocab.KVM_CHECK_EXTENSION, vocab.KVM_CAP_GUEST_MEMFD)
        return None if r > 0 else "kvm: no KVM_CAP_GUEST_MEMFD"
    finally:
        os.close(fd)


def _cap_pidns() -> str | None:
    try:
        with open(NOEXEC_SYSCTL) as f:
            current = int(f.read())
    except OSError:
        return f"pidns: no {NOEXEC_SYSCTL} (kernel older than 6.3?)"
    run = run_on_kernel([], noexec_scope=current, timeout=10.0)
    return run.skipped or (f"pidns: {run.error}" if run.error else None)


def _cap_io_uring() -> str | None:
    params = _UringParams()
    r, e = _sys(SYS_IO_URING_SETUP, 1, ctypes.addressof(params))
    if r >= 0:
        os.close(r)
        return None
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            disabled = f.read().strip()
    except OSError:
        disabled = "?"
    return f"io_uring: io_uring_setup failed with {_ename(e)} (kernel.io_uring_disabled={disabled})"


def _meminfo(key: str) -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name == key:
                return int(rest.split()[0])
    raise KeyError(key)


def _hugetlb_reason(*, need_free: bool) -> str | None:
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


def die_with_parent() -> None:
    """prctl(PR_SET_PDEATHSIG, SIGKILL): this process is killed when its parent dies (a worker
    or executor child must not outlive a conform run killed with SIGKILL); if the parent is
    already gone (reparented before the call), exit at once."""
    ppid = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != ppid or ppid == 1:
        os._exit(1)


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
    reason = _hugetlb_reason(need_free=False)
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
