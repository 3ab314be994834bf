"""The command line: shmemcheck list | check | replay | export | explore.

Exit status: 0 everything as expected, 1 something unexpected (a violation, a missed witness, a
divergence), 2 usage or input error, 3 inconclusive (timeout, unknown, CTI).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from checker.verdict import (
    EXIT_INCONCLUSIVE,
    EXIT_OK,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    Result,
    Verdict,
    exit_code,
)
from model.lang.design import ScopeError

if TYPE_CHECKING:
    from model.lang.design import Design
    from properties.catalogue import Property
    from traces.run import ARun

ENGINES = ("explicit", "bmc", "kind", "pdr")


class UsageError(Exception):
    pass


def parse_scope(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    if not text:
        return out
    for part in text.split(","):
        k, eq, v = part.partition("=")
        k = k.strip()
        if not eq or not v.strip().isdigit():
            raise UsageError(f"bad --scope item {part!r}: want NAME=NUMBER[,NAME=NUMBER...]")
        out[k] = int(v)
    return out


def scope_text(scope: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in scope.items())


def load_designs(names: Sequence[str]) -> list[Design]:
    from model import designs

    if not names:
        return [designs.get(n) for n in designs.names()]
    out: list[Design] = []
    for n in names:
        if n.endswith(".py") or os.sep in n:
            from model.whatif import WhatIfError, load_whatif
            try:
                out.append(load_whatif(n))
            except WhatIfError as e:
                raise UsageError(str(e)) from None
            continue
        try:
            out.append(designs.get(n))
        except KeyError:
            raise UsageError(f"unknown design {n!r} (designs: "
                             f"{', '.join(designs.names(include_corpus=True))})") from None
    return out


def cmd_list(args: argparse.Namespace) -> int:
    from model import designs
    from properties.catalogue import for_design, load

    print("designs:")
    for n in designs.names(include_corpus=True):
        d = designs.get(n)
        base = f" (delta on {d.base})" if d.base else ""
        tag = " [bug corpus: shmemcheck corpus]" if designs.is_corpus(n) else ""
        print(f"  {n:<20} {d.doc}{base}{tag}")
    print("properties:")
    for p in load().values():
        print(f"  {p.name:<40} {p.kind:<16} {p.enforced_by}")
    print("actions:")
    for n in designs.names():
        d = designs.get(n)
        print(f"  {n}: " + ", ".join(a.name for a in d.actions))
        print(f"    scope defaults: {scope_text(dict(d.default_scope))}; properties: "
              f"{len(for_design(d))}")
    return EXIT_OK


def _progress(msg: str) -> None:
    print(f"  … {msg}", file=sys.stderr, flush=True)


def run_explicit(design: Design, props: Sequence[Property], scope: dict[str, int],
                 quiet: bool) -> tuple[list[Result], list[str]]:
    from checker.explicit import Explorer

    ex = Explorer(design, scope, props,
                  progress=None if quiet else _progress)
    r = ex.run()
    st = scope_text(scope)
    method = f"explicit, scope {st}"
    note = ("; the scope bounded some counters (transitions pruned: "
            f"{r.pruned}), so this holds within the scope only") if r.pruned else ""
    results = []
    for name, o in r.props.items():
        p = o.prop
        if p.kind in ("always", "action"):
            v = Verdict.EXHAUSTED if o.holds else Verdict.VIOLATED
        else:
            v = Verdict.WITNESSED if o.holds else Verdict.NOT_WITNESSED
        results.append(Result(design.name, name, "explicit", v,
                              p.expected(design.name), method
                              + (note if v in (Verdict.EXHAUSTED, Verdict.NOT_WITNESSED)
                                 else ""),
                              r.seconds, o.run,
                              stats={"states": r.states, "transitions": r.transitions,
                                     "depth": r.depth}))
    cov = [f"{design.name}: explicit states={r.states:,} transitions={r.transitions:,} "
           f"depth={r.depth} sec={r.seconds:.2f} states/s={r.states_per_second:,.0f} "
           f"bytes/state={r.stored_bytes / max(1, r.states):.1f} scope {st}"]
    unc = r.uncovered()
    if unc:
        cov.append(f"{design.name}: rules that never fired in the reachable space: "
                   + ", ".join(f"{a}.{lab}" for a, lab in unc))
    else:
        cov.append(f"{design.name}: coverage: every rule of every action fired")
    return results, cov


def cmd_check(args: argparse.Namespace) -> int:
    from properties.catalogue import for_design, load

    designs = load_designs(args.design or [])
    cat = load()
    for p in args.property or []:
        if p not in cat:
            raise UsageError(f"unknown property {p!r} (see `shmemcheck list`)")
    engines = list(ENGINES) if "all" in args.engine else args.engine
    user_scope = parse_scope(args.scope)
    results: list[Result] = []
    lines: list[str] = []
    for d in designs:
        props = for_design(d)
        if args.property:
            props = [p for p in props if p.name in args.property]
            if not props:
                lines.append(f"{d.name}: none of the requested properties applies")
                continue
        try:
            scope = d.scope(user_scope)
        except KeyError as e:
            raise UsageError(f"design {d.name} has no scope parameter {e.args[0]!r} "
                             f"(has: {', '.join(d.default_scope)})") from None
        for eng in engines:
            if eng == "explicit":
                rs, cov = run_explicit(d, props, scope, args.quiet)
                results += rs
                lines += cov
            else:
                try:
                    from checker.symbolic import check_symbolic
                except ImportError as e:
                    raise UsageError(f"engine {eng} is not available: {e}") from None
                for p in props:
                    results.append(check_symbolic(d, p, eng, lemmas=args.lemmas,
                                                  depth=args.k_max if eng == "kind"
                                                  else args.depth,
                                                  timeout=args.timeout))
    from checker import report

    if args.format == "json":
        out = report.as_json(results, {"coverage": lines})
    elif args.format == "ktap":
        out = report.ktap(results)
    elif args.format == "mail":
        out = report.mail(results, lines)
    else:
        out = report.text(results, coverage=lines)
    sys.stdout.write(out)
    if args.out:
        write_outputs(args.out, results)
    if args.certificate:
        from checker.atomic import write_text

        write_text(args.certificate, certificates_smt2(results))
    return exit_code(results)


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
    from checker.atomic import write_text
    from model import designs
    from traces.concretize import run_to_trace
    from traces.export import EXPORTERS, ExportError
    from traces.textfmt import format_trace

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
        for fmt, (ext, fn) in EXPORTERS.items():
            try:
                text = fn(d, t)
            except ExportError as e:  # e.g. a call the C exporter has no reproducer for
                why = str(e).split(" (calls:")[0]
                print(f"shmemcheck: {base}.{ext} not written: no {fmt} export: {why}",
                      file=sys.stderr)
                continue
            write_text(f"{base}.{ext}", text)


def cmd_replay(args: argparse.Namespace) -> int:
    from checker.replay import TraceInputError, check_expectation
    from model import designs
    from traces.textfmt import TraceSyntaxError, load_trace

    files = []
    for f in args.files:
        if os.path.isdir(f):
            for root, _, names in sorted(os.walk(f)):
                files += [os.path.join(root, n) for n in sorted(names) if n.endswith(".trace")]
        else:
            files.append(f)
    if not files:
        raise UsageError("no trace files given")
    traces = []
    for f in files:
        try:
            t = load_trace(f)
        except OSError as e:
            raise UsageError(f"{f}: {e.strerror}") from None
        except TraceSyntaxError as e:
            print(str(e), file=sys.stderr)
            return EXIT_USAGE
        t.path = f
        try:
            designs.get(t.design)
        except KeyError:
            at = t.header_pos.get("design")
            print(f"{f}:{at.line if at else 1}:{at.col if at else 1}: unknown design "
                  f"{t.design!r}", file=sys.stderr)
            return EXIT_USAGE
        traces.append(t)
    good = bad = skipped = 0
    for t in traces:
        d = designs.get(t.design)
        try:
            rep = check_expectation(d, t)
        except TraceInputError as e:
            print(str(e), file=sys.stderr)
            return EXIT_USAGE
        ok = rep.expectation_met
        msg = rep.message
        if ok and args.on == "both" and d.kernel is None:
            skipped += 1
            msg += (f"; kernel: SKIP design {d.name} is not a model of a live kernel "
                    "(a historical or proposed design)")
        elif ok and args.on in ("kernel", "both"):
            from checker.kernel_replay import replay_on_kernel
            kres = replay_on_kernel(d, t, rep, against=args.on)
            if kres.skipped:
                skipped += 1
                msg += f"; kernel: SKIP {kres.skipped}"
            elif kres.divergence:
                ok = False
                msg = kres.divergence
            else:
                msg += f"; kernel: {kres.summary}"
        print(("ok   " if ok else "FAIL ") + msg)
        good += ok
        bad += not ok
    print(f"replay: {len(traces)} traces, {good} as expected, {bad} not, {skipped} skipped on "
          f"the kernel: {'everything verified as expected' if not bad else 'FAILURES'}")
    return EXIT_OK if not bad else EXIT_UNEXPECTED


def cmd_conform(args: argparse.Namespace) -> int:
    from checker.conform import (
        DEFAULT_SCOPES,
        DEFAULT_WALK_SCOPES,
        ConformOptions,
        print_report,
        run_conform,
    )

    (d,) = load_designs([args.design])
    name = d.name

    def split(text: str | None, default: str | None) -> tuple[dict[str, int], int | None]:
        sc = parse_scope(default)
        sc.update(parse_scope(text))
        depth = sc.pop("depth", None)
        try:
            return d.scope(sc), depth
        except KeyError as e:
            raise UsageError(f"design {name} has no scope parameter {e.args[0]!r} (has: "
                             f"{', '.join([*d.default_scope, 'depth'])})") from None

    scope, depth = split(args.scope, DEFAULT_SCOPES.get(name, "depth=3"))
    walk_scope, _ = split(args.walk_scope, DEFAULT_WALK_SCOPES.get(name))
    for flag, v, lo in (("--random", args.random, 0), ("--length", args.length, 1),
                        ("--jobs", args.jobs, 1)):
        if v < lo:
            raise UsageError(f"{flag} must be at least {lo}")
    opts = ConformOptions(scope, depth, walks=args.random, seed=args.seed, length=args.length,
                          walk_scope=walk_scope, exhaustive=not args.no_exhaustive,
                          jobs=args.jobs, hugetlb=not args.no_hugetlb, out=args.out,
                          progress=None if args.quiet else _progress)
    rep = run_conform(d, opts)
    print_report(rep)
    if rep.divergent:
        return EXIT_UNEXPECTED
    if rep.unconfirmed or not rep.traces:  # a flaky difference, or nothing reached the kernel
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from model import designs
    from traces.export import EXPORTERS, ExportError
    from traces.textfmt import TraceSyntaxError, load_trace

    if args.to not in EXPORTERS:
        raise UsageError(f"unknown format {args.to!r} (formats: {', '.join(EXPORTERS)})")
    try:
        t = load_trace(args.trace)
    except OSError as e:
        raise UsageError(f"{args.trace}: {e.strerror}") from None
    except TraceSyntaxError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    t.path = args.trace
    try:
        d = designs.get(t.design)
    except KeyError:
        raise UsageError(f"{args.trace}:1:1: unknown design {t.design!r}") from None
    from checker.replay import TraceInputError, model_outcomes

    try:
        model_outcomes(d, t)  # validates every line against the design before exporting
    except TraceInputError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    try:
        text = EXPORTERS[args.to][1](d, t)
    except ExportError as e:
        m = re.match(r"step (\d+)\b", str(e))
        pos = t.steps[int(m.group(1)) - 1].pos if m and 0 < int(m.group(1)) <= len(t.steps) \
            else None
        where = f"{pos.line}:{pos.col}" if pos and pos.line else "1:1"
        print(f"{args.trace}:{where}: cannot export to {args.to}: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.output:
        from checker.atomic import write_text
        write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_explore(args: argparse.Namespace) -> int:
    from checker.graph import TooLarge, state_graph, to_dot

    (d,) = load_designs([args.design])
    try:
        scope = d.scope(parse_scope(args.scope))
    except KeyError as e:
        raise UsageError(f"no scope parameter {e.args[0]!r}") from None
    try:
        g = state_graph(d, scope, max_states=args.max_states)
    except TooLarge as e:
        raise UsageError(f"{e}: choose a smaller --scope or raise --max-states") from None
    dot = to_dot(d, g)
    from checker.atomic import write_text

    if args.graph:
        write_text(args.graph, dot)
        import shutil
        import subprocess
        if shutil.which("dot"):
            subprocess.run(["dot", "-Tsvg", args.graph, "-o",
                            os.path.splitext(args.graph)[0] + ".svg"], check=False)
    else:
        sys.stdout.write(dot)
    print(f"explore: {g.number_of_nodes()} states, {g.number_of_edges()} transitions",
          file=sys.stderr)
    return EXIT_OK


def _run_lines(design: Design, run: ARun) -> list[str]:
    """A divergence example as strace lines; a final call outside the design's model (possible
    in the other design only) is said so rather than printed."""
    from traces.concretize import run_to_trace
    from traces.run import ARun
    from traces.textfmt import format_step

    steps = list(run.steps)
    tail: list[str] = []
    if steps and steps[-1].rule == "(outside the model)":
        tail = [f"{steps[-1].action}: not possible here (outside this design's model)"]
        steps = steps[:-1]
    t = run_to_trace(design, ARun(run.init, steps))
    return [format_step(x) for x in t.steps] + tail


def cmd_diff(args: argparse.Namespace) -> int:
    from checker.diff import Differ, restrict_domain, rule_changes
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
    scope = dict(a.default_scope)
    scope.update({k: v for k, v in b.default_scope.items() if k not in scope})
    scope.update(parse_scope(args.scope))
    try:
        r = Differ(a, b, scope, progress=None if args.quiet else _progress).run()
    except ValueError as e:
        raise UsageError(str(e)) from None
    st = scope_text(scope)
    w = 72 if args.format == "mail" else 100
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
    changes = rule_changes(a, b)
    if changes:
        lines.append("rules added (+), changed (~) or dropped (-):")
        lines += [f"  {c}" for c in changes]
    for d in r.divergences:
        ra, rb = d.example
        lines.append(f"divergence: {d.action} ({d.count} reachable occurrences): "
                     f"{a.name} {d.rule_a}, {b.name} {d.rule_b}")
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
                   f"{outcome_text(sh.example[1].steps[-1].out)})")
    code = EXIT_OK if same_calls else EXIT_UNEXPECTED
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
    if args.format == "mail":
        import textwrap
        lines = [wl for ln in lines for wl in (textwrap.wrap(ln, w, subsequent_indent="    ")
                                               or [""])]
    sys.stdout.write("\n".join(lines) + "\n")
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
    results = corpus.run_corpus(bugs, symbolic=not args.explicit, timeout=args.timeout,
                                progress=None if args.quiet else _progress)
    sys.stdout.write(corpus.table(results, markdown=args.format == "markdown"))
    if args.out:
        for a in corpus.write_artifacts(results, args.out):
            if a.note:
                print(f"  {a.path}: {a.note}", file=sys.stderr)
    print(corpus.summary(results))
    return corpus.exit_status(results)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="shmemcheck", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="designs, properties, actions")
    c = sub.add_parser("check", help="check properties of designs")
    c.add_argument("--design", action="append", help="a built-in design or a what-if .py file")
    c.add_argument("--property", action="append")
    c.add_argument("--engine", action="append", choices=[*ENGINES, "all"])
    c.add_argument("--scope", help="NAME=N,... (explicit engine bounds)")
    c.add_argument("--depth", type=int, default=20, help="bmc depth (default 20)")
    c.add_argument("--k-max", type=int, default=8,
                   help="largest k for k-induction (default 8; a CTI at k-max is reported)")
    c.add_argument("--no-lemmas", dest="lemmas", action="store_false",
                   help="k-induction without the tool-found (Houdini) strengthening lemmas")
    c.add_argument("--timeout", type=float, default=60.0, help="seconds per solver query")
    c.add_argument("--format", choices=["text", "json", "ktap", "mail"], default="text")
    c.add_argument("--out", help="write every counterexample/witness here in every format, "
                   "and every certificate as DESIGN.PROPERTY.ENGINE.smt2")
    c.add_argument("--certificate", metavar="FILE",
                   help="write every certificate of the run to FILE as one SMT-LIB2 script "
                   "(each labelled by an echo; every check-sat must answer unsat)")
    c.add_argument("--quiet", action="store_true", help="no progress on stderr")
    r = sub.add_parser("replay", help="replay trace files (or directories of them)")
    r.add_argument("files", nargs="+")
    r.add_argument("--on", choices=["model", "kernel", "both"], default="model")
    e = sub.add_parser("export", help="export a trace to another format")
    e.add_argument("trace")
    e.add_argument("--to", required=True)
    e.add_argument("-o", "--output")
    k = sub.add_parser("conform", help="differential conformance: model transitions and "
                       "random walks replayed on the live kernel")
    k.add_argument("--design", default="memfd")
    k.add_argument("--scope", help="conformance scope NAME=N,... plus depth=D (states within D "
                   "steps); default per design (memfd: pages=2,maps=2,pins=2,fds=2,depth=3)")
    k.add_argument("--random", type=int, default=2000, metavar="N",
                   help="random walks (default 2000)")
    k.add_argument("--seed", type=int, default=1)
    k.add_argument("--length", type=int, default=12, metavar="L",
                   help="steps per random walk (default 12)")
    k.add_argument("--walk-scope", help="scope of the random walks (memfd: "
                   "pages=3,maps=3,pins=2,fds=3)")
    k.add_argument("--no-exhaustive", action="store_true",
                   help="random walks only, not every transition of the conformance scope")
    k.add_argument("--out", metavar="DIR", help="write each minimal divergent trace here")
    k.add_argument("--jobs", type=int, default=2, help="kernel worker processes (default 2)")
    k.add_argument("--no-hugetlb", action="store_true",
                   help="leave out MFD_HUGETLB files (no huge pages reserved)")
    k.add_argument("--quiet", action="store_true", help="no progress on stderr")
    df = sub.add_parser("diff", help="do two designs give the same outcomes? (exit 0 same, "
                        "1 different, 2 trouble)")
    df.add_argument("a")
    df.add_argument("b")
    df.add_argument("--scope")
    df.add_argument("--exclude-flag", action="append",
                    help="ACTION.PARAM=MASK: leave out parameter values with these bits")
    df.add_argument("--format", choices=["text", "mail"], default="text")
    df.add_argument("--engine", choices=["explicit", "symbolic", "both"], default="both",
                    help="explicit product within a scope, z3 without one, or both")
    df.add_argument("--timeout", type=float, default=120.0, help="seconds for the z3 query")
    df.add_argument("--quiet", action="store_true")
    en = sub.add_parser("encoding", help="flag bits distinct, round-trip, layout consistent")
    en.add_argument("--design", action="append")
    en.add_argument("--compose", nargs=2, metavar=("A", "B"))
    cp = sub.add_parser("compare", help="the seed's promise: v5 MFD_INACCESSIBLE vs "
                        "guest_memfd, as a markdown table")
    cp.add_argument("--engine", choices=ENGINES, default="explicit")
    cp.add_argument("--timeout", type=float, default=60.0)
    cp.add_argument("--legend", action="store_true", help="also print each method in full")
    x = sub.add_parser("explore", help="the state graph of a small scope as DOT")
    x.add_argument("--design", default="memfd")
    x.add_argument("--scope")
    x.add_argument("--graph", help="write DOT here (and SVG beside it if Graphviz is installed)")
    x.add_argument("--max-states", type=int, default=20000)
    lm = sub.add_parser("lemmas", help="the invariants k-induction is strengthened with: "
                        "mined candidates Houdini proved inductive")
    lm.add_argument("--design", action="append")
    lm.add_argument("--timeout", type=float, default=120.0, help="seconds per solver query")
    cp = sub.add_parser("corpus", help="the bug corpus: each historical bug caught on its "
                        "-broken design, each fix holding on its -fixed design")
    cp.add_argument("--bug", action="append", help="only this bug (B1, ..., G1)")
    cp.add_argument("--explicit", action="store_true",
                    help="explicit engine only (fixes then hold within the scope, unproved)")
    cp.add_argument("--timeout", type=float, default=60.0, help="seconds per pdr query")
    cp.add_argument("--format", choices=["text", "markdown"], default="text")
    cp.add_argument("--out", metavar="DIR", help="write <id>-broken/-fixed traces and C "
                    "reproducers here (traces/scenarios/corpus holds the committed ones)")
    cp.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if getattr(args, "engine", None) is None and args.cmd == "check":
        args.engine = ["explicit"]
    handlers = {"list": cmd_list, "check": cmd_check, "replay": cmd_replay,
                "export": cmd_export, "explore": cmd_explore, "conform": cmd_conform,
                "diff": cmd_diff, "encoding": cmd_encoding, "compare": cmd_compare,
                "corpus": cmd_corpus, "lemmas": cmd_lemmas}
    try:
        return handlers[args.cmd](args)
    except UsageError as e:
        print(f"shmemcheck: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ScopeError as e:  # a --scope value beyond what the design explores
        print(f"shmemcheck: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("shmemcheck: interrupted", file=sys.stderr)
        return EXIT_INCONCLUSIVE


if __name__ == "__main__":
    t0 = time.perf_counter()
    sys.exit(main())

__all__ = ["EXIT_INCONCLUSIVE", "EXIT_UNEXPECTED", "main"]
