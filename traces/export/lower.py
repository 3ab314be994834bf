"""The reproducers' common lowering: each step of a replayed trace as an `Op` (the call, its
operands checked and decoded, the constant names it uses, the expected outcome), which the C,
Python and syzkaller exporters render; and what they ask of the whole trace (KVM, huge pages,
vm.memfd_noexec)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from model import vocab
from model.lang.callspec import ShmPath
from model.lang.design import Design
from traces.export.common import ExportError, init_choices
from traces.replayed import Replayed
from traces.syscalls import (
    FCNTL_DUPFD_CMDS,
    FD_FIELDS,
    FILE_ATTR_FIELDS,
    INT_IOCTLS,
    IOCTL_FD_CREATORS,
    IOCTL_STRUCTS,
    OUT_IOCTLS,
    OUT_STRUCTS,
    PTR_IOCTLS,
    SCRATCH_IOCTLS,
    STAT_SHOWN,
    SYSCALLS,
    Param,
    TraceError,
    const,
    iovec_items,
    stat_shown,
    without_out_buffer,
)
from traces.textfmt import format_arg, format_step
from traces.trace import Arg, Err, Int, Lst, New, Outcome, Ref, Ret, Sig, Step, Str, Struct, Sym

#: the ioctl requests that take a number: the registry's (traces/syscalls.py)
IOCTL_NUMBERS = INT_IOCTLS
KVM_PATH = "/dev/kvm"


def const_value(word: str) -> int:
    """A name's (or number's) value, by the registry's evaluator (traces/syscalls.py const);
    the kernel executor's "PAGE" shorthand is not a uapi name a reproducer could define."""
    try:
        if word.strip() == "PAGE":
            raise TraceError(f"unknown constant {word}")
        return const(word)
    except TraceError as e:
        raise ExportError(str(e)) from None


def words(arg: Arg) -> list[str]:
    """The names in a flag argument, a struct's fields or a pointer's `[N]` (for the constant
    definitions a reproducer needs)."""
    if isinstance(arg, Sym):
        return [w for w in arg.text.split("|") if not w[:1].isdigit() and w != "NULL"]
    if isinstance(arg, Struct):
        return [w for _, v in arg.fields for w in words(v)]
    if isinstance(arg, Lst) and len(arg.items) == 1:
        return words(arg.items[0])
    return []


def int_arg(arg: Arg, what: str) -> int:
    if isinstance(arg, Int):
        return arg.value
    if isinstance(arg, Sym):
        v = 0
        for w in arg.text.split("|"):
            v |= const_value(w)
        return v
    raise ExportError(f"{what}: expected a number, got {format_arg(arg)}")


@dataclass(frozen=True)
class MapAt:
    """An address inside mapping number `m`, `plus` bytes past its start (`m1+8192`:
    munmap and mprotect of a part; NOTES.md "VMA splits")."""

    m: int
    plus: int


def map_at(v: Any, call: str) -> tuple[int, int]:
    """(mapping number, bytes past its start) of a mapping operand; only munmap and mprotect
    take an address inside a mapping."""
    if isinstance(v, MapAt):
        if call not in ("munmap", "mprotect"):
            raise ExportError(f"{call}: an address inside a mapping (m{v.m}+{v.plus}) is "
                              "taken by munmap and mprotect only")
        return v.m, v.plus
    return int(v), 0


def _handle_no(v: Any) -> Any:
    """A handle operand's number (a MapAt's mapping)."""
    return v.m if isinstance(v, MapAt) else v


def handle_arg(arg: Arg, prefix: str, what: str) -> int:
    if isinstance(arg, Ref) and arg.name.startswith(prefix) and arg.name[1:].isdigit():
        return int(arg.name[1:])
    raise ExportError(f"{what}: expected a handle {prefix}N, got {format_arg(arg)}")


def iov_arg(arg: Arg, what: str) -> tuple[tuple[str, int], ...]:
    """An iovec array as ((iov_base text, iov_len), ...) (traces.syscalls.iovec_items)."""
    try:
        return tuple((b or "", n) for b, n in iovec_items(arg, what))
    except TraceError as e:
        raise ExportError(str(e)) from None


def fd_arg(arg: Arg, what: str) -> int:
    if isinstance(arg, Int):
        return arg.value
    extra = (" (a live-update session: the reproducers have no /dev/liveupdate)"
             if isinstance(arg, Sym) and arg.text.startswith("SESSION") else "")
    raise ExportError(f"{what}: expected a file descriptor, got {format_arg(arg)}{extra}")


