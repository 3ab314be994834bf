"""traces/export.py: every exporter on checker counterexamples, witnesses and hand-written
traces; the mail-ready text's limits; ITF round trips; C and Python reproducers built and run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from checker.explicit import Explorer
from model import designs
from model.lang.design import Design
from properties.catalogue import for_design
from traces.concretize import run_to_trace
from traces.export import EXPORTERS, ExportError, export_c, export_itf, trace_from_itf
from traces.kernel import capability, hugepages_reserved
from traces.textfmt import format_trace, load_trace, parse_trace
from traces.trace import Any_, Trace

SCENARIOS = Path(__file__).resolve().parent.parent / "traces" / "scenarios"
HEAD = "# shmemcheck trace 1: {title}\n# design: memfd\n# expect: {expect}\n"

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


@pytest.fixture(scope="module")
def memfd() -> Design:
    return designs.get("memfd")


@pytest.fixture(scope="module")
def checker_traces(memfd: Design) -> dict[str, Trace]:
    """Every counterexample and witness of `shmemcheck check` (default scope)."""
    props = for_design(memfd)
    r = Explorer(memfd, memfd.scope({}), props).run()
    out = {}
    for name, o in r.props.items():
        if o.run is None:
            continue
        kind = "violates" if o.prop.kind in ("always", "action") else "witnesses"
        out[name] = run_to_trace(memfd, o.run, expect=f"{kind} {name}",
                                 title=f"{name} on memfd")
    assert "exec-seal-mode-fixed" in out and "grow-seal-size-monotone" in out
    return out


@pytest.fixture(scope="module")
def all_traces(checker_traces: dict[str, Trace]) -> dict[str, Trace]:
    out = {f"check:{k}": v for k, v in checker_traces.items()}
    out.update({f"hand:{k}": parse_trace(v) for k, v in HAND.items()})
    out.update({f"scenario:{p.stem}": load_trace(str(p))
                for p in sorted(SCENARIOS.glob("*.trace"))})
    return out


def test_exporters_table() -> None:
    assert set(EXPORTERS) == {"text", "itf", "dot", "mermaid", "c", "python", "syz"}
    for ext, fn in EXPORTERS.values():
        assert ext and not ext.startswith(".") and callable(fn)


def test_every_exporter_on_every_trace(memfd: Design, all_traces: dict[str, Trace]) -> None:
    for name, t in all_traces.items():
        for fmt, (_, fn) in EXPORTERS.items():
            text = fn(memfd, t)
            assert isinstance(text, str) and text.endswith("\n"), (name, fmt)
            assert "?" not in text.splitlines()[-1] or fmt in ("text", "itf"), (name, fmt)


def test_text_is_mail_ready(memfd: Design, all_traces: dict[str, Trace]) -> None:
    fn = EXPORTERS["text"][1]
    for name, t in all_traces.items():
        text = fn(memfd, t)
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


def test_itf_round_trip(memfd: Design, all_traces: dict[str, Trace]) -> None:
    for name, t in all_traces.items():
        t.path = None
        doc = json.loads(export_itf(memfd, t))
        assert doc["#meta"]["format"] == "ITF"
        assert len(doc["states"]) == len(t.steps) + 1
        assert [s["#meta"]["index"] for s in doc["states"]] == list(range(len(t.steps) + 1))
        st = doc["states"][-1]
        assert set(doc["vars"]) <= set(st), name
        if name != "hand:names":  # outside the model (its names): no model state there
            assert st["size"] == {"#bigint": st["size"]["#bigint"]}
            assert isinstance(st["exists"], bool)
        back = trace_from_itf(export_itf(memfd, t))
        if any(isinstance(s.outcome, Any_) for s in t.steps):
            assert [s.call for s in back.steps] == [s.call for s in t.steps]
            assert not any(isinstance(s.outcome, Any_) for s in back.steps)
            assert trace_from_itf(export_itf(memfd, back)) == back
        else:
            assert back == t, name
        assert parse_trace(format_trace(back)) == back


def test_itf_rejects_garbage() -> None:
    for bad in ("", "[]", '{"states": 3}', '{"states": [{}, {"step": "nonsense"}]}'):
        with pytest.raises(ValueError):
            trace_from_itf(bad)


def test_pictures(memfd: Design, all_traces: dict[str, Trace]) -> None:
    for name, t in all_traces.items():
        dot = EXPORTERS["dot"][1](memfd, t)
        assert dot.startswith("digraph trace {") and dot.rstrip().endswith("}")
        assert dot.count(" -> ") == len(t.steps), name
        mmd = EXPORTERS["mermaid"][1](memfd, t)
        assert "flowchart TD" in mmd and mmd.count(" -->|") == len(t.steps), name
        for line in mmd.splitlines():
            if "-->|" in line:  # the label is quoted, with no raw quote or pipe inside
                label = line.split('-->|"', 1)[1].rsplit('"|', 1)[0]
                assert '"' not in label and "|" not in label, line


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
        for line in EXPORTERS["syz"][1](memfd, t).splitlines():
            assert line.startswith("#") or "(" in line


def test_unsupported_call_is_an_export_error(memfd: Design) -> None:
    t = parse_trace(HEAD.format(title="x", expect="conforms") + 'write(3, "x", 1) = 1\n')
    with pytest.raises(ExportError):
        export_c(memfd, t)
    assert "write" in EXPORTERS["text"][1](memfd, t)  # no model states, still a text


# ---- C and Python reproducers ------------------------------------------------------------------
def need_gcc() -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    return gcc


def build(memfd: Design, t: Trace, tmp: Path, name: str) -> Path:
    gcc = need_gcc()
    src = tmp / f"{name}.c"
    src.write_text(export_c(memfd, t))
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


def test_c_compiles_for_every_trace(memfd: Design, all_traces: dict[str, Trace],
                                    tmp_path: Path) -> None:
    for i, t in enumerate(all_traces.values()):
        build(memfd, t, tmp_path, f"t{i}")


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


def test_python_reproducer_compiles(memfd: Design, all_traces: dict[str, Trace]) -> None:
    for name, t in all_traces.items():
        compile(EXPORTERS["python"][1](memfd, t), name, "exec")


def test_cli_check_out_writes_every_format(tmp_path: Path) -> None:
    from checker.cli import main

    rc = main(["check", "--property", "exec-seal-mode-fixed", "--quiet", "--out", str(tmp_path)])
    assert rc == 0
    names = set(os.listdir(tmp_path))
    base = "memfd.exec-seal-mode-fixed.explicit"
    for ext, _ in EXPORTERS.values():
        assert f"{base}.{ext}" in names
