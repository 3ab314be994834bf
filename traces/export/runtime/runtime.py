# SPDX-License-Identifier: GPL-2.0
"""The runtime of shmemcheck's Python reproducers (traces/export/python.py, `export --to python`).

Each `# @section NAME` line starts a section: the exporter copies "base" into every
reproducer and "kvm" into those with KVM calls, drops the marker lines, this docstring and
the "standalone" section, and rewrites the KVM_*_NR and GMEM_KNOWN_FLAGS lines with
model.vocab's values. Plain Python (stdlib + ctypes, x86_64 system call numbers), checked
on its own by tests/test_export_runtime.py (compile() and ruff).
"""
# @section base

import ctypes
import fcntl
import os
import platform
import resource
import struct
import sys

KSFT_PASS, KSFT_FAIL, KSFT_SKIP = 0, 1, 4
SIGSEGV, SIGBUS = 11, 7
SIGNAL_NAMES = {SIGSEGV: "SIGSEGV", SIGBUS: "SIGBUS"}
BAD_FD = 1 << 30
PIN_PAGE = 4096
NR = {"read": 0, "write": 1, "open": 2, "close": 3, "fstat": 5, "lseek": 8, "mmap": 9,
      "mprotect": 10, "munmap": 11, "ioctl": 16, "pread64": 17, "pwrite64": 18, "readv": 19,
      "writev": 20, "pipe": 22, "mremap": 25, "dup": 32, "fcntl": 72, "ftruncate": 77,
      "fchmod": 91, "unshare": 272, "splice": 275, "vmsplice": 278, "fallocate": 285,
      "process_vm_writev": 311, "preadv": 295, "pwritev": 296, "memfd_create": 319,
      "copy_file_range": 326, "preadv2": 327, "pwritev2": 328, "newfstatat": 262,
      "execve": 59, "execveat": 322, "io_uring_setup": 425, "io_uring_enter": 426,
      "io_uring_register": 427, "file_getattr": 468, "file_setattr": 469}
PROT_NONE, PROT_RW, MAP_SHARED, MAP_PRIVATE = 0, 3, 1, 2
MAP_FIXED, MAP_ANONYMOUS, MAP_POPULATE, MAP_NORESERVE = 0x10, 0x20, 0x8000, 0x4000
CLONE_NEWPID, F_SETFL, O_NONBLOCK = 0x20000000, 4, 0o4000
CLONE_NEWNS, MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 0x20000, 0x2, 0x4, 0x4000, 0x40000

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

fds = {0: 0, 1: 1, 2: 2}  # the trace's descriptor numbers -> this process's
maps = {}  # m1, m2, ... (by number) -> address
pins = {}  # p1, p2, ... (by number) -> ("pipe", r, w), ("ring", ...) or ("dmabuf", fd)
cur_step = 0
passed = failed = 0
lacking = None  # why the current step's failure may be this machine's (a missing feature)


def _arg(v):
    if isinstance(v, (bytes, ctypes.Array)):
        return v
    v = int(v)
    return ctypes.c_long(v) if -(1 << 63) <= v < (1 << 63) else ctypes.c_ulong(v % (1 << 64))


def sysc(name, *args):
    """A raw system call: (return value, errno, signal)."""
    ctypes.set_errno(0)
    r = int(libc.syscall(ctypes.c_long(NR[name]), *(_arg(a) for a in args)))
    return (r, ctypes.get_errno() if r == -1 else 0, 0)


def FD(tfd):  # noqa: N802
    return fds.get(tfd, BAD_FD)


def PTR(v):  # noqa: N802
    """A pointer argument: a 64-bit cell holding v (passed by address)."""
    return (ctypes.c_int64 * 1)(v)


def U32S(*v):  # noqa: N802
    """A struct of __u32 fields (struct fsxattr, its padding as zero words), passed by
    address; each value truncated to 32 bits, as the kernel reads it."""
    return (ctypes.c_uint32 * len(v))(*(int(x) % (1 << 32) for x in v))


def NEWFD(tfd):  # noqa: N802
    """dup2/dup3's newfd: the descriptor the trace holds at tfd (the kernel closes it), else a
    free one from tfd up; a negative tfd as is (the kernel's EBADF)."""
    if tfd < 0 or tfd in fds:
        return fds.get(tfd, tfd)
    fd = tfd
    while True:
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            return fd
        fd += 1


