"""The syscall registry: every call a trace may make, declared once (issue 13).

One `Syscall` per call the designs emit: its name, its x86_64 number (None for the trace's
pseudo-calls `store`, `load`, `mem_write`, `vm_write`, `splice_write`, `pin`, `gup_pin`,
`unpin`, `dma_write`, `io_uring_write`, `io_uring_read`, `io_uring_fallocate`, which are done
with other system calls, named in `via`), its argument
kinds, what a machine needs to run it, and call-specific checks. `lower` turns a trace step
into an `Op` (the call and its operands, typed by kind), which the live-kernel executor
(traces/kernel.py) runs: with a `do_<call>` method, or, for a `plain` entry, as the system
call of that number with no code of its own. The reproducers (traces/export/lower.py) lower
through the same entries, keeping numbers and flags as written (they print the trace's
names); a plain entry needs no exporter code either. Adding a syscall is one entry here and
the model's rule body: tests/test_syscalls.py checks that every call a kernel-claiming design
can emit has an entry, that the executor can run it, and that every exporter renders it or
declares it unsupported (traces/export/lower.py UNSUPPORTED).

Precedent: LKMM's linux-kernel.def, one line per primitive read by both herd7 and klitmus7.

Argument kinds (`Param.kind`):

* ``fd``     a trace descriptor number (3, 4, ...; a symbol such as AT_FDCWD is evaluated) -> int
* ``newfd``  the number a call gives its new descriptor (dup2/dup3's newfd) -> int
* ``int``    a number or a flag expression -> int
* ``flags``  a flag word; `table` is its uapi family from model/vocab.py -> int
* ``str``    a C string -> bytes (latin-1, else UTF-8)
* ``str?``   a C string, or NULL / 0 -> bytes | None
* ``path``   a C string the call reads as a path name: plain (its address is passed; the
             executor maps /proc/self/fd/N to its own N) -> bytes
* ``map``    a mapping handle mN -> "mN"
* ``pin``    a pin handle pN -> "pN"
* ``ioctl``  an ioctl argument: a number, a flag expression, a struct (`IOCTL_STRUCTS`) or a
             pointer to a number `[N]` (`PTR_IOCTLS`) -> int | {field: int | "mN"} | Cell
* ``iov``    an iovec array [{iov_base="..", iov_len=N}, ...] -> ((bytes, N), ...)
* ``stat``   a struct stat the call fills, as strace printed it: not passed; its st_mode and
             st_size (the fields the model judges, `STAT_SHOWN`) -> {field: int}
* ``argv``   a string list ["a", ...] (execve's argv, envp) -> (bytes, ...); an address
             strace showed instead (its envp) or NULL -> None: an empty list is passed
* ``ptr``    a pointer to a number the call reads, `[N]` as strace prints it -> N; NULL
             -> None (copy_file_range's offsets)
* ``attr``   a struct file_attr the call reads, as strace prints it ({fa_xflags=..., ...}):
             file_setattr's fields -> {field: int}
* ``attr_out`` a struct file_attr the call fills (file_getattr): the fields shown, as
             ``stat``'s (each a step output named by its field, `FILE_ATTR_FIELDS`); an
             address strace showed instead (a failed call) -> {}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from model import vocab
from traces.textfmt import format_arg
from traces.trace import Arg, Int, Lst, Ref, Ret, Step, Str, Struct, Sym

__all__ = [
    "EXTRA_CONSTANTS",
    "FCNTL_CMDS",
    "FCNTL_DUPFD_CMDS",
    "FD_FIELDS",
    "FD_LIMIT",
    "FILE_ATTR_FIELDS",
    "INT_IOCTLS",
    "IOCTL_FD_CREATORS",
    "IOCTL_STRUCTS",
    "OUT_IOCTLS",
    "OUT_POISON",
    "OUT_STRUCTS",
    "PAGE",
    "PLAIN_KINDS",
    "SCRATCH_BYTES",
    "SCRATCH_IOCTLS",
    "STAT_SHOWN",
    "SYSCALLS",
    "Cell",
    "Op",
    "Param",
    "Syscall",
    "TraceError",
    "Unrunnable",
    "const",
    "iovec_items",
    "lower",
    "lower_steps",
    "returns_fd",
    "stat_shown",
    "string_bytes",
]

PAGE = 4096
KVM_GET_API_VERSION = 0xAE00  # include/uapi/linux/kvm.h: _IO(KVMIO, 0x00)

#: Names a trace may use beyond model.vocab.CONSTANTS (values as on x86_64).
EXTRA_CONSTANTS: dict[str, int] = {
    "NULL": 0, "AT_FDCWD": -100,
    "SEEK_SET": 0, "SEEK_CUR": 1, "SEEK_END": 2, "SEEK_DATA": 3, "SEEK_HOLE": 4,
    "F_DUPFD": 0, "F_GETFD": 1, "F_SETFD": 2, "F_GETFL": 3, "F_SETFL": 4, "FD_CLOEXEC": 1,
    "F_DUPFD_CLOEXEC": 1030,
    "O_EXCL": 0o200,
    "O_PATH": 0o10000000, "O_NOFOLLOW": 0o400000,
    "MAP_SHARED_VALIDATE": 0x03, "MAP_FIXED": 0x10, "MAP_ANONYMOUS": 0x20,
    "MAP_NORESERVE": 0x4000, "MAP_POPULATE": 0x8000,
    "FALLOC_FL_INSERT_RANGE": 0x20, "FALLOC_FL_UNSHARE_RANGE": 0x40,
    "KVM_GET_API_VERSION": KVM_GET_API_VERSION, "KVM_CHECK_EXTENSION": vocab.KVM_CHECK_EXTENSION,
    "KVM_CAP_GUEST_MEMFD": vocab.KVM_CAP_GUEST_MEMFD,
    "KVM_CAP_GUEST_MEMFD_FLAGS": vocab.KVM_CAP_GUEST_MEMFD_FLAGS,
    **vocab.MFD_HUGE_SIZES,
}

#: KVM's ioctl requests that take a struct: request -> (C struct name, (field, bits) in
#: layout order) (include/uapi/linux/kvm.h; the padding and reserved words are zero)
KVM_STRUCTS: dict[int, tuple[str, tuple[tuple[str, int], ...]]] = {
    vocab.KVM_CREATE_GUEST_MEMFD: ("kvm_create_guest_memfd", (("size", 64), ("flags", 64))),
    vocab.KVM_SET_USER_MEMORY_REGION2: ("kvm_userspace_memory_region2", (
        ("slot", 32), ("flags", 32), ("guest_phys_addr", 64), ("memory_size", 64),
        ("userspace_addr", 64), ("guest_memfd_offset", 64), ("guest_memfd", 32))),
}
#: every ioctl request that takes a struct, as KVM_STRUCTS: KVM's and FS_IOC_FSSETXATTR's
#: struct fsxattr (include/uapi/linux/fs.h; 8 bytes of padding, zero)
IOCTL_STRUCTS = {**KVM_STRUCTS, vocab.FS_IOC_FSSETXATTR: ("fsxattr", (
    ("fsx_xflags", 32), ("fsx_extsize", 32), ("fsx_nextents", 32), ("fsx_projid", 32),
    ("fsx_cowextsize", 32)))}
#: struct fields that hold a descriptor of the trace
FD_FIELDS = frozenset({"guest_memfd"})
#: ioctl requests that return a new descriptor
IOCTL_FD_CREATORS = frozenset({vocab.KVM_CREATE_VM, vocab.KVM_CREATE_GUEST_MEMFD})
#: ioctl requests that take a number (or nothing): KVM's, and FIOCLEX/FIONCLEX (nothing)
KVM_INT_IOCTLS = frozenset({vocab.KVM_CREATE_VM, vocab.KVM_CHECK_EXTENSION, KVM_GET_API_VERSION})
INT_IOCTLS = KVM_INT_IOCTLS | {vocab.FIOCLEX, vocab.FIONCLEX}
#: ioctl requests whose argument is a buffer the call may fill and no step compares (a
#: terminal's struct termios, struct winsize): strace prints its address; the executor and
#: the reproducers pass a zeroed buffer of SCRATCH_BYTES of their own
SCRATCH_IOCTLS = frozenset(vocab.TTY_IOCTLS.values())
SCRATCH_BYTES = 256
#: ioctl requests that fill a pointer to a number (request -> the output's label): strace
#: prints the value written, `[N]`, or the address when the call failed
OUT_IOCTLS = {vocab.FS_IOC_GETFLAGS: "fsflags"}
#: ioctl requests that fill a struct (request -> its __u32 fields in layout order, each an
#: output labelled by its name): FS_IOC_FSGETXATTR's struct fsxattr (8 bytes of padding after);
#: strace prints the struct, or the address when the call failed
OUT_STRUCTS = {vocab.FS_IOC_FSGETXATTR: ("fsx_xflags", "fsx_extsize", "fsx_nextents",
                                         "fsx_projid", "fsx_cowextsize")}
#: what an output cell holds before the call: no output's value, so a call that writes
#: nothing shows as a difference (the reproducers' runtimes use the same pattern)
OUT_POISON = 0x5A5A5A5A5A5A5A5A
#: ioctl requests that take a pointer to a number, `[N]` as strace prints it
PTR_IOCTLS = frozenset({vocab.FS_IOC_SETFLAGS, vocab.FIONBIO, *OUT_IOCTLS})
#: ioctl requests of /dev/kvm and its descriptors: the machine needs KVM
KVM_IOCTLS = frozenset(KVM_STRUCTS) | IOCTL_FD_CREATORS | KVM_INT_IOCTLS
#: fcntl commands that return a new descriptor: F_DUPFD, F_DUPFD_CLOEXEC (fs/fcntl.c f_dupfd())
FCNTL_DUPFD_CMDS = frozenset({0, 1030})
#: fcntl commands a trace may use: F_ADD_SEALS, F_GET_SEALS, F_GETFD, F_SETFD, F_GETFL, F_SETFL,
#: F_DUPFD, F_DUPFD_CLOEXEC
FCNTL_CMDS = frozenset({vocab.F_ADD_SEALS, vocab.F_GET_SEALS, 1, 2, 3, 4}) | FCNTL_DUPFD_CMDS
#: Descriptor numbers a trace may name for a new descriptor: below RLIMIT_NOFILE's default soft
#: limit (INR_OPEN_CUR, 1024). The kernel's EBADF/EINVAL at the limit depends on the process's
#: rlimit, which a trace does not show.
FD_LIMIT = 1024


class TraceError(Exception):
    """A step that cannot be executed as written (bad argument, unknown handle...)."""


class Unrunnable(TraceError):
    """A well-formed step the executor cannot run faithfully (its outcome depends on what the
    trace does not show): the kernel run is skipped with this reason."""


Kind = Literal["fd", "newfd", "int", "flags", "str", "str?", "path", "map", "pin", "ioctl",
               "iov", "stat", "argv", "ptr", "attr", "attr_out", "addr"]
#: struct file_attr (include/uapi/linux/fs.h, FILE_ATTR_SIZE_VER0 = 24 bytes): (field, bits) in
#: layout order
FILE_ATTR_FIELDS = (("fa_xflags", 64), ("fa_extsize", 32), ("fa_nextents", 32),
                    ("fa_projid", 32), ("fa_cowextsize", 32))
#: the struct stat fields a `stat` argument carries (the fields the model judges: the
#: executor fills them, replay compares them with the trace's and the model's)
STAT_SHOWN = ("st_mode", "st_size")
#: argument kinds a plain call may have (see Syscall.plain)
PLAIN_KINDS = frozenset({"fd", "newfd", "int", "flags", "map", "ptr", "path"})
@dataclass(frozen=True)
class Cell:
    """A pointer argument: the address of a 64-bit cell holding `value` (an ioctl's `[N]`;
    the kernel reads the int or long there)."""

    value: int


#: a lowered operand: int (fd, int, flags, ioctl number), bytes | None (str, str?),
#: "mN"/"pN" (map, pin), {field: int | "mN"} (ioctl struct), ((iov_base, iov_len), ...) (iov)
Operand = (int | bytes | str | None | dict[str, int | str] | dict[str, int] | Cell
           | tuple[tuple[bytes, int], ...] | tuple[bytes, ...])


@dataclass(frozen=True)
class Param:
    """One argument: its name (as in the man page), kind, flag table, and whether it may be
    left out (the executor and the reproducers then pass 0)."""

    name: str
    kind: Kind
    table: Mapping[str, int] | None = None
    optional: bool = False


@dataclass(frozen=True)
class Op:
    """A trace step lowered for execution: the call, its operands (see `Operand`, one per
    parameter given) and what the machine needs to run it."""

    call: str
    args: tuple[Operand, ...]
    needs: frozenset[str]
    #: the descriptor number the trace gives the call's result (its outcome), if a number
    want: int | None = None


@dataclass(frozen=True)
class Syscall:
    """One call: its x86_64 number (None for a pseudo-call; `via` names what it is done with),
    parameters, static needs, and `check`: call-specific validation of the lowered operands that
    returns further needs (raises TraceError)."""

    name: str
    nr: int | None
    params: tuple[Param, ...]
    doc: str
    needs: frozenset[str] = frozenset()
    check: Callable[[list[Operand]], set[str]] | None = None
    #: strace prints an output-only buffer here (read(fd, "data", count)): dropped when a string
    out_buffer: int | None = None
    via: str = ""
    #: what a success returns: a number, a new trace descriptor, mapping mN or pin pN
    returns: Literal["int", "fd", "map", "pin"] = "int"

    @property
    def plain(self) -> bool:
        """A system call the executor makes as written, with no code of its own: descriptors
        translated (a newfd to the real descriptor of that trace number, or a free one),
        mappings as their addresses, a `ptr` as the address of a 64-bit cell holding its
        number (NULL as 0), a `path` as the address of its string, a left-out optional
        argument 0."""
        return self.nr is not None and self.returns in ("int", "fd") \
            and all(p.kind in PLAIN_KINDS for p in self.params)

    @property
    def arity(self) -> tuple[int, int]:
        """(fewest, most) arguments."""
        return sum(not p.optional for p in self.params), len(self.params)


# ---- call-specific checks ------------------------------------------------------------------
def _memfd_create(v: list[Operand]) -> set[str]:
    """MFD_HUGETLB files live on hugetlbfs: the machine needs free 2 MiB pages, or with
    MFD_HUGE_1GB free 1 GiB pages of its 1 GiB hstate."""
    if not (isinstance(v[1], int) and v[1] & vocab.MFD_HUGETLB):
        return set()
    log = (v[1] >> vocab.MFD_HUGE_SHIFT) & vocab.MFD_HUGE_MASK
    return {"hugetlb_1g"} if log == 30 else {"hugetlb"}


def _memfd_name(step: Step) -> bytes | None:
    """The name to run for a name strace truncated (`"abc"...`): the real one is longer than
    the bytes shown. From MFD_NAME_MAX_LEN (249) bytes shown, every such length is EINVAL alike
    (mm/memfd.c alloc_name(): strncpy_from_user() of at most 250 bytes, EINVAL past 249), so the
    shortest is run; shorter, its unknown length decides the outcome: Unrunnable. (Where the
    flags fail first the model may judge such a line; the executor does not know that.)"""
    arg = step.args[0] if step.args else None
    if not (isinstance(arg, Str) and arg.truncated):
        return None
    raw = string_bytes(arg.text)
    if b"\0" in raw:
        return raw
    if len(raw) + 1 > vocab.MFD_NAME_MAX_LEN:
        return raw + b"."
    raise Unrunnable(f"memfd_create name {arg.text[:20]!r}... was truncated by strace after "
                     f"{len(raw)} bytes: its length, unknown, decides between success and "
                     f"EINVAL (over {vocab.MFD_NAME_MAX_LEN} bytes); record it with strace "
                     f"-s {vocab.MFD_NAME_MAX_LEN + 1}")


def _open(v: list[Operand]) -> set[str]:
    return {"kvm"} if b"/dev/kvm" in v else set()


def _fcntl(v: list[Operand]) -> set[str]:
    """F_ADD_SEALS, F_GET_SEALS and the descriptor-flag commands only."""
    if not isinstance(v[1], int) or v[1] not in FCNTL_CMDS:
        raise TraceError(f"unsupported fcntl command {v[1]!r}")
    return set()


def _file_attr(v: list[Operand]) -> set[str]:
    """struct file_attr's own fields only."""
    attr = v[2]
    unknown = set(attr) - {f for f, _ in FILE_ATTR_FIELDS} if isinstance(attr, dict) else set()
    if unknown:
        raise TraceError(f"struct file_attr: unknown fields {sorted(unknown)}")
    return set()


