"""Raw x86_64 system calls through ctypes, for the live-kernel executor (traces/kernel.py) and
its io_uring and KVM helpers (traces/uring.py, traces/kvm.py)."""

from __future__ import annotations

import ctypes
import errno as _errno
import signal

from model import vocab

__all__ = ["ename", "sig_name", "syscall"]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _carg(v: int) -> ctypes.c_long | ctypes.c_ulong:
    if -(1 << 63) <= v < (1 << 63):
        return ctypes.c_long(v)
    return ctypes.c_ulong(v & ((1 << 64) - 1))


def syscall(nr: int, *args: int) -> tuple[int, int]:
    """syscall(nr, args...) -> (return value, errno or 0); pointers are passed as ints."""
    ctypes.set_errno(0)
    r = int(_libc.syscall(ctypes.c_long(nr), *(_carg(a) for a in args)))
    return r, (ctypes.get_errno() if r == -1 else 0)


def ename(e: int) -> str:
    """The errno's name (EPERM...), as the model spells it."""
    return vocab.ERRNO_NAME.get(e) or _errno.errorcode.get(e, f"E{e}")


def sig_name(sig: int) -> str:
    return vocab.SIGNAL_NAME.get(sig) or signal.Signals(sig).name
