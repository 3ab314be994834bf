"""traces/syscalls.py: the registry is complete for every design that claims a live kernel.

For every action of such a design (checker.conform.kernel_designs(), the designs `replay --on
both` and `conform` run on the kernel), every step its callspec can emit (each value of each
parameter's domain, on shmem and on hugetlbfs page sizes) has a registry entry, lowers to an Op,
and the live-kernel executor has a way to run it. A call missing from the registry fails here,
not in a user's `replay --on both`.
"""

from __future__ import annotations

import ast
import itertools
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType

import pytest

from checker.conform import kernel_designs
from checker.replay import replay_for_export
from model import designs
from model.lang.action import Action
from model.lang.callspec import ArgSpec, MinFd, NewFd
from model.lang.design import Design
from traces import syscalls
from traces.concretize import FAMILY_OF, _handle_param, _render_arg
from traces.export import EXPORTERS, ExportError
from traces.export import c as export_c
from traces.export import python as export_python
from traces.export import syz as export_syz
from traces.export.lower import UNSUPPORTED
from traces.handles import PREFIX
from traces.kernel import _Executor
from traces.syscalls import SYSCALLS, TraceError, lower
from traces.textfmt import load_trace, parse_trace
from traces.trace import Any_, Int, Ref, Step, Str, Sym

#: a stand-in live handle of each family (the executor resolves real ones at run time)
HANDLE = {"fd": "3", "map": "m1", "pin": "p1"}
#: states to print the steps in: shmem and hugetlbfs pages; the state fields an output
#: (fstat's st_mode, st_size) prints
_FLAGS = {"s_immutable": 0, "s_append": 1, "s_nodump": 1, "s_noatime": 0}
PAGE_SIZES = ({"hugetlb": 0, "mode": 0o777, "size": 0, **_FLAGS},
              {"hugetlb": 1, "mode": 0o600, "size": 2 << 20, **dict.fromkeys(_FLAGS, 0)})


def kernel_design_objects() -> list[Design]:
    return [designs.get(n) for n in kernel_designs()]


def emitted(action: Action, call: str | None = None,
            specs: tuple[ArgSpec, ...] | None = None) -> Iterator[Step]:
    """Every step the action's callspec (or its spelling `call`, `specs`) prints, over the
    parameters' explicit domains; a new descriptor's number (NewFd, MinFd) stands in as 10."""
    used = {p: HANDLE[fam] for p, fam in _handle_param(action).items()}
    domains = [p.domain for p in action.params]
    for values in itertools.product(*domains):
        params = dict(zip((p.name for p in action.params), values, strict=True))
        for st in PAGE_SIZES:
            args = tuple(Int(10) if isinstance(s, (NewFd, MinFd))
                         else _render_arg(s, params, st, used)
                         for s in (action.args if specs is None else specs))
            yield Step(action.call if call is None else call, args, Any_())


def runnable(call: str) -> bool:
    """The kernel executor has a method for the call, or runs it as a plain system call."""
    return hasattr(_Executor, f"do_{call}") or SYSCALLS[call].plain


#: the reproducer exporters: each renders a registry call with code of its own (its OWN), or
#: from the entry alone (a plain call), or declares it unsupported (lower.UNSUPPORTED, with a
#: reason); the text, itf, dot and mermaid formats print any step as the trace does
REPRODUCERS: dict[str, ModuleType] = {"c": export_c, "python": export_python, "syz": export_syz}


def rendered(fmt: str, call: str) -> bool:
    return call in REPRODUCERS[fmt].OWN or SYSCALLS[call].plain or call in UNSUPPORTED


def problems(ds: list[Design], registry: Mapping[str, syscalls.Syscall]) -> list[str]:
    """What is missing, one line per design, action and call (each said once)."""
    out: list[str] = []
    for d in ds:
        for a in d.actions:
            for call, specs in a.spellings():
                where = f"{d.name}: action {a.name}: {call}"
                if call not in registry:
                    out.append(f"{where}: no entry in traces/syscalls.py SYSCALLS")
                    continue
                if not runnable(call):
                    out.append(f"{where}: the kernel executor has no do_{call} and the entry "
                               "is not plain")
                out += [f"{where}: the {fmt} exporter neither renders it nor declares it "
                        "unsupported" for fmt in REPRODUCERS if not rendered(fmt, call)]
                for step in emitted(a, call, specs):
                    try:
                        lower(step)
                    except TraceError as e:
                        out.append(f"{where}: {step.args}: {e}")
                        break
    return out


