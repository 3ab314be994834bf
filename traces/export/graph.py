"""``dot`` and ``mermaid``: the trace as a picture, a chain of states (the fields each step
changed) joined by the steps, for Graphviz or as a Mermaid flowchart."""

from __future__ import annotations

from model.lang.design import Design
from traces.export.common import expect_of, init_choices, outcome_text, render_fields
from traces.replayed import Replayed
from traces.textfmt import format_step
from traces.trace import Step


def _picture(design: Design, r: Replayed) -> tuple[list[list[str]], list[str]]:
    """Node lines (one list per state) and edge labels (one per step)."""
    init = init_choices(design, r.trace, r.states)
    nodes = [["initial state", *(f"{k}={v}" for k, v in init.items())]]
    edges = []
    for i, step in enumerate(r.steps):
        changed = r.changed(i)
        if r.states is None:
            nodes.append([f"s{i + 1}"])
        else:
            nodes.append([f"s{i + 1}", *(render_fields(design, r.states[i + 1], changed)
                                         if changed else ["(unchanged)"])])
        label = f"{i + 1}: {format_step(Step(step.call, step.args, step.outcome, step.note))}"
        other = r.differs(i)
        if other is not None:
            label += f" (model: {outcome_text(other)})"
        edges.append(label)
    return nodes, edges


def _dot_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def export_dot(design: Design, r: Replayed) -> str:
    """Graphviz: a chain of states labelled with the fields each step changed."""
    trace = r.trace
    nodes, edges = _picture(design, r)
    kind, _ = expect_of(trace)
    out = ["digraph trace {",
           f"  label={_dot_quote((trace.title or 'shmemcheck trace') + ' -- ' + trace.expect)};",
           "  labelloc=t;",
           '  node [shape=box, style=rounded, fontname="monospace", fontsize=10];',
           '  edge [fontname="monospace", fontsize=9];']
    for i, lines in enumerate(nodes):
        attrs = ""
        if i == len(nodes) - 1 and kind == "violates":
            attrs = ", color=red, peripheries=2"
        elif i == len(nodes) - 1 and kind == "witnesses":
            attrs = ", color=darkgreen, peripheries=2"
        out.append(f"  s{i} [label={_dot_quote(chr(10).join(lines))}{attrs}];")
    for i, label in enumerate(edges):
        attrs = ", color=red, fontcolor=red" if r.differs(i) is not None else ""
        out.append(f"  s{i} -> s{i + 1} [label={_dot_quote(label)}{attrs}];")
    out.append("}")
    return "\n".join(out) + "\n"


_MERMAID_ESC = {"#": "#35;", '"': "#quot;", "|": "#124;", "<": "#lt;", ">": "#gt;",
                "{": "#123;", "}": "#125;", "`": "#96;", "\\": "#92;"}


def _mermaid_text(s: str) -> str:
    return "".join(_MERMAID_ESC.get(c, c) for c in s)


def export_mermaid(design: Design, r: Replayed) -> str:
    """Mermaid flowchart: the same picture as export_dot."""
    trace = r.trace
    nodes, edges = _picture(design, r)
    kind, _ = expect_of(trace)
    out = ["---", f"title: {_mermaid_text(trace.title or 'shmemcheck trace')}", "---",
           "flowchart TD"]
    for i, lines in enumerate(nodes):
        out.append(f'  s{i}["{"<br/>".join(_mermaid_text(x) for x in lines)}"]')
    for i, label in enumerate(edges):
        out.append(f'  s{i} -->|"{_mermaid_text(label)}"| s{i + 1}')
    last = len(nodes) - 1
    if kind in ("violates", "witnesses"):
        color = "#c00" if kind == "violates" else "#080"
        out.append(f"  style s{last} stroke:{color},stroke-width:3px")
    for i in range(len(edges)):
        if r.differs(i) is not None:
            out.append(f"  linkStyle {i} stroke:#c00")
    out.append(f"  %% {_mermaid_text(trace.expect)}")
    return "\n".join(out) + "\n"

