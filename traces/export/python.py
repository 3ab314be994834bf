"""``python``: the reproducer as a standalone Python script (stdlib + ctypes, x86_64 system
call numbers), the same steps and checks as the C one. Its runtime is runtime/runtime.py,
shipped as package data."""

from __future__ import annotations

import re

from model import vocab
from model.lang.design import Design
from traces.export.common import OWN_CALLS, ExportError, ascii_text, runtime_sections
from traces.export.lower import (
    Op,
    const_value,
    expect_check,
    fd_arg,
    handle_arg,
    is_kvm_open,
    lower,
    map_at,
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
    KVM_IOCTLS,
    OUT_IOCTLS,
    OUT_STRUCTS,
    SCRATCH_BYTES,
    SCRATCH_IOCTLS,
    SYSCALLS,
)
from traces.trace import Arg, Int, Lst, Ref, Sym


def _runtime(section: str) -> str:
    """A section of runtime/runtime.py."""
    return runtime_sections("runtime.py", "# @section")[section]


def _py_kvm_runtime() -> str:
    """The "kvm" section with model.vocab's ioctl numbers, capabilities and known flags."""
    values = {"KVM_CHECK_EXTENSION_NR": vocab.KVM_CHECK_EXTENSION,
              "KVM_CAP_GUEST_MEMFD_NR": vocab.KVM_CAP_GUEST_MEMFD,
              "KVM_CAP_GUEST_MEMFD_FLAGS_NR": vocab.KVM_CAP_GUEST_MEMFD_FLAGS,
              "KVM_CREATE_GUEST_MEMFD_NR": vocab.KVM_CREATE_GUEST_MEMFD,
              "KVM_SET_USER_MEMORY_REGION2_NR": vocab.KVM_SET_USER_MEMORY_REGION2,
              "GMEM_KNOWN_FLAGS": vocab.GUEST_MEMFD_FLAG_MMAP | vocab.GUEST_MEMFD_FLAG_INIT_SHARED}
    out = _runtime("kvm")
    for k, v in values.items():
        out, n = re.subn(rf"^{k} = .*$", f"{k} = {v:#x}", out, flags=re.MULTILINE)
        if n != 1:
            raise RuntimeError(f"runtime/runtime.py: no single line {k} = ...")
    return out


def _py_field(f: str, v: Arg) -> str:
    """A struct field's value as a Python expression."""
    if f in FD_FIELDS:
        return f"FD({fd_arg(v, f)})"
    if isinstance(v, Ref):
        return f"maps[{handle_arg(v, 'm', f)}]"
    return _py_value(v)


def _py_value(arg: object) -> str:
    if isinstance(arg, Sym):
        return " | ".join(arg.text.split("|"))
    if isinstance(arg, Int):
        return str(arg.value)
    raise ExportError(f"expected a number or flags, got {arg!r}")


#: the registry calls rendered here with code of their own (common.OWN_CALLS, the same in
#: every exporter); every other plain call is rendered from its entry
OWN = OWN_CALLS


