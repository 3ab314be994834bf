"""``text``: the trace mail-ready: ASCII, at most 72 columns, one step per line with the model
state fields it changed, and the expectation (with the property's rationale) at the end."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

from model.lang.design import Design
from properties.catalogue import load as load_properties
from traces.export.common import ascii_text, expect_of, init_choices, outcome_text, render_fields
from traces.replayed import Replayed
from traces.textfmt import format_step

WIDTH = 72  # columns of the mail-ready text
CONT = "    "  # continuation indent of a wrapped line


def _break_at(line: str, width: int, lo: int) -> int:
    """Where to cut `line` (longer than width): before the ` = ` of the outcome, else after
    the last ', ' or '|', else after the last space that fits; a hard cut if none does."""
    tests: tuple[Callable[[int], bool], ...] = (
        lambda p: line[p - 1] == " " and line[p:p + 2] == "= ",
        lambda p: line[p - 2:p] == ", " or line[p - 1] == "|",
        lambda p: line[p - 1] == " ")
    for good in tests:
        for p in range(width, lo, -1):
            if good(p):
                return p
    return width


def _wrap(text: str, first: str = "", width: int = WIDTH) -> list[str]:
    """One logical line as physical lines of at most `width` columns: the first starts with
    `first`, the others are indented four spaces more than the text of the first."""
    line = first + text
    lo = len(first) + 1
    cont = " " * len(first) + CONT
    out: list[str] = []
    while len(line) > width:
        p = _break_at(line, width, lo)
        out.append(line[:p].rstrip())
        line = cont + line[p:].lstrip(" ")
        lo = len(cont) + 1
    out.append(line.rstrip())
    return out


def _prose(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(ascii_text(text), WIDTH, initial_indent=indent,
                         subsequent_indent=indent + CONT, break_on_hyphens=False,
                         break_long_words=True) or [indent.rstrip()]


def export_text(design: Design, r: Replayed) -> str:
    """Mail-ready text: ASCII, <= 72 columns, one step per line, the changed fields under it."""
    trace = r.trace
    out: list[str] = []
    title = trace.title or f"{len(trace.steps)}-step trace"
    out += _prose(f"shmemcheck trace: {title}")
    out += _prose(f"design {design.name} ({design.doc})")
    if trace.scope:
        out += _prose(f"scope {trace.scope}")
    init = init_choices(design, trace, r.states)
    if init:
        out += _prose("initial state: " + ", ".join(f"{k}={v}" for k, v in init.items())
                      + ("" if r.states is None else "; every other field 0"))
    out.append("")
    w = len(str(len(r.steps)))
    for i, step in enumerate(r.steps):
        out += _wrap(ascii_text(format_step(step)), f"{i + 1:>{w}}. ")
        pad = " " * (w + 4)
        other = r.differs(i)
        if other is not None:
            out += _wrap(f"(the model says {outcome_text(other)})", pad)
        changed = r.changed(i)
        if changed and r.states is not None:
            out += _wrap(", ".join(render_fields(design, r.states[i + 1], changed)), pad)
    out.append("")
    kind, pname = expect_of(trace)
    out.append(ascii_text(trace.expect))
    if kind in ("violates", "witnesses"):
        prop = load_properties().get(pname)
        if prop is not None:
            out += _prose(f"{prop.name}: {prop.rationale}")
            out += _prose(f"enforced by: {prop.enforced_by}")
    return "\n".join(line.rstrip() for line in out) + "\n"

