"""traces/export/runtime/: the C and Python reproducers' runtimes are real files, shipped as
package data, that compile and lint on their own; the exporters fill their placeholders from
model.vocab; and traces/ stays below checker/ (exporters receive an already-replayed trace)."""

from __future__ import annotations

import ast
import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from checker.replay import replay_for_export
from model import designs, vocab
from traces.export import c as c_export
from traces.export import export_c, export_python
from traces.export.common import runtime_sections
from traces.textfmt import load_trace

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = resources.files("traces.export").joinpath("runtime")
SCENARIOS = ROOT / "traces" / "scenarios"
KVM_NR = {"KVM_CHECK_EXTENSION_NR": vocab.KVM_CHECK_EXTENSION,
          "KVM_CAP_GUEST_MEMFD_NR": vocab.KVM_CAP_GUEST_MEMFD,
          "KVM_CAP_GUEST_MEMFD_FLAGS_NR": vocab.KVM_CAP_GUEST_MEMFD_FLAGS,
          "KVM_CREATE_GUEST_MEMFD_NR": vocab.KVM_CREATE_GUEST_MEMFD,
          "KVM_SET_USER_MEMORY_REGION2_NR": vocab.KVM_SET_USER_MEMORY_REGION2,
          "GMEM_KNOWN_FLAGS": vocab.GUEST_MEMFD_FLAG_MMAP | vocab.GUEST_MEMFD_FLAG_INIT_SHARED}


def _exported(fn: object, name: str) -> str:
    t = load_trace(str(SCENARIOS / name))
    d = designs.get(t.design)
    return fn(d, replay_for_export(d, t))  # type: ignore[operator,no-any-return]


def test_c_runtime_compiles_on_its_own(tmp_path: Path) -> None:
    """Every section at once, as the file stands (gcc -fsyntax-only, every warning an error)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed: the C runtime cannot be compiled here")
    src = tmp_path / "repro.c"
    src.write_text(RUNTIME.joinpath("repro.c").read_text("utf-8"))
    p = subprocess.run([gcc, "-Wall", "-Wextra", "-Werror", "-fsyntax-only", str(src)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_guest_runtime_compiles_on_its_own(tmp_path: Path) -> None:
    """traces/guest.py's batch runtime, as the file stands (gcc -fsyntax-only, -Werror)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed: the guest runtime cannot be compiled here")
    src = tmp_path / "guest.c"
    src.write_text(RUNTIME.joinpath("guest.c").read_text("utf-8"))
    p = subprocess.run([gcc, "-Wall", "-Wextra", "-Werror", "-fsyntax-only", str(src)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_c_runtime_sections_are_the_ones_the_exporter_emits() -> None:
    secs = runtime_sections("repro.c", "//@ section")
    assert list(secs) == ["head", "standalone", "base", "newfd", *c_export.RUNTIME_SECTIONS]
    assert secs["head"].startswith("#define _GNU_SOURCE\n")
    for name, placeholder in (("base", "ERRNO_CASES"), ("kvm", "KVM_CONSTANTS"),
                              ("unpin", "RING_RELEASE")):
        assert secs[name].count(f"/* @{placeholder}@ */\n") == 1, (name, placeholder)
    # every runtime function may go unused in a given reproducer
    for name, text in secs.items():
        bare = re.findall(r"^static (?!__maybe_unused )(?=[^;]*\()(?![^\n]*;$).*", text,
                          re.MULTILINE)
        assert not bare, (name, bare)


def test_c_export_fills_every_placeholder_and_drops_the_markers() -> None:
    for name in ("gmem-guest.trace", "seal-write-busy-pin.trace"):
        src = _exported(export_c, name)
        assert "//@ section" not in src and not re.search(r"@[A-Z_]+@", src), name
        assert "the runtime of shmemcheck's C reproducers" not in src.lower()
        assert "not exported" not in src
    src = _exported(export_c, "gmem-guest.trace")
    assert f"#define KVM_CREATE_GUEST_MEMFD {vocab.KVM_CREATE_GUEST_MEMFD:#x}" in src
    assert '\tcase EINVAL: return "EINVAL";\n' in src


def test_python_runtime_compiles_and_lints() -> None:
    text = RUNTIME.joinpath("runtime.py").read_text("utf-8")
    compile(text, "runtime.py", "exec")
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    p = subprocess.run([ruff, "check", "--no-cache", "traces/export/runtime/runtime.py"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


def test_python_runtime_numbers_are_vocab_s() -> None:
    """The file's KVM numbers (which let it run on its own) are model.vocab's, and the
    exporter writes vocab's into the reproducer."""
    kvm = runtime_sections("runtime.py", "# @section")["kvm"]
    tree = ast.parse(kvm)
    values = {t.id: ast.literal_eval(node.value) for node in tree.body
              if isinstance(node, ast.Assign) for t in node.targets
              if isinstance(t, ast.Name) and t.id in KVM_NR}
    assert values == KVM_NR
    script = _exported(export_python, "gmem-guest.trace")
    for k, v in KVM_NR.items():
        assert f"\n{k} = {v:#x}\n" in script, k
    assert "# @section" not in script and "not exported" not in script


def test_runtime_files_are_package_data() -> None:
    """A non-editable install ships every runtime file: pyproject's package-data names it."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = cfg["tool"]["setuptools"]["package-data"]["traces"]
    files = sorted(p.name for p in (ROOT / "traces" / "export" / "runtime").iterdir()
                   if p.is_file())
    assert files == ["guest.c", "repro.c", "runtime.py"]
    for f in files:
        assert any(fnmatch.fnmatch(f"export/runtime/{f}", g) for g in globs), f


def test_traces_do_not_import_checker() -> None:
    """traces/ sits below checker/: the exporters get a Replayed trace, not an Explorer."""
    bad = []
    for path in sorted((ROOT / "traces").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad += [f"{path.relative_to(ROOT)}: {n}" for n in names
                    if n == "checker" or n.startswith("checker.")]
    assert not bad, bad
