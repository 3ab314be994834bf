"""Outputs a call fills in (fstat's st_size and st_mode): the trace shows them, the model
predicts them from its state after the call, the kernel executor reads them back, and a
difference on any side is a divergence, as an outcome's is (issues 14, 16)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from checker.kernel_replay import replay_on_kernel
from checker.replay import model_outcomes, replay_for_export
from checker.strace_judge import judge_log
from model import designs
from traces.export import EXPORTERS
from traces.strace_log import parse_log
from traces.textfmt import TraceSyntaxError, format_step, parse_trace
from traces.trace import Int, Str, Struct, Sym

HEAD = "# shmemcheck trace 1\n# design: memfd\n"
STEPS = """\
memfd_create("t", MFD_ALLOW_SEALING) = 3
ftruncate(3, 8192) = 0
fchmod(3, 0600) = 0
newfstatat(3, "", {st_mode=S_IFREG|0600, st_size=SIZE, ...}, AT_EMPTY_PATH) = 0
fstat(3, {st_mode=MODE, st_size=8192}) = 0
"""


def trace(size: str = "8192", mode: str = "S_IFREG|0600") -> str:
    return HEAD + STEPS.replace("SIZE", size).replace("MODE", mode)


def test_struct_with_more_fields_parses_and_prints_back() -> None:
    line = 'newfstatat(3, "", {st_mode=S_IFREG|0600, st_size=8192, ...}, AT_EMPTY_PATH) = 0'
    step = parse_trace(HEAD + line + "\n").steps[0]
    assert step.args[2] == Struct((("st_mode", Sym("S_IFREG|0600")),
                                   ("st_size", Int(8192))), more=True)
    assert format_step(step) == line
    assert parse_trace(HEAD + "x({...}) = 0\n").steps[0].args[0] == Struct((), more=True)


@pytest.mark.parametrize("text,col", [("x({a=1, ..., b=2}) = 0", 12), ("x({..}) = 0", 4)])
def test_ellipsis_only_last_in_a_struct(text: str, col: int) -> None:
    with pytest.raises(TraceSyntaxError) as e:
        parse_trace(HEAD + text + "\n", "t.trace")
    assert f"t.trace:3:{col}:" in str(e.value)


def test_the_model_predicts_st_size_and_st_mode() -> None:
    rep = model_outcomes(designs.get("memfd"), parse_trace(trace()), stop_at_divergence=False)
    assert rep.divergence is None
    assert rep.outputs[3] == {"st_mode": 0o100600, "st_size": 8192}
    assert rep.outputs[0] == {}  # memfd_create fills nothing


@pytest.mark.parametrize("size,mode,shown,model", [
    ("4096", "S_IFREG|0600", "0 st_size=4096", "0 st_size=8192"),
    ("8192", "S_IFREG|0644", "0 st_mode=S_IFREG|0644", "0 st_mode=S_IFREG|0600"),
    ("8192", "0100600", None, None),  # -X raw: the same number
])
def test_a_different_output_is_a_divergence(size: str, mode: str, shown: str | None,
                                            model: str | None) -> None:
    rep = model_outcomes(designs.get("memfd"), parse_trace(trace(size, mode), "t.trace"))
    if shown is None:
        assert rep.divergence is None
        return
    d = rep.divergence
    assert d is not None and (d.expected, d.got) == (shown, model)
    assert d.step.pos.line == (6 if size != "8192" else 7)


def test_other_fields_are_not_judged_but_unknown_struct_spellings_are_refused() -> None:
    ok = trace().replace("{st_mode=S_IFREG|0600, st_size=8192, ...}",
                         "{st_dev=makedev_0_0_, st_nlink=1, st_mode=S_IFREG|0600, "
                         "st_size=8192, st_blocks=99}")
    assert model_outcomes(designs.get("memfd"), parse_trace(ok)).divergence is None
    # a struct the model reads whole (KVM_CREATE_GUEST_MEMFD) does not take strace's "..."
    gm = parse_trace('# shmemcheck trace 1\n# design: guest_memfd\nopen("/dev/kvm", O_RDWR) = 3\n'
                     "ioctl(3, KVM_CREATE_VM, 0) = 4\n"
                     "ioctl(4, KVM_CREATE_GUEST_MEMFD, {size=4096, ...}) = 5\n")
    with pytest.raises(Exception) as e:
        model_outcomes(designs.get("guest_memfd"), gm)
    assert "'...'" in str(e.value)


@pytest.mark.kernel
def test_the_kernel_fills_what_the_trace_shows() -> None:
    d = designs.get("memfd")
    t = parse_trace(trace("4096"), "t.trace")
    rep = model_outcomes(d, t, stop_at_divergence=False)
    k = replay_on_kernel(d, t, rep, against="kernel")
    if k.skipped:
        pytest.skip(k.skipped)
    assert k.divergence is not None
    assert "step 4 diverges on the kernel" in k.divergence
    assert "  trace:  0 st_size=4096" in k.divergence
    assert "  kernel: 0 st_size=8192" in k.divergence
    good = parse_trace(trace(), "t.trace")
    k = replay_on_kernel(d, good, model_outcomes(d, good), against="both")
    assert k.divergence is None and k.summary == "5 steps agree with the model"


@pytest.mark.kernel
@pytest.mark.parametrize("fmt", ["c", "python"])
def test_reproducers_check_the_outputs(fmt: str, tmp_path: Path) -> None:
    d = designs.get("memfd")
    for size, want in (("8192", 0), ("4096", 1)):
        src = EXPORTERS[fmt][1](d, replay_for_export(d, parse_trace(trace(size), "t.trace")))
        if fmt == "c":
            (tmp_path / "r.c").write_text(src)
            subprocess.run(["gcc", "-Wall", "-Werror", "-o", str(tmp_path / "r"),
                            str(tmp_path / "r.c")], check=True, capture_output=True)
            cmd = [str(tmp_path / "r")]
        else:
            (tmp_path / "r.py").write_text(src)
            cmd = [sys.executable, str(tmp_path / "r.py")]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert p.returncode == want, p.stdout
        if want:
            assert "not ok 4 newfstatat" in p.stdout
            assert "8192" in p.stdout and "4096" in p.stdout


def test_strace_log_with_outputs() -> None:
    log = ('memfd_create("t", MFD_ALLOW_SEALING) = 3\n'
           'newfstatat(3, "", {st_mode=S_IFREG|0777, st_size=0, ...}, AT_EMPTY_PATH) = 0\n'
           "ftruncate(3, 8192) = 0\n"
           'newfstatat(3, "", {st_dev=makedev(0, 0x1), st_ino=5, st_mode=S_IFREG|0777, '
           "st_nlink=1, st_size=8192, st_atime=1796424089 /* 2026-12-04T22:41:29+0000 */, "
           "st_atime_nsec=0}, AT_EMPTY_PATH) = 0\n"
           'newfstatat(3, "", {st_mode=S_IFREG|0777, st_size=4096, ...}, AT_EMPTY_PATH) = 0\n')
    rep = judge_log(parse_log(log, "l.log"), 0)
    assert [(v.line, v.verdict) for v in rep.verdicts] == [
        (1, "agrees"), (2, "agrees"), (3, "agrees"), (4, "agrees"), (5, "disagrees")]
    bad = rep.verdicts[-1]
    assert (bad.model, bad.kernel) == ("0 st_size=8192", "0 st_size=4096")
    assert rep.judged[0].repro is not None
    assert rep.judged[0].repro.steps[-1].args[2] == Struct(
        (("st_mode", Sym("S_IFREG|0777")), ("st_size", Int(4096))), more=True)
    assert Str("") == rep.judged[0].repro.steps[-1].args[1]