def _ioctl(v: list[Operand]) -> set[str]:
    """The KVM ioctls of the guest_memfd design and FS_IOC_SETFLAGS/GETFLAGS/FSSETXATTR/
    FSGETXATTR (chattr); a struct request needs a struct of its own fields, a pointer request
    `[N]` (an output request an address too: strace's rendering of a failed call), a number
    request a number (missing: 0)."""
    req = v[1]
    assert isinstance(req, int)
    iarg = v[2] if len(v) > 2 else 0
    if req in PTR_IOCTLS:
        if not isinstance(iarg, Cell) and not (req in OUT_IOCTLS and isinstance(iarg, int)):
            raise TraceError(f"ioctl {req:#x} takes a pointer to a number, [N]")
    elif isinstance(iarg, Cell):
        raise TraceError(f"ioctl {req:#x} does not take a pointer to a number")
    elif req in OUT_STRUCTS:  # the struct the kernel fills, or its address (a failed call)
        if isinstance(iarg, dict):
            unknown = set(iarg) - set(OUT_STRUCTS[req])
            if unknown:
                raise TraceError(f"ioctl {req:#x}: unknown struct fields {sorted(unknown)}")
    elif req in IOCTL_STRUCTS:
        if not isinstance(iarg, dict):
            raise TraceError(f"ioctl {req:#x} needs a struct argument")
        unknown = set(iarg) - {f for f, _ in IOCTL_STRUCTS[req][1]}
        if unknown:
            raise TraceError(f"ioctl {req:#x}: unknown struct fields {sorted(unknown)}")
    elif req in INT_IOCTLS:
        if isinstance(iarg, dict):
            raise TraceError(f"ioctl {req:#x} takes a number, not a struct")
    elif req in SCRATCH_IOCTLS:
        if isinstance(iarg, dict):
            raise TraceError(f"ioctl {req:#x}: the buffer it fills is not compared: write "
                             "its address")
    else:
        raise TraceError(f"unsupported ioctl request {req:#x}")
    if len(v) == 2:
        v.append(0)
    return {"kvm"} if req in KVM_IOCTLS else set()


