"""`shmemcheck diff`, `encoding`, `compare` and `corpus`: designs against each other."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from checker.check import progress
from checker.cli_common import (
    UsageError,
    load_designs,
    max_memory_arg,
    parse_scope,
)
from checker.verdict import (
    EXIT_INCONCLUSIVE,
    EXIT_OK,
    EXIT_UNEXPECTED,
    exit_code,
)
from model.lang.design import scope_text

if TYPE_CHECKING:
    from checker.diff import Divergence
    from model.lang.design import Design
    from traces.run import ARun


def _run_lines(design: Design, run: ARun) -> list[str]:
    """A divergence example as strace lines after its `# init:` line; a final call outside the
    design's model (possible in the other design only) is said so rather than printed."""
    from traces.concretize import init_line, run_to_trace
    from traces.run import ARun
    from traces.textfmt import format_step

    head = [x for x in [init_line(design, run.init)] if x]
    steps = list(run.steps)
    tail: list[str] = []
    if steps and steps[-1].rule == "(outside the model)":
        tail = [f"{steps[-1].action}: not possible here (outside this design's model)"]
        steps = steps[:-1]
    t = run_to_trace(design, ARun(run.init, steps))
    return head + [format_step(x) for x in t.steps] + tail


def _what(a: Design, b: Design, d: Divergence) -> str:
    """What a divergence differs in; effects with their names on each side."""
    if d.what != "effects":
        return d.what
    ra, rb = d.example

    def eff(design: Design, run: ARun) -> str:
        bits = run.steps[-1].eff if run.steps else 0
        names = [n for i, n in enumerate(design.effects) if bits >> i & 1]
        return "{" + ",".join(names) + "}" if names else "∅"

    return f"effects ({a.name} {eff(a, ra)}, {b.name} {eff(b, rb)})"


def _layout_lines(a: Design, b: Design) -> list[str]:
    """The named inode flags whose place (field, bit) differs: the correspondence of bits."""
    la, lb = a.schema.flag_layout, b.schema.flag_layout

    def at(lay: Mapping[str, tuple[str, int]], k: str) -> str:
        return f"{lay[k][0]}:{lay[k][1]:#x}" if k in lay else "(none)"

    moved = [k for k in sorted(set(la) | set(lb)) if la.get(k) != lb.get(k)]
    if not moved:
        return []
    return ["inode flags (field:bit) that differ in place:"] + [
        f"  {k}: {a.name} {at(la, k)}, {b.name} {at(lb, k)}" for k in moved]


def _static_lines(a: Design, b: Design) -> list[str]:
    """What reading the two designs shows: flags that moved, rules added, changed, dropped."""
    from checker.diff import rule_changes

    lines = _layout_lines(a, b)
    changes = rule_changes(a, b)
    if changes:
        lines.append("rules added (+), changed (~) or dropped (-):")
        lines += [f"  {c}" for c in changes]
    return lines


def _write(lines: list[str], args: argparse.Namespace) -> None:
    """The report on stdout, wrapped at 72 columns for --format mail."""
    if args.format == "mail":
        import textwrap
        lines = [wl for ln in lines for wl in (textwrap.wrap(ln, 72, subsequent_indent="    ")
                                               or [""])]
    sys.stdout.write("\n".join(lines) + "\n")


def _flags_word(a: Design, b: Design, args: argparse.Namespace) -> int:
    from checker.flags_word import compare

    extra = [o for o, v in (("--scope", args.scope), ("--exclude-flag", args.exclude_flag),
                            ("--engine", args.engine != "both")) if v]
    if extra:
        raise UsageError(f"--flags-word compares the designs' rules statically: "
                         f"{', '.join(extra)} does not apply")
    lines, same = compare(a, b)
    _write(lines, args)
    return EXIT_OK if same else EXIT_UNEXPECTED


