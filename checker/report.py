"""Reporters: text (ends with one summary line), KTAP version 1, and JSON (stable, documented
in README)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from checker.verdict import Result, Verdict, exit_code
from model.designs import get as get_design
from traces.concretize import ResolveError, init_choices, init_line, run_to_trace
from traces.textfmt import format_step

JSON_VERSION = 1


def trace_lines(r: Result) -> list[str]:
    """The run as strace lines, after a `# init: ...` line naming every initial-state choice
    it starts from (vm.memfd_noexec...) when the design has any."""
    if r.run is None:
        return []
    d = get_design(r.design) if isinstance(r.design, str) else r.design
    head = [x for x in [init_line(d, r.run.init)] if x]
    try:
        t = run_to_trace(d, r.run)
    except ResolveError as e:  # an internal inconsistency: show the engine's own steps
        return head + [f"{s.action}{s.params} -> {s.out} ({s.rule})" for s in r.run.steps] + [
            f"(could not be printed as strace: {e.msg}; please report)"]
    return head + [format_step(s) for s in t.steps]


def init_of(r: Result) -> dict[str, int] | None:
    """The run's initial-state choices (JSON's "init"), or None without a run."""
    if r.run is None:
        return None
    d = get_design(r.design) if isinstance(r.design, str) else r.design
    return init_choices(d, r.run.init)


def summary(results: Sequence[Result]) -> str:
    n = len(results)
    good = sum(r.as_expected for r in results)
    bad = sum(not r.as_expected and not r.inconclusive for r in results)
    inc = sum(r.inconclusive for r in results)
    designs = len({r.design for r in results})
    word = "everything verified as expected" if good == n else (
        "UNEXPECTED results" if bad else "inconclusive results")
    return (f"shmemcheck: {good}/{n} as expected over {designs} design(s), {bad} unexpected, "
            f"{inc} inconclusive: {word}")


def result_lines(r: Result, width: int) -> list[str]:
    """One result in the text format: its verdict line, then note, trace or invariant."""
    mark = "ok  " if r.as_expected else ("??  " if r.inconclusive else "FAIL")
    out = [f"{mark} {r.design:<16} {r.prop:<{width}} {r.verdict.value:<13} "
           f"[{r.engine}] {r.method}; expected {r.expected}"]
    if r.note:
        out.append(f"       note: {r.note}")
    lines = trace_lines(r)
    if lines:
        label = "counterexample" if r.verdict is Verdict.VIOLATED else "witness"
        n = len(r.run.steps) if r.run is not None else len(lines)
        out.append(f"       {label} ({n} step{'s' * (n != 1)}):")
        out.extend(f"         {ln}" for ln in lines)
    if r.certificate:
        out.append("       inductive invariant (re-checked):")
        out.extend(f"         {ln}" for ln in r.certificate.splitlines())
    return out


def tail(results: Sequence[Result], coverage: Sequence[str] = ()) -> str:
    """The end of the text format: coverage lines, then the summary line."""
    return "\n".join([*coverage, summary(results)]) + "\n"


def text(results: Sequence[Result], header: Sequence[str] = (), coverage: Sequence[str] = ()
         ) -> str:
    out = list(header)
    width = max((len(r.prop) for r in results), default=10)
    for r in results:
        out.extend(result_lines(r, width))
    return "\n".join(out) + ("\n" if out else "") + tail(results, coverage)


def ktap(results: Sequence[Result]) -> str:
    designs: dict[str, list[Result]] = {}
    for r in results:
        designs.setdefault(r.design, []).append(r)
    out = ["KTAP version 1", f"1..{len(designs)}"]
    for i, (d, rs) in enumerate(designs.items(), 1):
        out += ["  KTAP version 1", f"  1..{len(rs)}"]
        for j, r in enumerate(rs, 1):
            name = f"{r.prop}:{r.engine}"
            for ln in trace_lines(r):
                out.append(f"  # {ln.removeprefix('# ')}")
            diag = f"{r.verdict.value} {r.method}".replace("#", "no.")
            if r.inconclusive:
                directive = "TIMEOUT" if r.verdict is Verdict.UNKNOWN else "ERROR"
                out.append(f"  not ok {j} {name} # {directive} {diag}")
            elif not r.as_expected:
                out.append(f"  not ok {j} {name} # {diag}; expected {r.expected}")
            elif r.verdict in (Verdict.VIOLATED, Verdict.NOT_WITNESSED):
                out.append(f"  ok {j} {name} # XFAIL {diag}, as expected")
            else:
                out.append(f"  ok {j} {name} # {diag}")
        ok = all(r.as_expected for r in rs)
        out.append(f"{'ok' if ok else 'not ok'} {i} {d}")
    out.append("# " + summary(results))
    return "\n".join(out) + "\n"


def as_json(results: Sequence[Result], extra: dict[str, Any] | None = None) -> str:
    doc: dict[str, Any] = {
        "format": "shmemcheck-results", "version": JSON_VERSION,
        "results": [{
            "design": r.design, "property": r.prop, "engine": r.engine,
            "verdict": r.verdict.value, "expected": r.expected, "as_expected": r.as_expected,
            "inconclusive": r.inconclusive, "method": r.method,
            "seconds": round(r.seconds, 3), "note": r.note or None,
            "trace": trace_lines(r) or None, "init": init_of(r),
            "certificate": r.certificate,
            "stats": r.stats,
        } for r in results],
        "summary": summary(results),
        "exit": exit_code(list(results)),
    }
    if extra:
        doc.update(extra)
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def mail(results: Sequence[Result], coverage: Sequence[str] = ()) -> str:
    """A summary a reviewer can paste into a reply: <= 72 columns, ASCII, one line per
    (design, property, engine), traces indented, the summary line last."""
    import textwrap

    def ascii_(t: str) -> str:
        for a, b in (("∉", "not in"), ("∈", "in"), ("⇒", "=>"), ("∧", "&&"), ("∨", "||"),
                     ("¬", "!"), ("≠", "!="), ("≤", "<="), ("…", "..."), ("∅", "{}")):
            t = t.replace(a, b)
        return t.encode("ascii", "replace").decode()

    out: list[str] = []
    by_design: dict[str, list[Result]] = {}
    for r in results:
        by_design.setdefault(r.design, []).append(r)
    for d, rs in by_design.items():
        out.append(f"Design {d}:")
        for r in rs:
            mark = "" if r.as_expected else ("  [INCONCLUSIVE]" if r.inconclusive
                                             else "  [UNEXPECTED]")
            out += textwrap.wrap(f"{r.prop}: {r.verdict.value} ({r.engine}; expected "
                                 f"{r.expected}){mark}", 72, initial_indent="  ",
                                 subsequent_indent="      ")
            out += textwrap.wrap(ascii_(r.method), 72, initial_indent="      ",
                                 subsequent_indent="      ")
            for ln in trace_lines(r):
                out += textwrap.wrap(ascii_(ln), 72, initial_indent="      ",
                                     subsequent_indent="          ")
            if r.certificate:
                for ln in r.certificate.splitlines():
                    out += textwrap.wrap(ascii_(ln), 72, initial_indent="      inv: ",
                                         subsequent_indent="           ")
    for c in coverage:
        out += textwrap.wrap(ascii_(c), 72, subsequent_indent="    ")
    out += textwrap.wrap(summary(results), 72, subsequent_indent="    ")
    return "\n".join(out) + "\n"