# ---- the registry ----------------------------------------------------------------------------
def _p(name: str, kind: Kind, table: Mapping[str, int] | None = None,
       optional: bool = False) -> Param:
    return Param(name, kind, table, optional)


FD, MAP, PIN = _p("fd", "fd"), _p("addr", "map"), _p("pin", "pin")
OFF = _p("offset", "int", optional=True)
_IO_URING = frozenset({"io_uring"})
_UDMABUF = frozenset({"udmabuf"})

_ENTRIES: tuple[Syscall, ...] = (
    Syscall("memfd_create", 319, (_p("name", "str?"), _p("flags", "flags", vocab.MFD_FLAGS)),
            "create an anonymous shmem/hugetlbfs file", check=_memfd_create,
            returns="fd"),
    Syscall("ftruncate", 77, (FD, _p("length", "int")), "set the file size"),
    Syscall("fallocate", 285, (FD, _p("mode", "flags", vocab.FALLOC_FLAGS), _p("offset", "int"),
                               _p("len", "int")), "allocate or punch a range"),
    Syscall("fchmod", 91, (FD, _p("mode", "int")), "change the mode bits"),
    Syscall("close", 3, (FD,), "close a descriptor"),
    Syscall("dup", 32, (FD,), "duplicate a descriptor", returns="fd"),
    Syscall("dup2", 33, (FD, _p("newfd", "newfd")),
            "duplicate a descriptor onto number newfd (an open one there is closed)",
            returns="fd"),
    Syscall("dup3", 292, (FD, _p("newfd", "newfd"), _p("flags", "flags", vocab.OPEN_FLAGS)),
            "dup2 with flags (O_CLOEXEC)", returns="fd"),
    Syscall("write", 1, (FD, _p("buffer", "str"), _p("count", "int")),
            "write count bytes: buf repeated"),
    Syscall("pwrite64", 18, (FD, _p("buffer", "str"), _p("count", "int"), _p("pos", "int")),
            "write count bytes at pos: buf repeated"),
    Syscall("read", 0, (FD, _p("count", "int")), "read count bytes", out_buffer=1),
    Syscall("pwritev2", 328, (FD, _p("iov", "iov"), _p("iovcnt", "int"), _p("pos", "int"),
                              _p("flags", "flags", vocab.RWF_FLAGS)),
            "write the iovecs (each iov_base repeated to its iov_len) at pos"),
    Syscall("pwritev", 296, (FD, _p("iov", "iov"), _p("iovcnt", "int"), _p("pos", "int")),
            "write the iovecs (each iov_base repeated to its iov_len) at pos"),
    Syscall("preadv", 295, (FD, _p("iov", "iov"), _p("iovcnt", "int"), _p("pos", "int")),
            "read into iovecs of the lengths given (their bytes are the result) at pos"),
    Syscall("writev", 20, (FD, _p("iov", "iov"), _p("iovcnt", "int")),
            "write the iovecs (each iov_base repeated to its iov_len) at the file offset"),
    Syscall("readv", 19, (FD, _p("iov", "iov"), _p("iovcnt", "int")),
            "read into iovecs of the lengths given (their bytes are the result) at the file "
            "offset"),
    Syscall("preadv2", 327, (FD, _p("iov", "iov"), _p("iovcnt", "int"), _p("pos", "int"),
                             _p("flags", "flags", vocab.RWF_FLAGS)),
            "read into iovecs of the lengths given (their bytes are the result) at pos"),
    Syscall("pread64", 17, (FD, _p("count", "int"), _p("pos", "int")),
            "read count bytes at pos", out_buffer=1),
    Syscall("newfstatat", 262, (FD, _p("path", "str"), _p("statbuf", "stat"),
                                _p("flags", "flags", vocab.AT_FLAGS)),
            "file status (fstat is newfstatat(fd, \"\", &st, AT_EMPTY_PATH)); st_mode and "
            "st_size of the struct it fills are compared"),
    Syscall("fstat", 5, (FD, _p("statbuf", "stat")),
            "file status of a descriptor; st_mode and st_size are compared"),
    Syscall("execveat", 322, (FD, _p("path", "str"), _p("argv", "argv"), _p("envp", "argv"),
                              _p("flags", "flags", vocab.AT_FLAGS)),
            "execute a file (fexecve: execveat(fd, \"\", argv, envp, AT_EMPTY_PATH)), in a "
            "child process: the outcome is the exec's errno, or 0 once the child runs the file"),
    Syscall("execve", 59, (_p("path", "str"), _p("argv", "argv"), _p("envp", "argv")),
            "execute a path (/proc/self/fd/N: a trace descriptor's file), in a child process "
            "as execveat"),
    Syscall("lseek", 8, (FD, _p("offset", "int"), _p("whence", "int")), "move the file offset"),
    Syscall("open", 2, (_p("path", "str"), _p("flags", "flags", vocab.OPEN_FLAGS),
                        _p("mode", "int", optional=True)),
            "open a path (/proc/self/fd/N reopens a trace descriptor)", check=_open,
            returns="fd"),
    Syscall("openat", 257, (FD, _p("path", "str"), _p("flags", "flags", vocab.OPEN_FLAGS),
                            _p("mode", "int", optional=True)),
            "open a path relative to a directory descriptor", check=_open, returns="fd"),
    Syscall("unlink", 87, (_p("path", "path"),), "remove a name (glibc's shm_unlink(): a "
            "/dev/shm name)"),
    Syscall("fcntl", 72, (FD, _p("cmd", "int", vocab.FCNTL_CMDS), _p("arg", "int", optional=True)),
            "seals (F_ADD_SEALS, F_GET_SEALS), descriptor flags and F_DUPFD[_CLOEXEC] (a new "
            "descriptor, the lowest free number from arg)", check=_fcntl),
    Syscall("copy_file_range", 326, (FD, _p("off_in", "ptr"), FD, _p("off_out", "ptr"),
                                     _p("len", "int"), _p("flags", "int")),
            "copy a range of one file to another (here: within the memfd)"),
    Syscall("sendfile", 40, (FD, FD, _p("offset", "ptr"), _p("count", "int")),
            "copy from the in descriptor at *offset to the out descriptor's file position "
            "(here: within the memfd)"),
    Syscall("mmap", 9, (_p("addr", "addr"), _p("length", "int"),
                        _p("prot", "flags", vocab.PROT_FLAGS),
                        _p("flags", "flags", vocab.MAP_FLAGS), FD, _p("offset", "int")),
            "map the file; the mapping becomes the next handle mN", returns="map"),
    Syscall("munmap", 11, (MAP, _p("length", "int")), "unmap (mappings inside the range die)"),
    Syscall("mremap", 25, (MAP, _p("old_len", "int"), _p("new_len", "int"),
                           _p("flags", "flags", vocab.MREMAP_FLAGS),
                           _p("new_addr", "int", optional=True)),
            "resize, move or copy a mapping: the result is the mapping itself (mN, resized or "
            "moved) or a new one (old_len 0, MREMAP_DONTUNMAP)", returns="map"),
    Syscall("mprotect", 10, (MAP, _p("length", "int"), _p("prot", "flags", vocab.PROT_FLAGS)),
            "change a mapping's protection"),
    Syscall("madvise", 28, (MAP, _p("length", "int"), _p("advice", "int", vocab.MADV_ADVICE)),
            "advice on a mapped range (MADV_REMOVE: punch a hole in the file)"),
    Syscall("fork_vma", None, (MAP,),
            "fork()'s copy of the mapping into a child: the next handle mN (the steps that "
            "name it run in the child; munmap of it is the child's exit)", returns="map",
            via="fork(2): the child drops every other mapping and descriptor the trace made"),
    Syscall("store", None, (MAP, OFF), "store one byte (0x5a) at mN + offset",
            via="a memory access (SIGSEGV/SIGBUS are the outcome)"),
    Syscall("load", None, (MAP, OFF), "load one byte at mN + offset",
            via="a memory access (SIGSEGV/SIGBUS are the outcome)"),
    Syscall("mem_write", None, (MAP, OFF),
            "write one byte (0x5a) at mN + offset with FOLL_FORCE (returns 1)",
            via="pwrite64(2) on /proc/self/mem at the address"),
    Syscall("splice_write", None, (FD, _p("count", "int"), _p("pos", "int")),
            "move count bytes (0x79) from a pipe into the file at pos (returns the bytes moved)",
            via="splice(2) from a new pipe holding count bytes, with an explicit offset"),
    Syscall("vm_write", None, (MAP, OFF),
            "write one byte (0x5a) at mN + offset with process_vm_writev (returns 1)",
            via="process_vm_writev(2) from the caller to itself (FOLL_WRITE, no FOLL_FORCE)"),
    Syscall("pin", None, (MAP, OFF), "hold a page reference: the next handle pN",
            via="vmsplice(2) of the page into a pipe", returns="pin"),
    Syscall("gup_pin", None, (MAP, OFF),
            "a long-term FOLL_WRITE pin of the page: the next handle pN", needs=_IO_URING,
            via="io_uring_register(IORING_REGISTER_BUFFERS) of the page", returns="pin"),
    Syscall("udmabuf", None, (FD, _p("offset", "int"), _p("size", "int")),
            "a dmabuf of size bytes of the file at offset, its pages pinned: the next handle pN",
            needs=_UDMABUF, returns="pin",
            via="ioctl(UDMABUF_CREATE) on /dev/udmabuf (flags 0)"),
    Syscall("unpin", None, (PIN,), "release a pin",
            via="drain and close the pipe, unregister the io_uring buffer, or close the dmabuf"),
    # no needs of its own: the step that made the pin (gup_pin: io_uring, udmabuf:
    # /dev/udmabuf) already needs what writing through it takes
    Syscall("dma_write", None, (PIN,), "a device write through a FOLL_WRITE pin",
            via="an io_uring IORING_OP_READ_FIXED into the pinned buffer, or a store through "
            "a shared mapping of a udmabuf pin's dmabuf"),
    Syscall("io_uring_write", None, (FD, _p("buffer", "str"), _p("count", "int"),
                                     _p("offset", "int")),
            "write count bytes (buf repeated) at offset", needs=_IO_URING,
            via="io_uring: one IORING_OP_WRITE (the CQE's result)"),
    Syscall("io_uring_read", None, (FD, _p("count", "int"), _p("offset", "int")),
            "read count bytes at offset", needs=_IO_URING, out_buffer=1,
            via="io_uring: one IORING_OP_READ (the CQE's result)"),
    Syscall("io_uring_fallocate", None, (FD, _p("mode", "flags", vocab.FALLOC_FLAGS),
                                         _p("offset", "int"), _p("len", "int")),
            "allocate or punch a range", needs=_IO_URING,
            via="io_uring: one IORING_OP_FALLOCATE (the CQE's result)"),
    Syscall("file_setattr", 469, (FD, _p("path", "str?"), _p("attr", "attr"), _p("usize", "int"),
                                  _p("at_flags", "flags", vocab.FILE_ATTR_AT_FLAGS)),
            "set a file's xflags from a struct file_attr (zero past its 24 bytes, to usize)",
            check=_file_attr),
    Syscall("file_getattr", 468, (FD, _p("path", "str?"), _p("attr", "attr_out"),
                                  _p("usize", "int"),
                                  _p("at_flags", "flags", vocab.FILE_ATTR_AT_FLAGS)),
            "read a file's xflags into a struct file_attr of usize bytes; its fields are "
            "compared", check=_file_attr),
    Syscall("ioctl", 16, (FD, _p("request", "int"), _p("arg", "ioctl", optional=True)),
            "the KVM ioctls (KVM_CREATE_VM, KVM_CREATE_GUEST_MEMFD, ...), chattr's "
            "FS_IOC_SETFLAGS and FS_IOC_GETFLAGS, FIOCLEX/FIONCLEX, FIONBIO, and a "
            "terminal's TCGETS/TIOCGWINSZ (into a buffer of the executor's)", check=_ioctl),
)

