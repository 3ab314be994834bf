"""``c``: a kselftest-style C reproducer in the dialect of memfd_test.c: raw system calls,
every outcome checked, exit 0/1/4 = KSFT_PASS/KSFT_FAIL/KSFT_SKIP. The runtime it copies
(the helpers each step calls) is runtime/repro.c, shipped as package data; the ioctl structs
are declared with <linux/kvm.h>'s layout, as traces/kernel.py packs them."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from model import vocab
from model.lang.design import Design
from traces.concretize import size_scale
from traces.export.common import OWN_CALLS, ExportError, ascii_text, expect_of, runtime_sections
from traces.export.lower import (
    Op,
    const_value,
    expect_check,
    fd_arg,
    handle_arg,
    int_arg,
    is_kvm_open,
    lower,
    map_at,
    names_shm,
    noexec_want,
    plain_operands,
    uses_gmem,
    uses_hugetlb,
    uses_shm,
    value,
)
from traces.replayed import Replayed
from traces.syscalls import (
    FD_FIELDS,
    FILE_ATTR_FIELDS,
    IOCTL_STRUCTS,
    OUT_IOCTLS,
    OUT_STRUCTS,
    SCRATCH_BYTES,
    SCRATCH_IOCTLS,
    SYSCALLS,
)
from traces.trace import Arg, Int, Lst, Ref, Ret, Sym


def _c_string(s: str) -> str:
    out = []
    for b in s.encode("latin-1", "backslashreplace") if all(ord(c) < 256 for c in s) \
            else s.encode("utf-8", "surrogatepass"):
        ch = chr(b)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "?":
            out.append("\\?")  # no trigraphs
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def _c_long_string(s: str, indent: str) -> str:
    """A C string literal split into pieces of at most 60 characters."""
    if len(s) <= 60:
        return _c_string(s)
    parts = [_c_string(s[i:i + 60]) for i in range(0, len(s), 60)]
    return ("\n" + indent).join(parts)


def _c_flags(arg: object) -> str:
    if isinstance(arg, Sym):
        return " | ".join(arg.text.split("|"))
    if isinstance(arg, Int):
        return arg.text if arg.text is not None else str(arg.value)
    raise ExportError(f"expected flags, got {arg!r}")


def _c_plain(arg: object) -> str:
    """A plain system call's argument, passed through syscall()'s variadic long: a negative
    value as a long (an int would not be sign-extended to the register's 64 bits), a value
    above LONG_MAX (a size_t) as its unsigned long constant."""
    if isinstance(arg, Int) and arg.text is None:
        v = arg.value
        if v > (1 << 63) - 1:
            return f"(long){v}UL"
        if v == -(1 << 63):
            return f"(long)({v + 1} - 1)"
        if v < 0:
            return f"(long)({v})"
    return _c_flags(arg)


def _c_comment(s: str) -> str:
    return ascii_text(s).replace("*/", "* /").replace("/*", "/ *")


def _c_constants(names: Sequence[str]) -> str:
    out = []
    for name in names:
        v = const_value(name)
        out.append(f"#ifndef {name}\n#define {name} {v:#x}\n#endif")
    return "\n".join(out) + "\n" if out else ""


def _c_field(f: str, v: Arg, bits: int, need: set[str]) -> str:
    """A struct field's value as a C argument of a uint{bits}_t parameter."""
    if f in FD_FIELDS:
        return f"FD({fd_arg(v, f)})"
    if isinstance(v, Ref):
        need.add("maps")
        return f"(uintptr_t)maps[{handle_arg(v, 'm', f)}]"
    value = int_arg(v, f)
    if 1 << 63 <= value < 1 << bits and isinstance(v, Int) and _c_flags(v).isdigit():
        return f"{_c_flags(v)}ULL"  # a decimal past LLONG_MAX is unsigned only with a suffix
    if 0 <= value < 1 << bits:
        return _c_flags(v)
    # the kernel reads the field truncated: so does the cast (gcc warns of no explicit one)
    if isinstance(v, Sym):
        return f"(uint{bits}_t)({_c_flags(v)})"
    if -(1 << 63) <= value < 0:
        return f"(uint{bits}_t)-{-value:#x}LL"
    return f"(uint{bits}_t){value % (1 << 64):#x}ULL"


def _c_cell(value: str) -> str:
    """A pointer argument: the address of a 64-bit cell holding `value` (a `ptr` argument,
    an ioctl's `[N]`), as the executor passes it."""
    return f"(long)&(long long){{ {value} }}"


def _c_ioctl(op: Op, need: set[str]) -> str:
    fd, req, code, arg = op.ops
    if code in OUT_IOCTLS:  # the kernel fills the cell; checked after (runtime: cell_shown())
        need.add("stat")
        shown = _c_flags(arg.items[0]) if isinstance(arg, Lst) else "-1"
        return f"cell_shown({shown}, res_of(ioctl(FD({fd}), {_c_flags(req)}, out_cell_ptr())))"
    if code in OUT_STRUCTS:  # the kernel fills struct fsxattr; checked after (fsx_shown())
        need |= {"fields", "fsx"}
        shown = ", ".join("-1" if v is None else f"{v:#x}" for _, v in arg)
        return (f"fsx_shown({shown}, res_of(ioctl(FD({fd}), {_c_flags(req)}, "
                "out_fsx_ptr())))")
    if isinstance(arg, Lst):  # a pointer to a number (PTR_IOCTLS: chattr's flags)
        return f"res_of(ioctl(FD({fd}), {_c_flags(req)}, {_c_cell(_c_flags(arg.items[0]))}))"
    if code == vocab.FS_IOC_FSSETXATTR:  # struct fsxattr: five __u32, 8 bytes of padding
        vals = [_c_field(f, v, b, need) for (f, v), (_, b) in
                zip(arg, IOCTL_STRUCTS[code][1], strict=True)]
        return (f"res_of(ioctl(FD({fd}), {_c_flags(req)}, "
                f"(uint32_t[7]){{ {', '.join(vals)}, 0, 0 }}))")
    if code in SCRATCH_IOCTLS:  # a zeroed buffer the call may fill (a terminal's struct)
        return (f"res_of(ioctl(FD({fd}), {_c_flags(req)}, "
                f"(char[{SCRATCH_BYTES}]){{ 0 }}))")
    if code in (vocab.FIOCLEX, vocab.FIONCLEX):
        return f"res_of(ioctl(FD({fd}), {_c_flags(req)}))"
    need.add("kvm")
    if code == vocab.KVM_CREATE_GUEST_MEMFD:
        size, flags = (_c_field(f, v, b, need) for (f, v), (_, b) in
                       zip(arg, IOCTL_STRUCTS[code][1], strict=True))
        return f"sys_create_guest_memfd(FD({fd}), {size}, {flags})"
    if code == vocab.KVM_SET_USER_MEMORY_REGION2:
        vals = [_c_field(f, v, b, need) for (f, v), (_, b) in
                zip(arg, IOCTL_STRUCTS[code][1], strict=True)]
        return f"sys_set_memory_region2(FD({fd}), {', '.join(vals)})"
    return f"sys_ioctl(FD({fd}), {_c_flags(req)}, {_c_flags(arg)})"


def _c_expect(op: Op, call: str) -> str:
    return expect_check(op, call, str) + ";"


#: the registry calls rendered here with code of their own (common.OWN_CALLS, the same in
#: every exporter); every other plain call is rendered from its entry
OWN = OWN_CALLS


def _c_call(op: Op, need: set[str]) -> str:
    c, o = op.call, op.ops
    if c == "memfd_create":
        need.add("create")
        name = "NULL" if o[0] is None else _c_long_string(str(o[0]), "\t\t\t\t\t")
        return f"sys_memfd_create({name}, {_c_flags(o[1])})"
    if c == "fcntl":
        return f"res_of(fcntl(FD({o[0]}), {_c_flags(o[1])}, {_c_flags(o[2])}))"
    if c == "pwrite64":
        need.add("payload")
        data = str(o[1])
        count = value(o[2])
        return (f"res_of(pwrite(FD({o[0]}), payload({_c_string(data)}, {len(data)}, {count}), "
                f"{count}, {value(o[3])}))")
    if c == "ftruncate":
        return f"res_of(ftruncate(FD({o[0]}), {_c_flags(o[1])}))"
    if c == "fchmod":
        return f"res_of(fchmod(FD({o[0]}), {_c_flags(o[1])}))"
    if c == "fallocate":
        return f"res_of(fallocate(FD({o[0]}), {_c_flags(o[1])}, {value(o[2])}, {value(o[3])}))"
    if c == "mmap":
        need.add("maps")
        return (f"sys_mmap({o[0]}, {value(o[1])}, {_c_flags(o[2])}, {_c_flags(o[3])}, "
                f"FD({o[4]}), {value(o[5])})")
    if c == "mprotect":
        need.add("maps")
        m, plus = map_at(o[0], c)
        addr = f"(char *)maps[{m}] + {plus}" if plus else f"maps[{m}]"
        return f"res_of(mprotect({addr}, {value(o[1])}, {_c_flags(o[2])}))"
    if c == "munmap":
        need |= {"maps", "munmap"}
        m, plus = map_at(o[0], c)
        return f"sys_munmap({m}, {plus}, {value(o[1])})"
    if c == "mremap":
        need |= {"maps", "mremap"}
        return (f"sys_mremap({o[0]}, {value(o[1])}, {value(o[2])}, {_c_flags(o[3])}, "
                f"{o[4]})")
    if c == "fork_vma":
        need |= {"maps", "fork"}
        return f"sys_fork_vma({o[0]}, {o[1]})"
    if c in ("store", "load"):
        need |= {"maps", "access", "signal"}
        return f"sys_access({o[0]}, {value(o[1])}, {1 if c == 'store' else 0})"
    if c == "mem_write":
        need |= {"maps", "memwrite"}
        return f"sys_mem_write({o[0]}, {value(o[1])})"
    if c == "vm_write":
        need |= {"maps", "vmwrite"}
        return f"sys_vm_write({o[0]}, {value(o[1])})"
    if c == "splice_write":
        need.add("splice")
        return f"sys_splice_write(FD({o[0]}), {value(o[1])}, {value(o[2])})"
    if c == "pin":
        need |= {"maps", "pins", "pin"}
        return f"sys_pin({o[0]}, {value(o[1])}, {o[2]})"
    if c == "gup_pin":
        need |= {"maps", "pins", "uring"}
        return f"sys_gup_pin({o[0]}, {value(o[1])}, {o[2]})"
    if c == "udmabuf":
        need |= {"maps", "pins", "udmabuf"}
        return f"sys_udmabuf(FD({o[0]}), {value(o[1])}ULL, {value(o[2])}ULL, {o[3]})"
    if c == "unpin":
        need |= {"pins", "unpin"}
        return f"sys_unpin({o[0]})"
    if c == "dma_write":
        need |= {"pins", "uring"}
        return f"sys_dma_write({o[0]})"
    if c in ("io_uring_write", "io_uring_read", "io_uring_fallocate"):
        need |= {"maps", "pins", "uring", "uringop"}  # the ring helpers live with pins
        if c == "io_uring_fallocate":
            return (f"sys_uring_op(17, {o[0]}, {value(o[2])}, {value(o[3])}ULL, "
                    f"{_c_flags(o[1])})")
        if c == "io_uring_read":
            need.add("buffer")
            count = value(o[1])
            return (f"sys_uring_op(22, {o[0]}, {value(o[2])}, (uintptr_t)buffer({count}), "
                    f"{count})")
        need.add("payload")
        data, count = str(o[1]), value(o[2])
        return (f"sys_uring_op(23, {o[0]}, {value(o[3])}, (uintptr_t)payload("
                f"{_c_string(data)}, {len(data)}, {count}), {count})")
    if c == "open":
        if o[0] is not None:
            need.add("open")
            return f"sys_reopen({o[0]}, {_c_flags(o[2])})"
        if is_kvm_open(op):
            need.add("kvm")
            return f"sys_open_kvm({_c_flags(o[2])}, NEEDS_GUEST_MEMFD)"
        return f"res_of(open({_c_string(str(o[1]))}, {_c_flags(o[2])}, {_c_flags(o[3])}))"
    if c == "ioctl":
        return _c_ioctl(op, need)
    if c in ("read", "pread64") and value(o[1]) >= 1 << 63:
        # a size_t count past SSIZE_MAX: libc's read() is declared with an object size gcc
        # checks, so the raw system call takes it (unsigned, as C must be told)
        need.add("buffer")
        big = f"{value(o[1])}ULL"
        pos = f", {value(o[2])}" if c == "pread64" else ""
        return f"res_of(syscall(SYS_{c}, FD({o[0]}), buffer({big}), {big}{pos}))"
    if c == "read":
        need.add("buffer")
        return f"res_of(read(FD({o[0]}), buffer({value(o[1])}), {value(o[1])}))"
    if c == "pread64":
        need.add("buffer")
        count = value(o[1])
        return f"res_of(pread(FD({o[0]}), buffer({count}), {count}, {value(o[2])}))"
    if c == "write":
        need.add("payload")
        data = str(o[1])
        count = value(o[2])
        return (f"res_of(write(FD({o[0]}), payload({_c_string(data)}, {len(data)}, {count}), "
                f"{count}))")
    if c in ("pwritev2", "preadv2", "pwritev", "preadv", "writev", "readv"):
        need.add("iov")
        iov = o[1] or (("", 0),)  # C has no empty array: one unused entry
        units = ", ".join(_c_string(u) for u, _ in iov)
        unit_lens = ", ".join(str(len(u)) for u, _ in iov)
        lens = ", ".join(str(n) for _, n in iov)
        # pwritev[2]/preadv[2]: pos_l (all of pos on x86_64), pos_h 0[, flags]
        pos = ("" if c in ("writev", "readv") else f", (long){value(o[3])}, 0L"
               + (f", {_c_flags(o[4])}" if len(o) > 4 else ""))
        return (f"res_of(syscall(SYS_{c}, FD({o[0]}), iovecs({len(o[1])}, "
                f"(const char *[]){{{units}}}, (size_t[]){{{unit_lens}}}, (size_t[]){{{lens}}}, "
                f"{int('write' in c)}), {value(o[2])}{pos}))")
    if c in ("fstat", "newfstatat"):
        # the fields the trace shows are checked after the call (runtime: stat_shown())
        shown = o[1] if c == "fstat" else o[2]
        mode = f"0{shown['st_mode'] & 0o777:o}" if "st_mode" in shown else "-1"
        call = (f"fstat(FD({o[0]}), &stat_buf)" if c == "fstat" else
                f"fstatat(FD({o[0]}), {_c_string(str(o[1]))}, &stat_buf, {_c_flags(o[3])})")
        need.add("stat")
        return f"stat_shown({shown.get('st_size', -1)}, {mode}, res_of({call}))"
    if c == "lseek":
        return f"res_of(lseek(FD({o[0]}), {value(o[1])}, {_c_flags(o[2])}))"
    if c in ("file_setattr", "file_getattr"):  # struct file_attr (runtime: section fattr)
        need |= {"fields", "fattr"}
        head = (f"syscall(SYS_{c}, FD({o[0]}), "
                f"{'NULL' if o[1] is None else _c_string(str(o[1]))}, ")
        tail = f", {_c_plain(o[3])}, {_c_flags(o[4])})"
        if c == "file_setattr":  # fa_nextents, which a set does not read, as 0
            vals = ["0" if v is None else _c_field(f, v, b, need)
                    for (f, v), (_, b) in zip(o[2], FILE_ATTR_FIELDS, strict=True)]
            return f"res_of({head}in_fattr({', '.join(vals)}){tail})"
        shown = ", ".join("-1" if v is None else f"{int_arg(v, f):#x}" for f, v in o[2])
        return f"fattr_shown({shown}, res_of({head}out_fattr(){tail}))"
    if c in ("execveat", "execve"):  # in a child (runtime: sys_exec())
        need.add("exec")
        lists = [f"(long)(char *[]){{{''.join(_c_string(x) + ', ' for x in v)}NULL}}"
                 for v in o[2:4]]
        if c == "execveat":
            return (f"sys_exec(SYS_execveat, FD({o[0]}), (long){_c_string(str(o[1]))}, "
                    f"{', '.join(lists)}, {_c_flags(o[4])})")
        path = f"proc_fd({o[0]})" if o[0] is not None else _c_string(str(o[1]))
        return f"sys_exec(SYS_execve, (long){path}, {', '.join(lists)}, 0, 0)"
    if c == "dup":
        return f"res_of(dup(FD({o[0]})))"
    if c == "close":
        need.add("close")
        return f"sys_close({o[0]})"
    if SYSCALLS[c].plain:  # syscall(SYS_<name>, ...) from the registry entry alone
        args = [f"FD({v})" if p.kind == "fd" else f"NEWFD({v})" if p.kind == "newfd"
                else f"maps[{v}]" if p.kind == "map" else _c_string(str(v)) if p.kind == "path"
                else ("0" if v is None else _c_cell(_c_plain(v)))
                if p.kind == "ptr" else _c_plain(v)
                for p, v in plain_operands(op)]
        if any(p.kind == "map" for p in SYSCALLS[c].params):
            need.add("maps")
        return f"res_of(syscall(SYS_{c}, {', '.join(args)}))"
    raise ExportError(f"step {op.n}: no C for {c}")


_OBSERVABLE = ("size", "seals", "mode")  # what a system call reads back (fstat, F_GET_SEALS)


def _property_reads(design: Design, prop: str, action: str | None) -> set[str] | None:
    """The state fields property `prop` reads (for an action property: at `action`), or None
    if the catalogue does not know it."""
    from model.lang.expr import variables
    from properties.catalogue import load
    from properties.views import TransitionView

    p = load().get(prop)
    if p is None:
        return None
    if p.kind in ("always", "sometimes"):
        e = p.state_pred(design.schema)
    else:
        if action is None:
            return None
        a = design.action(action)
        e = p.pred(TransitionView(design.schema, a, a.semantics(design.schema)))
    vs = variables(e)
    return {n for sc, n in vs if sc in ("s", "n")} | ({"(effects)"} if any(
        sc == "x" for sc, _ in vs) else set())


def _file_fd(ops: Sequence[Op], upto: int) -> int | None:
    """A trace descriptor of the file open before op `upto` (0-based): made by memfd_create,
    dup, a /proc/self/fd reopen or KVM_CREATE_GUEST_MEMFD, and not closed since."""
    live: list[int] = []
    for op in ops[:upto]:
        if not isinstance(op.expect, Ret):
            continue
        if op.call == "close" and op.ops[0] in live:
            live.remove(op.ops[0])
        elif (op.call in ("memfd_create", "dup")
              or (op.call == "open" and (op.ops[0] is not None or names_shm(op)))
              or (op.call == "ioctl" and op.ops[2] == vocab.KVM_CREATE_GUEST_MEMFD)):
            live.append(op.expect.value)
    return live[0] if live else None


def _observe_last(design: Design, r: Replayed, ops: Sequence[Op], prop: str
                  ) -> tuple[dict[str, tuple[int, int, int, int]], str]:
    """What the reproducer of a violation/witness checks beyond the outcomes: the observable
    state (i_size, seals, mode) the property reads, before and after the last step, as the
    model has it; and the header's sentence saying so."""
    fields = design.schema.by_name
    reads = _property_reads(design, prop, r.actions[-1] if r.actions else None)
    if reads is None or r.states is None or not ops:
        return {}, "every outcome is as the trace says."
    scale = size_scale(design)
    look = [a for a in _OBSERVABLE if a in reads and a in fields
            and (a != "size" or scale is not None)]
    hidden = sorted(n for n in reads if n in fields and n not in _OBSERVABLE
                    and not fields[n].ghost)
    out: dict[str, tuple[int, int, int, int]] = {}
    for when, upto, st in (("before", len(ops) - 1, r.states[-2]),
                           ("after", len(ops), r.states[-1])):
        tfd = _file_fd(ops, upto)
        if tfd is None or not look or not st.get("exists", 1):
            continue
        size = st["size"] * scale(st) if "size" in look and scale else -1
        out[when] = (tfd, size, st["seals"] if "seals" in look else -1,
                     st["mode"] if "mode" in look else -1)
    names = {"size": "i_size (fstat)", "seals": "the seals (F_GET_SEALS)",
             "mode": "the mode (fstat)"}
    text = "every outcome is as the trace says"
    if out:
        text += (", and " + " and ".join(names[a] for a in look) + " "
                 + " and ".join(out) + " the last step match the model")
    if "(effects)" in reads:
        hidden.append("the call's effect on the file's data")
    if hidden:
        text += (f"; the property also reads {', '.join(hidden)}, {UNREAD}, so exit 0 does "
                 "not show that part")
    return out, text + "."


#: the header's words for state a property reads that the reproducer cannot read back
UNREAD = "which no system call reads back here"


def _section(name: str) -> str:
    """A section of runtime/repro.c."""
    return runtime_sections("repro.c", "//@ section")[name]


def _fill(text: str, placeholder: str, value: str) -> str:
    """`text` with its line `/* @PLACEHOLDER@ */` replaced by `value`."""
    line = f"/* @{placeholder}@ */\n"
    if text.count(line) != 1:
        raise RuntimeError(f"runtime/repro.c: no single {line.strip()} line")
    return text.replace(line, value)


def kvm_constants(needs_gmem: str) -> str:
    """The @KVM_CONSTANTS@ fill: the KVM numbers, the guest_memfd flags known, and
    NEEDS_GUEST_MEMFD defined as `needs_gmem` (a C expression)."""
    kvm_names = ["KVM_CHECK_EXTENSION", "KVM_CAP_GUEST_MEMFD", "KVM_CAP_GUEST_MEMFD_FLAGS",
                 "KVM_CREATE_GUEST_MEMFD", "KVM_SET_USER_MEMORY_REGION2"]
    known = vocab.GUEST_MEMFD_FLAG_MMAP | vocab.GUEST_MEMFD_FLAG_INIT_SHARED
    return (_c_constants(kvm_names) + f"#define GMEM_KNOWN_FLAGS {known:#x}ULL\n"
            + f"#define NEEDS_GUEST_MEMFD {needs_gmem}\n")


#: what traces/guest.py's batch program reuses: a step's call, a runtime section, the constant
#: definitions and the placeholder filling, so that a step is lowered to C in one place only
c_call = _c_call
c_constants = _c_constants
runtime_section = _section
fill = _fill

#: the runtime sections a step may need, in the order they are emitted (after "base")
RUNTIME_SECTIONS = ("signal", "create", "payload", "iov", "stat", "fields", "fsx", "fattr",
                    "exec", "buffer", "kvm", "open", "close", "maps", "fork", "munmap", "mremap",
                    "access", "memwrite", "vmwrite", "splice", "pins", "udmabuf", "pin", "uring",
                    "uringop", "unpin", "noexec", "shm")


def export_c(design: Design, r: Replayed) -> str:
    """A kselftest-style C reproducer (gcc -Wall -Werror, libc and raw system calls only)."""
    trace = r.trace
    ops = lower(r)
    need: set[str] = set()
    body: list[str] = []
    kind, pname = expect_of(trace)
    checks, claim = _observe_last(design, r, ops, pname) if kind in (
        "violates", "witnesses") else ({}, "")
    held: list[str] = []  # held_step()'s cases: the steps a fork's child runs
    for op in ops:
        call = _c_call(op, need)
        if op.holder:
            held.append(f"\tcase {op.n}:\n\t\treturn {call};")
            call = f"in_child({op.holder}, {op.n})"
        body.append(f"\t/* {_c_comment(op.text)} */")
        body.append(f"\tcur_step = {op.n};")
        for when, (tfd, size, seals, mode) in checks.items() if op is ops[-1] else ():
            w = f"{{ {tfd}, {size}, {seals}, {mode} }}"
            body.append(f"\tcheck_before((struct observe){w});" if when == "before" else
                        f"\twant_after = (struct observe){w};")
        body.append("\t" + _c_expect(op, call))
    names = list(dict.fromkeys(["MFD_HUGETLB", *(n for op in ops for n in op.names)]))
    want_noexec = noexec_want(design, r)
    hugetlb = uses_hugetlb(ops)
    if want_noexec is not None or any(op.call == "memfd_create" for op in ops):
        need.add("noexec")
    if uses_shm(ops):
        need.add("shm")

    title = _c_comment(trace.title or "a shmemcheck trace")
    head = ["// SPDX-License-Identifier: GPL-2.0", "/*"]
    head += [" * " + x if x else " *" for x in textwrap.wrap(title, 72)]
    head += [" *", f" * Generated by shmemcheck (export --to c) from "
             f"{_c_comment(trace.path or 'a trace')};",
             f" * design {design.name}, expect {_c_comment(trace.expect)}."]
    if kind in ("violates", "witnesses"):
        what = "shows the violation of" if kind == "violates" else "witnesses"
        head += [" * " + x for x in textwrap.wrap(
            f"Exit 0 means this kernel {what} {_c_comment(pname)}"
            f"{' as far as system calls show it' if UNREAD in claim else ''}: {claim}", 72)]
    if want_noexec is not None:
        head += [f" * Runs with vm.memfd_noexec = {want_noexec} (in a new pid namespace if "
                 "needed)."]
    head += [" *",
             " * Each step is one system call whose outcome is checked against the",
             " * trace. Exit status: 0 (KSFT_PASS) the kernel behaves as the trace",
             " * says, 1 (KSFT_FAIL) it does not, 4 (KSFT_SKIP) something this machine",
             " * lacks (huge pages, io_uring, pid namespaces, /dev/kvm) is needed.",
             " *",
             " * Build: gcc -Wall -Werror -o repro repro.c",
             " */"]
    errno_cases = "".join(f"\tcase {e}: return \"{e}\";\n" for e in vocab.ERRNO)
    texts = ",\n".join("\t" + _c_string(op.text) for op in ops)
    parts = ["\n".join(head), "\n", _section("head"), "\n", _c_constants(names),
             f"\n#define NSTEPS {len(ops)}\n#define USES_HUGETLB {int(hugetlb)}\n",
             "\n/* the steps as the trace prints them (step_text[1] is step 1) */\n",
             f"static const char *const step_text[NSTEPS + 1] = {{\n\tNULL,\n{texts}\n}};\n",
             _fill(_section("base"), "ERRNO_CASES", errno_cases), _section("newfd")]
    for name in RUNTIME_SECTIONS:
        if name not in need:
            continue
        text = _section(name)
        if name == "kvm":
            text = _fill(text, "KVM_CONSTANTS", kvm_constants(str(int(uses_gmem(ops)))))
        elif name == "unpin":
            release = ("\tif (pn->ring > 0) {\n\t\tring_release(pn);\n\t\treturn r;\n\t}\n"
                       if "uring" in need else "")
            text = _fill(text, "RING_RELEASE", release)
        parts.append(text)
    if "fork" in need:
        parts.append("\n/* the steps a fork's child runs (sys_fork_vma()), by number */\n"
                     "static struct res held_steps(int n)\n{\n\tswitch (n) {\n"
                     + "\n".join(held) + "\n\t}\n\treturn res_of(-1);\n}\n")
    main = ["", "int main(void)", "{", "\tint i;", "",
            "\tfor (i = 0; i < MAX_FDS; i++)", "\t\tfds[i] = i < 3 ? i : -1;"]
    if "fork" in need:
        main.append("\theld_step = held_steps;")
    main += ["\tsetvbuf(stdout, NULL, _IOLBF, 0);", '\tprintf("TAP version 13\\n");',
             '\tprintf("1..%d\\n", NSTEPS);']
    if "noexec" in need:
        main += ["\tcur_step = 1;", f"\tsetup_noexec({want_noexec or 0});"]
    if "shm" in need:
        main += ["\tcur_step = 1;", "\tsetup_shm();"]
    main += ["", *body, "", "\tfinish(KSFT_PASS, \"\");", "\treturn KSFT_PASS;", "}"]
    return "".join(parts) + "\n".join(main) + "\n"