def test_kernel_designs_are_known() -> None:
    """This kernel's designs and the other kernels' (model/designs/memfd_kernels.py, checked
    in a guest by `conform --design memfd@6.1`)."""
    assert set(kernel_designs()) == {"memfd", "guest_memfd", "memfd@6.1", "memfd@6.12",
                                     "memfd@7.2", "memfd@7.3-rc"}


def test_every_emitted_call_has_an_entry_and_runs() -> None:
    assert problems(kernel_design_objects(), SYSCALLS) == []


def test_a_missing_entry_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deleting madvise's entry is reported for each memfd action that emits it, in each
    kernel's memfd design."""
    without = {k: v for k, v in SYSCALLS.items() if k != "madvise"}
    monkeypatch.setattr(syscalls, "SYSCALLS", without)
    out = problems(kernel_design_objects(), without)
    assert out == [f"{d}: action {a}: madvise: no entry in traces/syscalls.py SYSCALLS"
                   for d in ("memfd", "memfd@6.1", "memfd@6.12", "memfd@7.2", "memfd@7.3-rc")
                   for a in ("madvise_remove", "madvise")]
    with pytest.raises(TraceError, match="unsupported call madvise"):
        lower(Step("madvise", (Ref("m1"), Int(4096), Sym("MADV_REMOVE")), Any_()))


def test_every_entry_is_runnable_and_well_formed() -> None:
    for name, e in SYSCALLS.items():
        assert e.name == name and e.doc
        assert runnable(name), name
        assert (e.nr is None) == bool(e.via), name  # a pseudo-call says what does it
        lo, hi = e.arity
        assert lo <= hi == len(e.params)
        optional = [p.optional for p in e.params]
        assert optional == sorted(optional), f"{name}: an optional argument before a required"


def test_numbers_are_x86_64() -> None:
    """A few against asm/unistd_64.h (a wrong number would run another system call)."""
    want = {"read": 0, "write": 1, "open": 2, "close": 3, "mmap": 9, "mprotect": 10,
            "munmap": 11, "ioctl": 16, "madvise": 28, "dup": 32, "dup2": 33, "fcntl": 72,
            "ftruncate": 77, "fchmod": 91, "openat": 257, "fallocate": 285, "dup3": 292,
            "memfd_create": 319}
    assert {k: SYSCALLS[k].nr for k in want} == want


def test_lowering_types_each_kind() -> None:
    op = lower(Step("memfd_create", (Str("t"), Sym("MFD_ALLOW_SEALING|MFD_HUGETLB")), Any_()))
    assert (op.args, op.needs) == ((b"t", 6), frozenset({"hugetlb"}))
    op = lower(Step("read", (Int(3), Str("ab"), Int(2)), Any_()))  # strace's output buffer
    assert op.args == (3, 2)
    op = lower(Step("madvise", (Ref("m1"), Sym("PAGE"), Sym("MADV_REMOVE")), Any_()), 1 << 21)
    assert op.args == ("m1", 1 << 21, 9) and SYSCALLS["madvise"].plain
    assert lower(Step("ioctl", (Int(3), Sym("KVM_CREATE_VM")), Any_())).args == (3, 0xAE01, 0)
    for bad, msg in ((Step("fcntl", (Int(3), Int(99)), Any_()), "unsupported fcntl command 99"),
                     (Step("munmap", (Int(3), Int(1)), Any_()), "expected a mapping handle"),
                     (Step("close", (), Any_()), "close takes 1..1 arguments, got 0")):
        with pytest.raises(TraceError, match=msg):
            lower(bad)


def test_emitted_covers_handles() -> None:
    """The stand-in handles cover every handle family the callspecs use."""
    assert set(HANDLE) == set(FAMILY_OF.values()) and set(PREFIX) <= set(HANDLE)