def describe(r):
    ret, err, sig = r
    if sig:
        return SIGNAL_NAMES.get(sig, f"signal {sig}")
    if ret == -1:
        return f"-1 {ERRNO_NAME.get(err, 'E?')} (errno {err})"
    return str(ret)


def finish(code, why):
    for n in range(cur_step + 1, len(STEPS)):
        print(f"ok {n} {STEPS[n]} # SKIP {why}")
    skipped = len(STEPS) - 1 - passed - failed
    print(f"# Totals: pass:{passed} fail:{failed} xfail:0 xpass:0 skip:{skipped} error:0")
    sys.stdout.flush()
    os._exit(code)


def skip(why):
    print(f"ok {cur_step} {STEPS[cur_step]} # SKIP {why}")
    finish(KSFT_SKIP, why)


def step_failed(why):
    """The current step is `not ok` (why, as a KTAP diagnostic): the run ends there."""
    global failed
    print(f"# step {cur_step}: {why}")
    print(f"not ok {cur_step} {STEPS[cur_step]}")
    failed += 1
    finish(KSFT_FAIL, "an earlier step failed")


def result(ok, r, want):
    global passed, lacking
    why, lacking = lacking, None
    if ok:
        print(f"ok {cur_step} {STEPS[cur_step]}")
        passed += 1
        return
    if r[0] == -1 and not r[2] and not want.startswith("-1 ") and USES_HUGETLB and \
            r[1] in (ERRNO["ENOMEM"], ERRNO["ENOSPC"]):
        skip("hugetlbfs: no free huge pages (raise /proc/sys/vm/nr_hugepages)")
    if r[0] == -1 and not r[2] and not want.startswith("-1 ") and why:
        skip(why)
    step_failed(f"the trace says {want}, the kernel gave {describe(r)}")


def step(n):
    global cur_step
    cur_step = n


def mfd_assert_ret(r, want):
    result(not r[2] and r[0] == want, r, str(want))


def mfd_assert_ok(r):
    result(not r[2] and r[0] != -1, r, "success")


def mfd_assert_fd(r, tfd):
    result(not r[2] and r[0] >= 0, r, f"{tfd} (a new fd)")
    fds[tfd] = r[0]


def mfd_fail_errno(r, name):
    result(not r[2] and r[0] == -1 and r[1] == ERRNO[name], r, f"-1 {name}")


def mfd_fail_signal(r, name):
    result(SIGNAL_NAMES.get(r[2]) == name, r, name)


def c_str(data):
    return None if data is None else ctypes.create_string_buffer(data)


def sys_memfd_create(name, flags):
    buf = c_str(name)
    r = sysc("memfd_create", ctypes.addressof(buf) if buf is not None else 0, flags)
    if r[0] == -1 and flags & MFD_HUGETLB_BIT and \
            r[1] in (ERRNO["ENOENT"], ERRNO["ENODEV"], ERRNO["ENOSYS"]):
        skip("hugetlbfs: memfd_create(MFD_HUGETLB) is not supported here")
    return r


