"""Execute a trace's steps on the live kernel (x86_64) and report what the kernel did.

`run_on_kernel` forks a child that performs the steps with raw system calls (ctypes), so that the
kernel sees exactly the arguments of the trace, and streams one result per step back through a
pipe.  Everything the child creates (fds, mappings, pipes, io_uring rings, VMs) dies with it; the
parent kills the child's whole process group after `timeout` seconds.

Trace handles are translated: trace fds (the numbers the trace gives them, else the lowest free
one) map to the child's real fds, mappings m1, m2, ... and pins p1, p2, ... to addresses, pipes
and rings.  Accesses that may fault (`store`, `load`, the observation probes) are first tried
in a forked grandchild.

Steps are lowered through the syscall registry (traces/syscalls.py): a plain entry runs as its
system call with no code here; the others have a `do_<call>` method. The io_uring pin and the
KVM ioctl structs live in traces/uring.py and traces/kvm.py.
"""

from __future__ import annotations

import ctypes
import faulthandler
import json
import os
import platform
import select
import signal
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from model import vocab
from traces import uring
from traces.hugepages import (
    gigantic_need,
    hugepages_reserved,
    hugetlb_reason,
    restore_hugepages,
)
from traces.kernel_fork import ForkCalls, Holder
from traces.kernel_paths import SHM_DIR, PathCalls, created_paths, private_dev_shm
from traces.kernel_pins import PinCalls, cap_udmabuf
from traces.kvm import cap_kvm, fill_struct, pack_struct
from traces.memaccess import Map as _Map
from traces.memaccess import Pin as _Pin
from traces.memaccess import in_grandchild as _in_grandchild
from traces.memaccess import load_then_store, map_ref
from traces.memaccess import own_write as _own_write
from traces.memaccess import peek as _peek
from traces.memaccess import poke as _poke
from traces.rawsys import ename as _ename
from traces.rawsys import sig_name as _sig_name
from traces.rawsys import syscall as _sys
from traces.syscalls import (
    EXTRA_CONSTANTS,
    FCNTL_DUPFD_CMDS,
    FD_LIMIT,
    OUT_IOCTLS,
    OUT_POISON,
    OUT_STRUCTS,
    PAGE,
    SCRATCH_BYTES,
    SCRATCH_IOCTLS,
    SYSCALLS,
    Cell,
    Op,
    TraceError,
    Unrunnable,
    lower_steps,
)
from traces.trace import Err, New, Outcome, Ret, Sig, Step

__all__ = ["EXTRA_CONSTANTS", "SUPPORTED_CALLS", "KernelRun", "Observation", "TraceError",
           "capability", "die_with_parent", "hugepages_reserved", "restore_hugepages",
           "run_on_kernel"]


@dataclass
class Observation:
    """Observable state of the (single) memfd/gmem after a step."""

    seals: int | str  # F_GET_SEALS value, or errno name (e.g. "EINVAL"); "EBADF" before creation
    size: int | None  # fstat st_size (None before the file exists)
    mode: int | None  # st_mode & 0o7777
    maps: dict[str, tuple[str, str]]  # live mapping -> (read probe, write probe): ok|SIGSEGV|SIGBUS
    #: the file's first byte (pread), None while it is empty: content the model does not
    #: hold, so not compared (tests read it to check a step's effect on the file)
    byte0: int | None = field(default=None, compare=False)


@dataclass
class KernelRun:
    """The kernel's outcomes for the executed steps (see run_on_kernel)."""

    outcomes: list[Outcome]
    #: with observe_from, None for the steps before it
    observations: Sequence[Observation | None] | None
    skipped: str | None
    error: str | None
    #: per step, the outputs the call filled (fstat's st_mode and st_size; {} for others)
    outputs: list[dict[str, int]] = field(default_factory=list)


# ---- syscalls ----------------------------------------------------------------------------------
#: x86_64 numbers of the calls the executor makes beyond the trace's own (traces/syscalls.py)
def _nr(call: str) -> int:
    """The x86_64 number of a trace call that is a system call of its own."""
    nr = SYSCALLS[call].nr
    assert nr is not None, call
    return nr