def _symbolic_only(a: Design, b: Design, args: argparse.Namespace) -> int:
    """`diff --engine symbolic`: z3 alone, without a scope and without the explicit product.
    Only EQUIVALENT is a verdict it can give by itself: a distinguishing run z3 finds (by a
    bounded unrolling or Spacer) is not replayed here, so it is inconclusive (exit 3) and
    says to run --engine both."""
    from checker.diff_symbolic import symbolic_diff

    if args.scope:
        raise UsageError("--scope bounds the explicit product; --engine symbolic has no scope")
    calls_a, calls_b = {x.name for x in a.actions}, {x.name for x in b.actions}
    if calls_a != calls_b:
        raise UsageError(
            f"--engine symbolic compares designs with the same calls ({a.name} only: "
            f"{', '.join(sorted(calls_a - calls_b)) or '-'}; {b.name} only: "
            f"{', '.join(sorted(calls_b - calls_a)) or '-'}): use --engine explicit")
    lines = [f"diff {a.name} -> {b.name}: symbolic (z3), every scope", *_static_lines(a, b)]
    sd = symbolic_diff(a, b, timeout=args.timeout)
    if sd.verdict == "equivalent":
        lines.append(f"diff: EQUIVALENT for every scope ({sd.reason}; {sd.seconds:.1f} s)")
        code = EXIT_OK
    elif sd.verdict == "different":
        lines.append(f"diff: UNKNOWN: z3 finds a distinguishing run "
                     f"({sd.reason or 'Spacer'}; {sd.seconds:.1f} s), "
                     "not replayed here: run --engine both for the replayed trace")
        code = EXIT_INCONCLUSIVE
    else:
        lines.append(f"diff: UNKNOWN ({sd.reason or 'no answer'}; {sd.seconds:.1f} s)")
        code = EXIT_INCONCLUSIVE
    _write(lines, args)
    return code


def cmd_diff(args: argparse.Namespace) -> int:
    from checker.diff import Differ, restrict_domain
    from model.lang.action import outcome_text

    a, b = load_designs([args.a, args.b])
    for spec in args.exclude_flag or []:
        try:
            where, _, mask = spec.partition("=")
            act, _, param = where.partition(".")
            m = int(mask, 0)
            a = restrict_domain(a, act, param, m)
            b = restrict_domain(b, act, param, m)
        except (ValueError, KeyError) as e:
            raise UsageError(f"bad --exclude-flag {spec!r} (want ACTION.PARAM=MASK): {e}"
                             ) from None
    if args.flags_word:
        return _flags_word(a, b, args)
    if args.engine == "symbolic":
        return _symbolic_only(a, b, args)
    scope = dict(a.default_scope)
    scope.update({k: v for k, v in b.default_scope.items() if k not in scope})
    scope.update(parse_scope(args.scope))
    try:
        r = Differ(a, b, scope, progress=None if args.quiet else progress,
                   max_memory=max_memory_arg(args)).run()
    except ValueError as e:
        raise UsageError(str(e)) from None
    st = scope_text(scope)
    lines = [f"diff {a.name} -> {b.name}: explicit product search, scope {st}",
             f"  {r.pairs:,} reachable state pairs, depth {r.depth}, {r.seconds:.1f} s"]
    if args.exclude_flag:
        lines.append("  excluding parameter values: " + ", ".join(args.exclude_flag))
    if r.only_b:
        lines.append(f"calls only in {b.name}: " + ", ".join(r.only_b))
    if r.only_a:
        lines.append(f"calls only in {a.name}: " + ", ".join(r.only_a))
    from checker.encoding import check_compose

    for c in check_compose(a, b):
        lines.append(f"uapi collision: {c}")
    lines += _static_lines(a, b)
    for d in r.divergences:
        ra, rb = d.example
        lines.append(f"divergence: {d.action} ({d.count} reachable occurrences): "
                     f"{a.name} {d.rule_a}, {b.name} {d.rule_b}; differs in {_what(a, b, d)}")
        la, lb = _run_lines(a, ra), _run_lines(b, rb)
        if la[:-1] == lb[:-1]:
            lines += [f"    {x}" for x in la[:-1]]
            lines += [f"  {a.name}: {la[-1]}", f"  {b.name}: {lb[-1]}"]
        else:
            lines += [f"  in {a.name}:"] + [f"    {x}" for x in la]
            lines += [f"  in {b.name}:"] + [f"    {x}" for x in lb]
    same_calls = not r.divergences
    method = f"explicit within scope {st}"
    if r.equivalent:
        verdict = f"EQUIVALENT ({method})"
    elif same_calls:
        verdict = (f"EQUIVALENT on every common call ({method}); {b.name} adds "
                   f"{len(r.only_b)} call(s), {a.name} {len(r.only_a)}")
    else:
        sh = r.shortest
        assert sh is not None
        n = len(sh.example[0])
        verdict = (f"DIFFERENT: shortest distinguishing trace has {n} step{'s' * (n != 1)} "
                   f"({outcome_text(sh.example[0].steps[-1].out)} vs "
                   f"{outcome_text(sh.example[1].steps[-1].out)}"
                   + ("" if sh.what == "outcome" else f"; differs in {_what(a, b, sh)}")
                   + ")")
    code = EXIT_OK if same_calls else EXIT_UNEXPECTED
    if r.stopped and same_calls:  # a difference may lie beyond: inconclusive, never a pass
        verdict = f"UNKNOWN: {r.stopped} (--max-memory)"
        code = EXIT_INCONCLUSIVE
    if args.engine in ("symbolic", "both") and not r.only_a and not r.only_b:
        from checker.diff_symbolic import symbolic_diff

        sd = symbolic_diff(a, b, timeout=args.timeout)
        if sd.verdict == "equivalent":
            lines.append(f"symbolic: EQUIVALENT for every scope ({sd.reason}; "
                         f"{sd.seconds:.1f} s)")
        elif sd.verdict == "different" and not same_calls:
            lines.append(f"symbolic: DIFFERENT (Spacer, {sd.seconds:.1f} s), as the replayed "
                         "explicit trace above shows")
        elif sd.verdict == "different":
            # no run to replay: Spacer's word alone is not shown as a confirmed difference
            lines.append(f"symbolic: Spacer reports a distinguishing run ({sd.seconds:.1f} s) "
                         "but none exists within the explicit scope, so none was replayed: "
                         "UNCONFIRMED (try a larger --scope)")
            code = EXIT_INCONCLUSIVE
        else:
            lines.append(f"symbolic: UNKNOWN ({sd.reason or 'no answer'}; {sd.seconds:.1f} s)"
                         " -- the explicit verdict holds within its scope only")
            if same_calls:
                code = EXIT_INCONCLUSIVE if args.engine == "symbolic" else code
    elif args.engine in ("symbolic", "both"):
        lines.append("symbolic: not run (the designs do not have the same calls; the product "
                     "is compared on common calls by the explicit engine)")
    lines.append(f"diff: {verdict}")
    _write(lines, args)
    return code