_PROC_FD = re.compile(r"/proc/self/fd/([0-9]+)")

#: a lowered ioctl struct: (field, value) in layout order, every field present; a value is
#: a number or flags (Int, Sym), a trace fd (Int, in FD_FIELDS) or a mapping (Ref mN)
StructOps = tuple[tuple[str, Arg], ...]


def _lower_struct(req: int, arg: Arg, where: str) -> StructOps:
    name, layout = IOCTL_STRUCTS[req]
    if not isinstance(arg, Struct):
        raise ExportError(f"{where}: struct {name} expected, got {format_arg(arg)}")
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
            raise ExportError(f"{where}: {f}: expected a number, got {format_arg(v)}")
        else:
            int_arg(v, f"{where}: {f}")  # every name known
        out.append((f, v))
    return tuple(out)


def _lower_ioctl(a: tuple[Arg, ...], where: str) -> tuple[Any, ...]:
    """(fd, request as written, request value, argument): the argument is StructOps for the
    struct requests, ((field, value shown or None), ...) for a struct the kernel fills
    (OUT_STRUCTS), the Lst [N] for a pointer to a number (PTR_IOCTLS), else an Int or Sym."""
    fd = fd_arg(a[0], where)
    req = int_arg(a[1], f"{where}: request")
    arg = a[2] if len(a) > 2 else Int(0)
    if req in OUT_IOCTLS and isinstance(arg, Int):  # an address: a failed call's output
        return (fd, a[1], req, arg)
    if req in OUT_STRUCTS:  # the struct the kernel fills: the values shown, or none (an address)
        shown = dict(arg.fields) if isinstance(arg, Struct) else {}
        unknown = set(shown) - set(OUT_STRUCTS[req])
        if unknown or not isinstance(arg, (Struct, Int)):
            raise ExportError(f"{where}: ioctl {req:#x} fills struct fields "
                              f"{', '.join(OUT_STRUCTS[req])}, got {format_arg(arg)}")
        return (fd, a[1], req, tuple((f, int_arg(shown[f], f"{where}: {f}") if f in shown
                                      else None) for f in OUT_STRUCTS[req]))
    if req in PTR_IOCTLS:
        if not (isinstance(arg, Lst) and len(arg.items) == 1
                and isinstance(arg.items[0], (Int, Sym))):
            raise ExportError(f"{where}: ioctl {req:#x} takes a pointer to a number, [N]")
        int_arg(arg.items[0], where)
        return (fd, a[1], req, arg)
    if req in IOCTL_STRUCTS:
        return (fd, a[1], req, _lower_struct(req, arg, where))
    if req in SCRATCH_IOCTLS:  # a buffer of the reproducer's, whatever address strace showed
        return (fd, a[1], req, Int(0))
    if req not in IOCTL_NUMBERS:
        raise ExportError(f"{where}: no reproducer for ioctl request {req:#x}")
    if not isinstance(arg, (Int, Sym)):
        raise ExportError(f"{where}: ioctl {req:#x} takes a number, got {format_arg(arg)}")
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
    #: 0: this process runs the step; else the number of the mapping a fork_vma made, whose
    #: child runs it (the step names that mapping, or a mapping or pin made through it)
    holder: int = 0


#: registry calls the reproducers (C, Python, syz) do not render, with the reason (said once)
UNSUPPORTED: dict[str, str] = {
    "openat": "a path relative to a directory descriptor: the reproducers open paths with "
              "open() (openat(AT_FDCWD, ...) is open(): fs/open.c do_sys_open(AT_FDCWD, ...))",
}


def reproducible(call: str) -> bool:
    """The reproducers render `call`: it has a registry entry and is not UNSUPPORTED."""
    return call in SYSCALLS and call not in UNSUPPORTED


