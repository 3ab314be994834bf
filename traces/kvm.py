"""KVM for the live-kernel executor: the ioctl structs packed as include/uapi/linux/kvm.h lays
them out (struct kvm_create_guest_memfd: 64 bytes; struct kvm_userspace_memory_region2: 160,
padding and reserved words zero; and fs.h's struct fsxattr, 28 bytes), and the /dev/kvm
capability check."""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Callable, Mapping

from model import vocab
from traces.rawsys import ename, syscall
from traces.syscalls import IOCTL_STRUCTS

__all__ = ["cap_kvm", "fill_struct", "pack_struct"]

SYS_IOCTL = 16


def pack_struct(req: int, vals: Mapping[str, int], real_fd: Callable[[int], int]) -> bytes:
    """The struct argument of ioctl `req` (a key of traces.syscalls.IOCTL_STRUCTS): each field
    truncated to its width as the kernel reads it; mapping fields already resolved to addresses;
    `guest_memfd` is a trace descriptor, translated with `real_fd`."""
    if req == vocab.FS_IOC_FSSETXATTR:  # struct fsxattr: its __u32 fields, 8 bytes of padding
        return struct.pack("<5I8x", *(vals.get(k, 0) % (1 << 32)
                                      for k, _ in IOCTL_STRUCTS[req][1]))
    if req == vocab.KVM_CREATE_GUEST_MEMFD:
        return struct.pack("<QQ6Q", vals.get("size", 0) % (1 << 64),
                           vals.get("flags", 0) % (1 << 64), *[0] * 6)
    gfd = vals.get("guest_memfd", 0)
    return struct.pack("<IIQQQQII14Q", *(vals.get(k, 0) % (1 << 32) for k in ("slot", "flags")),
                       *(vals.get(k, 0) % (1 << 64) for k in
                         ("guest_phys_addr", "memory_size", "userspace_addr",
                          "guest_memfd_offset")),
                       real_fd(gfd) % (1 << 32), 0, *[0] * 14)


def fill_struct(fd: int, req: int, fields: tuple[str, ...]) -> tuple[int, int, dict[str, int]]:
    """ioctl(fd, req, buf) for a request that fills a struct of __u32 `fields` and 8 bytes of
    padding (traces.syscalls.OUT_STRUCTS: struct fsxattr), the buffer poisoned first so that a
    call that writes nothing shows: (result, errno, {field: value} when it succeeded)."""
    buf = (ctypes.c_uint32 * (len(fields) + 2))(*[0x5A5A5A5A] * (len(fields) + 2))
    r, e = syscall(SYS_IOCTL, fd, req, ctypes.addressof(buf))
    return r, e, (dict(zip(fields, buf, strict=False)) if r == 0 else {})


def cap_kvm() -> str | None:
    """None if /dev/kvm opens and has KVM_CAP_GUEST_MEMFD, else why not."""
    if not os.path.exists("/dev/kvm"):
        return "no /dev/kvm"
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as ex:
        return f"kvm: cannot open /dev/kvm: {ename(ex.errno or 0)}"
    try:
        r, _ = syscall(SYS_IOCTL, fd, vocab.KVM_CHECK_EXTENSION, vocab.KVM_CAP_GUEST_MEMFD)
        return None if r > 0 else "kvm: no KVM_CAP_GUEST_MEMFD"
    finally:
        os.close(fd)