def test_every_exporter_renders_or_declares_every_entry() -> None:
    assert set(REPRODUCERS) | {"text", "itf", "dot", "mermaid"} == set(EXPORTERS)
    for fmt, mod in REPRODUCERS.items():
        assert mod.OWN <= set(SYSCALLS) - set(UNSUPPORTED), fmt
        assert [c for c in SYSCALLS if not rendered(fmt, c)] == [], fmt
    assert set(UNSUPPORTED) <= set(SYSCALLS) and all(UNSUPPORTED.values())


def test_an_unsupported_call_says_why_once() -> None:
    memfd = designs.get("memfd")
    t = parse_trace("# shmemcheck trace 1\n# design: memfd\n"
                    'memfd_create("t", 0) = 3\nopenat(3, "x", O_RDONLY) = 4\n')
    for fmt in REPRODUCERS:
        with pytest.raises(ExportError) as e:
            EXPORTERS[fmt][1](memfd, replay_for_export(memfd, t))
        assert str(e.value) == f"step 2: no reproducer for call 'openat': {UNSUPPORTED['openat']}"


def test_python_runtime_numbers_are_the_registry_s() -> None:
    """The Python reproducer's runtime NR table (package data) agrees with the registry."""
    src = (Path(export_python.__file__).parent / "runtime" / "runtime.py").read_text()
    node = next(n for n in ast.parse(src).body if isinstance(n, ast.Assign)
                and getattr(n.targets[0], "id", "") == "NR")
    nr = ast.literal_eval(node.value)
    shared = set(nr) & set(SYSCALLS)
    assert {"read", "mmap", "memfd_create", "ioctl"} <= shared
    assert {k: nr[k] for k in shared} == {k: SYSCALLS[k].nr for k in shared}


MADVISE = Path(__file__).resolve().parent.parent / "traces" / "scenarios" / "madvise-remove.trace"


def test_madvise_is_rendered_from_its_entry() -> None:
    """madvise has no exporter code: each reproducer renders it from the registry entry."""
    assert all("madvise" not in mod.OWN for mod in REPRODUCERS.values())
    memfd = designs.get("memfd")
    r = replay_for_export(memfd, load_trace(str(MADVISE)))
    assert "res_of(syscall(SYS_madvise, maps[2], 4096, MADV_REMOVE)), 0);" in \
        EXPORTERS["c"][1](memfd, r)
    py = EXPORTERS["python"][1](memfd, r)
    assert 'NR["madvise"] = 28' in py and 'sysc("madvise", maps[3], 4096, MADV_REMOVE)' in py
    assert "madvise(&(0x7f0000200000/0x1000)=nil, 0x1000, 0x9)\t# EPERM" in \
        EXPORTERS["syz"][1](memfd, r)


@pytest.mark.kernel
def test_madvise_reproducers_pass_on_the_kernel(tmp_path: Path) -> None:
    """The C and Python reproducers of the madvise scenario pass on this kernel (exit 0)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    memfd = designs.get("memfd")
    r = replay_for_export(memfd, load_trace(str(MADVISE)))
    (tmp_path / "r.c").write_text(EXPORTERS["c"][1](memfd, r))
    (tmp_path / "r.py").write_text(EXPORTERS["python"][1](memfd, r))
    cc = subprocess.run([gcc, "-Wall", "-Werror", "-o", str(tmp_path / "r"),
                         str(tmp_path / "r.c")], capture_output=True, text=True, timeout=120)
    assert cc.returncode == 0, cc.stderr
    for cmd in ([str(tmp_path / "r")], [sys.executable, str(tmp_path / "r.py")]):
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "pass:16 fail:0" in run.stdout


@pytest.mark.parametrize(("flags", "huge"), [
    ("MFD_HUGETLB", True), ("MFD_HUGETLB|MFD_HUGE_2MB", True), ("0x4", True),
    ("MFD_ALLOW_SEALING", False), ("0", False), ("MFD_NO_SUCH_FLAG", False)])
def test_kernel_replay_reserves_huge_pages_from_the_registry_needs(flags: str, huge: bool) -> None:
    """checker.kernel_replay reads the registry's `needs` (no second flag evaluator there)."""
    from checker.kernel_replay import needs_hugetlb
    from traces.textfmt import parse_trace

    t = parse_trace(f'# shmemcheck trace 1\n# design: memfd\nmemfd_create("t", {flags}) = 3\n',
                    "<test>")
    assert needs_hugetlb(t.steps) is huge