#: call name -> its entry
SYSCALLS: dict[str, Syscall] = {s.name: s for s in _ENTRIES}


# ---- lowering --------------------------------------------------------------------------------
def const(text: str, page: int = PAGE) -> int:
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


def string_bytes(s: str) -> bytes:
    """A trace string's bytes as the executor passes them: latin-1, else UTF-8."""
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogatepass")


def _struct(arg: Struct, where: str, page: int) -> dict[str, int | str]:
    out: dict[str, int | str] = {}
    for name, v in arg.fields:
        if isinstance(v, Int):
            out[name] = v.value
        elif isinstance(v, Sym):
            out[name] = const(v.text, page)
        elif isinstance(v, Ref) and v.name.startswith("m"):
            out[name] = v.name
        else:
            raise TraceError(f"{where}: field {name}: unsupported value {format_arg(v)}")
    return out


def iovec_items(arg: Arg, where: str) -> tuple[tuple[str | None, int], ...]:
    """An iovec array as strace prints it, `[{iov_base="..", iov_len=N}, ...]`: its
    (iov_base text, iov_len) pairs; an iov_base strace shows as an address (a read it did not
    print) is None. The one reader of iovecs: the model (traces/concretize.py), the executor
    and the reproducers (traces/export/lower.py) all take them from here."""
    if not isinstance(arg, Lst):
        raise TraceError(f"{where}: expected an iovec array [{{iov_base=..., iov_len=N}}, ...]")
    out: list[tuple[str | None, int]] = []
    for k, item in enumerate(arg.items):
        f = dict(item.fields) if isinstance(item, Struct) else {}
        base, n = f.get("iov_base"), f.get("iov_len")
        if set(f) != {"iov_base", "iov_len"} or not (
                isinstance(base, (Str, Int)) and isinstance(n, Int)):
            raise TraceError(f"{where}: iovec {k + 1}: expected {{iov_base=..., iov_len=N}}")
        out.append((base.text if isinstance(base, Str) else None, n.value))
    return tuple(out)


