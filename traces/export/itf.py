"""``itf``: the Apalache/Quint Informal Trace Format (JSON), one state per step with the model's
fields; `trace_from_itf` reads it back."""

from __future__ import annotations

import json

from model.lang.design import Design
from traces.export.common import outcome_text
from traces.replayed import Replayed
from traces.textfmt import FORMAT_VERSION, format_step, parse_step
from traces.trace import Step, Trace

ITF_DESCRIPTION = "https://apalache-mc.org/docs/adr/015adr-trace.html"
ITF_STEP, ITF_OUTCOME, ITF_ACTION = "step", "outcome", "mbt::actionTaken"


def _itf_value(design: Design, name: str, v: int) -> object:
    sort = design.schema.by_name[name].sort
    if sort.kind == "bool":
        return bool(v)
    if sort.kind == "enum":
        return sort.render(v)
    return {"#bigint": str(v)}


def export_itf(design: Design, r: Replayed) -> str:
    """ITF JSON: one state per step (the initial state first) with the model's fields, the
    step's strace text and outcome, and the model action taken."""
    trace = r.trace
    fields = list(r.states[0]) if r.states is not None else []
    meta: dict[str, object] = {
        "format": "ITF",
        "format-description": ITF_DESCRIPTION,
        "description": f"shmemcheck trace: {trace.title or trace.expect}",
        "source": trace.path or "",
        "shmemcheck": {"version": FORMAT_VERSION, "design": design.name, "scope": trace.scope,
                       "expect": trace.expect, "title": trace.title,
                       "comments": list(trace.comments)},
    }
    states: list[dict[str, object]] = []
    for i in range(len(r.steps) + 1):
        st: dict[str, object] = {"#meta": {"index": i}}
        if r.states is not None:
            st.update({n: _itf_value(design, n, r.states[i][n]) for n in fields})
        if i == 0:
            st[ITF_ACTION], st[ITF_STEP], st[ITF_OUTCOME] = "init", "", ""
        else:
            step = r.steps[i - 1]
            st[ITF_ACTION] = r.actions[i - 1] if r.actions is not None else step.call
            st[ITF_STEP] = format_step(step)
            st[ITF_OUTCOME] = outcome_text(step.outcome)
        states.append(st)
    doc = {"#meta": meta, "vars": [*fields, ITF_ACTION, ITF_STEP, ITF_OUTCOME],
           "states": states}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def trace_from_itf(text: str) -> Trace:
    """Read a trace back from ITF written by `export_itf` (or any ITF whose states carry a
    `step` string); raises ValueError on anything else."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("states"), list):
        raise ValueError("not an ITF trace: no 'states' list")
    meta = doc.get("#meta", {})
    info = meta.get("shmemcheck", {}) if isinstance(meta, dict) else {}
    if not isinstance(info, dict):
        raise ValueError("'#meta.shmemcheck' is not an object")
    steps: list[Step] = []
    for i, st in enumerate(doc["states"]):
        if not isinstance(st, dict):
            raise ValueError(f"state {i} is not an object")
        line = st.get(ITF_STEP, "")
        if not isinstance(line, str):
            raise ValueError(f"state {i}: '{ITF_STEP}' is not a string")
        if i == 0 and not line:
            continue
        if not line:
            raise ValueError(f"state {i} has no '{ITF_STEP}'")
        try:
            steps.append(parse_step(line, "<itf>", i))
        except Exception as e:  # TraceSyntaxError
            raise ValueError(f"state {i}: {e}") from None
    comments = info.get("comments") or []
    return Trace(steps=steps, design=str(info.get("design") or "memfd"),
                 scope=info.get("scope"), expect=str(info.get("expect") or "conforms"),
                 title=info.get("title"), comments=tuple(str(c) for c in comments))

