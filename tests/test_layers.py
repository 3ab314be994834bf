"""The package layering (issue 13): nothing in model/, properties/ or traces/ imports checker/,
no import cycles, no source file over MAX_LINES. Read off every module's import statements
with ast (function-level imports included: a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("model", "properties", "traces", "checker")
MAX_LINES = 800
#: files allowed over MAX_LINES, each with its reason
LONG_FILES: dict[str, str] = {}


#: modules below checker/ allowed to import it for now, each with its reason
UPWARD: dict[str, str] = {}


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            parts = f.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def imported(mod: str, path: Path) -> set[str]:
    """The dotted names `mod` imports (absolute, relative ones resolved)."""
    pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    out: set[str] = set()
    for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(n, ast.Import):
            out.update(a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:
                base = ".".join(pkg[:len(pkg) - n.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in n.names)
    return out


def graph() -> nx.DiGraph:
    mods = modules()
    g = nx.DiGraph()
    for m, path in mods.items():
        g.add_node(m)
        for name in imported(m, path):
            while name and name not in mods:  # `from pkg import function`: the module
                name = name.rpartition(".")[0]
            if name and name != m:
                g.add_edge(m, name)
    return g


def test_nothing_below_checker_imports_it() -> None:
    """The engines sit on top: model/, properties/ and traces/ never import checker/."""
    up = [f"{a} imports {b}" for a, b in graph().edges
          if b.startswith("checker") and not a.startswith("checker") and a not in UPWARD]
    assert not up, "imports of checker/ from below it:\n" + "\n".join(sorted(up))


def test_imports_go_only_to_the_left() -> None:
    """model/ < properties/ < traces/ < checker/ (docs/ARCHITECTURE.md): model/ imports no
    properties/, and properties/ no traces/ — the rule above, one layer further down."""
    rank = {p: i for i, p in enumerate(PACKAGES)}
    up = [f"{a} imports {b}" for a, b in graph().edges
          if rank[b.split(".")[0]] > rank[a.split(".")[0]] and a not in UPWARD]
    assert not up, "imports of a higher layer:\n" + "\n".join(sorted(up))


def test_no_import_cycles() -> None:
    cycles = sorted(" -> ".join([*c, c[0]]) for c in nx.simple_cycles(graph()))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_source_file_too_long() -> None:
    long = []
    for path in modules().values():
        rel = path.relative_to(ROOT).as_posix()
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES and rel not in LONG_FILES:
            long.append(f"{rel}: {n} lines")
    assert not long, f"source files over {MAX_LINES} lines (split them, or list a generated " \
        "or data file in LONG_FILES with the reason):\n" + "\n".join(long)
    # an exception that is no longer needed is removed, not kept
    for rel in LONG_FILES:
        path = ROOT / rel
        assert path.exists() and len(path.read_text(encoding="utf-8").splitlines()) > MAX_LINES, \
            f"{rel} is listed in LONG_FILES but is not over {MAX_LINES} lines"


def test_the_walker_sees_every_kind_of_import(tmp_path: Path) -> None:
    """Lazy imports inside a function, relative imports and `from package import module` all
    count (so the tests above can fail)."""
    f = tmp_path / "m.py"
    f.write_text("import os\n"
                 "def f():\n    from checker.explicit import Explorer\n"
                 "from . import sibling\nfrom ..up import thing\n")
    got = imported("traces.sub.m", f)
    assert {"os", "checker.explicit", "checker.explicit.Explorer", "traces.sub.sibling",
            "traces.up.thing"} <= got
    g = graph()
    assert g.has_edge("checker.cli_common", "checker.wellformed")  # inside load_designs
    assert g.has_edge("model.whatif", "model.designs")  # from model import designs
    for m in UPWARD:  # an exception that is no longer needed is removed, not kept
        assert any(b.startswith("checker") for b in g[m]), f"{m} no longer imports checker/"