def stat_shown(arg: Arg, where: str) -> dict[str, int]:
    """What a struct stat as strace prints it (`{st_mode=S_IFREG|0600, st_size=8192, ...}`)
    shows of the judged fields (STAT_SHOWN). The one reader of a `stat` argument: the
    executor, the kernel judge and the reproducers take it from here."""
    if not isinstance(arg, Struct):
        raise TraceError(f"{where}: expected a struct stat {{st_mode=..., st_size=..., ...}}")
    out: dict[str, int] = {}
    for name, v in arg.fields:
        if name not in STAT_SHOWN:
            continue
        if isinstance(v, Int):
            out[name] = v.value
        elif isinstance(v, Sym):
            out[name] = const(v.text)
        else:
            raise TraceError(f"{where}: {name}: expected a number")
    return out


def _operand(kind: Kind, arg: Arg, where: str, page: int) -> Operand:
    if kind in ("fd", "newfd", "int", "flags"):
        if isinstance(arg, Int):
            return arg.value
        if isinstance(arg, Sym):
            return const(arg.text, page)
        raise TraceError(f"{where}: expected a number, got {format_arg(arg)}")
    if kind in ("str", "str?", "path"):
        if isinstance(arg, Str):
            return string_bytes(arg.text)
        if kind == "str?" and (arg == Sym("NULL") or (isinstance(arg, Int) and arg.value == 0)):
            return None
        raise TraceError(f"{where}: expected a string, got {format_arg(arg)}")
    if kind == "addr":  # NULL, a number, or an address inside a mapping (MAP_FIXED: m1+4096)
        return _operand("map" if isinstance(arg, Ref) else "int", arg, where, page)
    if kind in ("map", "pin"):
        prefix = kind[0]
        if not (isinstance(arg, Ref) and arg.name.startswith(prefix)):
            raise TraceError(f"{where}: expected a {'mapping' if kind == 'map' else 'pin'} "
                             f"handle {prefix}N, got {format_arg(arg)}")
        return f"{arg.name}+{arg.plus}" if arg.plus else arg.name
    if kind == "stat":  # output only: what the trace shows of the judged fields
        return stat_shown(arg, where)
    if kind == "argv":
        if isinstance(arg, Lst) and all(isinstance(x, Str) for x in arg.items):
            return tuple(string_bytes(x.text) for x in arg.items if isinstance(x, Str))
        if isinstance(arg, Int) or arg == Sym("NULL"):
            return None
        raise TraceError(f"{where}: expected a string list [\"...\", ...] or an address")
    if kind == "ptr":
        if isinstance(arg, Lst) and len(arg.items) == 1:
            return _operand("int", arg.items[0], where, page)
        if arg == Sym("NULL") or (isinstance(arg, Int) and arg.value == 0):
            return None
        raise TraceError(f"{where}: expected [N] (a pointer to a number) or NULL")
    if kind in ("attr", "attr_out"):
        if isinstance(arg, Struct):
            return _struct(arg, where, page)
        if isinstance(arg, Int) and kind == "attr_out":  # a failed call's: no fields
            return {}
        raise TraceError(f"{where}: expected a struct file_attr {{fa_xflags=..., ...}}")
    if kind == "iov":  # a write's iov_base repeated; an address or a read's: zeroed
        return tuple((string_bytes(b or ""), n) for b, n in iovec_items(arg, where))
    if isinstance(arg, Struct):  # ioctl
        return _struct(arg, where, page)
    if isinstance(arg, Lst) and len(arg.items) == 1:  # ioctl's [N]
        v = _operand("int", arg.items[0], where, page)
        assert isinstance(v, int)
        return Cell(v)
    if isinstance(arg, Int):
        return arg.value
    if isinstance(arg, Sym):
        return const(arg.text, page)
    raise TraceError(f"{where}: expected a number or struct, got {format_arg(arg)}")