def cmd_encoding(args: argparse.Namespace) -> int:
    from checker.encoding import check_compose, check_design

    ds = load_designs(args.design or [])
    problems = []
    for d in ds:
        problems += check_design(d)
    if args.compose:
        a, b = load_designs(args.compose)
        problems += [f"collision: {c}" for c in check_compose(a, b)]
    for p in problems:
        print(p)
    print(f"encoding: {len(ds)} design(s) checked"
          + (f", composed {args.compose[0]} with {args.compose[1]}" if args.compose else "")
          + f": {len(problems)} problem(s)")
    return EXIT_UNEXPECTED if problems else EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from checker.compare import compare, legend

    table, results = compare(args.engine, args.timeout)
    sys.stdout.write(table)
    if args.legend:
        sys.stdout.write("\n" + legend(results))
    return exit_code(results)


def cmd_corpus(args: argparse.Namespace) -> int:
    from checker import corpus

    bugs = corpus.catalogue()
    if args.bug:
        known = {b.id for b in bugs}
        unknown = [b for b in args.bug if b not in known]
        if unknown:
            raise UsageError(f"unknown bug {unknown[0]!r} (bugs: {', '.join(sorted(known))})")
        bugs = [b for b in bugs if b.id in args.bug]
    if args.out:
        from checker.atomic import check_output_dir

        check_output_dir(args.out)
    results = corpus.run_corpus(bugs, symbolic=not args.explicit, timeout=args.timeout,
                                progress=None if args.quiet else progress)
    sys.stdout.write(corpus.table(results, markdown=args.format == "markdown"))
    if args.out:
        for a in corpus.write_artifacts(results, args.out):
            if a.note:
                print(f"  {a.path}: {a.note}", file=sys.stderr)
    print(corpus.summary(results))
    if args.kernels:
        from checker import corpus_kernels

        caught = [p for p in results if p.run is not None]
        cols = corpus_kernels.columns(caught, progress=None if args.quiet else progress)
        print()
        sys.stdout.write(corpus_kernels.table(caught, cols,
                                              markdown=args.format == "markdown"))
    return corpus.exit_status(results)
