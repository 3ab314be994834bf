"""`shmemcheck mutate`: the mutation score of the property catalogue (and the scenario library)
on a design, with every surviving mutant's shortest distinguishing trace (checker/mutate.py)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import TYPE_CHECKING, Any

from checker.check import progress
from checker.cli_common import (
    UsageError,
    conform_scopes,
    explicit_preflight,
    load_designs,
    max_memory_arg,
    parse_scope,
)
from checker.verdict import EXIT_INCONCLUSIVE, EXIT_OK, EXIT_UNEXPECTED
from model.lang.design import scope_text

if TYPE_CHECKING:
    from checker.diff import Divergence
    from checker.mutate import DesignScore, MutantResult
    from model.lang.design import Design


def _percent(text: str) -> float:
    """An argparse type: a percentage 0..100 (`80`, `80%`, `92.5`)."""
    t = text.strip().removesuffix("%")
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", t) or float(t) > 100:
        raise argparse.ArgumentTypeError(f"{text!r}: want a percentage from 0 to 100")
    return float(t)


_percent.__name__ = "percentage"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from checker.mutate import OPERATORS

    p.add_argument("--design", action="append", required=True,
                   help="a built-in design or a what-if FILE.py (repeatable)")
    p.add_argument("--scope", help="NAME=N,... of the explicit searches (default: the "
                   "design's default scope, as `check` and `diff`)")
    p.add_argument("--operator", action="append", choices=OPERATORS,
                   help="only this mutation operator (repeatable; default: all)")
    p.add_argument("--action", action="append",
                   help="only mutate the rules of this action (repeatable; default: all)")
    p.add_argument("--scenarios", metavar="DIR",
                   help="the scenario library to replay on each mutant (default: the one "
                   "shipped, traces/scenarios)")
    p.add_argument("--no-scenarios", action="store_true",
                   help="score the properties only (no scenario replay)")
    p.add_argument("--conform", action="store_true",
                   help="also run `conform --design D` on this machine's kernel (its default "
                   "bounds, or --conform-scope) once, and hold each mutant that properties "
                   "and scenarios leave to the kernel's outcomes and observations (designs "
                   "that model this kernel only: memfd, guest_memfd)")
    p.add_argument("--conform-scope", metavar="SCOPE",
                   help="with --conform: conform's --scope (NAME=N,...,depth=D)")
    p.add_argument("--conform-random", type=int, metavar="N",
                   help="with --conform: conform's random walks (default 2000)")
    p.add_argument("--min-score", type=_percent, metavar="P",
                   help="exit 1 when a design's score (with scenarios, unless "
                   "--no-scenarios; with conform, if --conform) is below P percent")
    p.add_argument("--format", choices=["text", "json", "ktap"], default="text",
                   help="text (default), json or ktap")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--max-memory", metavar="SIZE",
                   help="stop an explicit search once resident memory passes SIZE "
                   "(inconclusive, exit 3; default: half of MemAvailable)")


def cmd_mutate(args: argparse.Namespace) -> int:
    from checker.mutate import OPERATORS, kernel_evidence, load_scenarios, measure, scenario_dir
    from checker.packer import ScopeTooWide

    ds = load_designs(args.design)
    user_scope = parse_scope(args.scope)
    for d in ds:
        bad = [k for k in user_scope if k not in d.default_scope]
        if bad:
            raise UsageError(f"design {d.name} has no scope parameter {bad[0]!r} (has: "
                             f"{', '.join(d.default_scope)})")
        d.scope(user_scope)  # ScopeError beyond what the design explores: exit 2
        unknown = [a for a in args.action or [] if a not in {x.name for x in d.actions}]
        if unknown:
            raise UsageError(f"design {d.name} has no action {unknown[0]!r} (actions: "
                             f"{', '.join(a.name for a in d.actions)})")
    explicit_preflight(ds, user_scope)
    if (args.conform_scope is not None or args.conform_random is not None) and not args.conform:
        raise UsageError("--conform-scope and --conform-random need --conform")
    if args.conform_random is not None and args.conform_random < 0:
        raise UsageError("--conform-random must be at least 0")
    conform_opts = [conform_options(d, args) for d in ds] if args.conform else [None] * len(ds)
    scen = None
    if not args.no_scenarios:
        root = args.scenarios or scenario_dir()
        if not os.path.isdir(root):
            raise UsageError(f"--scenarios {root}: not a directory")
        scen = load_scenarios(root)
    mem = max_memory_arg(args)
    scores = []
    for d, copts in zip(ds, conform_opts, strict=True):
        try:
            evidence = None
            if copts is not None:
                evidence = kernel_evidence(d, copts)
                if not evidence.runs:
                    raise UsageError(f"mutate --conform: no trace of {d.name} reached the "
                                     f"kernel ({evidence.summary})")
            scores.append(measure(d, user_scope, operators=args.operator or OPERATORS,
                                  actions=args.action or (), scenarios=scen,
                                  evidence=evidence, max_memory=mem,
                                  progress=None if args.quiet else progress))
        except ScopeTooWide as e:
            raise UsageError(str(e)) from None
    code = exit_status(scores, args.min_score)
    if args.format == "json":
        doc = {"format": "shmemcheck-mutate", "version": 1,
               "designs": [score_json(s) for s in scores], "exit": code,
               "min_score": args.min_score}
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    elif args.format == "ktap":
        sys.stdout.write(ktap(scores, args.min_score))
    else:
        for s in scores:
            sys.stdout.write("\n".join(text_lines(s)) + "\n")
        sys.stdout.write(summary(scores, args.min_score, code) + "\n")
    return code


def conform_options(d: Design, args: argparse.Namespace) -> Any:
    """`conform`'s options for --conform on design d, refused (exit 2) unless d models this
    machine's kernel: a historical or proposed design differs from it by construction, and
    one of another kernel (memfd@6.1) would need that kernel booted under QEMU."""
    from checker.conform import ConformOptions, kernel_designs
    from checker.conform_guest import NoGuestKernel, target_of

    if d.kernel is None:
        raise UsageError(f"mutate --conform: design {d.name} is not a model of a live kernel "
                         "(a historical or proposed design): the kernel cannot judge its "
                         "mutants; designs that are: " + ", ".join(kernel_designs()))
    try:
        target = target_of(d)
        version = target.version if target.kernel is not None else None
    except NoGuestKernel:  # another kernel, and not fetched: refused the same way
        version = d.kernel
    if version is not None:
        raise UsageError(f"mutate --conform: design {d.name} models kernel {version}, "
                         "not this machine's; --conform runs on this machine's kernel only "
                         "(use memfd or guest_memfd)")
    scope, depth, walk = conform_scopes(d, args.conform_scope, None)
    walks = 2000 if args.conform_random is None else args.conform_random
    return ConformOptions(scope, depth, walks=walks, walk_scope=walk,
                          progress=None if args.quiet else progress)


def exit_status(scores: list[DesignScore], min_score: float | None) -> int:
    """1 below --min-score; 3 when a search stopped early or a mutant is inconclusive; else
    0 (a completed measurement)."""
    if min_score is not None and any(100 * s.score(s.with_scenarios or s.evidence is not None)
                                     < min_score
                                     for s in scores):
        return EXIT_UNEXPECTED
    if any(not s.complete or s.count("inconclusive") for s in scores):
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.0f} %)" if n else "0/0 (no non-equivalent mutant)"


def trace_lines(base: Design, mutant: Design | None, d: Divergence) -> list[str]:
    """The shortest distinguishing trace as strace lines: the common prefix, then the last
    call in the base and in the mutant (as `shmemcheck diff` prints it)."""
    from checker.cli_diff import _run_lines

    ra, rb = d.example
    la = _run_lines(base, ra)
    lb = _run_lines(mutant or base, rb)
    if la[:-1] == lb[:-1]:
        return [*la[:-1], f"{la[-1]}   # base", f"{lb[-1]}   # mutant"]
    return [f"base: {x}" for x in la] + [f"mutant: {x}" for x in lb]


def _differs(d: Divergence) -> str:
    return f"{d.action}: base {d.rule_a}, mutant {d.rule_b}; differs in {d.what}"


def text_lines(s: DesignScore) -> list[str]:
    n = len(s.nonequivalent)
    ops = sorted({m.spec.operator for m in s.mutants})
    rules = len({(m.spec.action, m.spec.rule) for m in s.mutants})
    out = [f"mutate {s.design.name}: {len(s.mutants)} mutants of {rules} fail/signal rules "
           f"({', '.join(ops)}), explicit scope {scope_text(s.scope)} ({s.states:,} states), "
           f"{len(s.properties)} properties"
           + (f", {s.scenarios} scenarios that replay on {s.design.name}"
              if s.with_scenarios else ", no scenarios") + f", {s.seconds:.0f} s"]
    out.append(f"  stillborn (not well formed): {s.count('stillborn')}; equivalent within "
               f"the scope: {s.count('equivalent')}; non-equivalent: {n}")
    out.append(f"  killed by properties: {_pct(s.killed_by_properties, n)}")
    if s.with_scenarios:
        out.append(f"  killed with scenarios: {_pct(s.killed_with_scenarios, n)}")
    if s.evidence is not None:
        e = s.evidence
        out.append(f"  killed with conform: {_pct(s.killed, n)} (the kernel's runs: "
                   f"{e.summary}; {len(e.runs):,} traces the base predicts held against "
                   "the mutants that properties and scenarios leave"
                   + (f"; {e.disagree} where the base diverges left out" if e.disagree
                      else "") + ")")
    fams = s.by_family()
    out.append("  by property family: " + "; ".join(
        f"{f} {k} ({len(ps)} properties)" for f, (k, ps) in fams.items()))
    surv = s.survivors_by()
    out.append(f"  survivors: {s.count('survived')} ("
               + ", ".join(f"{op} {c}" for op, c in surv.items()) + ")"
               + (f"; inconclusive: {s.count('inconclusive')}" if s.count("inconclusive")
                  else ""))
    if s.stopped:
        out.append(f"  stopped: {s.stopped} (--max-memory): mutants found equivalent may "
                   "differ beyond")
    for m in s.mutants:
        out += mutant_lines(s, m)
    return out


def mutant_lines(s: DesignScore, m: MutantResult) -> list[str]:
    name = m.spec.name
    if m.status == "stillborn":
        return [f"  stillborn   {name}: {m.reason}"]
    if m.status == "equivalent":
        return [f"  equivalent  {name}: {m.reason}"]
    note = [f"      ({m.reason})"] if m.reason else []
    if m.by_properties:
        return [f"  killed      {name}: by {', '.join(m.by_properties)}", *note]
    if m.by_conform:
        return [f"  killed      {name}: by the kernel only (conform: {m.by_conform[0]})",
                *note]
    head = (f"  killed      {name}: by scenarios only ({', '.join(m.by_scenarios[:3])}"
            + (f", +{len(m.by_scenarios) - 3}" if len(m.by_scenarios) > 3 else "") + ")"
            if m.by_scenarios else f"  SURVIVED    {name}"
            + (" (inconclusive: a property's verdict is UNKNOWN)"
               if m.status == "inconclusive" else ""))
    d = m.shortest
    if d is None:
        return [head, *note]
    mut = _mutant_design(s, m)
    return [head, *note, f"      {_differs(d)}"] + [f"        {x}" for x in trace_lines(
        s.design, mut, d)]


def _mutant_design(s: DesignScore, m: MutantResult) -> Design | None:
    return m.diff.b if m.diff is not None else None


def score_json(s: DesignScore) -> dict[str, Any]:
    n = len(s.nonequivalent)
    muts = []
    for m in s.mutants:
        d = m.shortest
        muts.append({
            "name": m.spec.name, "action": m.spec.action, "rule": m.spec.rule,
            "kind": m.spec.kind, "operator": m.spec.operator, "status": m.status,
            "reason": m.reason, "killed_by_properties": m.by_properties,
            "killed_by_scenarios": m.by_scenarios, "killed_by_conform": m.by_conform,
            "seconds": round(m.seconds, 3),
            "divergence": None if d is None else {
                "action": d.action, "rule_base": d.rule_a, "rule_mutant": d.rule_b,
                "what": d.what, "count": d.count, "steps": len(d.example[0]),
                "trace": trace_lines(s.design, _mutant_design(s, m), d)}})
    return {"design": s.design.name, "scope": s.scope, "states": s.states,
            "properties": len(s.properties), "scenarios": s.scenarios if s.with_scenarios
            else None, "seconds": round(s.seconds, 1), "mutants": len(s.mutants),
            "stillborn": s.count("stillborn"), "equivalent": s.count("equivalent"),
            "nonequivalent": n, "killed_by_properties": s.killed_by_properties,
            "killed_with_scenarios": s.killed_with_scenarios if s.with_scenarios else None,
            "killed_with_conform": s.killed if s.evidence is not None else None,
            "score_properties": s.score(False),
            "score_with_scenarios": (s.killed_with_scenarios / n if n else 1.0)
            if s.with_scenarios else None,
            "score_with_conform": s.score(True) if s.evidence is not None else None,
            "conform": None if s.evidence is None else {
                "summary": s.evidence.summary, "traces_kept": len(s.evidence.runs),
                "base_diverges": s.evidence.disagree},
            "families": {f: {"killed": k, "properties": ps}
                         for f, (k, ps) in s.by_family().items()},
            "survivors_by_operator": s.survivors_by(), "complete": s.complete,
            "stopped": s.stopped, "results": muts}


def ktap(scores: list[DesignScore], min_score: float | None) -> str:
    """KTAP version 1: one subtest per design, one result line per mutant (killed: ok;
    survived: not ok; equivalent or stillborn: ok # SKIP)."""
    out = ["KTAP version 1", f"1..{len(scores)}"]
    for i, s in enumerate(scores, 1):
        out += ["    KTAP version 1", f"    # mutate {s.design.name}: scope "
                f"{scope_text(s.scope)}", f"    1..{len(s.mutants)}"]
        for j, m in enumerate(s.mutants, 1):
            if m.status in ("stillborn", "equivalent"):
                out.append(f"    ok {j} {m.spec.name} # SKIP {m.status}")
            elif m.status == "killed":
                by = m.by_properties or m.by_scenarios or [f"conform {m.by_conform[0]}"]
                out.append(f"    ok {j} {m.spec.name} # killed by {by[0]}")
            else:
                d = m.shortest
                if d is not None:
                    out += [f"    # {x}" for x in trace_lines(s.design, _mutant_design(s, m),
                                                               d)]
                tag = " # TIMEOUT" if m.status == "inconclusive" else ""
                out.append(f"    not ok {j} {m.spec.name}{tag}")
        sc = 100 * s.score(s.with_scenarios)
        good = min_score is None or sc >= min_score
        out.append(f"{'ok' if good else 'not ok'} {i} {s.design.name} # score {sc:.0f} %")
    return "\n".join(out) + "\n"


def summary(scores: list[DesignScore], min_score: float | None, code: int) -> str:
    parts = []
    for s in scores:
        n = len(s.nonequivalent)
        parts.append(f"{s.design.name} {_pct(s.killed_by_properties, n)} by properties"
                     + (f", {_pct(s.killed_with_scenarios, n)} with scenarios"
                        if s.with_scenarios else "")
                     + (f", {_pct(s.killed, n)} with conform" if s.evidence is not None
                        else ""))
    tail = {EXIT_OK: "measured", EXIT_UNEXPECTED: f"BELOW --min-score {min_score:g} %"
            if min_score is not None else "", EXIT_INCONCLUSIVE: "INCONCLUSIVE"}[code]
    return "mutate: " + "; ".join(parts) + f": {tail}"