SYS_MMAP, SYS_MUNMAP, SYS_FCNTL = _nr("mmap"), _nr("munmap"), _nr("fcntl")
SYS_MREMAP, SYS_MSYNC, MS_ASYNC = _nr("mremap"), 26, 1
SYS_SPLICE, SYS_UNSHARE, SYS_PROCESS_VM_WRITEV = 275, 272, 311

CLONE_NEWPID = 0x20000000
F_DUPFD = 0
MAP_ANONYMOUS, MAP_NORESERVE = EXTRA_CONSTANTS["MAP_ANONYMOUS"], EXTRA_CONSTANTS["MAP_NORESERVE"]
STAT_BUF = 144  # sizeof(struct stat) on x86_64
_BAD_FD = 1 << 30  # stands for a trace fd that is not open: always EBADF
_MAX_BUF = 64 << 20  # largest write() payload we materialise
NOEXEC_SYSCTL = "/proc/sys/vm/memfd_noexec"
PR_SET_PDEATHSIG = 1
SUPPORTED_CALLS = frozenset(SYSCALLS)


def _mmap_anon(length: int) -> int | None:
    r, _ = _sys(SYS_MMAP, 0, max(length, 1), vocab.PROT_READ | vocab.PROT_WRITE,
                vocab.MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
    return None if r == -1 else r


# ---- the executor (runs in the child) --------------------------------------------------------
class _Executor(PathCalls, PinCalls, ForkCalls):
    """Trace state of the child: handle tables and the private observation fd. One `do_<call>`
    method per traces.syscalls entry (tests/test_syscalls.py checks it), called with the Op's
    operands."""

    def __init__(self, observe: bool) -> None:
        self.fds: dict[int, int] = {0: 0, 1: 1, 2: 2}
        self.maps: dict[str, _Map] = {}
        self.pins: dict[str, _Pin] = {}
        self.remote: dict[str, tuple[Holder, str]] = {}  # handles a fork's child holds
        self.observe = observe
        self.file_seen = False
        self.file_fd: int | None = None
        self.want: int | None = None  # the trace's number for the current step's new fd
        self.filled: dict[str, int] = {}  # the current step's outputs (struct stat fields)

    # -- helpers
    def real(self, tfd: int) -> int:
        return self.fds.get(tfd, tfd if tfd < 0 else _BAD_FD)

    def new_fd(self, real: int, least: int = 0) -> Ret:
        """The trace number of a new real descriptor: the trace's own for this step when it
        is free, at least `least` and below FD_LIMIT (as the model's: concretize.Handles.new),
        else the lowest free one from `least`."""
        n = least
        if self.want is not None and least <= self.want < FD_LIMIT and self.want not in self.fds:
            n = self.want
        while n in self.fds:
            n += 1
        self.fds[n] = real
        return Ret(n)

    def free_real(self, tfd: int) -> int:
        """A real descriptor number for trace number `tfd`, not yet open: `tfd` itself if
        free, else the next free one (the executor's own descriptors are real numbers too).
        Out of range (< 0, >= FD_LIMIT): `tfd` as is, for the kernel's EBADF."""
        if tfd < 0 or tfd >= FD_LIMIT:
            return tfd
        n = tfd
        while _sys(SYS_FCNTL, n, 1, 0)[0] != -1:  # F_GETFD: open
            n += 1
        return n

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

    def address(self, ref: str) -> int:
        """The address a mapping operand names: mN's, or bytes past it (`m1+8192`)."""
        name, plus = map_ref(ref)
        return self.map_of(name).addr + plus

    @staticmethod
    def result(r: int, e: int) -> Outcome:
        return Err(_ename(e)) if r == -1 else Ret(r)

    def fd_result(self, r: int, e: int) -> Outcome:
        return Err(_ename(e)) if r == -1 else self.new_fd(r)

    def call(self, name: str, *args: int) -> Outcome:
        """The trace call `name` made as is, with `args` (descriptors already translated)."""
        return self.result(*_sys(_nr(name), *args))

    # -- dispatch
    def run(self, op: Op) -> Outcome:
        """`do_<call>` if the executor has one, else the registry's plain system call; a
        step naming a handle a fork's child holds runs there (traces/kernel_fork.py)."""
        self.want = op.want
        self.filled = {}
        holder = self.held_by(op)
        if holder is not None:
            return self.forward(op, holder)
        method: Callable[..., Outcome] | None = getattr(self, "do_" + op.call, None)
        return self.plain(op) if method is None else method(*op.args)

    def plain(self, op: Op) -> Outcome:
        """A Syscall.plain call: descriptors translated, mappings as their addresses, a
        left-out optional argument 0."""
        entry = SYSCALLS[op.call]
        if not entry.plain:
            raise TraceError(f"the executor cannot run {op.call}")
        args: list[int] = []
        cells: list[Any] = []  # the ptr arguments' cells and paths' strings, alive until the call
        for i, p in enumerate(entry.params):
            v = op.args[i] if i < len(op.args) else 0
            if p.kind == "map":
                assert isinstance(v, str)
                args.append(self.address(v))
            elif p.kind == "path":
                assert isinstance(v, bytes)
                cells.append(self.path(v))
                args.append(ctypes.addressof(cells[-1]))
            elif p.kind == "ptr":
                if v is None:
                    args.append(0)
                else:
                    assert isinstance(v, int)
                    cells.append(ctypes.c_int64(v))
                    args.append(ctypes.addressof(cells[-1]))
            else:
                assert isinstance(v, int)
                args.append(self.real(v) if p.kind == "fd" else v)
        r, e = _sys(_nr(op.call), *args)
        return self.fd_result(r, e) if entry.returns == "fd" else self.result(r, e)

    def do_memfd_create(self, name: bytes | None, flags: int) -> Outcome:
        buf = ctypes.create_string_buffer(name) if name is not None else None
        r, e = _sys(_nr("memfd_create"), ctypes.addressof(buf) if buf is not None else 0, flags)
        if r >= 0:
            self.note_file(r)
        return self.fd_result(r, e)

    def dup_onto(self, call: str, fd: int, newfd: int, *flags: int) -> Outcome:
        """dup2/dup3 onto trace number newfd: its real descriptor if the trace has one (the
        kernel closes it), else a free real number."""
        target = self.fds[newfd] if newfd in self.fds else self.free_real(newfd)
        r, e = _sys(_nr(call), self.real(fd), target, *flags)
        if r == -1:
            return Err(_ename(e))
        self.fds[newfd] = r
        return Ret(newfd)

    def do_dup2(self, fd: int, newfd: int) -> Outcome:
        return self.dup_onto("dup2", fd, newfd)

    def do_dup3(self, fd: int, newfd: int, flags: int) -> Outcome:
        return self.dup_onto("dup3", fd, newfd, flags)

    def do_fcntl(self, fd: int, cmd: int, arg: int = 0) -> Outcome:
        """F_DUPFD[_CLOEXEC] makes a trace descriptor (the lowest free number from arg);
        the other commands are the plain call."""
        r, e = _sys(SYS_FCNTL, self.real(fd), cmd, arg)
        if cmd in FCNTL_DUPFD_CMDS and r >= 0:
            return self.new_fd(r, max(arg, 0))
        return self.result(r, e)

    def do_close(self, fd: int) -> Outcome:
        r, e = _sys(_nr("close"), self.real(fd))
        if r == 0:
            del self.fds[fd]
        return self.result(r, e)

    @staticmethod
    def payload(data: bytes, count: int) -> ctypes.Array[ctypes.c_char]:
        n = max(count, 0)
        if n > _MAX_BUF:
            raise TraceError(f"write of {n} bytes is larger than the executor supports")
        unit = data or b"\0"
        return ctypes.create_string_buffer((unit * (n // len(unit) + 1))[:n], max(n, 1))

    def do_write(self, fd: int, data: bytes, count: int) -> Outcome:
        buf = self.payload(data, count)
        return self.call("write", self.real(fd), ctypes.addressof(buf), count)

    def do_pwrite64(self, fd: int, data: bytes, count: int, off: int) -> Outcome:
        buf = self.payload(data, count)
        return self.call("pwrite64", self.real(fd), ctypes.addressof(buf), count, off)

    def read_into(self, call: str, fd: int, count: int, *rest: int) -> Outcome:
        length = min(max(count, 1), 1 << 46)
        addr = _mmap_anon(length)
        if addr is None:
            length, addr = PAGE, _mmap_anon(PAGE)
        if addr is None:
            raise TraceError("cannot allocate a read buffer")
        try:
            return self.call(call, self.real(fd), addr, count, *rest)
        finally:
            _sys(SYS_MUNMAP, addr, length)

    def stat_into(self, call: str, *args: int) -> Outcome:
        """fstat/newfstatat into a struct stat (x86_64 layout: st_mode a u32 at 24, st_size
        an s64 at 48); its judged fields become the step's outputs."""
        buf = ctypes.create_string_buffer(STAT_BUF)
        args = (*args[:-1], ctypes.addressof(buf), args[-1]) if call == "newfstatat" else \
            (*args, ctypes.addressof(buf))
        out = self.call(call, *args)
        if isinstance(out, Ret):
            self.filled = {"st_mode": int.from_bytes(buf.raw[24:28], "little"),
                           "st_size": int.from_bytes(buf.raw[48:56], "little", signed=True)}
        return out

    def do_newfstatat(self, fd: int, path: bytes, _shown: object, flags: int = 0) -> Outcome:
        name = self.path(path)  # kept alive across the call
        return self.stat_into("newfstatat", self.real(fd), ctypes.addressof(name), flags)

    def do_fstat(self, fd: int, _shown: object) -> Outcome:
        return self.stat_into("fstat", self.real(fd))

    def do_read(self, fd: int, count: int) -> Outcome:
        return self.read_into("read", fd, count)

    def do_splice_write(self, fd: int, count: int, off: int) -> Outcome:
        """count bytes (0x79) moved with splice(2) from a new pipe into fd at off (an explicit
        offset, so the description's f_pos is not used); the pipe is closed after it."""
        if count > vocab.PIPE_BYTES:  # the model refuses it first (splice_write's len)
            raise TraceError(f"splice_write of {count} bytes: a pipe holds {vocab.PIPE_BYTES}")
        rd, wr = os.pipe()
        try:
            if count:
                os.write(wr, b"\x79" * count)
            pos = ctypes.c_longlong(off)
            r, e = _sys(SYS_SPLICE, rd, 0, self.real(fd), ctypes.addressof(pos), count, 0)
        finally:
            os.close(rd)
            os.close(wr)
        return Err(_ename(e)) if r == -1 else Ret(r)

    def iovecs(self, iov: tuple[tuple[bytes, int], ...], write: bool
               ) -> tuple[ctypes.Array[uring.Iovec], list[ctypes.Array[ctypes.c_char]]]:
        """A struct iovec array (its buffers kept alive by the caller): each iov_base its
        bytes repeated to iov_len for a write, zeroed for a read."""
        bufs = [self.payload(data if write else b"", n) for data, n in iov]
        arr = (uring.Iovec * max(len(iov), 1))()
        for k, ((_, n), b) in enumerate(zip(iov, bufs, strict=True)):
            arr[k].base, arr[k].len = ctypes.addressof(b), n
        return arr, bufs

    def vectored(self, call: str, fd: int, iov: tuple[tuple[bytes, int], ...], cnt: int,
                 *pos_flags: int) -> Outcome:
        """pwritev[2]/preadv[2](fd, iov, cnt, pos_l, pos_h[, flags]) (on x86_64 pos_l holds
        all of pos), or writev/readv(fd, iov, cnt) at the file offset."""
        arr, _bufs = self.iovecs(iov, write="write" in call)
        rest = (pos_flags[0] & ((1 << 64) - 1), 0, *pos_flags[1:]) if pos_flags else ()
        return self.call(call, self.real(fd), ctypes.addressof(arr), cnt, *rest)

    def do_writev(self, *a: Any) -> Outcome:
        return self.vectored("writev", *a)

    def do_readv(self, *a: Any) -> Outcome:
        return self.vectored("readv", *a)

    def do_pwritev2(self, *a: Any) -> Outcome:
        return self.vectored("pwritev2", *a)

    def do_preadv2(self, *a: Any) -> Outcome:
        return self.vectored("preadv2", *a)

    def do_pwritev(self, *a: Any) -> Outcome:
        return self.vectored("pwritev", *a)

    def do_preadv(self, *a: Any) -> Outcome:
        return self.vectored("preadv", *a)

    def do_pread64(self, fd: int, count: int, off: int) -> Outcome:
        return self.read_into("pread64", fd, count, off)

    def path(self, path: bytes) -> ctypes.Array[ctypes.c_char]:
        for prefix in (b"/proc/self/fd/", b"/dev/fd/"):
            tail = path[len(prefix):]
            if path.startswith(prefix) and tail.isdigit():
                path = prefix + str(self.real(int(tail))).encode()
        return ctypes.create_string_buffer(path)

    def do_open(self, path: bytes, flags: int, mode: int = 0) -> Outcome:
        buf = self.path(path)
        return self.opened(path, *_sys(_nr("open"), ctypes.addressof(buf), flags, mode))

    def do_openat(self, dirfd: int, path: bytes, flags: int, mode: int = 0) -> Outcome:
        buf = self.path(path)
        return self.opened(path, *_sys(_nr("openat"), self.real(dirfd), ctypes.addressof(buf),
                                       flags, mode))

    def opened(self, path: bytes, r: int, e: int) -> Outcome:
        """A /dev/shm name is the trace's file (a tmpfs one): observed from its first open."""
        if r >= 0 and path.startswith(SHM_DIR):
            self.note_file(r)
        return self.fd_result(r, e)

    def do_mmap(self, addr: int | str, length: int, prot: int, flags: int, fd: int,
                off: int) -> Outcome:
        """mmap(); at an address inside a trace mapping (MAP_FIXED over it: `m1+4096`) the
        part it replaces is the trace's no longer (Map.gone)."""
        at = self.address(addr) if isinstance(addr, str) else addr
        r, e = _sys(SYS_MMAP, at, length, prot, flags, self.real(fd), off)
        if r != -1 and isinstance(addr, str):
            self.forget(at, at + -(-length // PAGE) * PAGE)
        if r == -1:
            return Err(_ename(e))
        name = f"m{len(self.maps) + 1}"
        self.maps[name] = _Map(r, -(-length // PAGE) * PAGE)
        return New(name)

    def do_munmap(self, m: str, length: int) -> Outcome:
        start = self.address(m)
        r, e = _sys(SYS_MUNMAP, start, length)
        if r == 0:
            self.forget(start, start + -(-length // PAGE) * PAGE)
        return self.result(r, e)

    def forget(self, start: int, end: int) -> None:
        """[start, end) is no longer any trace mapping's (munmap; MAP_FIXED over it)."""
        for mp in self.maps.values():
            if start <= mp.addr and mp.addr + mp.length <= end:
                mp.live = False
            elif start < mp.addr + mp.length and mp.addr < end:  # a part of it
                mp.gone.append((max(start, mp.addr), min(end, mp.addr + mp.length)))

    def do_mremap(self, m: str, old_len: int, new_len: int, flags: int,
                  new_addr: int = 0) -> Outcome:
        """mremap() of mapping m. The kernel returns an address, the trace a mapping's name:
        m itself when m was resized or moved (its old place is the result, or is gone), else
        a new mapping (a duplicate or a MREMAP_DONTUNMAP copy, whose source stays mapped,
        which msync() observes)."""
        mp = self.map_of(m)
        r, e = _sys(SYS_MREMAP, mp.addr, old_len, new_len, flags, new_addr)
        if r == -1:
            return Err(_ename(e))
        pages = -(-new_len // PAGE) * PAGE
        if r != mp.addr and _sys(SYS_MSYNC, mp.addr, PAGE, MS_ASYNC)[0] == 0:
            name = f"m{len(self.maps) + 1}"
            self.maps[name] = _Map(r, pages)
            return New(name)
        mp.addr, mp.length = r, mp.length - -(-old_len // PAGE) * PAGE + pages
        return New(m)

    def access(self, m: str, off: int, fn: Callable[[int], Callable[[], None]]) -> Outcome:
        mp = self.map_of(m)
        addr = mp.addr + off
        res = _in_grandchild(fn(addr))
        if res != "ok":
            return Sig(res)
        if mp.holds(addr):  # never touch an address the trace unmapped (it may be reused)
            fn(addr)()
        return Ret(0)

    def do_store(self, m: str, off: int = 0) -> Outcome:
        return self.access(m, off, _poke)

    def do_load(self, m: str, off: int = 0) -> Outcome:
        return self.access(m, off, _peek)

    def do_mem_write(self, m: str, off: int = 0) -> Outcome:
        """One byte (0x5a) written with pwrite64() on /proc/self/mem at mN + off: a
        FOLL_FORCE write (`_own_write`)."""
        mp = self.map_of(m)
        addr = mp.addr + off

        def write() -> int:
            fd = os.open("/proc/self/mem", os.O_RDWR | os.O_CLOEXEC)
            try:
                return os.pwrite(fd, b"\x5a", addr)
            except OSError as e:
                return -(e.errno or 1)
            finally:
                os.close(fd)

        return _own_write(mp, write, addr)

    def do_vm_write(self, m: str, off: int = 0) -> Outcome:
        """One byte (0x5a) written with process_vm_writev() from this process to itself at
        mN + off (`_own_write`)."""
        mp = self.map_of(m)
        src = ctypes.create_string_buffer(b"\x5a", 1)
        local = uring.Iovec(ctypes.addressof(src), 1)
        addr = mp.addr + off
        remote = uring.Iovec(addr, 1)

        def write() -> int:
            r, e = _sys(SYS_PROCESS_VM_WRITEV, os.getpid(), ctypes.addressof(local), 1,
                        ctypes.addressof(remote), 1, 0)
            return -(e or 1) if r == -1 else r

        return _own_write(mp, write, addr)

    def do_ioctl(self, fd: int, req: int, arg: int | dict[str, int | str] | Cell) -> Outcome:
        real = self.real(fd)
        if req in OUT_STRUCTS:  # a struct the kernel fills: the step's outputs
            r, e, got = fill_struct(real, req, OUT_STRUCTS[req])
            self.filled.update(got)
            return self.result(r, e)
        if isinstance(arg, Cell) or req in OUT_IOCTLS:  # a 64-bit cell's address, as `ptr`'s
            seed = arg.value if isinstance(arg, Cell) and req not in OUT_IOCTLS else OUT_POISON
            cell = ctypes.c_int64(seed)
            r, e = _sys(_nr("ioctl"), real, req, ctypes.addressof(cell))
            if r == 0 and req in OUT_IOCTLS:  # the int the kernel wrote: the step's output
                self.filled[OUT_IOCTLS[req]] = cell.value & 0xFFFFFFFF
            return self.result(r, e)
        if req in SCRATCH_IOCTLS:  # a buffer the call may fill: ours, not the trace's address
            scratch = ctypes.create_string_buffer(SCRATCH_BYTES)
            return self.result(*_sys(_nr("ioctl"), real, req, ctypes.addressof(scratch)))
        if isinstance(arg, int):
            r, e = _sys(_nr("ioctl"), real, req, arg)
            return self.fd_result(r, e) if req == vocab.KVM_CREATE_VM else self.result(r, e)
        vals = {k: (self.map_of(v).addr if isinstance(v, str) else v) for k, v in arg.items()}
        raw = pack_struct(req, vals, self.real)
        buf = ctypes.create_string_buffer(raw, len(raw))
        r, e = _sys(_nr("ioctl"), real, req, ctypes.addressof(buf))
        if req == vocab.KVM_CREATE_GUEST_MEMFD:
            if r >= 0:
                self.note_file(r)
            return self.fd_result(r, e)
        return self.result(r, e)

    # -- observation
    def observation(self) -> dict[str, Any]:
        seals: int | str = "EBADF"
        size = mode = byte0 = None
        if self.file_fd is not None:
            r, e = _sys(SYS_FCNTL, self.file_fd, vocab.F_GET_SEALS, 0)
            seals = _ename(e) if r == -1 else r
            st = os.fstat(self.file_fd)
            size, mode = st.st_size, st.st_mode & 0o7777
            with suppress(OSError):  # a guest_memfd has no read
                got = os.pread(self.file_fd, 1, 0)
                byte0 = got[0] if got else None
        return {"seals": seals, "size": size, "mode": mode, "maps": self.map_probes(),
                "byte0": byte0}

    def map_probes(self) -> dict[str, list[str]]:
        """Each live mapping's (load, store) probe, the ones a fork's child holds too.
        Probes run in a grandchild per mapping (load_then_store); the store writes back the
        byte it read, so it changes no content even through a shared mapping (a private one
        COWs in the probe)."""
        maps = {name: list(load_then_store(mp.addr)) for name, mp in self.maps.items()
                if mp.holds(mp.addr)}
        return {**maps, **self.remote_probes()}


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


def _child(ops: list[Op], out: int, observe: bool, noexec_scope: int | None,
           observe_from: int = 0) -> None:
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
        shm = any(isinstance(a, bytes) and a.startswith(SHM_DIR) for op in ops for a in op.args)
        why = private_dev_shm() if shm else None
        if why:
            _send(out, {"skipped": why})
            os._exit(0)
        os.umask(0o022)  # the model's process umask (model/designs/memfd_open.py UMASK)
        ex_ = _Executor(observe)
        for i, op in enumerate(ops, 1):
            try:
                msg: dict[str, Any] = {"o": _encode(ex_.run(op)), "out": ex_.filled}
                if observe and i > observe_from:
                    msg["obs"] = ex_.observation()
            except Exception as err:
                text = str(err) if isinstance(err, TraceError) else f"executor failed: {err!r}"
                _send(out, {"error": f"step {i}: {text}"})
                os._exit(0)
            _send(out, msg)
        ex_.reap_holders()  # a fork's children end with the trace (traces/kernel_fork.py)
        _send(out, {"done": True})
    except BaseException as err:  # report, never fall back into the caller's code
        try:
            _send(out, {"error": f"internal error in the executor: {err!r}"})
        except BaseException:
            pass
    os._exit(0)


# ---- the parent side -------------------------------------------------------------------------
#: the whole-trace timeout of a trace that makes an MFD_HUGE_1GB file (at least)
GIGANTIC_TIMEOUT = 60.0


def run_on_kernel(steps: Sequence[Step], *, observe: bool = False, timeout: float = 10.0,
                  noexec_scope: int | None = None, hstate_1g: int | None = None,
                  observe_from: int = 0) -> KernelRun:
    """Execute `steps` in a forked child and return the kernel's outcome of each.

    Nothing runs when a call is unsupported (error) or a needed capability is missing (skipped).
    With `observe`, an Observation is recorded after every step (with `observe_from` = k,
    after steps k+1 onwards: None before, whose probes were not run).  With `noexec_scope`,
    the steps run in a new pid namespace whose vm.memfd_noexec is set to that value (the
    host's is kept).
    With `hstate_1g` (the model's initial choice: whether the machine has a 1 GiB hstate), a
    trace that creates an MFD_HUGE_1GB file is skipped when this machine differs (hstates are
    fixed at boot); None runs it on the machine as it is.
    """
    for step in steps:
        if step.call not in SUPPORTED_CALLS:
            return KernelRun([], None, None, f"unsupported call {step.call}")
    if platform.machine() != "x86_64":
        return KernelRun([], None, f"unsupported architecture {platform.machine()}", None)
    try:
        ops = lower_steps(steps)
    except Unrunnable as err:
        return KernelRun([], None, str(err), None)
    except TraceError as err:
        return KernelRun([], None, None, str(err))
    needs: set[str] = set().union(*(op.needs for op in ops))
    for kind in sorted(needs):
        if kind == "hugetlb_1g":
            reason = gigantic_need(hstate_1g)
        else:
            reason = hugetlb_reason(need_free=True) if kind == "hugetlb" else capability(kind)
        if reason:
            return KernelRun([], None, reason, None)

    rfd, wfd = os.pipe()
    new_files = created_paths(ops)
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        with suppress(OSError):
            os.setpgid(0, 0)
        with suppress(Exception):
            die_with_parent()
        _child(ops, wfd, observe, noexec_scope, observe_from)
    os.close(wfd)
    with suppress(OSError):  # the child may have done it already
        os.setpgid(pid, pid)
    outcomes: list[Outcome] = []
    outputs: list[dict[str, int]] = []
    observations: list[Observation | None] = []
    skipped = error = None
    final = False
    if "hugetlb_1g" in needs:  # each 1 GiB page is zeroed when first allocated (seconds on
        timeout = max(timeout, GIGANTIC_TIMEOUT)  # a loaded machine: it timed out at 10 s)
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
                    outputs.append(msg.get("out") or {})
                    if "obs" in msg:
                        ob = msg["obs"]
                        observations.append(Observation(
                            ob["seals"], ob["size"], ob["mode"],
                            {k: (v[0], v[1]) for k, v in ob["maps"].items()}, ob.get("byte0")))
                    elif observe:
                        observations.append(None)
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
    return KernelRun(outcomes, observations if observe else None, skipped, error, outputs)


# ---- capabilities ----------------------------------------------------------------------------
_CAPS: dict[str, str | None] = {}


def capability(kind: str) -> str | None:
    """None if `kind` ("kvm", "hugetlb", "pidns", "io_uring", "liveupdate", "udmabuf") is
    usable here, else a reason."""
    if kind == "hugetlb":
        return hugetlb_reason(need_free=False)
    checks: dict[str, Callable[[], str | None]] = {
        "kvm": cap_kvm, "pidns": _cap_pidns, "io_uring": uring.cap_io_uring,
        "liveupdate": _cap_liveupdate, "udmabuf": cap_udmabuf}
    if kind not in checks:
        raise ValueError(f"unknown capability {kind!r}")
    if kind not in _CAPS:
        _CAPS[kind] = checks[kind]()
    return _CAPS[kind]


def _cap_liveupdate() -> str:
    """The executor has no LUO session calls (designs memfd+luo and L1-* are source-read)."""
    dev = "/dev/liveupdate"
    return ("liveupdate: the executor and the reproducers have no live-update session calls"
            + ("" if os.path.exists(dev) else f"; this kernel has no {dev}"))


def _cap_pidns() -> str | None:
    try:
        with open(NOEXEC_SYSCTL) as f:
            current = int(f.read())
    except OSError:
        return f"pidns: no {NOEXEC_SYSCTL} (kernel older than 6.3?)"
    run = run_on_kernel([], noexec_scope=current, timeout=10.0)
    return run.skipped or (f"pidns: {run.error}" if run.error else None)


def die_with_parent() -> None:
    """prctl(PR_SET_PDEATHSIG, SIGKILL): this process is killed when its parent dies (a worker
    or executor child must not outlive a conform run killed with SIGKILL); if the parent is
    already gone (reparented before the call), exit at once."""
    ppid = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != ppid or ppid == 1:
        os._exit(1)