def _operand(p: Param, arg: Arg, where: str) -> Any:
    """One argument by its registry kind: a trace fd or a handle as its number, a string as
    its text (None for NULL where allowed), a number or flags as written (its names known)."""
    if p.kind in ("fd", "newfd"):
        return fd_arg(arg, where)
    if p.kind in ("map", "pin"):
        if isinstance(arg, Ref) and arg.plus:
            return MapAt(handle_arg(Ref(arg.name), "m", where), arg.plus)
        return handle_arg(arg, p.kind[0], where)
    if p.kind == "iov":
        return iov_arg(arg, where)
    if p.kind == "argv":  # a string list's texts; an address strace showed (envp) or NULL: ()
        if isinstance(arg, Lst) and all(isinstance(x, Str) for x in arg.items):
            return tuple(x.text for x in arg.items if isinstance(x, Str))
        if isinstance(arg, Int) or arg == Sym("NULL"):
            return ()
        raise ExportError(f"{where}: the {p.name} must be a string list or an address")
    if p.kind == "stat":  # output only: the fields it shows, which the reproducer checks
        try:
            return stat_shown(arg, where)
        except TraceError as e:
            raise ExportError(str(e)) from None
    if p.kind in ("attr", "attr_out"):  # struct file_attr: ((field, as written or None), ...)
        shown = dict(arg.fields) if isinstance(arg, Struct) else {}
        unknown = set(shown) - {f for f, _ in FILE_ATTR_FIELDS}
        if unknown or not isinstance(arg, (Struct, Int)):
            raise ExportError(f"{where}: expected a struct file_attr {{fa_xflags=..., ...}} "
                              f"or an address, got {format_arg(arg)}")
        for f, v in shown.items():
            int_arg(v, f"{where}: {f}")
        return tuple((f, shown.get(f)) for f, _ in FILE_ATTR_FIELDS)
    if p.kind == "ptr":  # [N] as the Int N; NULL as None
        if isinstance(arg, Lst) and len(arg.items) == 1:
            int_arg(arg.items[0], where)
            return arg.items[0]
        if arg in (Sym("NULL"), Int(0)):
            return None
        raise ExportError(f"{where}: the {p.name} must be [N] or NULL")
    if p.kind in ("str", "str?", "path"):
        if isinstance(arg, Str):
            return arg.text
        if p.kind == "str?" and arg in (Sym("NULL"), Int(0)):
            return None
        raise ExportError(f"{where}: the {p.name} must be a string"
                          + (" or NULL" if p.kind == "str?" else ""))
    int_arg(arg, where)  # every name known
    return arg


def _slot(step: Step, prefix: str, where: str) -> int:
    """The handle number a step creates (0: it fails)."""
    return handle_arg(Ref(step.outcome.name), prefix, where) if isinstance(
        step.outcome, New) else 0


def lower(r: Replayed) -> list[Op]:
    """Each step through its traces/syscalls.py entry: arity and argument kinds from the
    entry; fds and handles as numbers, strings as text, numbers and flags as written (a
    left-out optional one is 0). Then what the reproducers add: mmap takes NULL and offset 0
    only and records its mapping's number (mremap, a NULL new_addr, the number of the mapping
    it returns), pin/gup_pin/udmabuf their pin's, open of /proc/self/fd/N its
    N, and an ioctl its request and struct (`_lower_ioctl`)."""
    ops: list[Op] = []
    #: (prefix, number) of a handle a fork's child holds -> that child (its fork_vma's mN)
    held: dict[tuple[str, int], int] = {}
    for n, step in enumerate(r.steps, 1):
        c, a = step.call, step.args
        if c == "openat" and a and _is_at_fdcwd(a[0]):  # what glibc's open() makes
            c, a = "open", a[1:]
        entry = SYSCALLS.get(c)
        if c in UNSUPPORTED:
            raise ExportError(f"step {n}: no reproducer for call {c!r}: {UNSUPPORTED[c]}")
        if entry is None:
            raise ExportError(f"step {n}: no reproducer for call {c!r} "
                              f"(calls: {', '.join(sorted(filter(reproducible, SYSCALLS)))})")
        lo, hi = entry.arity
        if entry.out_buffer is not None:
            hi += 1
        if not lo <= len(a) <= hi:
            raise ExportError(f"step {n}: {c} takes {lo}..{hi} arguments, got {len(a)}")
        where = f"step {n}: {c}"
        names: list[str] = []
        for p, x in zip(entry.params, a, strict=False):
            if p.kind == "stat" and isinstance(x, Struct):  # only the fields it checks
                x = Struct(tuple((k, v) for k, v in x.fields if k in STAT_SHOWN))
            names += words(x)
        o: tuple[Any, ...]
        a = tuple(without_out_buffer(entry, a))  # strace's read(fd, "data", count)
        if c == "ioctl":
            o = _lower_ioctl(a, where)
        else:
            o = tuple(_operand(p, x, where) for p, x in zip(entry.params, a, strict=False))
            o += tuple(Int(0) for _ in entry.params[len(a):])
            for v in o:
                if isinstance(v, MapAt):
                    map_at(v, c)  # an address inside a mapping: munmap and mprotect only
        if c == "mmap":
            if int_arg(a[0], where) != 0:
                raise ExportError(f"{where}: only NULL addresses are supported")
            o = (_slot(step, "m", where), *o[1:6])
        elif c == "mremap":  # the mapping it returns: mN itself, or a new one
            if int_arg(a[4], where) if len(a) > 4 else 0:
                raise ExportError(f"{where}: only a NULL new_addr is supported")
            o = (*o[:4], _slot(step, "m", where))
        elif entry.returns == "pin":
            o = (*o, _slot(step, "p", where))
        elif c in ("open", "execve"):  # /proc/self/fd/N: the trace's descriptor N
            m = _PROC_FD.fullmatch(o[0])
            o = (int(m.group(1)) if m else None, *o)
        holder = next((held[(p.kind[0], _handle_no(v))]
                       for p, v in zip(entry.params, o, strict=False)
                       if p.kind in ("map", "pin") and (p.kind[0], _handle_no(v)) in held), 0)
        if c == "fork_vma":
            if holder:
                raise ExportError(f"{where}: a fork of a fork's copy: the reproducers' "
                                  "children fork no further (`replay --on kernel` runs it)")
            o = (*o, _slot(step, "m", where))
            held[("m", o[1])] = o[1]
        elif holder and isinstance(step.outcome, New):  # made through a child's mapping
            held[(step.outcome.name[0], _slot(step, step.outcome.name[0], where))] = holder
        text = format_step(Step(step.call, step.args, step.outcome, step.note))
        ops.append(Op(n, text, c, o, tuple(dict.fromkeys(names)), step.outcome, holder))
    return ops


