"""docs/trace-format.md cannot drift from the code: its example traces parse (and the example
replays as it says), its header keys and call tables are the ones the parser and the designs
have, and its error example is the parser's message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from checker.processes import PROC_CALLS
from checker.replay import check_expectation
from model import designs
from model.lang.callspec import Harmless
from traces.textfmt import HEADER_KEYS, TraceSyntaxError, parse_trace

DOC = (Path(__file__).resolve().parent.parent / "docs" / "trace-format.md").read_text()


def _blocks() -> list[str]:
    return [b for b in re.findall(r"```\n(.*?)```", DOC, re.S)
            if b.startswith("# shmemcheck trace 1")]


def _section(title: str) -> str:
    return DOC.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _calls() -> list[str]:
    """Every `call(args) = outcome` code span in the Calls section's tables."""
    spans = re.findall(r"^\| `(.*?)` \|", _section("Calls"), re.M)
    out = []
    for cell in spans:
        out += [c.replace("\\|", "|") for c in re.findall(r"`?([a-z_0-9]+\(.*?\) = [^`]+)`?",
                                                          cell.replace("` / `", "`\n`"))]
    return out


def _arity(call: str) -> tuple[str, int]:
    name, rest = call.split("(", 1)
    depth, n, inner = 0, 0, ""
    quoted = False
    for ch in rest:
        if ch == '"':
            quoted = not quoted
        if not quoted and ch in "({[":
            depth += 1
        if not quoted and ch in ")}]":
            if depth == 0:
                break
            depth -= 1
        if not quoted and ch == "," and depth == 0:
            n += 1
        inner += ch
    return name, (n + 1 if inner.strip() else 0)


def test_examples_parse_and_the_first_one_replays_as_it_says() -> None:
    blocks = _blocks()
    assert blocks, "no example trace found in docs/trace-format.md"
    for b in blocks:
        t = parse_trace(b, "<docs/trace-format.md>")
        assert t.steps
    first = parse_trace(blocks[0], "<docs>")
    rep = check_expectation(designs.get(first.design), first)
    assert rep.expectation_met, rep.message


def test_header_keys_are_the_parsers() -> None:
    keys = re.findall(r"^\| `# (\w+):", _section("Header"), re.M)
    assert sorted(keys) == sorted([*HEADER_KEYS, "init"])
    t = parse_trace("# shmemcheck trace 1\n# design: memfd@5.17\n# init: noexec_scope=1\n"
                    'memfd_create("t", 0) = 3\n', "<t>")
    assert "init: noexec_scope=1" in t.comments


def test_every_documented_call_has_the_models_arity_and_every_call_is_documented() -> None:
    have: dict[str, set[int]] = {}
    for n in designs.names():
        for a in designs.get(n).actions:
            for call, specs in a.spellings():  # dup2 is a spelling of dup (Action.also)
                least = sum(not (isinstance(x, Harmless) and x.optional) for x in specs)
                have.setdefault(call, set()).update(range(least, len(specs) + 1))
    documented = set()
    for c in _calls():
        name, n = _arity(c)
        if name in PROC_CALLS:  # a trace's processes: lowered, not a design's call
            documented.add(name)
            continue
        documented.add(name)
        assert name in have, f"docs name a call no design has: {c}"
        assert n in have[name], f"{c}: {n} arguments, the model takes {sorted(have[name])}"
    assert documented == set(have) | PROC_CALLS, \
        f"calls not documented: {sorted((set(have) | PROC_CALLS) - documented)}"


@pytest.mark.parametrize("line", [ln for ln in _section("Errors").splitlines()
                                  if "unknown header key" in ln])
def test_documented_error_is_the_parsers(line: str) -> None:
    with pytest.raises(TraceSyntaxError) as e:
        parse_trace("# shmemcheck trace 1\n# design: memfd\n# colour: red\n", "t.trace")
    assert str(e.value) == line
