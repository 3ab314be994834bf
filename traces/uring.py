"""io_uring for the live-kernel executor: a long-term FOLL_WRITE pin of one page (`gup_pin`,
io_uring_register(IORING_REGISTER_BUFFERS) -> io_sqe_buffers_register() -> pin_user_pages()
with FOLL_WRITE|FOLL_LONGTERM) and a write through it (`dma_write`, an IORING_OP_READ_FIXED
from a pipe into the registered buffer: the kernel writes the page, no seal is checked); and
one IORING_OP_WRITE, IORING_OP_READ or IORING_OP_FALLOCATE on a descriptor (`io_uring_write`,
`io_uring_read`, `io_uring_fallocate`: the CQE's result is the call's).

Layouts are include/uapi/linux/io_uring.h's (struct io_uring_params: 120 bytes, an SQE 64, a
CQE 16)."""

from __future__ import annotations

import ctypes
import os
import struct
from dataclasses import dataclass

from model import vocab
from traces.rawsys import ename, syscall
from traces.syscalls import TraceError

__all__ = ["IORING_OP_FALLOCATE", "IORING_OP_READ", "IORING_OP_WRITE", "PAGE", "Ring",
           "cap_io_uring", "one_op", "pin_page", "read_fixed", "release"]

SYS_MMAP, SYS_MUNMAP = 9, 11
SYS_IO_URING_SETUP, SYS_IO_URING_ENTER, SYS_IO_URING_REGISTER = 425, 426, 427
IORING_OFF_SQ_RING, IORING_OFF_CQ_RING, IORING_OFF_SQES = 0, 0x8000000, 0x10000000
IORING_ENTER_GETEVENTS = 1
IORING_REGISTER_BUFFERS, IORING_UNREGISTER_BUFFERS = 0, 1
IORING_OP_READ_FIXED, IORING_OP_FALLOCATE, IORING_OP_READ, IORING_OP_WRITE = 4, 17, 22, 23
SQE = "<BBHiQQIIQHHiQQ"  # opcode flags ioprio fd off addr len rw_flags user_data ... (64 bytes)
PAGE = 4096
STORE_BYTE = b"\x5a"

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


class Iovec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


def _u32(addr: int) -> ctypes.c_uint32:
    return ctypes.c_uint32.from_address(addr)


@dataclass
class Ring:
    """A ring with one registered buffer (the pinned page at `addr`)."""

    fd: int
    sq_off: _SqOff
    cq_off: _CqOff
    addr: int
    regions: tuple[tuple[int, int], ...] = ()  # (addr, len) of the sq, cq, sqe mappings


def _setup(addr: int = 0) -> Ring:
    """A 4-entry ring with its sq, cq and sqe regions mapped (`addr`: a buffer to register)."""
    params = _UringParams()
    fd, e = syscall(SYS_IO_URING_SETUP, 4, ctypes.addressof(params))
    if fd == -1:
        raise TraceError(f"io_uring_setup: {ename(e)}")
    ring = Ring(fd, params.sq_off, params.cq_off, addr)
    regions = []
    for offset, length in ((IORING_OFF_SQ_RING, params.sq_off.array + params.sq_entries * 4),
                           (IORING_OFF_CQ_RING, params.cq_off.cqes + params.cq_entries * 16),
                           (IORING_OFF_SQES, params.sq_entries * 64)):
        a, e = syscall(SYS_MMAP, 0, length, vocab.PROT_READ | vocab.PROT_WRITE,
                       vocab.MAP_SHARED, fd, offset)
        if a == -1:
            release(ring, registered=False)
            raise TraceError(f"mmap of the io_uring ring: {ename(e)}")
        regions.append((a, length))
        ring.regions = tuple(regions)
    return ring


def pin_page(addr: int) -> tuple[Ring, int]:
    """Set up a 4-entry ring and register the page at `addr` as its buffer: (ring, errno of the
    registration or 0). On a registration error the ring is already released."""
    ring = _setup(addr)
    iov = Iovec(addr, PAGE)
    r, e = syscall(SYS_IO_URING_REGISTER, ring.fd, IORING_REGISTER_BUFFERS,
                   ctypes.addressof(iov), 1)
    if r == -1:
        release(ring)
        return ring, e
    return ring, 0


def _submit(ring: Ring, sqe: bytes) -> int:
    """Submit one SQE and wait for its completion: the CQE's result (-errno on failure)."""
    (sq, _), (cq, _), (sqes, _) = ring.regions
    so, co = ring.sq_off, ring.cq_off
    tail = _u32(sq + so.tail).value
    idx = tail & _u32(sq + so.ring_mask).value
    ctypes.memmove(sqes + idx * 64, sqe, 64)
    _u32(sq + so.array + idx * 4).value = idx
    _u32(sq + so.tail).value = tail + 1
    r, e = syscall(SYS_IO_URING_ENTER, ring.fd, 1, 1, IORING_ENTER_GETEVENTS, 0, 0)
    if r == -1:
        raise TraceError(f"io_uring_enter: {ename(e)}")
    head = _u32(cq + co.head).value
    if head == _u32(cq + co.tail).value:
        raise TraceError("io_uring: no completion")
    cqe = cq + co.cqes + (head & _u32(cq + co.ring_mask).value) * 16
    res = ctypes.c_int32.from_address(cqe + 8).value
    _u32(cq + co.head).value = head + 1
    return res


def one_op(op: int, fd: int, off: int, addr: int, length: int) -> int:
    """One IORING_OP_WRITE/READ (addr, length: the buffer) or IORING_OP_FALLOCATE (addr: the
    length, length: the mode; io_fallocate_prep()) at `off` on `fd`, on a ring of its own: the
    CQE's result."""
    ring = _setup()
    try:
        return _submit(ring, struct.pack(SQE, op, 0, 0, fd, off % (1 << 64), addr % (1 << 64),
                                         length, 0, 1, 0, 0, 0, 0, 0))
    finally:
        release(ring, registered=False)


def read_fixed(ring: Ring) -> int:
    """One IORING_OP_READ_FIXED of a byte from a pipe into the registered buffer; the CQE's
    result (a negative errno on failure)."""
    rfd, wfd = os.pipe()
    try:
        os.write(wfd, STORE_BYTE)
        return _submit(ring, struct.pack(SQE, IORING_OP_READ_FIXED, 0, 0, rfd, 0, ring.addr,
                                         1, 0, 1, 0, 0, 0, 0, 0))
    finally:
        os.close(rfd)
        os.close(wfd)


def release(ring: Ring, registered: bool = True) -> None:
    """Unregister the buffer (unpin_user_pages()), unmap the rings, close the ring."""
    if registered:
        syscall(SYS_IO_URING_REGISTER, ring.fd, IORING_UNREGISTER_BUFFERS, 0, 0)
    for a, length in ring.regions:
        syscall(SYS_MUNMAP, a, length)
    os.close(ring.fd)


def cap_io_uring() -> str | None:
    """None if io_uring_setup works here, else why not (kernel.io_uring_disabled...)."""
    params = _UringParams()
    r, e = syscall(SYS_IO_URING_SETUP, 1, ctypes.addressof(params))
    if r >= 0:
        os.close(r)
        return None
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            disabled = f.read().strip()
    except OSError:
        disabled = "?"
    return f"io_uring: io_uring_setup failed with {ename(e)} (kernel.io_uring_disabled={disabled})"