def _py_call(op: Op) -> str:
    c, o = op.call, op.ops
    if c == "memfd_create":
        name = "None" if o[0] is None else repr(str(o[0]).encode("latin-1", "replace"))
        return f"sys_memfd_create({name}, {_py_value(o[1])})"
    if c == "fcntl":
        return f'sysc("fcntl", FD({o[0]}), {_py_value(o[1])}, {_py_value(o[2])})'
    if c == "pwrite64":
        return (f"sys_pwrite64({o[0]}, {str(o[1]).encode('latin-1', 'replace')!r}, "
                f"{value(o[2])}, {value(o[3])})")
    if c in ("ftruncate", "fchmod"):
        return f'sysc("{c}", FD({o[0]}), {_py_value(o[1])})'
    if c == "fallocate":
        return f'sysc("fallocate", FD({o[0]}), {_py_value(o[1])}, {value(o[2])}, {value(o[3])})'
    if c == "mmap":
        return (f"sys_mmap({o[0]}, {value(o[1])}, {_py_value(o[2])}, {_py_value(o[3])}, "
                f"{o[4]}, {value(o[5])})")
    if c == "mprotect":
        m, plus = map_at(o[0], c)
        addr = f"maps[{m}] + {plus}" if plus else f"maps[{m}]"
        return f'sysc("mprotect", {addr}, {value(o[1])}, {_py_value(o[2])})'
    if c == "munmap":
        m, plus = map_at(o[0], c)
        return f"sys_munmap({m}, {plus}, {value(o[1])})"
    if c == "mremap":
        return (f"sys_mremap({o[0]}, {value(o[1])}, {value(o[2])}, {_py_value(o[3])}, "
                f"{o[4]})")
    if c == "fork_vma":
        return f"sys_fork_vma({o[0]}, {o[1]})"
    if c in ("store", "load"):
        return f"sys_access({o[0]}, {value(o[1])}, {c == 'store'})"
    if c == "mem_write":
        return f"sys_mem_write({o[0]}, {value(o[1])})"
    if c == "vm_write":
        return f"sys_vm_write({o[0]}, {value(o[1])})"
    if c == "splice_write":
        return f"sys_splice_write({o[0]}, {value(o[1])}, {value(o[2])})"
    if c == "pin":
        return f"sys_pin({o[0]}, {value(o[1])}, {o[2]})"
    if c == "gup_pin":
        return f"sys_gup_pin({o[0]}, {value(o[1])}, {o[2]})"
    if c == "udmabuf":
        return f"sys_udmabuf({o[0]}, {value(o[1])}, {value(o[2])}, {o[3]})"
    if c == "unpin":
        return f"sys_unpin({o[0]})"
    if c == "dma_write":
        return f"sys_dma_write({o[0]})"
    if c == "io_uring_write":
        return (f"sys_uring_op({c!r}, {o[0]}, {value(o[3])}, "
                f"{str(o[1]).encode('latin-1', 'replace')!r}, {value(o[2])})")
    if c == "io_uring_read":
        return f"sys_uring_op({c!r}, {o[0]}, {value(o[2])}, b'', {value(o[1])})"
    if c == "io_uring_fallocate":
        return (f"sys_uring_op({c!r}, {o[0]}, {value(o[2])}, b'', {value(o[3])}, "
                f"{_py_value(o[1])})")
    if c == "open":
        if o[0] is not None:
            return f"sys_reopen({o[0]}, {_py_value(o[2])})"
        if is_kvm_open(op):
            return f"sys_open_kvm({_py_value(o[2])}, NEEDS_GUEST_MEMFD)"
        return (f"sys_open({str(o[1]).encode('latin-1', 'replace')!r}, {_py_value(o[2])}, "
                f"{_py_value(o[3])})")
    if c == "dup":
        return f'sysc("dup", FD({o[0]}))'
    if c == "close":
        return f"sys_close({o[0]})"
    if c == "ioctl":
        fd, req, code, arg = o
        if code == vocab.KVM_CREATE_GUEST_MEMFD:
            return f"sys_create_guest_memfd(FD({fd}), " \
                f"{', '.join(_py_field(f, v) for f, v in arg)})"
        if code == vocab.KVM_SET_USER_MEMORY_REGION2:
            return f"sys_set_memory_region2(FD({fd}), " \
                f"{', '.join(_py_field(f, v) for f, v in arg)})"
        if code == vocab.FS_IOC_FSSETXATTR:  # struct fsxattr: five __u32, 8 bytes of padding
            return f'sysc("ioctl", FD({fd}), {_py_value(req)}, ' \
                f'U32S({", ".join(_py_field(f, v) for f, v in arg)}, 0, 0))'
        if code in OUT_STRUCTS:  # the kernel fills struct fsxattr; checked after the call
            return f"sys_fsx({fd}, {_py_value(req)}, {tuple(v for _, v in arg)!r})"
        if code in OUT_IOCTLS:  # the kernel fills the cell; checked after the call
            shown = _py_value(arg.items[0]) if isinstance(arg, Lst) else "None"
            return f"sys_cell({fd}, {_py_value(req)}, {shown})"
        if isinstance(arg, Lst):  # a pointer to a number (PTR_IOCTLS: chattr's flags)
            return f'sysc("ioctl", FD({fd}), {_py_value(req)}, PTR({_py_value(arg.items[0])}))'
        if code in SCRATCH_IOCTLS:  # a zeroed buffer the call may fill (a terminal's struct)
            return f'sysc("ioctl", FD({fd}), {_py_value(req)}, ' \
                f'ctypes.create_string_buffer({SCRATCH_BYTES}))'
        return f'sysc("ioctl", FD({fd}), {_py_value(req)}, {_py_value(arg)})'
    if c == "read":
        return f"sys_read({o[0]}, {value(o[1])})"
    if c == "pread64":
        return f"sys_pread64({o[0]}, {value(o[1])}, {value(o[2])})"
    if c == "write":
        return f"sys_write({o[0]}, {str(o[1]).encode('latin-1', 'replace')!r}, {value(o[2])})"
    if c in ("pwritev2", "preadv2", "pwritev", "preadv", "writev", "readv"):
        iov = [(u.encode("latin-1", "replace"), n) for u, n in o[1]]
        pos = "" if c in ("writev", "readv") else f", {value(o[3])}"
        flags = f", {_py_value(o[4])}" if len(o) > 4 else ""
        return f"sys_iov({c!r}, {o[0]}, {iov!r}, {value(o[2])}{pos}{flags})"
    if c == "fstat":
        return f'sys_stat("fstat", {o[0]}, {o[1]!r})'
    if c == "newfstatat":
        return (f'sys_stat("newfstatat", {o[0]}, {o[2]!r}, '
                f'{str(o[1]).encode("latin-1", "replace")!r}, {_py_value(o[3])})')
    if c == "lseek":
        return f'sysc("lseek", FD({o[0]}), {value(o[1])}, {_py_value(o[2])})'
    if c in ("file_setattr", "file_getattr"):  # struct file_attr (runtime: sys_fattr())
        path = "None" if o[1] is None else repr(str(o[1]).encode("latin-1", "replace"))
        vals = ", ".join("None" if v is None else _py_value(v) for _, v in o[2])
        return (f'sys_fattr("{c}", {o[0]}, {path}, ({vals},), {value(o[3])}, '
                f'{_py_value(o[4])})')
    if c in ("execveat", "execve"):  # in a child (runtime: sys_exec())
        lists = [repr([x.encode("latin-1", "replace") for x in v]) for v in o[2:4]]
        if c == "execveat":
            return (f'sys_exec("execveat", FD({o[0]}), '
                    f'{str(o[1]).encode("latin-1", "replace")!r}, {", ".join(lists)}, '
                    f'{_py_value(o[4])})')
        path = f"proc_fd({o[0]})" if o[0] is not None else \
            repr(str(o[1]).encode("latin-1", "replace"))
        return f'sys_exec("execve", {path}, {", ".join(lists)})'
    if SYSCALLS[c].plain:  # sysc(name, ...) from the registry entry alone
        args = [f"FD({v})" if p.kind == "fd" else f"NEWFD({v})" if p.kind == "newfd"
                else f"maps[{v}]" if p.kind == "map"
                else repr(str(v).encode("latin-1", "replace")) if p.kind == "path"
                else ("0" if v is None else f"PTR({_py_value(v)})") if p.kind == "ptr"
                else _py_value(v)
                for p, v in plain_operands(op)]
        return f'sysc("{c}", {", ".join(args)})'
    raise ExportError(f"step {op.n}: no Python for {c}")


