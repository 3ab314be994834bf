"""``syz``: a syzkaller program (docs/program_syntax.md, sys/linux/*.txt call names) with each
call's expected errno as a trailing comment; steps with no system call of their own (a load,
a store, an io_uring DMA) become comments."""

from __future__ import annotations

from typing import Any

from model import vocab
from model.lang.design import Design
from traces.export.common import OWN_CALLS, ExportError, ascii_text, outcome_text
from traces.export.lower import (
    KVM_PATH,
    Op,
    fd_arg,
    handle_arg,
    int_arg,
    lower,
    map_at,
    noexec_want,
    plain_operands,
    value,
)
from traces.replayed import Replayed
from traces.syscalls import (
    EXTRA_CONSTANTS,
    FCNTL_DUPFD_CMDS,
    FD_FIELDS,
    IOCTL_FD_CREATORS,
    IOCTL_STRUCTS,
    OUT_IOCTLS,
    OUT_STRUCTS,
    SCRATCH_BYTES,
    SCRATCH_IOCTLS,
    SYSCALLS,
    Param,
)
from traces.trace import Err, Lst, Outcome, Ref, Ret

SYZ_DATA = 0x7F0000000000  # syzkaller's data area
SYZ_MAPS = 0x7F0000200000  # where this program places its mappings (2 MiB apart)


def _syz_hex(v: int) -> str:
    return f"{v % (1 << 64):#x}"


def _syz_str(s: str, nul: bool = True) -> str:
    """A syzkaller string literal: '...' with escapes, NUL-terminated unless nul=False."""
    out = []
    for b in s.encode("latin-1", "replace") + (b"\0" if nul else b""):
        ch = chr(b)
        if ch in "'\\":
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\x{b:02x}")
    return "'" + "".join(out) + "'"


class _Syz:
    def __init__(self) -> None:
        self.next_r = 0
        self.fd: dict[int, str] = {}
        self.pipe: dict[int, tuple[str, str]] = {}
        self.ring: dict[int, str] = {}
        self.dmabuf: dict[int, str] = {}  # pin number -> the udmabuf's dmabuf resource
        self.kind: dict[int, str] = {}  # trace fd -> "kvm", "vm", "gmem" (KVM descriptors)
        self.maplen: dict[int, int] = {}  # mapping number -> length
        self.data = SYZ_DATA

    def res(self) -> str:
        r = f"r{self.next_r}"
        self.next_r += 1
        return r

    def ptr(self, size: int) -> str:
        p = self.data
        self.data += (size + 0xFF) & ~0xFF
        return f"&({p:#x})"

    def fdarg(self, tfd: int) -> str:
        """The resource of a trace fd; stdin/out/err as numbers, any other fd as -1."""
        if tfd in self.fd:
            return self.fd[tfd]
        return f"{tfd:#x}" if 0 <= tfd < 3 else "0xffffffffffffffff"

    def new_fd(self, e: Outcome, kind: str = "") -> str:
        """The resource a call that returns the trace fd of `e` assigns, or ""."""
        if not isinstance(e, Ret):
            return ""
        r = self.res()
        self.fd[e.value] = r
        self.kind.pop(e.value, None)
        if kind:
            self.kind[e.value] = kind
        return r

    def close(self, tfd: int) -> None:
        self.fd.pop(tfd, None)
        self.kind.pop(tfd, None)


#: ioctl request -> its syzkaller name, for each kind of descriptor it is issued on
_SYZ_IOCTLS: dict[int, dict[str, str]] = {
    vocab.KVM_CREATE_VM: {"": "KVM_CREATE_VM"},
    vocab.KVM_CHECK_EXTENSION: {"": "KVM_CHECK_EXTENSION", "vm": "KVM_CHECK_EXTENSION_VM"},
    0xAE00: {"": "KVM_GET_API_VERSION"},
    vocab.KVM_CREATE_GUEST_MEMFD: {"": "KVM_CREATE_GUEST_MEMFD"},
    vocab.KVM_SET_USER_MEMORY_REGION2: {"": "KVM_SET_USER_MEMORY_REGION2"},
    vocab.FS_IOC_SETFLAGS: {"": "FS_IOC_SETFLAGS"},
    vocab.FS_IOC_GETFLAGS: {"": "FS_IOC_GETFLAGS"},
    vocab.FS_IOC_FSSETXATTR: {"": "FS_IOC_FSSETXATTR"},
    vocab.FS_IOC_FSGETXATTR: {"": "FS_IOC_FSGETXATTR"},
    # sys/linux/sys.txt: ioctl$FIOCLEX, ioctl$int_in (FIONBIO's int), ioctl$TCGETS,
    # ioctl$TIOCGWINSZ (their descriptor is a tty's there; the call is the same)
    vocab.FIOCLEX: {"": "FIOCLEX"}, vocab.FIONCLEX: {"": "FIONCLEX"},
    vocab.FIONBIO: {"": "int_in"},
    vocab.TTY_IOCTLS["TCGETS"]: {"": "TCGETS"},
    vocab.TTY_IOCTLS["TIOCGWINSZ"]: {"": "TIOCGWINSZ"},
}
#: the size of each struct argument (its padding and reserved words left to syz's zero)
_SYZ_STRUCT_SIZE = {vocab.KVM_CREATE_GUEST_MEMFD: 64, vocab.KVM_SET_USER_MEMORY_REGION2: 160,
                    vocab.FS_IOC_FSSETXATTR: 28}


