"""traces/export/: every exporter on checker counterexamples, witnesses and hand-written
traces of both designs (memfd, guest_memfd) and on the scenario library; the mail-ready text's
limits; ITF round trips; C and Python reproducers built and run (the guest_memfd ones on
/dev/kvm)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from checker.explicit import Explorer
from checker.processes import flatten
from checker.replay import replay_for_export
from model import designs
from model.lang.design import Design
from properties.catalogue import for_design
from traces import export
from traces.concretize import run_to_trace
from traces.export import ExportError, trace_from_itf
from traces.kernel import capability, hugepages_reserved
from traces.textfmt import format_trace, load_trace, parse_trace
from traces.trace import Any_, Int, Ref, Struct, Sym, Trace


def _on_trace(fn: export.ExportFn) -> Callable[[Design, Trace], str]:
    """An exporter fed a trace: replayed on the model first, as the CLI does."""
    return lambda d, t: fn(d, replay_for_export(d, t))


EXPORTERS = {fmt: (ext, _on_trace(fn)) for fmt, (ext, fn) in export.EXPORTERS.items()}
export_c, export_itf = _on_trace(export.export_c), _on_trace(export.export_itf)

SCENARIOS = Path(__file__).resolve().parent.parent / "traces" / "scenarios"
GMEM_FILES = sorted(SCENARIOS.glob("gmem-*.trace"))
HEAD = "# shmemcheck trace 1: {title}\n# design: memfd\n# expect: {expect}\n"
GHEAD = "# shmemcheck trace 1: {title}\n# design: guest_memfd\n# expect: {expect}\n"
KVM = 'open("/dev/kvm", O_RDWR) = 3\nioctl(3, KVM_CREATE_VM, 0) = 4\n'
BIND = ("ioctl(4, KVM_SET_USER_MEMORY_REGION2, {{slot={slot}, flags=KVM_MEM_GUEST_MEMFD, "
        "guest_phys_addr={gpa}, memory_size={size}, userspace_addr={uaddr}, "
        "guest_memfd_offset={off}, guest_memfd={fd}}}) = {outcome}\n")

# Hand-written traces: `?` outcomes (filled by the model), a divergence from the model, pins
# of both kinds, and a name that needs wrapping and escaping.
HAND = {
    "busy": HEAD.format(title="the issue's example", expect="conforms") + """\
memfd_create("t", MFD_ALLOW_SEALING) = 3
ftruncate(3, 4096) = 0
mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1
fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = -1 EBUSY (Device or resource busy)
munmap(m1, 4096) = 0
fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0
pwrite64(3, "x"..., 4096, 0) = -1 EPERM (Operation not permitted)
""",
    "wrong": HEAD.format(title="a deliberately wrong expectation", expect="conforms") + """\
memfd_create("t", MFD_ALLOW_SEALING) = 3
ftruncate(3, 4096) = 0
fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0
pwrite64(3, "x"..., 4096, 0) = 4096
fcntl(3, F_GET_SEALS) = 0x8 (seals F_SEAL_WRITE)
""",
    "unknown": HEAD.format(title="outcomes left to the model", expect="conforms")
    + "# init: noexec_scope=1\n" + """\
memfd_create("t", MFD_ALLOW_SEALING) = ?
fcntl(3, F_GET_SEALS) = ?
fchmod(3, 0755) = ?
mmap(NULL, 4096, PROT_READ, MAP_SHARED, 3, 0) = ?
load(m1, 0) = ?
ftruncate(3, 4096) = ?
load(m1, 0) = ?
store(m1, 0) = ?
""",
    "pins": HEAD.format(title="a vmsplice pin and an io_uring pin that writes",
                        expect="witnesses sometimes-dma-write") + """\
memfd_create("t", MFD_ALLOW_SEALING) = 3
ftruncate(3, 4096) = 0
mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1
pin(m1) = p1
gup_pin(m1) = p2
munmap(m1, 4096) = 0
fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = -1 EBUSY (Device or resource busy)
unpin(p1) = 0
fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = -1 EBUSY (Device or resource busy)
dma_write(p2) = 0
unpin(p2) = 0
fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0
""",
    "names": HEAD.format(title="names: long, NULL, and odd bytes \"é\\\" */ ??=",
                         expect="conforms") + """\