def payload(unit, count):
    """count bytes of unit repeated (strace's "x"... buffer)."""
    data = (unit * (count // max(len(unit), 1) + 1))[:count] if unit else bytes(count)
    return ctypes.create_string_buffer(data, max(count, 1))


def sys_pwrite64(tfd, unit, count, off):
    buf = payload(unit, count)
    return sysc("pwrite64", FD(tfd), ctypes.addressof(buf), count, off)


def sys_splice_write(tfd, count, off):
    """count bytes (0x79) moved with splice() from a new pipe into the file at off."""
    rd, wr = os.pipe()
    try:
        if count:
            os.write(wr, b"\x79" * count)
        pos = ctypes.c_longlong(off)
        return sysc("splice", rd, 0, FD(tfd), ctypes.addressof(pos), count, 0)
    finally:
        os.close(rd)
        os.close(wr)


def sys_write(tfd, unit, count):
    buf = payload(unit, count)
    return sysc("write", FD(tfd), ctypes.addressof(buf), count)


def scratch(count):
    """(address, length) of a read buffer of count bytes: anonymous NORESERVE memory, at most
    2^46 bytes (a count of 2^64-1 is the trace's, not an allocation), or one page."""
    for length in (min(max(count, 1), 1 << 46), 4096):
        a = sysc("mmap", 0, length, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0)[0]
        if a != -1:
            return a, length
    print("# cannot allocate a read buffer")
    finish(KSFT_FAIL, "cannot allocate a read buffer")


def sys_read(tfd, count):
    addr, length = scratch(count)
    r = sysc("read", FD(tfd), addr, count)
    sysc("munmap", addr, length)
    return r


def sys_iov(name, tfd, iov, cnt, *pos_flags):
    """pwritev[2]/preadv[2] or writev/readv (name) with iovecs [(unit, length), ...]: a
    write's units repeated, a read's buffers zeroed; for the p-calls pos in pos_l (x86_64),
    0 in pos_h, then the flags."""
    bufs = [payload(unit if "write" in name else b"", n) for unit, n in iov]
    arr = (Iovec * max(len(iov), 1))()
    for k, ((_, n), b) in enumerate(zip(iov, bufs, strict=True)):
        arr[k].base, arr[k].len = ctypes.addressof(b), n
    rest = (pos_flags[0], 0, *pos_flags[1:]) if pos_flags else ()
    return sysc(name, FD(tfd), ctypes.addressof(arr), cnt, *rest)


def sys_stat(name, tfd, shown, *rest):
    """fstat/newfstatat (name) into a struct stat (x86_64: st_mode a u32 at 24, st_size an
    s64 at 48); the fields the trace shows must be the kernel's."""
    buf = ctypes.create_string_buffer(144)
    path = ctypes.create_string_buffer(rest[0]) if rest else None
    r = sysc(name, FD(tfd), path, buf, rest[1]) if rest else sysc(name, FD(tfd), buf)
    if r[0] == 0 and not r[2]:
        got = {"st_mode": int.from_bytes(buf.raw[24:28], "little"),
               "st_size": int.from_bytes(buf.raw[48:56], "little", signed=True)}
        bad = [f"{k} is {got[k]:#o}, the trace says {v:#o}" if k == "st_mode" else
               f"{k} is {got[k]}, the trace says {v}" for k, v in shown.items() if got[k] != v]
        if bad:
            step_failed("; ".join(bad))
    return r


def sys_cell(tfd, req, shown):
    """An ioctl that fills a 64-bit cell (FS_IOC_GETFLAGS writes an int into it): after a
    successful call, the value the trace shows (None: an address, not shown) must be the
    kernel's."""
    cell = PTR(0x5A5A5A5A5A5A5A5A)  # poisoned: a call that writes nothing shows
    r = sysc("ioctl", FD(tfd), req, cell)
    got = cell[0] & 0xFFFFFFFF
    if r[0] == 0 and not r[2] and shown is not None and got != shown:
        step_failed(f"the flags are {got:#x}, the trace shows {shown:#x}")
    return r


def sys_fsx(tfd, req, shown):
    """FS_IOC_FSGETXATTR: the kernel fills a struct fsxattr (five __u32 and 8 bytes of
    padding, poisoned before the call); after a successful call, each field the trace shows
    (None: not shown) must be the kernel's."""
    buf = U32S(*[0x5A5A5A5A] * 7)
    r = sysc("ioctl", FD(tfd), req, buf)
    names = ("fsx_xflags", "fsx_extsize", "fsx_nextents", "fsx_projid", "fsx_cowextsize")
    bad = [f"{n} is {g:#x}, the trace shows {w:#x}" for n, w, g in
           zip(names, shown, buf[:5], strict=True) if w is not None and g != w]
    if r[0] == 0 and not r[2] and bad:
        step_failed("; ".join(bad))
    return r


FATTR_FIELDS = (("fa_xflags", 8), ("fa_extsize", 4), ("fa_nextents", 4), ("fa_projid", 4),
                ("fa_cowextsize", 4))


def sys_fattr(name, tfd, path, vals, usize, flags):
    """file_setattr/file_getattr (v6.17): struct file_attr (a __u64 fa_xflags, four __u32; 24
    bytes) in a buffer of a page and a byte, as large as any usize the kernel reads: for a
    set, the fields (None: 0) and zero past them (copy_struct_from_user() refuses a non-zero
    tail); for a get, poisoned, and after a successful call each field the trace shows
    (None: not shown) must be the kernel's."""
    get = name == "file_getattr"
    raw = b"\x5a" * 4097 if get else b"".join(
        (int(v or 0) % (1 << (8 * n))).to_bytes(n, "little")
        for v, (_, n) in zip(vals, FATTR_FIELDS, strict=True)).ljust(4097, b"\0")
    buf = ctypes.create_string_buffer(raw, len(raw))
    r = sysc(name, FD(tfd), 0 if path is None else path, buf, usize, flags)
    if get and r[0] == 0:
        got, at = [], 0
        for _, n in FATTR_FIELDS:
            got.append(int.from_bytes(buf.raw[at:at + n], "little"))
            at += n
        bad = [f"{f} is {g:#x}, the trace shows {w:#x}" for (f, _), w, g in
               zip(FATTR_FIELDS, vals, got, strict=True) if w is not None and g != w]
        if bad:
            step_failed("; ".join(bad))
    return r


def sys_exec(name, *args):
    """execve/execveat in a child, so the reproducer goes on: the exec's errno, or 0 once the
    child runs the file (the close-on-exec pipe closes without a word; the new program is then
    killed). A list argument is a NULL-terminated char *[]."""
    conv = [(ctypes.c_char_p * (len(a) + 1))(*a, None) if isinstance(a, list) else a
            for a in args]
    rd, wr = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.write(wr, sysc(name, *conv)[1].to_bytes(4, "little"))
        finally:
            os._exit(0)
    os.close(wr)
    data = os.read(rd, 4)
    os.close(rd)
    if not data:
        os.kill(pid, 9)
    os.waitpid(pid, 0)
    return (-1, int.from_bytes(data, "little"), 0) if data else (0, 0, 0)


def proc_fd(tfd):
    """"/proc/self/fd/N" of the trace's descriptor tfd."""
    return b"/proc/self/fd/%d" % FD(tfd)


def sys_pread64(tfd, count, off):
    addr, length = scratch(count)
    r = sysc("pread64", FD(tfd), addr, count, off)
    sysc("munmap", addr, length)
    return r


def sys_reopen(tfd, flags):
    buf = c_str(f"/proc/self/fd/{FD(tfd)}".encode())
    return sysc("open", ctypes.addressof(buf), flags, 0)


def sys_open(path, flags, mode):
    buf = c_str(path)
    return sysc("open", ctypes.addressof(buf), flags, mode)


def sys_close(tfd):
    r = sysc("close", FD(tfd))
    if r[0] == 0:
        del fds[tfd]
    return r


def sys_mmap(m, length, prot, flags, tfd, off=0):
    r = sysc("mmap", 0, length, prot, flags, FD(tfd), off)
    if r[0] != -1:
        maps[m] = r[0]
        return (0, 0, 0)
    return r


def sys_mremap(m, old_len, new_len, flags, slot):
    """mremap() of mapping m; the mapping it returns (m itself, or a new one) is maps[slot]."""
    r = sysc("mremap", maps[m], old_len, new_len, flags, 0)
    if r[0] != -1:
        maps[slot] = r[0]
        return (0, 0, 0)
    return r


def sys_munmap(m, off, length):
    r = sysc("munmap", maps[m] + off, length)
    if r[0] == 0:  # keep the range reserved, so a later access through m faults
        sysc("mmap", maps[m] + off, length, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
    return r


holders = {}  # mN made by fork_vma -> (its child's pid, command pipe, result pipe)
HELD = {}  # step number -> the step a fork's child runs (filled by the generated script)


def _drop_mappings_but(keep):
    """Unmap every mapping of the file, of an io_uring or a dmabuf, and of /dev/shm but the
    one at `keep` (a fork's child keeps only its copy)."""
    ranges = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            path = parts[5] if len(parts) > 5 else ""
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo != keep and ("/memfd:" in path or "io_uring" in path or "dmabuf" in path
                               or path.startswith("/dev/shm/")):
                ranges.append((lo, hi))
    for lo, hi in ranges:
        sysc("munmap", lo, hi - lo)


def sys_fork_vma(m, slot):
    """fork()'s copy of mapping m: a child keeps it as maps[slot] and nothing else the trace
    made (other mappings of the file, rings, dmabufs, descriptors), and runs the steps that
    name it when asked (HELD) until this process exits."""
    cr, cw = os.pipe()
    rr, rw = os.pipe()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            _drop_mappings_but(maps[m])
            os.closerange(3, min(cr, rw))
            os.closerange(max(cr, rw) + 1, 1024)
            os.closerange(min(cr, rw) + 1, max(cr, rw))
            maps[slot] = maps[m]
            w, r = os.fdopen(rw, "wb"), os.fdopen(cr, "rb")
            w.write(b"ready\n")
            w.flush()
            for line in r:
                w.write(repr(HELD[int(line)]()).encode() + b"\n")
                w.flush()
        finally:
            os._exit(0)
    os.close(cr)
    os.close(rw)
    holders[slot] = (pid, os.fdopen(cw, "wb"), os.fdopen(rr, "rb"))
    return (0, 0, 0) if holders[slot][2].readline() == b"ready\n" else (-1, 5, 0)


def in_child(slot, n):
    """Step n, which names a mapping (or a pin made through one) the child of fork_vma mN
    holds: run there."""
    _, w, r = holders[slot]
    sys.stdout.flush()
    w.write(f"{n}\n".encode())
    w.flush()
    line = r.readline()
    return tuple(int(x) for x in line.strip(b"()\n").split(b",")) if line else (-1, 5, 0)


def sys_access(m, off, store):
    """A one-byte store or load, first in a child so a SIGSEGV/SIGBUS is observed."""
    addr = maps[m] + off

    def touch():
        if store:
            ctypes.memmove(addr, b"\x5a", 1)
        else:
            ctypes.string_at(addr, 1)

    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            touch()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return (-1, 0, os.WTERMSIG(status))
    touch()
    return (0, 0, 0)


def sys_mem_write(m, off):
    """One byte written with pwrite() on /proc/self/mem at mapping m + off (FOLL_FORCE)."""
    fd = os.open("/proc/self/mem", os.O_RDWR | os.O_CLOEXEC)
    try:
        return (os.pwrite(fd, b"\x5a", maps[m] + off), 0, 0)
    except OSError as e:
        return (-1, e.errno, 0)
    finally:
        os.close(fd)


def sys_vm_write(m, off):
    """One byte written with process_vm_writev() from this process to itself at m + off."""
    src = ctypes.create_string_buffer(b"\x5a", 1)
    local, remote = Iovec(ctypes.addressof(src), 1), Iovec(maps[m] + off, 1)
    return sysc("process_vm_writev", os.getpid(), ctypes.addressof(local), 1,
                ctypes.addressof(remote), 1, 0)


def page_of(m, off):
    return (maps[m] + off) & ~(PIN_PAGE - 1)


class Iovec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


def sys_pin(m, off, p):
    """vmsplice() the mapped page into a pipe, which then holds a page reference."""
    rfd, wfd = os.pipe()
    iov = Iovec(page_of(m, off), PIN_PAGE)
    r = sysc("vmsplice", wfd, ctypes.addressof(iov), 1, 0)
    if r[0] == -1:
        os.close(rfd)
        os.close(wfd)
        return r
    pins[p] = ("pipe", rfd, wfd)
    return (0, 0, 0)


U32 = ctypes.c_uint32


class SqOff(ctypes.Structure):
    _fields_ = (("head", U32), ("tail", U32), ("ring_mask", U32), ("ring_entries", U32),
                ("flags", U32), ("dropped", U32), ("array", U32), ("resv1", U32),
                ("user_addr", ctypes.c_uint64))


class CqOff(ctypes.Structure):
    _fields_ = (("head", U32), ("tail", U32), ("ring_mask", U32), ("ring_entries", U32),
                ("overflow", U32), ("cqes", U32), ("flags", U32), ("resv1", U32),
                ("user_addr", ctypes.c_uint64))


class UringParams(ctypes.Structure):
    _fields_ = (("sq_entries", U32), ("cq_entries", U32), ("flags", U32),
                ("sq_thread_cpu", U32), ("sq_thread_idle", U32), ("features", U32),
                ("wq_fd", U32), ("resv", U32 * 3), ("sq_off", SqOff), ("cq_off", CqOff))


def u32(addr):
    return U32.from_address(addr)


def ring_release(pin):
    _, ring, regions, _, _ = pin
    sysc("io_uring_register", ring, 1, 0, 0)
    for addr, length in regions:
        sysc("munmap", addr, length)
    os.close(ring)


def ring_setup():
    """A 4-entry io_uring with its rings mapped: (ring fd, regions, params)."""
    par = UringParams()
    ring, err, _ = sysc("io_uring_setup", 4, ctypes.addressof(par))
    if ring == -1:
        skip(f"io_uring: io_uring_setup() failed with {ERRNO_NAME.get(err, err)}")
    regions = []
    for offset, length in ((0, par.sq_off.array + par.sq_entries * 4),
                           (0x8000000, par.cq_off.cqes + par.cq_entries * 16),
                           (0x10000000, par.sq_entries * 64)):
        a = sysc("mmap", 0, length, PROT_RW, MAP_SHARED | MAP_POPULATE, ring, offset)[0]
        if a == -1:
            skip("io_uring: cannot map the rings")
        regions.append((a, length))
    return ring, regions, par


def ring_submit(ring, regions, par, sqe):
    """Submit one SQE and wait: the CQE's result (-errno on failure)."""
    (sq, _), (cq, _), (sqes, _) = regions
    so, co = par.sq_off, par.cq_off
    tail = u32(sq + so.tail).value
    idx = tail & u32(sq + so.ring_mask).value
    ctypes.memmove(sqes + idx * 64, sqe, 64)
    u32(sq + so.array + idx * 4).value = idx
    u32(sq + so.tail).value = tail + 1
    if sysc("io_uring_enter", ring, 1, 1, 1, 0, 0)[0] == -1:
        print("# io_uring_enter failed")
        finish(KSFT_FAIL, "io_uring_enter failed")
    head = u32(cq + co.head).value
    if head == u32(cq + co.tail).value:
        print("# io_uring: no completion")
        finish(KSFT_FAIL, "io_uring: no completion")
    cqe = cq + co.cqes + (head & u32(cq + co.ring_mask).value) * 16
    res = ctypes.c_int32.from_address(cqe + 8).value
    u32(cq + co.head).value = head + 1
    return res


def sys_gup_pin(m, off, p):
    """A long-term FOLL_WRITE pin: the page registered as an io_uring fixed buffer."""
    ring, regions, par = ring_setup()
    addr = page_of(m, off)
    iov = Iovec(addr, PIN_PAGE)
    r = sysc("io_uring_register", ring, 0, ctypes.addressof(iov), 1)
    pin = ("ring", ring, regions, par, addr)
    if r[0] == -1:
        ring_release(pin)
        return r
    pins[p] = pin
    return (0, 0, 0)


UDMABUF_CREATE = 0x40187542  # _IOW('u', 0x42, struct udmabuf_create)


def sys_udmabuf(tfd, off, size, p):
    """ioctl(UDMABUF_CREATE) on /dev/udmabuf: {memfd, flags 0, offset, size}; the dmabuf
    holds the pins."""
    try:
        dev = os.open("/dev/udmabuf", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        skip("udmabuf: no /dev/udmabuf (CONFIG_UDMABUF)")
    arg = ctypes.create_string_buffer(struct.pack(
        "=IIQQ", FD(tfd) & 0xFFFFFFFF, 0, off % (1 << 64), size % (1 << 64)))
    r = sysc("ioctl", dev, UDMABUF_CREATE, ctypes.addressof(arg))
    os.close(dev)
    if r[0] == -1:
        return r
    pins[p] = ("dmabuf", r[0])
    return (0, 0, 0)


def sys_dma_write(p):
    """The "device" (IORING_OP_READ_FIXED from a pipe) writes one byte through the pin; a
    udmabuf's: one byte stored through a shared mapping of its dmabuf."""
    if pins[p][0] == "dmabuf":
        a, err, _ = sysc("mmap", 0, PIN_PAGE, PROT_RW, MAP_SHARED, pins[p][1], 0)
        if a == -1:
            return (-1, err, 0)
        ctypes.c_char.from_address(a).value = b"\x5a"
        sysc("munmap", a, PIN_PAGE)
        return (0, 0, 0)
    _, ring, regions, par, addr = pins[p]
    rfd, wfd = os.pipe()
    try:
        os.write(wfd, b"\x5a")
        res = ring_submit(ring, regions, par, struct.pack(
            "<BBHiQQIIQHHiQQ", 4, 0, 0, rfd, 0, addr, 1, 0, 1, 0, 0, 0, 0, 0))
    finally:
        os.close(rfd)
        os.close(wfd)
    return (-1, -res, 0) if res < 0 else (0, 0, 0)


IORING_OP = {"io_uring_fallocate": 17, "io_uring_read": 22, "io_uring_write": 23}


def sys_uring_op(name, tfd, off, data, length, mode=0):
    """One IORING_OP_WRITE/READ (a buffer of `length` bytes, `data` repeated) or
    IORING_OP_FALLOCATE (sqe->addr the length, sqe->len the mode) on a ring of its own."""
    ring, regions, par = ring_setup()
    buf = None
    if name == "io_uring_fallocate":
        addr, n = length % (1 << 64), mode
    else:
        unit = data or b"\0"
        buf = ctypes.create_string_buffer((unit * (length // len(unit) + 1))[:length],
                                          max(length, 1))
        addr, n = ctypes.addressof(buf), length
    try:
        res = ring_submit(ring, regions, par, struct.pack(
            "<BBHiQQIIQHHiQQ", IORING_OP[name], 0, 0, FD(tfd), off % (1 << 64), addr, n, 0,
            1, 0, 0, 0, 0, 0))
    finally:
        for a, length_ in regions:
            sysc("munmap", a, length_)
        os.close(ring)
    return (-1, -res, 0) if res < 0 else (res, 0, 0)


def sys_unpin(p):
    pin = pins.pop(p)
    if pin[0] == "ring":
        ring_release(pin)
        return (0, 0, 0)
    if pin[0] == "dmabuf":  # release_udmabuf() unpins with the dmabuf's last reference
        os.close(pin[1])
        return (0, 0, 0)
    _, rfd, wfd = pin
    os.set_blocking(rfd, False)
    try:
        while os.read(rfd, 1 << 16):
            pass
    except BlockingIOError:
        pass
    os.close(rfd)
    os.close(wfd)
    return (0, 0, 0)


def setup_noexec(want):
    """Run with vm.memfd_noexec = want, in a new pid namespace when this one differs."""
    path = "/proc/sys/vm/memfd_noexec"
    try:
        with open(path) as f:
            cur = int(f.read())
    except OSError:
        if want > 0:
            skip(f"no {path} (kernel older than 6.3)")
        return
    if cur == want:
        return
    if libc.unshare(CLONE_NEWPID) != 0:
        skip("unshare(CLONE_NEWPID) failed: vm.memfd_noexec cannot be set here")
    sys.stdout.flush()
    pid = os.fork()
    if pid:
        _, status = os.waitpid(pid, 0)
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else KSFT_FAIL)
    try:
        with open(path, "w") as f:
            f.write(f"{want}\n")
    except OSError:
        skip("cannot set vm.memfd_noexec in a child pid namespace")


def setup_shm():
    """The trace's /dev/shm names on a fresh tmpfs in a mount namespace of its own (they
    meet none of the machine's and vanish with it); umask 022, the model's."""
    os.umask(0o022)
    if libc.unshare(CLONE_NEWNS) != 0:
        skip("unshare(CLONE_NEWNS) failed: a private /dev/shm is needed")
    if libc.mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None) != 0:
        skip('mount("/", MS_REC | MS_PRIVATE) failed: a private /dev/shm is needed')
    os.makedirs("/dev/shm", mode=0o1777, exist_ok=True)
    if libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", ctypes.c_ulong(MS_NOSUID | MS_NODEV),
                  b"mode=1777") != 0:
        skip("cannot mount a tmpfs on /dev/shm")

# @section kvm


# /dev/kvm and guest_memfd: the structures of <linux/kvm.h> (Linux 6.18)
U64 = ctypes.c_uint64
KVM_CHECK_EXTENSION_NR = 0xae03
KVM_CAP_GUEST_MEMFD_NR = 0xea
KVM_CAP_GUEST_MEMFD_FLAGS_NR = 0xf4
KVM_CREATE_GUEST_MEMFD_NR = 0xc040aed4
KVM_SET_USER_MEMORY_REGION2_NR = 0x40a0ae49
GMEM_KNOWN_FLAGS = 0x3


class KvmCreateGuestMemfd(ctypes.Structure):
    _fields_ = (("size", U64), ("flags", U64), ("reserved", U64 * 6))


class KvmUserspaceMemoryRegion2(ctypes.Structure):
    _fields_ = (("slot", U32), ("flags", U32), ("guest_phys_addr", U64),
                ("memory_size", U64), ("userspace_addr", U64), ("guest_memfd_offset", U64),
                ("guest_memfd", U32), ("pad1", U32), ("pad2", U64 * 14))


assert ctypes.sizeof(KvmCreateGuestMemfd) == 64
assert ctypes.sizeof(KvmUserspaceMemoryRegion2) == 160


def sys_open_kvm(flags, need_gmem):
    """open("/dev/kvm"), as open_kvm_dev_path_or_exit(): no KVM here is a skip."""
    global lacking
    buf = c_str(b"/dev/kvm")
    r = sysc("open", ctypes.addressof(buf), flags, 0)
    if r[0] == -1:
        lacking = f"kvm: cannot open /dev/kvm: {os.strerror(r[1])}"
    elif need_gmem and sysc("ioctl", r[0], KVM_CHECK_EXTENSION_NR,
                            KVM_CAP_GUEST_MEMFD_NR)[0] <= 0:
        skip("kvm: no KVM_CAP_GUEST_MEMFD")
    return r


def sys_create_guest_memfd(vm, size, flags):
    """KVM_CREATE_GUEST_MEMFD; a creation flag this kernel does not offer
    (KVM_CAP_GUEST_MEMFD_FLAGS) makes EINVAL a skip."""
    global lacking
    arg = KvmCreateGuestMemfd(size=size % (1 << 64), flags=flags % (1 << 64))
    r = sysc("ioctl", vm, KVM_CREATE_GUEST_MEMFD_NR, ctypes.addressof(arg))
    if r[0] == -1 and r[1] == ERRNO["EINVAL"]:
        offered = sysc("ioctl", vm, KVM_CHECK_EXTENSION_NR, KVM_CAP_GUEST_MEMFD_FLAGS_NR)[0]
        if offered >= 0 and flags & GMEM_KNOWN_FLAGS & ~offered:
            lacking = ("kvm: a guest_memfd flag of the trace is not in "
                       "KVM_CAP_GUEST_MEMFD_FLAGS here")
    return r


def sys_set_memory_region2(vm, slot, flags, guest_phys_addr, memory_size, userspace_addr,
                           guest_memfd_offset, guest_memfd):
    """KVM_SET_USER_MEMORY_REGION2 (fields as in the struct, the padding zero)."""
    arg = KvmUserspaceMemoryRegion2(
        slot=slot % (1 << 32), flags=flags % (1 << 32),
        guest_phys_addr=guest_phys_addr % (1 << 64), memory_size=memory_size % (1 << 64),
        userspace_addr=userspace_addr % (1 << 64),
        guest_memfd_offset=guest_memfd_offset % (1 << 64), guest_memfd=guest_memfd % (1 << 32))
    return sysc("ioctl", vm, KVM_SET_USER_MEMORY_REGION2_NR, ctypes.addressof(arg))
# @section standalone
# not exported: what a reproducer defines after the runtime (see python.py), so that this
# file lints and runs on its own

USES_HUGETLB = False
NEEDS_GUEST_MEMFD = False
MFD_HUGETLB_BIT = 0x4
ERRNO = {"EINVAL": 22, "ENOMEM": 12, "ENOSPC": 28}
ERRNO_NAME = {v: k for k, v in ERRNO.items()}
STEPS = [None]
MACHINE = platform.machine()  # the reproducer's main() skips on all but x86_64