def _syz_ioctl(s: _Syz, op: Op) -> str:
    """One ioctl as syzkaller writes it (sys/linux/dev_kvm.txt): openat$kvm gives fd_kvm,
    KVM_CREATE_VM fd_kvmvm, KVM_CREATE_GUEST_MEMFD fd_kvm_guest_memfd; a struct argument
    is written field by field in layout order, its padding left to the default (zero)."""
    fd, _, code, arg = op.ops
    names = _SYZ_IOCTLS[code]
    name = names.get(s.kind.get(fd, ""), names[""])
    if code in OUT_STRUCTS:  # ptr[out, fsxattr]: the pointee is the kernel's to fill
        argtext = s.ptr(28)
    elif isinstance(arg, tuple):
        vals = []
        for (f, v), (_, bits) in zip(arg, IOCTL_STRUCTS[code][1], strict=True):
            if f in FD_FIELDS:
                vals.append(s.fdarg(fd_arg(v, f)))
            elif isinstance(v, Ref):
                m = handle_arg(v, "m", f)
                vals.append(f"&({_syz_map(m):#x}/{s.maplen.get(m, 0x1000):#x})=nil")
            else:
                vals.append(f"{int_arg(v, f) % (1 << bits):#x}")
        size = _SYZ_STRUCT_SIZE[code]
        argtext = f"{s.ptr(size)}={{{', '.join(vals)}}}"
    elif code in OUT_IOCTLS:  # ptr[out, int32]: the pointee is the kernel's to fill
        argtext = s.ptr(4)
    elif isinstance(arg, Lst):  # a pointer to a number (PTR_IOCTLS: chattr's flags)
        size = 8 if code == vocab.FIONBIO else 4  # int_in's ptr[in, int64]
        argtext = f"{s.ptr(size)}={_syz_hex(int_arg(arg.items[0], name))}"
    elif code in SCRATCH_IOCTLS:  # ptr[out, termios or winsize]: the kernel's to fill
        argtext = s.ptr(SCRATCH_BYTES)
    elif code in (vocab.FIOCLEX, vocab.FIONCLEX):
        return f"ioctl${name}({s.fdarg(fd)}, {code:#x})"
    else:
        argtext = _syz_hex(int_arg(arg, name))
    kind = {vocab.KVM_CREATE_VM: "vm", vocab.KVM_CREATE_GUEST_MEMFD: "gmem"}.get(code, "")
    assign = s.new_fd(op.expect, kind) if code in IOCTL_FD_CREATORS else ""
    call = f"ioctl${name}({s.fdarg(fd)}, {code:#x}, {argtext})"
    return f"{assign} = {call}" if assign else call


def _syz_plain(s: _Syz, p: Param, v: Any) -> str:
    """A plain call's argument: a descriptor's resource, a mapping's address range, a value."""
    if p.kind == "fd":
        return s.fdarg(v)
    if p.kind == "newfd":  # the trace's descriptor there, else the number itself
        return s.fd.get(v, f"{v:#x}")
    if p.kind == "map":
        return f"&({_syz_map(v):#x}/{s.maplen.get(v, 0x1000):#x})=nil"
    if p.kind == "ptr":  # a pointer to the number, or NULL
        return "0x0" if v is None else f"{s.ptr(8)}={_syz_hex(value(v))}"
    if p.kind == "path":
        return f"{s.ptr(len(str(v)) + 1)}={_syz_str(str(v))}"
    return _syz_hex(value(v))


def _syz_map(m: int) -> int:
    return SYZ_MAPS + (m - 1) * 0x200000


#: the registry calls rendered here with code of their own (common.OWN_CALLS, the same in
#: every exporter); every other plain call is rendered from its entry
OWN = OWN_CALLS