memfd_create("%s", 0) = -1 EINVAL (Invalid argument)
memfd_create(NULL, 0) = -1 EFAULT (Bad address)
memfd_create("t\\\\\\"??=*/", MFD_CLOEXEC) = 3
dup(3) = 4
open("/proc/self/fd/4", O_RDONLY) = 5
close(4) = 0
fcntl(5, F_ADD_SEALS, F_SEAL_SEAL) = -1 EPERM (Operation not permitted)
open("/proc/self/fd/5", O_RDWR|O_TRUNC) = 4
fallocate(4, FALLOC_FL_KEEP_SIZE, 0, 4096) = 0
""" % ("n" * 250),
}

# Hand-written guest_memfd traces: outcomes left to the model, a wrong expectation, and calls
# the model does not have (a mapping as a slot's userspace_addr, KVM_CHECK_EXTENSION, an
# out-of-range slot number, read(fd, count) without strace's buffer).
HAND_GMEM = {
    "gmem-unknown": GHEAD.format(title="guest_memfd outcomes left to the model",
                                 expect="conforms") + KVM + """\
ioctl(4, KVM_CREATE_GUEST_MEMFD, {size=8192, flags=GUEST_MEMFD_FLAG_MMAP}) = ?
""" + BIND.format(slot=0, gpa=0, size=8192, uaddr=0, off=0, fd=5, outcome="?") + """\
mmap(NULL, 16384, PROT_READ|PROT_WRITE, MAP_SHARED, 5, 0) = ?
load(m1, 0) = ?
fallocate(5, FALLOC_FL_KEEP_SIZE, 8192, 4096) = ?
lseek(5, 0, SEEK_SET) = ?
""",
    "gmem-wrong": GHEAD.format(title="a deliberately wrong guest_memfd expectation",
                               expect="conforms") + KVM + """\
ioctl(4, KVM_CREATE_GUEST_MEMFD, {size=4096, flags=0}) = 5
""" + BIND.format(slot=0, gpa=0, size=8192, uaddr=0, off=0, fd=5, outcome="0") + """\
close(5) = 0
""",
    "gmem-outside": GHEAD.format(title="guest_memfd calls outside the model",
                                 expect="conforms") + KVM + """\
ioctl(3, KVM_CHECK_EXTENSION, 234) = 1
ioctl(4, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS) = 3
""" + "ioctl(4, KVM_CREATE_GUEST_MEMFD, {flags=GUEST_MEMFD_FLAG_MMAP|GUEST_MEMFD_FLAG_INIT_SHARED, "
    "size=8192}) = 5\n" + """\
mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_SHARED, 5, 0) = m1
""" + BIND.format(slot="0x100000000", gpa=0, size=4096, uaddr=0, off=0, fd=5, outcome="0")
    + BIND.format(slot=1, gpa="0x100000000", size=4096, uaddr="m1", off=4096, fd=5,
                  outcome="0") + """\
read(5, 4096) = -1 EINVAL (Invalid argument)
pread64(5, 4096, 0) = -1 ESPIPE (Illegal seek)
write(5, "ab", 2) = -1 EINVAL (Invalid argument)
""",
    "gmem-edges": GHEAD.format(title="struct fields that do not fit, fields left out",
                               expect="conforms") + KVM + """\