def _is_at_fdcwd(arg: Arg) -> bool:
    """openat's dirfd is AT_FDCWD: the call is open() (fs/open.c: both are do_sys_open() with
    AT_FDCWD)."""
    try:
        return int_arg(arg, "dirfd") == const("AT_FDCWD")
    except ExportError:
        return False


def plain_operands(op: Op) -> list[tuple[Param, Any]]:
    """A plain call's operands with their parameters (traces.syscalls.Syscall.plain): what a
    reproducer renders generically, as the system call of that number with these arguments."""
    return list(zip(SYSCALLS[op.call].params, op.ops, strict=True))


def value(arg: Any) -> int:
    """A lowered number or flags operand's value."""
    return int_arg(arg, "value")


def creates_fd(op: Op) -> bool:
    """The step returns a new descriptor of the trace."""
    return SYSCALLS[op.call].returns == "fd" or (
        op.call == "ioctl" and op.ops[2] in IOCTL_FD_CREATORS) or (
        op.call == "fcntl" and int_arg(op.ops[1], "cmd") in FCNTL_DUPFD_CMDS)


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


def names_shm(op: Op) -> bool:
    """The step names the trace's /dev/shm file (model/lang/callspec.py ShmPath)."""
    return op.call in ("open", "unlink") and str(op.ops[1 if op.call == "open" else 0]) \
        .startswith(ShmPath.prefix)


def uses_shm(ops: Sequence[Op]) -> bool:
    """A step names a /dev/shm path: the reproducer mounts a private tmpfs there first."""
    return any(names_shm(op) for op in ops)


def uses_hugetlb(ops: Sequence[Op]) -> bool:
    return any(op.call == "memfd_create" and isinstance(op.ops[1], (Sym, Int))
               and int_arg(op.ops[1], "flags") & vocab.MFD_HUGETLB for op in ops)


def expect_check(op: Op, call: str, name: Callable[[str], str]) -> str:
    """The runtime's check of a step's outcome: mfd_fail_errno / mfd_fail_signal /
    mfd_assert_{ok,fd,ret}, which the C and Python runtimes both define; `name` spells an
    errno or signal name in the reproducer's language."""
    e = op.expect
    if isinstance(e, Err):
        return f"mfd_fail_errno({call}, {name(e.errno)})"
    if isinstance(e, Sig):
        return f"mfd_fail_signal({call}, {name(e.name)})"
    if isinstance(e, New):
        return f"mfd_assert_ok({call})"
    if isinstance(e, Ret):
        if creates_fd(op):
            return f"mfd_assert_fd({call}, {e.value})"
        return f"mfd_assert_ret({call}, {e.value})"
    raise ExportError(f"step {op.n}: no outcome (the model could not fill `?`)")