def export_syz(design: Design, r: Replayed) -> str:
    """A syzkaller program (docs/program_syntax.md); the expected errno of each call as a
    trailing comment; steps with no system call of their own become comments."""
    trace = r.trace
    ops = lower(r)
    s = _Syz()
    out = [f"# {ascii_text(trace.title or 'a shmemcheck trace')}",
           f"# generated by shmemcheck (export --to syz); expect {ascii_text(trace.expect)}"]
    want_noexec = noexec_want(design, r)
    if want_noexec is not None:
        out.append(f"# needs vm.memfd_noexec={want_noexec} in the executor's pid namespace")
    for op in ops:
        o, e = op.ops, op.expect
        tail = f"\t# {e.errno}" if isinstance(e, Err) else ""
        out.append(f"# {op.n}: {ascii_text(op.text)}")
        lines: list[str] = []
        assign = ""
        c = op.call
        if c == "fork_vma" or op.holder:  # syzkaller programs run in one process
            lines.append(f"# {c}: in a fork's child holding one mapping (syzkaller programs "
                         f"run in one process): not rendered = {outcome_text(e)}")
        elif c == "memfd_create":
            name = "0x0" if o[0] is None else f"{s.ptr(len(str(o[0])) + 1)}={_syz_str(str(o[0]))}"
            flags = int_arg(o[1], "flags")
            assign = s.new_fd(e)
            lines.append(f"memfd_create({name}, {_syz_hex(flags)})")
        elif c == "fcntl":
            cmd = int_arg(o[1], "cmd")
            arg = int_arg(o[2], "arg")
            if cmd == vocab.F_ADD_SEALS:
                lines.append(f"fcntl$addseals({s.fdarg(o[0])}, {cmd:#x}, {arg:#x})")
            elif cmd == EXTRA_CONSTANTS["F_SETFL"]:  # sys/linux/fs.txt: flags[fcntl_status]
                lines.append(f"fcntl$setstatus({s.fdarg(o[0])}, {cmd:#x}, {arg:#x})")
            elif cmd in FCNTL_DUPFD_CMDS:
                assign = s.new_fd(e, s.kind.get(o[0], ""))
                lines.append(f"fcntl$dupfd({s.fdarg(o[0])}, {cmd:#x}, {arg:#x})")
            else:
                lines.append(f"fcntl$getflags({s.fdarg(o[0])}, {cmd:#x})")
        elif c == "pwrite64":
            data = str(o[1])
            count = value(o[2])
            unit = data or "\0"
            buf = (unit * (count // len(unit) + 1))[:count]
            lines.append(f"pwrite64({s.fdarg(o[0])}, {s.ptr(count)}="
                         f"{_syz_str(buf, nul=False)}, {count:#x}, {value(o[3]):#x})")
        elif c in ("ftruncate", "fchmod"):
            v = int_arg(o[1], c)
            lines.append(f"{c}({s.fdarg(o[0])}, {v:#x})")
        elif c == "fallocate":
            mode = int_arg(o[1], "mode")
            lines.append(f"fallocate({s.fdarg(o[0])}, {mode:#x}, {value(o[2]):#x}, "
                         f"{value(o[3]):#x})")
        elif c == "mmap":
            m, length = o[0], value(o[1])
            prot = int_arg(o[2], "prot")
            flags = int_arg(o[3], "flags")
            where = _syz_map(m) if m else SYZ_MAPS + 0x10000000
            if m:
                s.maplen[m] = length
            lines.append(f"mmap(&({where:#x}/{length:#x})=nil, {length:#x}, {prot:#x}, "
                         f"{flags:#x}, {s.fdarg(o[4])}, {value(o[5]):#x})")
        elif c == "mprotect":
            (m, plus), length = map_at(o[0], c), value(o[1])
            prot = int_arg(o[2], "prot")
            lines.append(f"mprotect(&({_syz_map(m) + plus:#x}/{length:#x})=nil, {length:#x}, "
                         f"{prot:#x})")
        elif c == "munmap":
            (m, plus), length = map_at(o[0], c), value(o[1])
            lines.append(f"munmap(&({_syz_map(m) + plus:#x}/{length:#x})=nil, {length:#x})")
        elif c == "mremap":
            lines.append(f"# mremap: syzkaller programs address mappings at fixed places, and "
                         f"a moved one goes where the kernel puts it: not rendered "
                         f"= {outcome_text(e)}")
        elif c in ("store", "load"):
            m, off = o[0], value(o[1])
            verb = "a one-byte store to" if c == "store" else "a one-byte load from"
            lines.append(f"# {c}: {verb} {_syz_map(m) + off:#x} (no system call) = "
                         f"{outcome_text(e)}")
        elif c == "mem_write":  # a FOLL_FORCE write: pwrite64 on /proc/self/mem
            m, off = o[0], value(o[1])
            mem, path = s.res(), "/proc/self/mem"
            lines.append(f"{mem} = openat(0xffffffffffffff9c, {s.ptr(len(path) + 1)}="
                         f"{_syz_str(path)}, 0x80002, 0x0)")
            lines.append(f"pwrite64({mem}, {s.ptr(1)}={_syz_str('Z', nul=False)}, 0x1, "
                         f"{_syz_map(m) + off:#x})" + tail)
            lines.append(f"close({mem})")
            tail = ""
        elif c == "vm_write":  # process_vm_writev to itself
            m, off = o[0], value(o[1])
            me = s.res()
            lines.append(f"{me} = getpid()")
            lines.append(f"process_vm_writev({me}, {s.ptr(16)}=[{{{s.ptr(1)}="
                         f"{_syz_str('Z', nul=False)}, 0x1}}], 0x1, {s.ptr(16)}="
                         f"[{{&({_syz_map(m) + off:#x}/0x1)=nil, 0x1}}], 0x1, 0x0)" + tail)
            tail = ""
        elif c == "splice_write":  # from a new pipe holding count bytes
            count, off = value(o[1]), value(o[2])
            rd, wr = s.res(), s.res()
            lines.append(f"pipe({s.ptr(8)}={{<{rd}=>0xffffffffffffffff, "
                         f"<{wr}=>0xffffffffffffffff}})")
            if count:
                lines.append(f"write({wr}, {s.ptr(count)}={_syz_str('y' * count, nul=False)}, "
                             f"{count:#x})")
            lines.append(f"splice({rd}, 0x0, {s.fdarg(o[0])}, {s.ptr(8)}={off:#x}, {count:#x}, "
                         "0x0)" + tail)
            lines += [f"close({rd})", f"close({wr})"]
            tail = ""
        elif c == "pin":
            m, off, p = o[0], value(o[1]), o[2]
            rd, wr = s.res(), s.res()
            s.pipe[p] = (rd, wr)
            lines.append(f"pipe({s.ptr(8)}={{<{rd}=>0xffffffffffffffff, "
                         f"<{wr}=>0xffffffffffffffff}})")
            addr = (_syz_map(m) + off) & ~0xFFF
            lines.append(f"vmsplice({wr}, {s.ptr(16)}=[{{&({addr:#x}/0x1000)=nil, 0x1000}}], "
                         "0x1, 0x0)" + tail)
            tail = ""
        elif c == "gup_pin":
            m, off, p = o[0], value(o[1]), o[2]
            ring = s.res()
            s.ring[p] = ring
            addr = (_syz_map(m) + off) & ~0xFFF
            lines.append(f"{ring} = io_uring_setup(0x4, {s.ptr(120)})")
            lines.append(f"io_uring_register$IORING_REGISTER_BUFFERS({ring}, 0x0, "
                         f"{s.ptr(16)}=[{{&({addr:#x}/0x1000)=nil, 0x1000}}], 0x1)" + tail)
            tail = ""
        elif c == "udmabuf":
            dev, dmabuf = s.res(), s.res()
            s.dmabuf[o[3]] = dmabuf
            path = vocab.UDMABUF_DEV
            lines.append(f"{dev} = openat$udambuf(0xffffffffffffff9c, {s.ptr(len(path) + 1)}="
                         f"{_syz_str(path)}, 0x2)")
            lines.append(f"{dmabuf} = ioctl$UDMABUF_CREATE({dev}, {vocab.UDMABUF_CREATE:#x}, "
                         f"{s.ptr(24)}={{{s.fdarg(o[0])}, 0x0, {value(o[1]) % (1 << 64):#x}, "
                         f"{value(o[2]) % (1 << 64):#x}}})" + tail)
            lines.append(f"close({dev})")
            tail = ""
        elif c == "unpin":
            p = o[0]
            if p in s.dmabuf:
                lines.append(f"close({s.dmabuf.pop(p)})")
            elif p in s.pipe:
                rd, wr = s.pipe.pop(p)
                lines.append(f"read({rd}, {s.ptr(0x1000)}=\"\"/4096, 0x1000)")
                lines += [f"close({rd})", f"close({wr})"]
            elif p in s.ring:
                ring = s.ring.pop(p)
                lines.append(f"io_uring_register$IORING_UNREGISTER_BUFFERS({ring}, 0x1, 0x0, 0x0)")
                lines.append(f"close({ring})")
        elif c in ("io_uring_write", "io_uring_read", "io_uring_fallocate"):
            lines.append(f"# {c}: one io_uring SQE (syz_io_uring_submit), not rendered "
                         f"= {outcome_text(e)}")
        elif c == "dma_write" and o[0] in s.dmabuf:
            lines.append("# dma_write: a store through a shared mapping of the dmabuf "
                         f"{s.dmabuf[o[0]]} (not a system call) = {outcome_text(e)}")
        elif c == "dma_write":
            lines.append("# dma_write: an IORING_OP_READ_FIXED into the registered buffer "
                         f"(syz_io_uring_submit) = {outcome_text(e)}")
        elif c == "open":
            path = str(o[1]) if o[0] is None else f"/proc/self/fd/{o[0]}"
            flags = int_arg(o[2], "flags")
            kvm = o[0] is None and path == KVM_PATH
            assign = s.new_fd(e, "kvm" if kvm else "")
            lines.append(f"openat{'$kvm' if kvm else ''}(0xffffffffffffff9c, "
                         f"{s.ptr(len(path) + 1)}={_syz_str(path)}, {flags:#x}, 0x0)")
        elif c == "dup":
            assign = s.new_fd(e, s.kind.get(o[0], ""))
            lines.append(f"dup({s.fdarg(o[0])})")
        elif c == "close":
            lines.append(f"close({s.fdarg(o[0])})")
            s.close(o[0])
        elif c == "ioctl":
            lines.append(_syz_ioctl(s, op))
        elif c in ("read", "pread64"):
            count = value(o[1])
            pos = f", {value(o[2]):#x}" if c == "pread64" else ""
            lines.append(f"{c}({s.fdarg(o[0])}, {s.ptr(count)}=\"\"/{count}, {count:#x}{pos})")
        elif c == "write":
            data, count = str(o[1]), value(o[2])
            unit = data or "\0"
            buf = (unit * (count // len(unit) + 1))[:count]
            lines.append(f"write({s.fdarg(o[0])}, {s.ptr(count)}={_syz_str(buf, nul=False)}, "
                         f"{count:#x})")
        elif c in ("pwritev2", "preadv2", "pwritev", "preadv", "writev", "readv"):
            vecs = []
            for unit, n in o[1]:
                if "write" in c:
                    u = unit or "\0"
                    data = f"{s.ptr(n)}={_syz_str((u * (n // len(u) + 1))[:n], nul=False)}"
                else:
                    data = f"{s.ptr(n)}=\"\"/{n}"
                vecs.append(f"{{{data}, {n:#x}}}")
            pos = ("" if c in ("writev", "readv") else f", {_syz_hex(value(o[3]))}, 0x0"
                   + (f", {int_arg(o[4], 'flags'):#x}" if len(o) > 4 else ""))
            lines.append(f"{c}({s.fdarg(o[0])}, {s.ptr(16 * max(len(vecs), 1))}="
                         f"[{', '.join(vecs)}], {value(o[2]):#x}{pos})")
        elif c in ("fstat", "newfstatat"):
            if c == "newfstatat" and (str(o[1]) != "" or int_arg(o[3], "flags")
                                      != vocab.AT_EMPTY_PATH):
                raise ExportError(f"step {op.n}: no syzkaller program for newfstatat other "
                                  "than (fd, \"\", AT_EMPTY_PATH), which is fstat()")
            lines.append("# syz-execprog checks outcomes only, not the st_size/st_mode shown")
            lines.append(f"fstat({s.fdarg(o[0])}, {s.ptr(144)}=\"\"/144)")
        elif c == "lseek":
            lines.append(f"lseek({s.fdarg(o[0])}, {_syz_hex(value(o[1]))}, "
                         f"{int_arg(o[2], 'whence'):#x})")
        elif c in ("file_setattr", "file_getattr"):
            lines.append(f"# {c}: not in the syzkaller descriptions this exporter follows "
                         f"(v6.17) = {outcome_text(e)}")
        elif c in ("execveat", "execve"):
            lines.append(f"# {c}: syzkaller describes no exec (it would replace the executor) "
                         f"= {outcome_text(e)}")
        elif SYSCALLS[c].plain:  # from the registry entry alone
            lines.append(f"{c}({', '.join(_syz_plain(s, p, v) for p, v in plain_operands(op))})")
            if SYSCALLS[c].returns == "fd":
                assign = s.new_fd(e, s.kind.get(o[0], ""))
        else:
            raise ExportError(f"step {op.n}: no syzkaller program for {c}")
        if assign:
            lines[-1] = f"{assign} = {lines[-1]}"
        if lines and not lines[-1].startswith("#"):
            lines[-1] += tail
        out += lines
    return "\n".join(out) + "\n"