def without_out_buffer(entry: Syscall, args: Sequence[Arg]) -> list[Arg]:
    """The arguments without the buffer a read fills (Syscall.out_buffer), which is output
    only: strace's `read(fd, "data", count)`, or the buffer's address it prints where the
    call failed. A line that leaves it out (`read(fd, count)`) is returned as it is."""
    out = list(args)
    at = entry.out_buffer
    if at is not None and len(out) > at \
            and (isinstance(out[at], Str) or len(out) == entry.arity[1] + 1):
        del out[at]
    return out


def lower(step: Step, page: int = PAGE) -> Op:
    """A step as an Op: arity, operand kinds and the call's own checks; TraceError if the step
    cannot be executed as written (also for a call that has no entry)."""
    entry = SYSCALLS.get(step.call)
    if entry is None:
        raise TraceError(f"unsupported call {step.call}")
    args = list(step.args)
    args = without_out_buffer(entry, args)
    lo, hi = entry.arity
    if not lo <= len(args) <= hi:
        raise TraceError(f"{entry.name} takes {lo}..{hi} arguments, got {len(args)}")
    vals = [_operand(p.kind, a, f"{entry.name} argument {n}", page)
            for n, (p, a) in enumerate(zip(entry.params, args, strict=False), 1)]
    if entry.name == "memfd_create":
        name = _memfd_name(step)
        if name is not None:
            vals[0] = name
    needs = set(entry.needs)
    if entry.check is not None:
        needs |= entry.check(vals)
    want = step.outcome.value if isinstance(step.outcome, Ret) else None
    return Op(entry.name, tuple(vals), frozenset(needs), want)


def returns_fd(op: Op) -> bool:
    """The call's success is a new descriptor: a `returns="fd"` entry, fcntl(F_DUPFD[_CLOEXEC])."""
    return SYSCALLS[op.call].returns == "fd" or (
        op.call == "fcntl" and len(op.args) > 1 and op.args[1] in FCNTL_DUPFD_CMDS)


def lower_steps(steps: Sequence[Step]) -> list[Op]:
    """Every step lowered; "PAGE" means a huge page (2 MiB, or 1 GiB with MFD_HUGE_1GB) once the
    (first) memfd is on hugetlbfs.
    TraceError "step N: ..." at the first step that cannot be lowered."""
    ops: list[Op] = []
    page, created = PAGE, False
    for i, step in enumerate(steps, 1):
        try:
            ops.append(lower(step, page))
        except TraceError as err:
            raise type(err)(f"step {i}: {err}") from None
        if step.call == "memfd_create" and not created:
            created = True
            page = (1 << 30 if "hugetlb_1g" in ops[-1].needs
                    else vocab.HPAGE_SIZE if "hugetlb" in ops[-1].needs else PAGE)
    return ops