ioctl(4, KVM_CREATE_GUEST_MEMFD, {size=-4096, flags=0}) = @EINVAL@
ioctl(4, KVM_CREATE_GUEST_MEMFD, {size=0x10000000000000000, flags=0}) = @EINVAL@
ioctl(4, KVM_CREATE_GUEST_MEMFD, {size=4096, flags=0x8000000000000000}) = @EINVAL@
ioctl(4, KVM_CREATE_GUEST_MEMFD, {size=4096}) = 5
ioctl(4, KVM_SET_USER_MEMORY_REGION2, {slot=-1, flags=KVM_MEM_GUEST_MEMFD|0x100000000, \
memory_size=4096, guest_memfd=5}) = @EINVAL@
ioctl(4, KVM_SET_USER_MEMORY_REGION2, {slot=0, flags=KVM_MEM_GUEST_MEMFD|0x100000000, \
memory_size=4096, guest_memfd=5}) = 0
""".replace("@EINVAL@", "-1 EINVAL (Invalid argument)"),
}


_DESIGNS: dict[str, Design] = {}


def design_of(t: Trace) -> Design:
    """The design a trace names (memfd or guest_memfd), built once."""
    if t.design not in _DESIGNS:
        _DESIGNS[t.design] = designs.get(t.design)
    return _DESIGNS[t.design]


def found_by_check(d: Design) -> dict[str, Trace]:
    """Every counterexample and witness of `shmemcheck check --design D` (default scope)."""
    props = for_design(d)
    r = Explorer(d, d.scope({}), props).run()
    out = {}
    for name, o in r.props.items():
        if o.run is None:
            continue
        kind = "violates" if o.prop.kind in ("always", "action") else "witnesses"
        out[name] = run_to_trace(d, o.run, expect=f"{kind} {name}",
                                 title=f"{name} on {d.name}")
    return out


@pytest.fixture(scope="module")
def memfd() -> Design:
    return designs.get("memfd")


@pytest.fixture(scope="module")
def checker_traces(memfd: Design) -> dict[str, Trace]:
    out = found_by_check(memfd)
    assert "exec-seal-mode-fixed" in out and "grow-seal-size-monotone" in out
    return out


@pytest.fixture(scope="module")
def gmem_checker_traces() -> dict[str, Trace]:
    out = found_by_check(designs.get("guest_memfd"))
    assert "sometimes-gmem-slot-bound" in out and "sometimes-gmem-other-vm-refused" in out
    return out


@pytest.fixture(scope="module")
def all_traces(checker_traces: dict[str, Trace],
               gmem_checker_traces: dict[str, Trace]) -> dict[str, Trace]:
    out = {f"check:{k}": v for k, v in checker_traces.items()}
    out.update({f"check:{k}": v for k, v in gmem_checker_traces.items()})
    out.update({f"hand:{k}": parse_trace(v) for k, v in {**HAND, **HAND_GMEM}.items()})
    # a scenario naming processes as its flat trace: the steps the exporters print
    out.update({f"scenario:{p.stem}": flatten(design_of(t), t)
                for p in sorted(SCENARIOS.glob("*.trace")) for t in [load_trace(str(p))]})
    assert {t.design for t in out.values()} == {"memfd", "guest_memfd"}
    return out


def test_exporters_table() -> None:
    assert set(EXPORTERS) == {"text", "itf", "dot", "mermaid", "c", "python", "syz"}
    for ext, fn in EXPORTERS.values():
        assert ext and not ext.startswith(".") and callable(fn)


def test_every_exporter_on_every_trace(all_traces: dict[str, Trace]) -> None:
    for name, t in all_traces.items():
        for fmt, (_, fn) in EXPORTERS.items():
            text = fn(design_of(t), t)
            assert isinstance(text, str) and text.endswith("\n"), (name, fmt)
            assert "?" not in text.splitlines()[-1] or fmt in ("text", "itf"), (name, fmt)


def test_a_trace_outside_its_design_still_exports(memfd: Design) -> None:
    """A guest_memfd trace given the memfd design: no model states, every format still."""
    t = load_trace(str(SCENARIOS / "gmem-guest.trace"))
    for fmt, (_, fn) in EXPORTERS.items():
        assert fn(memfd, t).endswith("\n"), fmt
    assert "g0_size" not in EXPORTERS["text"][1](memfd, t)


def test_text_is_mail_ready(all_traces: dict[str, Trace]) -> None:
    fn = EXPORTERS["text"][1]
    for name, t in all_traces.items():
        text = fn(design_of(t), t)
        for line in text.splitlines():
            assert len(line) <= 72, (name, line)
            assert line.isascii() and line == line.rstrip(), (name, line)
        assert text.rstrip().splitlines()[-1] != ""
        assert t.expect in text


def test_text_content(memfd: Design, checker_traces: dict[str, Trace]) -> None:
    text = EXPORTERS["text"][1](memfd, checker_traces["exec-seal-mode-fixed"])
    lines = text.splitlines()
    i = next(k for k, x in enumerate(lines) if x.startswith("2. fchmod(3, 0755) = 0"))
    assert lines[i + 1].strip() == "mode=0o755"  # only the field that changed
    assert "violates exec-seal-mode-fixed" in lines
    assert any(x.startswith("exec-seal-mode-fixed: With F_SEAL_EXEC") for x in lines)
    assert any("hugetlbfs_setattr()" in x for x in lines)  # the rationale, wrapped
    # `?` outcomes are the model's, and a divergence from the model is pointed out
    unk = EXPORTERS["text"][1](memfd, parse_trace(HAND["unknown"]))
    assert "= 3" in unk and "= -1 EPERM" in unk and "= SIGBUS" in unk and "= ?" not in unk
    assert "initial state: noexec_scope=1" in unk
    long = EXPORTERS["text"][1](memfd, parse_trace(HAND["names"]))
    assert "    nnnn" in long  # a wrapped step continues four columns further in
    wrong = EXPORTERS["text"][1](memfd, parse_trace(HAND["wrong"]))
    assert "(the model says -1 EPERM)" in wrong


def test_text_of_guest_memfd() -> None:
    """Struct arguments wrap at their commas; the changed gmem fields are shown; `?` filled."""
    t = load_trace(str(SCENARIOS / "gmem-guest.trace"))
    lines = EXPORTERS["text"][1](design_of(t), t).splitlines()
    i = next(k for k, x in enumerate(lines) if x.startswith(" 7. ioctl(4, KVM_SET_USER_"))
    assert lines[i + 1].startswith("        flags=KVM_MEM_GUEST_MEMFD,"), lines[i + 1]
    assert lines[i + 3].rstrip().endswith("guest_memfd=5}) = 0"), lines[i:i + 4]
    assert lines[i + 4].strip() == "slot1=g0, slot1_gpa=1048576, slot1_len=1"
    assert any(x.strip() == "g0_maps=1" for x in lines)
    unk = parse_trace(HAND_GMEM["gmem-unknown"])
    text = EXPORTERS["text"][1](design_of(unk), unk)
    assert "= ?" not in text and "= m1" in text and "= SIGBUS" in text
    assert "lseek(5, 0, SEEK_SET) = -1 ESPIPE (Illegal seek)" in text
    wrong = parse_trace(HAND_GMEM["gmem-wrong"])
    assert "(the model says -1 EINVAL)" in EXPORTERS["text"][1](design_of(wrong), wrong)


#: a state field of each design, of each ITF kind: (bigint, bool, enum)
ITF_FIELDS = {"memfd": ("size", "exists", None), "guest_memfd": ("g0_size", "slot0_ro", "slot0")}
#: calls outside the model: no model states
OUTSIDE = ("hand:gmem-outside", "hand:gmem-edges")  # hand:names is judged since issue 14


def test_itf_round_trip(all_traces: dict[str, Trace]) -> None:
    for name, t in all_traces.items():
        t.path = None
        d = design_of(t)
        doc = json.loads(export_itf(d, t))
        assert doc["#meta"]["format"] == "ITF"
        assert doc["#meta"]["shmemcheck"]["design"] == t.design
        assert len(doc["states"]) == len(t.steps) + 1
        assert [s["#meta"]["index"] for s in doc["states"]] == list(range(len(t.steps) + 1))
        st = doc["states"][-1]
        assert set(doc["vars"]) <= set(st), name
        if name not in OUTSIDE:
            big, flag, enum = ITF_FIELDS[t.design]
            assert st[big] == {"#bigint": st[big]["#bigint"]}, name
            assert isinstance(st[flag], bool), name
            assert enum is None or st[enum] in ("none", "g0", "g1", "closed"), name
        else:
            assert doc["vars"] == ["mbt::actionTaken", "step", "outcome"]
        back = trace_from_itf(export_itf(d, t))
        assert back.design == t.design
        if any(isinstance(s.outcome, Any_) for s in t.steps):
            assert [s.call for s in back.steps] == [s.call for s in t.steps]
            assert [s.args for s in back.steps] == [s.args for s in t.steps]
            assert not any(isinstance(s.outcome, Any_) for s in back.steps)
            assert trace_from_itf(export_itf(d, back)) == back
        else:
            assert back == t, name
        assert parse_trace(format_trace(back)) == back


def test_itf_keeps_struct_arguments() -> None:
    """A struct argument comes back field by field, as written (names, hex, field order)."""
    t = parse_trace(HAND_GMEM["gmem-outside"])
    back = trace_from_itf(export_itf(design_of(t), t))
    create = back.steps[4]
    assert create.call == "ioctl" and isinstance(create.args[2], Struct)
    assert create.args[2].fields == (
        ("flags", Sym("GUEST_MEMFD_FLAG_MMAP|GUEST_MEMFD_FLAG_INIT_SHARED")),
        ("size", Int(8192)))
    region = back.steps[7].args[2]
    assert isinstance(region, Struct)
    bind = dict(region.fields)
    assert bind["userspace_addr"] == Ref("m1") and bind["guest_phys_addr"] == Int(
        0x100000000, "0x100000000")


def test_itf_rejects_garbage() -> None:
    for bad in ("", "[]", '{"states": 3}', '{"states": [{}, {"step": "nonsense"}]}'):
        with pytest.raises(ValueError):
            trace_from_itf(bad)


def test_pictures(all_traces: dict[str, Trace]) -> None:
    for name, t in all_traces.items():
        dot = EXPORTERS["dot"][1](design_of(t), t)
        assert dot.startswith("digraph trace {") and dot.rstrip().endswith("}")
        assert dot.count(" -> ") == len(t.steps), name
        mmd = EXPORTERS["mermaid"][1](design_of(t), t)
        assert "flowchart TD" in mmd and mmd.count(" -->|") == len(t.steps), name
        for line in mmd.splitlines():
            if "-->|" in line:  # the label is quoted, with no raw quote or pipe inside
                label = line.split('-->|"', 1)[1].rsplit('"|', 1)[0]
                assert '"' not in label and "|" not in label, line
                assert "{" not in label and "}" not in label, line


def test_pictures_of_guest_memfd() -> None:
    """Struct arguments are in the edge labels; the states show the gmem fields changed."""
    t = load_trace(str(SCENARIOS / "gmem-guest.trace"))
    dot = EXPORTERS["dot"][1](design_of(t), t)
    assert ('s6 -> s7 [label="7: ioctl(4, KVM_SET_USER_MEMORY_REGION2, {slot=1, '
            'flags=KVM_MEM_GUEST_MEMFD, guest_phys_addr=4294967296') in dot
    assert 's7 [label="s7\\nslot1=g0\\nslot1_gpa=1048576\\nslot1_len=1"];' in dot
    mmd = EXPORTERS["mermaid"][1](design_of(t), t)
    assert ('s2 -->|"3: ioctl(4, KVM_CREATE_GUEST_MEMFD, #123;size=4096, '
            'flags=GUEST_MEMFD_FLAG_MMAP#124;GUEST_MEMFD_FLAG_INIT_SHARED#125;) = 5"| s3') in mmd


def test_syz(memfd: Design, all_traces: dict[str, Trace]) -> None:
    syz = EXPORTERS["syz"][1](memfd, parse_trace(HAND["busy"]))
    lines = [x for x in syz.splitlines() if not x.startswith("#")]
    assert lines[0] == "r0 = memfd_create(&(0x7f0000000000)='t\\x00', 0x2)"
    assert "fcntl$addseals(r0, 0x409, 0x8)\t# EBUSY" in lines
    assert "fcntl$addseals(r0, 0x409, 0x8)" in lines
    assert any(x.startswith("mmap(&(0x7f0000200000/0x1000)=nil, 0x1000, 0x3, 0x1, r0, 0x0)")
               for x in lines)
    pins = EXPORTERS["syz"][1](memfd, parse_trace(HAND["pins"]))
    assert "vmsplice(r2," in pins and "io_uring_register$IORING_REGISTER_BUFFERS" in pins
    for t in all_traces.values():
        for line in EXPORTERS["syz"][1](design_of(t), t).splitlines():
            assert line.startswith("#") or "(" in line


def syz_calls(t: Trace) -> list[str]:
    return [x for x in EXPORTERS["syz"][1](design_of(t), t).splitlines()
            if not x.startswith("#")]


def test_syz_guest_memfd() -> None:
    """syzkaller's dev_kvm.txt names: openat$kvm -> fd_kvm, ioctl$KVM_CREATE_VM -> fd_kvmvm,
    ioctl$KVM_CREATE_GUEST_MEMFD -> fd_kvm_guest_memfd; structs field by field."""
    lines = syz_calls(load_trace(str(SCENARIOS / "gmem-bind-close.trace")))
    assert lines[:3] == [
        "r0 = openat$kvm(0xffffffffffffff9c, &(0x7f0000000000)='/dev/kvm\\x00', 0x2, 0x0)",
        "r1 = ioctl$KVM_CREATE_VM(r0, 0xae01, 0x0)",
        "r2 = ioctl$KVM_CREATE_GUEST_MEMFD(r1, 0xc040aed4, &(0x7f0000000100)={0x1000, 0x0})"]
    assert lines[3] == ("ioctl$KVM_SET_USER_MEMORY_REGION2(r1, 0x40a0ae49, "
                        "&(0x7f0000000200)={0x0, 0x4, 0x0, 0x1000, 0x0, 0x0, r2})")
    assert lines[4] == "close(r2)"
    assert lines[5].startswith("r3 = ioctl$KVM_CREATE_GUEST_MEMFD(r1, ")
    assert lines[6].endswith("={0x0, 0x4, 0x0, 0x1000, 0x0, 0x0, r3})\t# EINVAL")
    assert lines[7].endswith("={0x0, 0x6, 0x0, 0x0, 0x0, 0x0, 0x0})\t# EINVAL")  # fd 0
    rw = syz_calls(load_trace(str(SCENARIOS / "gmem-read-write.trace")))
    assert "read(r2, &(0x7f0000000200)=\"\"/4096, 0x1000)\t# EINVAL" in rw
    assert any(x.startswith("write(r2, &(0x7f0000001200)='xxxx") and x.endswith(
        "', 0x1000)\t# EINVAL") for x in rw)
    assert "pread64(r2, &(0x7f0000002200)=\"\"/4096, 0x1000, 0x0)\t# ESPIPE" in rw
    assert "lseek(r2, 0x0, 0x0)\t# ESPIPE" in rw
    out = syz_calls(parse_trace(HAND_GMEM["gmem-outside"]))
    assert "ioctl$KVM_CHECK_EXTENSION(r0, 0xae03, 0xea)" in out
    assert "ioctl$KVM_CHECK_EXTENSION_VM(r1, 0xae03, 0xf4)" in out
    assert out[4] == "r2 = ioctl$KVM_CREATE_GUEST_MEMFD(r1, 0xc040aed4, " \
                     "&(0x7f0000000100)={0x2000, 0x3})"  # in layout order, not as written
    assert out[6].endswith("={0x0, 0x4, 0x0, 0x1000, 0x0, 0x0, r2})")  # slot: a u32
    assert out[7].endswith("={0x1, 0x4, 0x100000000, 0x1000, "
                           "&(0x7f0000200000/0x2000)=nil, 0x1000, r2})")


def test_unsupported_call_is_an_export_error(memfd: Design) -> None:
    t = parse_trace(HEAD.format(title="x", expect="conforms") + "fsync(3) = 0\n")
    with pytest.raises(ExportError, match="no reproducer for call 'fsync'"):
        export_c(memfd, t)
    assert "fsync" in EXPORTERS["text"][1](memfd, t)  # no model states, still a text
    gmem = designs.get("guest_memfd")
    for bad, why in (("ioctl(4, 0xae41, 0) = 0", "no reproducer for ioctl request 0xae41"),
                     ("ioctl(4, KVM_CREATE_GUEST_MEMFD, {size=4096, npages=1}) = 5",
                      "struct kvm_create_guest_memfd has no field npages"),
                     ("ioctl(4, KVM_CREATE_GUEST_MEMFD, 4096) = 5",
                      "struct kvm_create_guest_memfd expected"),
                     ("ioctl(4, KVM_CREATE_VM, {size=1}) = 5", "takes a number"),
                     (BIND.format(slot=0, gpa=0, size=4096, uaddr=0, off=0, fd="m1",
                                  outcome="0").strip(), "guest_memfd: expected a file"),
                     ('read(5, 4096, "x") = 0', 'read: expected a number, got "x"')):
        t = parse_trace(GHEAD.format(title="x", expect="conforms") + KVM + bad + "\n")
        for fmt in ("c", "python", "syz"):
            with pytest.raises(ExportError, match=re.escape(why)):
                EXPORTERS[fmt][1](gmem, t)


# ---- C and Python reproducers ------------------------------------------------------------------
def need_gcc() -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    return gcc


def build(design: Design, t: Trace, tmp: Path, name: str) -> Path:
    gcc = need_gcc()
    src = tmp / f"{name}.c"
    src.write_text(export_c(design, t))
    exe = tmp / name
    cc = subprocess.run([gcc, "-Wall", "-Werror", "-o", str(exe), str(src)],
                        capture_output=True, text=True, timeout=120)
    assert cc.returncode == 0, cc.stderr
    return exe


def run_exe(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=120)


def test_c_compiles_hugetlb_exec_counterexample(memfd: Design, checker_traces: dict[str, Trace],
                                               tmp_path: Path) -> None:
    t = checker_traces["exec-seal-mode-fixed"]
    assert [f"{s.call}" for s in t.steps] == ["memfd_create", "fchmod"]
    src = export_c(memfd, t)
    assert "MFD_HUGETLB | MFD_NOEXEC_SEAL" in src and "fchmod(FD(3), 0755)" in src
    assert "mfd_assert_fd(" in src and "KSFT_SKIP" in src
    build(memfd, t, tmp_path, "hugetlb_exec")


def test_c_compiles_for_every_trace(all_traces: dict[str, Trace], tmp_path: Path) -> None:
    for i, t in enumerate(all_traces.values()):
        build(design_of(t), t, tmp_path, f"t{i}")


def test_c_guest_memfd_source() -> None:
    """The structs are <linux/kvm.h>'s, declared locally; descriptors in them are translated;
    values that do not fit a field are cast as the kernel will read them."""
    t = load_trace(str(SCENARIOS / "gmem-bind.trace"))
    src = export_c(design_of(t), t)
    assert "#include <linux/kvm.h>" not in src
    for decl in ("struct kvm_create_guest_memfd {\n\tuint64_t size;\n\tuint64_t flags;\n"
                 "\tuint64_t reserved[6];\n};",
                 "\tuint64_t guest_memfd_offset;\n\tuint32_t guest_memfd;\n\tuint32_t pad1;\n"
                 "\tuint64_t pad2[14];\n};",
                 "_Static_assert(sizeof(struct kvm_userspace_memory_region2) == 160"):
        assert decl in src
    assert "mfd_assert_fd(sys_open_kvm(O_RDWR, NEEDS_GUEST_MEMFD), 3);" in src
    assert "mfd_assert_fd(sys_ioctl(FD(3), KVM_CREATE_VM, 0), 4);" in src
    assert "mfd_assert_fd(sys_create_guest_memfd(FD(4), 8192, 0), 5);" in src
    assert ("mfd_fail_errno(sys_set_memory_region2(FD(4), 0, KVM_MEM_GUEST_MEMFD | 0x8, 0, "
            "4096, 0, 0, FD(5)), EINVAL);") in src
    assert ("mfd_assert_ret(sys_set_memory_region2(FD(4), 1, KVM_MEM_GUEST_MEMFD, 4294967296, "
            "4096, 0, 0, FD(5)), 0);") in src
    assert "#define KVM_SET_USER_MEMORY_REGION2 0x40a0ae49" in src
    out = parse_trace(HAND_GMEM["gmem-outside"])
    src = export_c(design_of(out), out)
    assert "sys_create_guest_memfd(FD(4), 8192, GUEST_MEMFD_FLAG_MMAP | " in src
    assert "sys_set_memory_region2(FD(4), (uint32_t)0x100000000ULL, " in src
    assert ", 4096, (uintptr_t)maps[1], 4096, FD(5)), 0);" in src
    assert "sys_ioctl(FD(4), KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS), 3);" in src
    assert "res_of(read(FD(5), buffer(4096), 4096))" in src
    assert "res_of(pread(FD(5), buffer(4096), 4096, 0))" in src
    assert 'res_of(write(FD(5), payload("ab", 2, 2), 2))' in src
    edges = parse_trace(HAND_GMEM["gmem-edges"])
    src = export_c(design_of(edges), edges)
    assert "sys_create_guest_memfd(FD(4), (uint64_t)-0x1000LL, 0)" in src
    assert "sys_create_guest_memfd(FD(4), (uint64_t)0x0ULL, 0)" in src
    assert "sys_create_guest_memfd(FD(4), 4096, 0x8000000000000000)" in src
    assert "sys_create_guest_memfd(FD(4), 4096, 0)" in src  # a field left out is zero
    assert ("sys_set_memory_region2(FD(4), (uint32_t)-0x1LL, "
            "(uint32_t)(KVM_MEM_GUEST_MEMFD | 0x100000000), 0, 4096, 0, 0, FD(5))") in src
    memfd_src = export_c(designs.get("memfd"), parse_trace(HAND["busy"]))
    assert "sys_open_kvm" not in memfd_src and "struct kvm_" not in memfd_src


@pytest.mark.kernel
def test_c_shmem_reproducer_passes_on_the_kernel(memfd: Design, tmp_path: Path) -> None:
    exe = build(memfd, parse_trace(HAND["busy"]), tmp_path, "busy")
    p = run_exe(str(exe))
    assert p.returncode == 0, p.stdout
    out = p.stdout.splitlines()
    assert out[:2] == ["TAP version 13", "1..7"]
    assert out[5] == "ok 4 fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = -1 EBUSY (Device or resource busy)"
    assert out[-1] == "# Totals: pass:7 fail:0 xfail:0 xpass:0 skip:0 error:0"


@pytest.mark.kernel
def test_c_wrong_expectation_fails(memfd: Design, tmp_path: Path) -> None:
    exe = build(memfd, parse_trace(HAND["wrong"]), tmp_path, "wrong")
    p = run_exe(str(exe))
    assert p.returncode == 1, p.stdout
    assert "# step 4: the trace says 4096, the kernel gave -1 EPERM (errno 1)" in p.stdout
    assert 'not ok 4 pwrite64(3, "x"..., 4096, 0) = 4096' in p.stdout
    assert "ok 5 fcntl(3, F_GET_SEALS) = 0x8 (seals F_SEAL_WRITE) # SKIP" in p.stdout


@pytest.mark.kernel
def test_c_model_filled_outcomes_and_noexec_sysctl(memfd: Design, tmp_path: Path) -> None:
    if capability("pidns"):
        pytest.skip(str(capability("pidns")))
    exe = build(memfd, parse_trace(HAND["unknown"]), tmp_path, "unknown")
    p = run_exe(str(exe))
    assert p.returncode == 0, p.stdout
    assert "ok 3 fchmod(3, 0755) = -1 EPERM (Operation not permitted)" in p.stdout
    assert "ok 2 fcntl(3, F_GET_SEALS) = 0x20 (seals F_SEAL_EXEC)" in p.stdout
    assert "ok 5 load(m1, 0) = SIGBUS" in p.stdout and "ok 7 load(m1, 0) = 0" in p.stdout


@pytest.mark.kernel
def test_c_pins(memfd: Design, tmp_path: Path) -> None:
    if capability("io_uring"):
        pytest.skip(str(capability("io_uring")))
    exe = build(memfd, parse_trace(HAND["pins"]), tmp_path, "pins")
    p = run_exe(str(exe))
    assert p.returncode == 0, p.stdout


@pytest.mark.kernel
def test_c_hugetlb_counterexamples_on_the_kernel(memfd: Design, checker_traces: dict[str, Trace],
                                                tmp_path: Path) -> None:
    """The two hugetlbfs findings reproduce (exit 0: the kernel does what the trace says), or
    skip (exit 4) without free huge pages."""
    exes = [build(memfd, checker_traces[p], tmp_path, p.replace("-", "_"))
            for p in ("exec-seal-mode-fixed", "grow-seal-size-monotone")]
    with hugepages_reserved(2) as why:
        for exe in exes:
            p = run_exe(str(exe))
            if why is not None:
                assert p.returncode in (0, 4), p.stdout
            else:
                assert p.returncode == 0, p.stdout


@pytest.mark.kernel
def test_python_reproducer(memfd: Design, tmp_path: Path) -> None:
    for name, want in (("busy", 0), ("wrong", 1), ("pins", 0)):
        if name == "pins" and capability("io_uring"):
            continue
        script = tmp_path / f"{name}.py"
        script.write_text(EXPORTERS["python"][1](memfd, parse_trace(HAND[name])))
        p = run_exe(sys.executable, str(script))
        assert p.returncode == want, (name, p.stdout, p.stderr)
        assert p.stdout.startswith("TAP version 13\n")


def test_python_reproducer_compiles(all_traces: dict[str, Trace]) -> None:
    for name, t in all_traces.items():
        compile(EXPORTERS["python"][1](design_of(t), t), name, "exec")


# ---- guest_memfd reproducers on /dev/kvm -------------------------------------------------------
def need_kvm() -> None:
    if capability("kvm"):
        pytest.skip(str(capability("kvm")))


def gmem_traces(gmem_checker_traces: dict[str, Trace]) -> dict[str, Trace]:
    """What must reproduce on the kernel: every gmem scenario, the checker's gmem traces
    (the model's claims), the hand traces the kernel agrees with."""
    out = {p.stem: load_trace(str(p)) for p in GMEM_FILES}
    out.update({f"check-{k}": v for k, v in gmem_checker_traces.items()})
    out.update({k: parse_trace(v) for k, v in HAND_GMEM.items() if k != "gmem-wrong"})
    return out


@pytest.mark.kernel
def test_c_guest_memfd_reproducers_pass_on_the_kernel(gmem_checker_traces: dict[str, Trace],
                                                      tmp_path: Path) -> None:
    need_kvm()
    traces = gmem_traces(gmem_checker_traces)
    assert len(traces) >= len(GMEM_FILES) + 2 + 10
    for name, t in traces.items():
        exe = build(design_of(t), t, tmp_path, name.replace("-", "_"))
        p = run_exe(str(exe))
        assert p.returncode == 0, (name, p.stdout)
        n = len(t.steps)
        assert p.stdout.splitlines()[-1] == \
            f"# Totals: pass:{n} fail:0 xfail:0 xpass:0 skip:0 error:0", name
    wrong = parse_trace(HAND_GMEM["gmem-wrong"])
    exe = build(design_of(wrong), wrong, tmp_path, "gmem_wrong")
    p = run_exe(str(exe))
    assert p.returncode == 1, p.stdout
    assert "# step 4: the trace says 0, the kernel gave -1 EINVAL (errno 22)" in p.stdout
    assert "ok 5 close(5) = 0 # SKIP an earlier step failed" in p.stdout


@pytest.mark.kernel
def test_c_guest_memfd_skips_without_kvm(tmp_path: Path) -> None:
    """A user who cannot open /dev/kvm gets KSFT_SKIP (4), every step skipped with the reason."""
    need_kvm()
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv(1) to run as nobody")
    if os.stat("/dev/kvm").st_mode & 0o006:
        pytest.skip("/dev/kvm is usable by everyone here")
    t = load_trace(str(SCENARIOS / "gmem-guest.trace"))
    exe = build(design_of(t), t, tmp_path, "gmem_guest")
    tmp_path.chmod(0o755)
    p = run_exe(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", str(exe))
    assert p.returncode == 4, p.stdout
    assert 'ok 1 open("/dev/kvm", O_RDWR) = 3 # SKIP kvm: cannot open /dev/kvm: ' \
        "Permission denied" in p.stdout
    assert p.stdout.splitlines()[-1] == "# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:10 error:0"


@pytest.mark.kernel
def test_python_guest_memfd_reproducers(gmem_checker_traces: dict[str, Trace],
                                        tmp_path: Path) -> None:
    need_kvm()
    traces = gmem_traces(gmem_checker_traces)
    traces["gmem-wrong"] = parse_trace(HAND_GMEM["gmem-wrong"])
    for name, t in traces.items():
        script = tmp_path / f"{name}.py"
        script.write_text(EXPORTERS["python"][1](design_of(t), t))
        p = run_exe(sys.executable, str(script))
        assert p.returncode == (1 if name == "gmem-wrong" else 0), (name, p.stdout, p.stderr)
        assert p.stdout.startswith("TAP version 13\n"), name


@pytest.mark.parametrize(("design", "prop"), [("memfd", "exec-seal-mode-fixed"),
                                              ("guest_memfd", "sometimes-gmem-slot-bound")])
def test_cli_check_out_writes_every_format(design: str, prop: str, tmp_path: Path) -> None:
    from checker.cli import main

    rc = main(["check", "--design", design, "--property", prop, "--engine", "explicit",
               "--quiet", "--out", str(tmp_path)])
    assert rc == 0
    names = set(os.listdir(tmp_path))
    base = f"{design}.{prop}.explicit"
    for ext, _ in EXPORTERS.values():
        assert f"{base}.{ext}" in names
