"""The live-kernel executor's pins: page references and long-term pins a trace holds as
handles p1, p2, ... (vmsplice into a pipe, an io_uring fixed buffer, a udmabuf), the device
writes through them, and their release. traces/kernel.py's executor inherits them."""

from __future__ import annotations

import ctypes
import os
import struct
from contextlib import suppress

from model import vocab
from traces import uring
from traces.memaccess import Map as _Map
from traces.memaccess import Pin as _Pin
from traces.rawsys import ename as _ename
from traces.rawsys import syscall as _sys
from traces.syscalls import PAGE, TraceError
from traces.trace import Err, New, Outcome, Ret

__all__ = ["PinCalls", "cap_udmabuf"]

SYS_MMAP, SYS_MUNMAP, SYS_IOCTL, SYS_VMSPLICE = 9, 11, 16, 278  # x86_64


def cap_udmabuf() -> str | None:
    """/dev/udmabuf exists (CONFIG_UDMABUF; this machine's 6.18.44 has none, Debian's 6.12,
    7.2 and 7.3-rc builds have it)."""
    return None if os.path.exists(vocab.UDMABUF_DEV) else (
        f"udmabuf: this kernel has no {vocab.UDMABUF_DEV} (CONFIG_UDMABUF)")


class PinCalls:
    """pin, gup_pin, udmabuf, dma_write, unpin; the executor provides pins, map_of() and
    real()."""

    pins: dict[str, _Pin]

    def map_of(self, name: str) -> _Map:
        raise NotImplementedError

    def real(self, tfd: int) -> int:
        raise NotImplementedError

    def pin_of(self, name: str) -> _Pin:
        if name not in self.pins:
            raise TraceError(f"{name} does not exist (no pin produced it)")
        pin = self.pins[name]
        if pin.released:
            raise TraceError(f"{name} was already unpinned")
        return pin

    def new_pin(self, pin: _Pin) -> Outcome:
        name = f"p{len(self.pins) + 1}"
        self.pins[name] = pin
        return New(name)

    def do_pin(self, m: str, off: int = 0) -> Outcome:
        addr = (self.map_of(m).addr + off) & ~(PAGE - 1)
        rfd, wfd = os.pipe()
        iov = uring.Iovec(addr, PAGE)
        r, e = _sys(SYS_VMSPLICE, wfd, ctypes.addressof(iov), 1, 0)
        if r == -1:
            os.close(rfd)
            os.close(wfd)
            return Err(_ename(e))
        return self.new_pin(_Pin((rfd, wfd)))

    def do_gup_pin(self, m: str, off: int = 0) -> Outcome:
        ring, e = uring.pin_page((self.map_of(m).addr + off) & ~(PAGE - 1))
        if e:
            return Err(_ename(e))
        return self.new_pin(_Pin(ring=ring))

    def do_udmabuf(self, fd: int, off: int, size: int) -> Outcome:
        """UDMABUF_CREATE on a fresh /dev/udmabuf descriptor (closed at once: the dmabuf
        holds the pins), flags 0; offset and size as the trace's 64-bit words."""
        dev = os.open(vocab.UDMABUF_DEV, os.O_RDWR | os.O_CLOEXEC)
        arg = ctypes.create_string_buffer(struct.pack(
            "=IIQQ", self.real(fd) & 0xFFFFFFFF, 0, off % (1 << 64), size % (1 << 64)))
        r, e = _sys(SYS_IOCTL, dev, vocab.UDMABUF_CREATE, ctypes.addressof(arg))
        os.close(dev)
        return Err(_ename(e)) if r == -1 else self.new_pin(_Pin(dmabuf=r))

    def do_dma_write(self, p: str) -> Outcome:
        pin = self.pin_of(p)
        if pin.dmabuf >= 0:  # a store through a shared mapping of the dmabuf's first page
            addr, e = _sys(SYS_MMAP, 0, PAGE, vocab.PROT_READ | vocab.PROT_WRITE,
                           vocab.MAP_SHARED, pin.dmabuf, 0)
            if addr == -1:
                return Err(_ename(e))
            ctypes.c_char.from_address(addr).value = b"\x5a"
            _sys(SYS_MUNMAP, addr, PAGE)
            return Ret(0)
        if pin.ring is None:
            raise TraceError(f"dma_write needs a gup_pin handle, {p} is a pipe pin")
        res = uring.read_fixed(pin.ring)
        return Err(_ename(-res)) if res < 0 else Ret(0)

    def do_unpin(self, p: str) -> Outcome:
        pin = self.pin_of(p)
        if pin.ring is not None:
            uring.release(pin.ring)
        elif pin.dmabuf >= 0:  # release_udmabuf() unpins when the dmabuf's file goes
            os.close(pin.dmabuf)
        else:
            os.set_blocking(pin.fds[0], False)
            with suppress(BlockingIOError):
                while os.read(pin.fds[0], 1 << 16):
                    pass
            for fd in pin.fds:
                os.close(fd)
        pin.released = True
        return Ret(0)
