"""`shmemcheck check` and `shmemcheck lemmas`: engines on designs, results as reports and files."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from checker.check import progress, run_explicit, run_symbolic
from checker.cli_common import (
    ENGINES,
    UsageError,
    explicit_preflight,
    load_designs,
    max_memory_arg,
    parse_scope,
)
from checker.verdict import (
    EXIT_INCONCLUSIVE,
    Result,
    Verdict,
    exit_code,
)

if TYPE_CHECKING:
    from model.lang.design import Design
    from properties.catalogue import Property


def cmd_check(args: argparse.Namespace) -> int:
    from checker import report
    from properties.catalogue import for_design, load

    designs = load_designs(args.design or [])
    cat = load()
    for p in args.property or []:
        if p not in cat:
            raise UsageError(f"unknown property {p!r} (see `shmemcheck list`)")
    engines = list(ENGINES) if "all" in args.engine else list(dict.fromkeys(args.engine))
    user_scope = parse_scope(args.scope)
    max_memory = max_memory_arg(args)
    if "explicit" in engines:  # a state too wide for the engine: refused before anything runs
        explicit_preflight(designs, user_scope)
    lines: list[str] = []
    plan: list[tuple[Design, list[Property], dict[str, int]]] = []
    for d in designs:
        props = for_design(d)
        if args.property:
            props = [p for p in props if p.name in args.property]
        if not props:
            lines.append(f"{d.name}: none of the requested properties applies" if args.property
                         else f"{d.name}: no property of the catalogue applies")
            continue
        try:
            scope = d.scope(user_scope)
        except KeyError as e:
            raise UsageError(f"design {d.name} has no scope parameter {e.args[0]!r} "
                             f"(has: {', '.join(d.default_scope)})") from None
        plan.append((d, props, scope))
    if not plan:  # nothing checked is never success
        names = ", ".join(d.name for d in designs)
        raise UsageError("nothing to check: " + (
            f"no requested property applies to {names}" if args.property
            else f"no property applies to {names}"))
    # an output that cannot be written is found now, not after a long run
    from checker.atomic import check_output, check_output_dir

    if args.out:
        check_output_dir(args.out)
    if args.certificate:
        check_output(args.certificate)
    if any(e != "explicit" for e in engines):
        try:
            import checker.symbolic  # noqa: F401
        except ImportError as e:
            raise UsageError(f"symbolic engines are not available: {e}") from None
    stream = args.format == "text"  # json, ktap and mail are documents: printed at the end
    width = max(len(p.name) for _, props, _ in plan for p in props)
    total = sum(len(props) for _, props, _ in plan) * len(engines)
    t0 = time.perf_counter()
    results: list[Result] = []

    def done(rs: Sequence[Result]) -> None:
        for r in rs:
            results.append(r)
            if stream:
                sys.stdout.write("\n".join(report.result_lines(r, width)) + "\n")
                sys.stdout.flush()
            if not args.quiet and r.engine != "explicit":
                progress(f"{len(results)}/{total} {r.design} {r.prop} [{r.engine}]: "
                          f"{r.verdict.value} in {r.seconds:.1f} s "
                          f"(elapsed {time.perf_counter() - t0:.0f} s)")

    for d, props, scope in plan:
        for eng in engines:
            if eng == "explicit":
                rs, cov = run_explicit(d, props, scope, args.quiet, max_memory)
                done(rs)
                lines += cov
                if not args.quiet:
                    progress(f"{len(results)}/{total} {d.name} [explicit]: {len(rs)} "
                              f"properties in {rs[0].seconds:.1f} s "
                              f"(elapsed {time.perf_counter() - t0:.0f} s)")
                continue
            for p in props:
                done(run_symbolic(d, [p], eng, lemmas=args.lemmas,
                                  depth=args.k_max if eng == "kind" else args.depth,
                                  timeout=args.timeout))
    changes = [c for d in designs for c in changed_from_base(d, results)]
    if args.format == "json":
        out = report.as_json(results, {"coverage": lines, "changed_from_base": changes})
    elif args.format == "ktap":
        out = report.ktap(results)
    elif args.format == "mail":
        out = report.mail(results, lines + changes)
    else:
        out = report.tail(results, lines + changes)  # the result lines were streamed
    sys.stdout.write(out)
    sys.stdout.flush()
    if args.out:
        write_outputs(args.out, results)
    if args.certificate:
        from checker.atomic import write_text

        write_text(args.certificate, certificates_smt2(results))
    return exit_code(results)


def changed_from_base(design: Design, results: Sequence[Result]) -> list[str]:
    """For a what-if design: each property whose verdict here differs from the verdict its
    base design is expected to give (the catalogue's, which the test suite checks), e.g.
    `changed from base memfd: exec-seal-mode-fixed violated → holds [explicit]`."""
    from checker.verdict import AGREES
    from model import designs
    from properties.catalogue import load

    if not designs.is_whatif(design.name) or not design.base:
        return []
    cat = load()
    seen: dict[tuple[str, str, str], list[str]] = {}
    for r in results:
        if r.design != design.name or r.inconclusive or r.prop not in cat:
            continue
        now = next((k for k, vs in AGREES.items() if r.verdict in vs), None)
        was = cat[r.prop].expected(design.base)
        if now is not None and now != was:
            seen.setdefault((r.prop, was, now), []).append(r.engine)
    out = [f"changed from base {design.base}: {p} {was} → {now} [{', '.join(engs)}]"
           for (p, was, now), engs in seen.items()]
    checked = sum(r.design == design.name and not r.inconclusive for r in results)
    if not out and checked:
        out.append(f"{design.name}: no verdict changed from base {design.base}")
    return out


def certificates_smt2(results: list[Result]) -> str:
    """Every certificate of a run as one SMT-LIB2 script: each labelled by an `echo` and
    followed by `(reset)`, so any solver prints the label and then three `unsat`."""
    parts = []
    for r in results:
        if r.certificate_smt2:
            parts.append(f'(echo "{r.design} {r.prop} {r.engine}")\n{r.certificate_smt2}(reset)\n')
    if not parts:
        return "; shmemcheck: no certificate in this run (nothing was PROVED)\n"
    return "\n".join(parts)


def cmd_lemmas(args: argparse.Namespace) -> int:
    """Print each design's tool-found lemmas (checker/houdini.py), grouped by premise."""
    from checker.houdini import lemmas_for
    from checker.symbolic import encoder

    code = 0
    for d in load_designs(args.design or []):
        try:
            lem = lemmas_for(d, encoder(d), args.timeout)
        except TimeoutError as e:
            print(f"{d.name}: UNKNOWN: {e}")
            code = EXIT_INCONCLUSIVE
            continue
        print(f"{d.name}: {lem.summary()}; inductive (Init ⇒ L, L ∧ Trans ⇒ L'), "
              f"unbounded; mined from {lem.mined_states:,} states")
        for line in lem.text.splitlines():
            print(f"  {line}")
    return code


def write_outputs(outdir: str, results: list[Result]) -> None:
    """Every counterexample/witness in every format, every certificate; exports a format
    cannot write (a call with no C reproducer) are summarised in one line on stderr."""
    from checker.atomic import write_text
    from checker.replay import replay_for_export
    from model import designs
    from traces.concretize import run_to_trace
    from traces.export import EXPORTERS, ExportError
    from traces.textfmt import format_trace

    skipped: dict[tuple[str, str], list[str]] = {}
    for r in results:
        if r.certificate_smt2:
            write_text(os.path.join(outdir, f"{r.design}.{r.prop}.{r.engine}.smt2"),
                       r.certificate_smt2)
        if r.run is None:
            continue
        d = designs.get(r.design)
        kind = "violates" if r.verdict is Verdict.VIOLATED else "witnesses"
        t = run_to_trace(d, r.run, expect=f"{kind} {r.prop}", title=f"{r.prop} on {r.design}")
        base = os.path.join(outdir, f"{r.design}.{r.prop}.{r.engine}")
        write_text(base + ".trace", format_trace(t))
        replayed = replay_for_export(d, t)
        for fmt, (ext, fn) in EXPORTERS.items():
            try:
                text = fn(d, replayed)
            except ExportError as e:  # e.g. a call the C exporter has no reproducer for
                why = re.sub(r"^step \d+: ", "", str(e).split(" (calls:")[0])
                skipped.setdefault((fmt, why), []).append(f"{base}.{ext}")
                continue
            write_text(f"{base}.{ext}", text)
    if skipped:
        n = sum(len(v) for v in skipped.values())
        parts = [f"no {fmt} export: {why} ({len(v)}" + (f", e.g. {v[0]})" if len(v) > 1
                                                        else f": {v[0]})")
                 for (fmt, why), v in sorted(skipped.items(), key=lambda kv: -len(kv[1]))]
        print(f"shmemcheck: {n} export file(s) not written: " + "; ".join(parts),
              file=sys.stderr)