def _py_expect(op: Op, call: str) -> str:
    return expect_check(op, call, lambda name: f'"{name}"')


def export_python(design: Design, r: Replayed) -> str:
    """The reproducer as a standalone Python script (stdlib + ctypes, x86_64)."""
    trace = r.trace
    ops = lower(r)
    want_noexec = noexec_want(design, r)
    names = list(dict.fromkeys(n for op in ops for n in op.names))
    doc = [f"{ascii_text(trace.title or 'a shmemcheck trace')}", "",
           "Generated by shmemcheck (export --to python) from "
           f"{ascii_text(trace.path or 'a trace')};",
           f"design {design.name}, expect {ascii_text(trace.expect)}.", "",
           "Each step is one system call whose outcome is checked against the trace.",
           "Exit status: 0 (KSFT_PASS) the kernel behaves as the trace says, 1 (KSFT_FAIL)",
           "it does not, 4 (KSFT_SKIP) something this machine lacks is needed."]
    out = ["#!/usr/bin/env python3", "# SPDX-License-Identifier: GPL-2.0",
           '"""' + "\n".join(doc).replace("\\", "\\\\").replace('"""', "'''") + '\n"""',
           _runtime("base")]
    for c in dict.fromkeys(op.call for op in ops if op.call not in OWN):
        out.append(f'NR["{c}"] = {SYSCALLS[c].nr}  # x86_64, traces/syscalls.py')
    if any((op.call == "ioctl" and op.ops[2] in KVM_IOCTLS) or is_kvm_open(op) for op in ops):
        out.append(_py_kvm_runtime())
    out.append(f"USES_HUGETLB = {uses_hugetlb(ops)}")
    out.append(f"NEEDS_GUEST_MEMFD = {uses_gmem(ops)}")
    out.append(f"MFD_HUGETLB_BIT = {vocab.MFD_HUGETLB:#x}")
    out.append("ERRNO = {" + ", ".join(f'"{k}": {v}' for k, v in vocab.ERRNO.items()) + "}")
    out.append("ERRNO_NAME = {v: k for k, v in ERRNO.items()}")
    for n in names:
        out.append(f"{n} = {const_value(n):#x}")
    out.append("STEPS = [None,\n" + "".join(f"         {op.text!r},\n" for op in ops) + "]")
    out.append("")
    out.append("")
    main = ["def main():",
            '    if platform.machine() != "x86_64":',
            "        step(1)",
            '        skip(f"the system call numbers here are x86_64\'s, '
            'not {platform.machine()}\'s")',
            '    print("TAP version 13")',
            '    print(f"1..{len(STEPS) - 1}")']
    if want_noexec is not None or any(op.call == "memfd_create" for op in ops):
        main += ["    step(1)", f"    setup_noexec({want_noexec or 0})"]
    if uses_shm(ops):
        main += ["    step(1)", "    setup_shm()"]
    held = []  # the steps a fork's child runs (runtime: sys_fork_vma(), in_child())
    for op in ops:
        call = _py_call(op)
        if op.holder:
            held.append(f"HELD[{op.n}] = lambda: {call}")
            call = f"in_child({op.holder}, {op.n})"
        main.append(f"    # {ascii_text(op.text)}")
        main.append(f"    step({op.n})")
        main.append(f"    {_py_expect(op, call)}")
    out += [*held, *([""] * 2 * bool(held))]
    main += ['    finish(KSFT_PASS, "")', "", "", 'if __name__ == "__main__":', "    main()"]
    out += main
    return "\n".join(out) + "\n"

