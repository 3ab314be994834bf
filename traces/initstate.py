"""A trace's initial state: the design's initial-state choices (memfd's vm.memfd_noexec,
its 1 GiB hstate) as a run holds them and as a trace's `# init:` header line spells them."""

from __future__ import annotations

from collections.abc import Mapping

from model.lang.design import Design
from traces.refusal import ResolveError
from traces.trace import Trace


def init_choices(design: Design, init: Mapping[str, int]) -> dict[str, int]:
    """The run's value of every initial-state choice (a field with more than one possible
    initial value, e.g. memfd's noexec_scope: vm.memfd_noexec)."""
    ch = design.init.choices(design.schema)
    return {n: int(init[n]) for n, vals in ch.items() if len(vals) > 1}


def init_line(design: Design, init: Mapping[str, int]) -> str | None:
    """`# init: noexec_scope=0`: every initial choice of a run, as a trace header line reads
    it (the default too: a printed trace must not depend on the reader knowing it)."""
    ch = init_choices(design, init)
    return "# init: " + " ".join(f"{n}={v}" for n, v in ch.items()) if ch else None


def init_comment(design: Design, init: Mapping[str, int]) -> str | None:
    """`init: noexec_scope=1` for initial-state choices that differ from the first one."""
    ch = design.init.choices(design.schema)
    parts = [f"{n}={init[n]}" for n, vals in ch.items() if len(vals) > 1 and init[n] != vals[0]]
    return "init: " + " ".join(parts) if parts else None


def initial_state(design: Design, trace: Trace) -> dict[str, int]:
    """The initial state a trace starts from: the first choice, overridden by `# init:`."""
    st = next(iter(design.init.states(design.schema)))
    ch = design.init.choices(design.schema)
    for c in trace.comments:
        c = c.strip()
        if not c.startswith("init:"):
            continue
        for word in c[5:].split():
            name, _, val = word.partition("=")
            if name not in ch or not (val.isascii() and val.isdigit()) or int(val) not in ch[name]:
                raise ResolveError(f"bad init choice {word!r} (choices: "
                                   + ", ".join(f"{n}∈{set(v)}" for n, v in ch.items()
                                               if len(v) > 1) + ")")
            st[name] = int(val)
    return st
