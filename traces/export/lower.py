"""The reproducers' common lowering: each step of a replayed trace as an `Op` (the call, its
operands checked and decoded, the constant names it uses, the expected outcome), which the C,
Python and syzkaller exporters render; and what they ask of the whole trace (KVM, huge pages,
vm.memfd_noexec)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from model import vocab
from model.lang.design import Design
from traces.export.common import ExportError, init_choices
from traces.replayed import Replayed
from traces.textfmt import format_step
from traces.trace import Arg, Int, New, Outcome, Ref, Ret, Step, Str, Struct, Sym

#: names a reproducer may use, beyond model.vocab.CONSTANTS (values as on x86_64)
EXTRA_NAMES: dict[str, int] = {"NULL": 0, "O_EXCL": 0o200, "O_APPEND": 0o2000,
                                "O_NONBLOCK": 0o4000, "MAP_FIXED": 0x10,
                                "MAP_ANONYMOUS": 0x20, "MAP_SHARED_VALIDATE": 0x03,
                                "SEEK_SET": 0, "SEEK_CUR": 1, "SEEK_END": 2, "SEEK_DATA": 3,
                                "SEEK_HOLE": 4, "KVM_GET_API_VERSION": 0xAE00,
                                "KVM_CHECK_EXTENSION": vocab.KVM_CHECK_EXTENSION,
                                "KVM_CAP_GUEST_MEMFD": vocab.KVM_CAP_GUEST_MEMFD,
                                "KVM_CAP_GUEST_MEMFD_FLAGS": vocab.KVM_CAP_GUEST_MEMFD_FLAGS}

#: ioctl requests that take a struct: request -> (C struct name, (field, bits) in layout order)
#: (include/uapi/linux/kvm.h; the padding and reserved words are zero)
IOCTL_STRUCTS: dict[int, tuple[str, tuple[tuple[str, int], ...]]] = {
    vocab.KVM_CREATE_GUEST_MEMFD: ("kvm_create_guest_memfd", (("size", 64), ("flags", 64))),
    vocab.KVM_SET_USER_MEMORY_REGION2: ("kvm_userspace_memory_region2", (
        ("slot", 32), ("flags", 32), ("guest_phys_addr", 64), ("memory_size", 64),
        ("userspace_addr", 64), ("guest_memfd_offset", 64), ("guest_memfd", 32))),
}
FD_FIELDS = frozenset({"guest_memfd"})  # struct fields that hold a descriptor of the trace
#: ioctl requests that take a number (or nothing)
IOCTL_NUMBERS = frozenset({vocab.KVM_CREATE_VM, vocab.KVM_CHECK_EXTENSION, 0xAE00})
#: ioctl requests that return a new descriptor
IOCTL_FD_CREATORS = frozenset({vocab.KVM_CREATE_VM, vocab.KVM_CREATE_GUEST_MEMFD})
KVM_PATH = "/dev/kvm"


def const_value(word: str) -> int:
    if word in vocab.CONSTANTS:
        return vocab.CONSTANTS[word]
    if word in EXTRA_NAMES:
        return EXTRA_NAMES[word]
    try:
        return int(word, 0)
    except ValueError:
        raise ExportError(f"unknown constant {word}") from None


def words(arg: Arg) -> list[str]:
    """The names in a flag argument or a struct's fields (for the constant definitions a
    reproducer needs)."""
    if isinstance(arg, Sym):
        return [w for w in arg.text.split("|") if not w[:1].isdigit() and w != "NULL"]
    if isinstance(arg, Struct):
        return [w for _, v in arg.fields for w in words(v)]
    return []


def int_arg(arg: Arg, what: str) -> int:
    if isinstance(arg, Int):
        return arg.value
    if isinstance(arg, Sym):
        v = 0
        for w in arg.text.split("|"):
            v |= const_value(w)
        return v
    raise ExportError(f"{what}: expected a number, got {arg!r}")


def handle_arg(arg: Arg, prefix: str, what: str) -> int:
    if isinstance(arg, Ref) and arg.name.startswith(prefix) and arg.name[1:].isdigit():
        return int(arg.name[1:])
    raise ExportError(f"{what}: expected a handle {prefix}N, got {arg!r}")


def fd_arg(arg: Arg, what: str) -> int:
    if isinstance(arg, Int):
        return arg.value
    raise ExportError(f"{what}: expected a file descriptor, got {arg!r}")


_PROC_FD = re.compile(r"/proc/self/fd/([0-9]+)")

#: a lowered ioctl struct: (field, value) in layout order, every field present; a value is
#: a number or flags (Int, Sym), a trace fd (Int, in FD_FIELDS) or a mapping (Ref mN)
StructOps = tuple[tuple[str, Arg], ...]


def _lower_struct(req: int, arg: Arg, where: str) -> StructOps:
    name, layout = IOCTL_STRUCTS[req]
    if not isinstance(arg, Struct):
        raise ExportError(f"{where}: struct {name} expected, got {arg!r}")
    given = dict(arg.fields)
    known = {f for f, _ in layout}
    unknown = [f for f, _ in arg.fields if f not in known]
    if unknown:
        raise ExportError(f"{where}: struct {name} has no field {', '.join(unknown)}")
    if len(given) != len(arg.fields):
        raise ExportError(f"{where}: a field of struct {name} is given twice")
    out: list[tuple[str, Arg]] = []
    for f, _ in layout:
        v = given.get(f, Int(0))
        if f in FD_FIELDS:
            fd_arg(v, f"{where}: {f}")
        elif isinstance(v, Ref):
            handle_arg(v, "m", f"{where}: {f}")
        elif not isinstance(v, (Int, Sym)):
            raise ExportError(f"{where}: {f}: expected a number, got {v!r}")
        else:
            int_arg(v, f"{where}: {f}")  # every name known
        out.append((f, v))
    return tuple(out)


def _lower_ioctl(a: tuple[Arg, ...], where: str) -> tuple[Any, ...]:
    """(fd, request as written, request value, argument): the argument is StructOps for the
    struct requests, else an Int or Sym."""
    fd = fd_arg(a[0], where)
    req = int_arg(a[1], f"{where}: request")
    arg = a[2] if len(a) > 2 else Int(0)
    if req in IOCTL_STRUCTS:
        return (fd, a[1], req, _lower_struct(req, arg, where))
    if req not in IOCTL_NUMBERS:
        raise ExportError(f"{where}: no reproducer for ioctl request {req:#x}")
    if not isinstance(arg, (Int, Sym)):
        raise ExportError(f"{where}: ioctl {req:#x} takes a number, got {arg!r}")
    int_arg(arg, where)
    return (fd, a[1], req, arg)


@dataclass(frozen=True)
class Op:
    """One step lowered for the reproducers: the call and its operands, the expectation."""

    n: int
    text: str  # the step as the trace prints it (without comment)
    call: str
    ops: tuple[Any, ...]
    names: tuple[str, ...]  # symbolic constants used
    expect: Outcome


ARITY = {"memfd_create": (2, 2), "fcntl": (2, 3), "pwrite64": (4, 4), "ftruncate": (2, 2),
          "fallocate": (4, 4), "mmap": (6, 6), "mprotect": (3, 3), "munmap": (2, 2),
          "store": (1, 2), "load": (1, 2), "pin": (1, 2), "gup_pin": (1, 2), "unpin": (1, 1),
          "dma_write": (1, 1), "open": (2, 3), "dup": (1, 1), "fchmod": (2, 2), "close": (1, 1),
          "ioctl": (2, 3), "read": (2, 3), "write": (3, 3), "pread64": (3, 4), "lseek": (3, 3)}


def lower(r: Replayed) -> list[Op]:
    ops: list[Op] = []
    for n, step in enumerate(r.steps, 1):
        c, a = step.call, step.args
        if c not in ARITY:
            raise ExportError(f"step {n}: no reproducer for call {c!r} "
                              f"(calls: {', '.join(sorted(ARITY))})")
        lo, hi = ARITY[c]
        if not lo <= len(a) <= hi:
            raise ExportError(f"step {n}: {c} takes {lo}..{hi} arguments, got {len(a)}")
        where = f"step {n}: {c}"
        names: list[str] = []
        for x in a:
            names += words(x)
        o: tuple[Any, ...]
        if c in ("read", "pread64") and len(a) == hi:
            if not isinstance(a[1], Str):  # strace's read(fd, "data", count): output only
                raise ExportError(f"{where}: the buffer must be a string")
            a = (a[0], *a[2:])
        if c == "memfd_create":
            if isinstance(a[0], Str):
                name: str | None = a[0].text
            elif a[0] in (Sym("NULL"), Int(0)):
                name = None
            else:
                raise ExportError(f"{where}: the name must be a string or NULL")
            o = (name, a[1])
        elif c == "fcntl":
            o = (fd_arg(a[0], where), a[1], a[2] if len(a) > 2 else Int(0))
        elif c == "pwrite64":
            if not isinstance(a[1], Str):
                raise ExportError(f"{where}: the buffer must be a string")
            o = (fd_arg(a[0], where), a[1].text, int_arg(a[2], where), int_arg(a[3], where))
        elif c == "write":
            if not isinstance(a[1], Str):
                raise ExportError(f"{where}: the buffer must be a string")
            o = (fd_arg(a[0], where), a[1].text, int_arg(a[2], where))
        elif c == "read":
            o = (fd_arg(a[0], where), int_arg(a[1], where))
        elif c == "pread64":
            o = (fd_arg(a[0], where), int_arg(a[1], where), int_arg(a[2], where))
        elif c == "lseek":
            o = (fd_arg(a[0], where), int_arg(a[1], where), a[2])
            int_arg(a[2], where)
        elif c == "ioctl":
            o = _lower_ioctl(a, where)
        elif c in ("ftruncate", "fchmod"):
            o = (fd_arg(a[0], where), a[1])
        elif c == "fallocate":
            o = (fd_arg(a[0], where), a[1], int_arg(a[2], where), int_arg(a[3], where))
        elif c == "mmap":
            if int_arg(a[0], where) != 0:
                raise ExportError(f"{where}: only NULL addresses are supported")
            if int_arg(a[5], where) != 0:
                raise ExportError(f"{where}: only offset 0 is supported")
            slot = handle_arg(Ref(step.outcome.name), "m", where) if isinstance(
                step.outcome, New) else 0
            o = (slot, int_arg(a[1], where), a[2], a[3], fd_arg(a[4], where))
        elif c == "mprotect":
            o = (handle_arg(a[0], "m", where), int_arg(a[1], where), a[2])
        elif c == "munmap":
            o = (handle_arg(a[0], "m", where), int_arg(a[1], where))
        elif c in ("store", "load"):
            o = (handle_arg(a[0], "m", where), int_arg(a[1], where) if len(a) > 1 else 0)
        elif c in ("pin", "gup_pin"):
            slot = handle_arg(Ref(step.outcome.name), "p", where) if isinstance(
                step.outcome, New) else 0
            o = (handle_arg(a[0], "m", where), int_arg(a[1], where) if len(a) > 1 else 0, slot)
        elif c in ("unpin", "dma_write"):
            o = (handle_arg(a[0], "p", where),)
        elif c == "open":
            if not isinstance(a[0], Str):
                raise ExportError(f"{where}: the path must be a string")
            m = _PROC_FD.fullmatch(a[0].text)
            o = (int(m.group(1)) if m else None, a[0].text, a[1],
                 a[2] if len(a) > 2 else Int(0))
        else:  # dup, close
            o = (fd_arg(a[0], where),)
        text = format_step(Step(step.call, step.args, step.outcome, step.note))
        ops.append(Op(n, text, c, o, tuple(dict.fromkeys(names)), step.outcome))
    return ops


_FD_CREATORS = ("memfd_create", "open", "dup")


def creates_fd(op: Op) -> bool:
    """The step returns a new descriptor of the trace."""
    return op.call in _FD_CREATORS or (op.call == "ioctl" and op.ops[2] in IOCTL_FD_CREATORS)


def is_kvm_open(op: Op) -> bool:
    """open("/dev/kvm") that the trace expects to succeed (a machine without KVM skips)."""
    return op.call == "open" and op.ops[0] is None and op.ops[1] == KVM_PATH \
        and isinstance(op.expect, Ret)


def uses_gmem(ops: Sequence[Op]) -> bool:
    return any(op.call == "ioctl" and op.ops[2] == vocab.KVM_CREATE_GUEST_MEMFD for op in ops)


def noexec_want(design: Design, r: Replayed) -> int | None:
    """vm.memfd_noexec the trace starts from: None when it does not say (the default, 0)."""
    if not any(c.strip().startswith("init:") for c in r.trace.comments):
        return None
    return init_choices(design, r.trace, r.states).get("noexec_scope")


def uses_hugetlb(ops: Sequence[Op]) -> bool:
    return any(op.call == "memfd_create" and isinstance(op.ops[1], (Sym, Int))
               and int_arg(op.ops[1], "flags") & vocab.MFD_HUGETLB for op in ops)

