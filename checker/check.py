"""Run an engine on a design's properties and get `Result`s: the one entry point the CLI,
`compare`, `corpus` and bench/ go through.

The explicit engine (checker/explicit.py) decides every property of a design in one search at
a scope; the symbolic engines (checker/symbolic.py: bmc, kind, pdr) decide one property at a
time and need z3, so they are imported only when asked for.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from checker.verdict import Result, Verdict
from model.lang.action import Action
from model.lang.design import Design, scope_text
from properties.catalogue import Property


def progress(msg: str) -> None:
    """One progress line on stderr (`--quiet` turns these off)."""
    print(f"  … {msg}", file=sys.stderr, flush=True)


def run_explicit(design: Design, props: Sequence[Property], scope: dict[str, int],
                 quiet: bool = True, max_memory: int | None = None
                 ) -> tuple[list[Result], list[str]]:
    """Every property of `props` by one explicit search at `scope`: the results, and the
    search's statistics and rule coverage as report lines. A search stopped by the memory
    bound is said so on stderr, and what it did not find is UNKNOWN, never a pass."""
    from checker.explicit import Explorer

    ex = Explorer(design, scope, props,
                  progress=None if quiet else progress, max_memory=max_memory, elide=True)
    r = ex.run()
    st = scope_text(scope)
    # fields no selected property and no rule reads are not stored (explicit.unread_fields):
    # the states counted are the distinct states modulo those fields
    unread = (f" modulo {', '.join(r.elided)} (read by no selected property or rule)"
              if r.elided else "")
    method = f"explicit, scope {st}{unread}"
    note = ("; the scope bounded some counters (transitions pruned: "
            f"{r.pruned}), so this holds within the scope only") if r.pruned else ""
    if r.stopped:  # what was not found may lie beyond: inconclusive, never a pass
        print(f"shmemcheck: {design.name}: {r.stopped}", file=sys.stderr)
        note = f"; stopped: {r.stopped} (--max-memory)"
    results = []
    for name, o in r.props.items():
        p = o.prop
        if p.kind in ("always", "action"):
            v = Verdict.EXHAUSTED if o.holds else Verdict.VIOLATED
        else:
            v = Verdict.WITNESSED if o.holds else Verdict.NOT_WITNESSED
        if r.stopped and v in (Verdict.EXHAUSTED, Verdict.NOT_WITNESSED):
            v = Verdict.UNKNOWN
        results.append(Result(design.name, name, "explicit", v,
                              p.expected(design.name), method
                              + (note if v in (Verdict.EXHAUSTED, Verdict.NOT_WITNESSED,
                                               Verdict.UNKNOWN)
                                 else ""),
                              r.seconds, o.run,
                              stats={"states": r.states, "transitions": r.transitions,
                                     "depth": r.depth}))
    cov = [f"{design.name}: explicit states={r.states:,} transitions={r.transitions:,} "
           f"depth={r.depth} sec={r.seconds:.2f} states/s={r.states_per_second:,.0f} "
           f"bytes/state={r.stored_bytes / max(1, r.states):.1f} scope {st}{unread}"]
    replay_only = [a.name for a in design.actions if not a.explored]
    unc = [(a, lab) for a, lab in r.uncovered() if a not in replay_only]
    if unc:
        cov.append(f"{design.name}: rules that never fired in the reachable space: "
                   + ", ".join(f"{a}.{lab}" for a, lab in unc))
    else:
        cov.append(f"{design.name}: coverage: every rule of every action fired")
    if replay_only:  # each with the parameters it has no explored value for, and why
        def why(a: Action) -> str:
            held = {a.fpos[0] if a.fpos else None, a.writers,
                    *(p for p, _, _ in a.from_desc), *(p for p, _ in a.from_map)}
            none = [p.name for p in a.params if not p.domain]
            out = []
            if [n for n in none if n in held]:
                out.append("the trace's handle table holds "
                           + ", ".join(n for n in none if n in held))
            if [n for n in none if n not in held]:
                out.append("no explored value: " + ", ".join(n for n in none if n not in held))
            return "; ".join(out)
        cov.append(f"{design.name}: not explored (judged by replay): " + ", ".join(
            f"{a.name} ({why(a)})" for a in design.actions if not a.explored))
    return results, cov


def symbolic_engine() -> Callable[..., Result] | None:
    """checker.symbolic.check_symbolic, or None when the symbolic engines (z3) are not
    available."""
    try:
        from checker.symbolic import check_symbolic
    except ImportError:
        return None
    return check_symbolic


def run_symbolic(design: Design, props: Sequence[Property], engine: str, **kw: Any
                 ) -> list[Result]:
    """Each property by a symbolic engine (bmc, kind or pdr; keyword arguments as
    checker.symbolic.check_symbolic takes them). ImportError when z3 is not available."""
    from checker.symbolic import check_symbolic

    return [check_symbolic(design, p, engine, **kw) for p in props]
