"""shmemcheck: a formal model and model checker of Linux memfd/shmem (seals, inode flags,
every access path) and guest_memfd, with the live kernel as oracle.

Exit status: 0 everything as expected; 1 something unexpected (a violation, a missed witness,
a divergence); 2 usage or input error (one line on stderr, nothing written); 3 inconclusive
(timeout, solver unknown, CTI); 130 interrupted (Ctrl-C: the run stops, no output file is
written); 141 standard output's reader went away (`shmemcheck list | head`: no message); 70 an
internal error (a bug: please report; SHMEMCHECK_DEBUG=1 or --debug shows the traceback).

`--design FILE.py` executes FILE.py as Python, with the caller's privileges.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

from checker.check import progress
from checker.cli_check import cmd_check, cmd_lemmas
from checker.cli_common import (
    ENGINES,
    EXPLORE_SCOPE,
    UsageError,
    conform_scopes,
    load_designs,
    max_memory_arg,
    parse_scope,
)
from checker.cli_diff import cmd_compare, cmd_corpus, cmd_diff, cmd_encoding
from checker.cli_kernels import add_arguments as kernels_arguments
from checker.cli_kernels import cmd_kernels, guest_target, replay_on_guests
from checker.cli_mutate import add_arguments as mutate_arguments
from checker.cli_mutate import cmd_mutate
from checker.cli_strace import add_arguments as strace_arguments
from checker.cli_strace import cmd_strace, split_command
from checker.verdict import (
    EXIT_INCONCLUSIVE,
    EXIT_OK,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
)
from model.lang.design import ScopeError, scope_text

if TYPE_CHECKING:
    pass


def cmd_list(args: argparse.Namespace) -> int:
    from model import designs
    from properties.catalogue import for_design, load

    print("designs:")
    for n in designs.names(include_corpus=True):
        d = designs.get(n)
        base = f" (delta on {d.base})" if d.base else ""
        tag = (" [bug corpus: shmemcheck corpus]" if designs.is_corpus(n) else
               f" [kernel {d.kernel}: check/conform --design {n}]"
               if designs.on_request(n) and d.kernel else
               f" [source-read: check --design {n}]" if designs.on_request(n) else "")
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
    if args.on not in ("model", "kernel", "both"):  # other kernels, under QEMU
        return replay_on_guests(args.on, traces)
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
        if ok and args.on in ("kernel", "both") and d.kernel is None:
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
    from checker.conform import ConformOptions, print_report, run_conform

    (d,) = load_designs([args.design])
    name = d.name
    if d.kernel is None:  # refused before anything runs on the kernel, as replay skips it
        from checker.conform import kernel_designs
        raise UsageError(f"conform: design {name} is not a model of a live kernel (a "
                         "historical or proposed design); designs that are: "
                         + ", ".join(kernel_designs()))

    only: tuple[str, ...] = ()
    if args.actions is not None:
        from checker.conform_restrict import only_actions

        only = tuple(dict.fromkeys(n.strip() for n in args.actions.split(",") if n.strip()))
        if not only:
            raise UsageError("--actions: no action named (A,B,...: `shmemcheck list` has each "
                             "design's)")
        try:
            d = only_actions(d, only)
        except KeyError as e:
            raise UsageError(f"--actions: {e.args[0]}") from None
    scope, depth, walk_scope = conform_scopes(d, args.scope, args.walk_scope)
    for flag, v, lo in (("--random", args.random, 0), ("--length", args.length, 1),
                        ("--jobs", args.jobs, 1)):
        if v < lo:
            raise UsageError(f"{flag} must be at least {lo}")
    if args.out:
        from checker.atomic import check_output_dir

        check_output_dir(args.out)
    opts = ConformOptions(scope, depth, walks=args.random, seed=args.seed, length=args.length,
                          walk_scope=walk_scope, exhaustive=not args.no_exhaustive,
                          jobs=args.jobs, hugetlb=not args.no_hugetlb,
                          gigantic=args.hugetlb_1g, out=args.out,
                          progress=None if args.quiet else progress)
    from checker.conform_guest import NoGuestKernel, run_conform_guest, target_of
    from checker.packer import ScopeTooWide

    try:
        target = target_of(d)
    except NoGuestKernel as e:
        raise UsageError(str(e)) from None
    if target.kernel is not None and target.qemu is None:
        print(f"conform: SKIP design {name}: its kernel {target.version} runs under QEMU, and "
              "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
        return EXIT_INCONCLUSIVE
    try:
        if target.kernel is None:
            rep = run_conform(d, opts)
        else:
            from traces.guest import GuestError

            try:
                rep, boots = run_conform_guest(d, opts, target)
            except GuestError as e:
                raise UsageError(str(e)) from None
            if boots:
                print(f"conform: {len(boots)} boot(s) of {target.version}: "
                      + ", ".join(f"{b:.1f} s" for b in boots)
                      + (f"; {1000 * sum(boots) / rep.steps:.1f} s per 1,000 steps, boots "
                         "included" if rep.steps else ""))
    except ScopeTooWide as e:
        raise UsageError(str(e)) from None
    rep.kernel, rep.actions = target.label, only
    print_report(rep)
    if rep.divergent:
        return EXIT_UNEXPECTED
    if rep.unconfirmed or not rep.traces:  # a flaky difference, or nothing reached the kernel
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def cmd_export_selftest(args: argparse.Namespace) -> int:
    """`export --selftest DIR`: checker/selftest.py."""
    from checker import selftest
    from checker.atomic import check_output_dir
    from checker.conform import kernel_designs
    from checker.mutate import load_scenarios, scenario_dir
    from traces.guest import GuestError

    if args.trace or args.to or args.output:
        raise UsageError("export --selftest DIR takes no trace, --to or --output")
    (d,) = load_designs([args.design or "memfd"])
    if d.kernel is None:
        raise UsageError(f"export --selftest: design {d.name} is not a model of a live kernel "
                         "(a historical or proposed design): no kernel can pass its selftest; "
                         "designs that are: " + ", ".join(kernel_designs()))
    check_output_dir(args.selftest)
    walks = 200 if args.walks is None else args.walks
    seed = 1 if args.seed is None else args.seed
    st = selftest.cases(d, load_scenarios(scenario_dir()), walks, seed)
    try:
        out = selftest.write(args.selftest, st)
    except GuestError as e:
        raise UsageError(f"export --selftest: {e}") from None
    print(f"export --selftest {args.selftest}: {len(st.items)} cases for {d.name} "
          f"({st.scenarios} scenarios, {st.walks} random walks, seed {seed}); "
          f"{len(st.left_out)} left out (README); files: {', '.join(out)}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from model import designs
    from traces.export import EXPORTERS, ExportError
    from traces.textfmt import TraceSyntaxError, load_trace

    if args.selftest:
        return cmd_export_selftest(args)
    if args.design is not None or args.walks is not None or args.seed is not None:
        raise UsageError("--design, --walks and --seed go with --selftest")
    if not args.trace or not args.to:
        raise UsageError("export needs a TRACE and --to FORMAT (or --selftest DIR)")
    if args.to not in EXPORTERS:
        raise UsageError(f"unknown format {args.to!r} (formats: {', '.join(EXPORTERS)})")
    if args.output:
        from checker.atomic import check_output

        check_output(args.output)
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
    from checker.replay import TraceInputError, model_outcomes, replay_for_export

    try:
        model_outcomes(d, t)  # validates every line against the design before exporting
    except TraceInputError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    try:
        text = EXPORTERS[args.to][1](d, replay_for_export(d, t))
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
    from checker.packer import ScopeTooWide

    (d,) = load_designs([args.design])
    # the checking scope's graph has 10^4 to 10^6 states: explore starts from the smallest
    # that shows every action (one page, one fd, no mapping or pin; <= 15,000 states for
    # every built-in design), then the user's --scope items
    small = {k: v for k, v in EXPLORE_SCOPE.items() if k in d.default_scope}
    want = {**small, **parse_scope(args.scope)}
    try:
        scope = d.scope(want)
    except KeyError as e:
        raise UsageError(f"design {d.name} has no scope parameter {e.args[0]!r} "
                         f"(has: {', '.join(d.default_scope)})") from None
    if args.graph:
        from checker.atomic import check_output

        check_output(args.graph)
    try:
        g = state_graph(d, scope, max_states=args.max_states,
                        max_memory=max_memory_arg(args))
    except ScopeTooWide as e:
        raise UsageError(str(e)) from None
    except TooLarge as e:
        raise UsageError(f"design {d.name}, scope {scope_text(scope)}: {e}: choose a smaller "
                         "--scope or raise --max-states") from None
    dot = to_dot(d, g)
    from checker.atomic import write_text

    if args.graph:
        write_text(args.graph, dot)
        import shutil
        import subprocess
        if shutil.which("dot") and os.path.isfile(args.graph):  # not a device or FIFO
            subprocess.run(["dot", "-Tsvg", args.graph, "-o",
                            os.path.splitext(args.graph)[0] + ".svg"], check=False)
    else:
        sys.stdout.write(dot)
    print(f"explore: {d.name}, scope {scope_text(scope)}: {g.number_of_nodes()} states, "
          f"{g.number_of_edges()} transitions",
          file=sys.stderr)
    return EXIT_OK


def _int_at_least(lo: int) -> Callable[[str], int]:
    """An argparse type: a decimal integer (ASCII digits) >= lo."""
    def conv(text: str) -> int:
        t = text.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", t):
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
        v = int(t)
        if v < lo:
            raise argparse.ArgumentTypeError(f"{v} is less than {lo}")
        return v
    conv.__name__ = f"integer >= {lo}"
    return conv


def _path(text: str) -> str:
    """An argparse type: an output path, not empty (an empty one would read as "none")."""
    if not text:
        raise argparse.ArgumentTypeError("empty path")
    return text


_path.__name__ = "path"


def _exclude_flag(text: str) -> str:
    """An argparse type: ACTION.PARAM=MASK, MASK in ASCII decimal, 0x hex, 0o or 0b."""
    if not re.fullmatch(r"[^.=\s]+\.[^.=\s]+=(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|[0-9]+)",
                        text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r}: want ACTION.PARAM=MASK (MASK a number, "
                                         "e.g. memfd_create.flags=0x8)")
    return text.strip()


_exclude_flag.__name__ = "ACTION.PARAM=MASK"


#: z3 takes a timeout in milliseconds as an unsigned 32-bit number
MAX_TIMEOUT = (2**32 - 1) / 1000


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0 that z3 can take."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: want a number of seconds > 0")
    if v > MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"{text!r}: more than z3 accepts "
                                         f"({MAX_TIMEOUT:.0f} s)")
    return v


_seconds.__name__ = "seconds"


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line (`shmemcheck CMD: error: ...`), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


SUBCOMMANDS: dict[str, tuple[str, str]] = {
    # name: (one-line description, example)
    "list": ("designs, properties and actions", "shmemcheck list"),
    "check": ("check properties of designs with one or more engines",
              "shmemcheck check --design memfd --property write-seal-no-writable-mapping"),
    "lemmas": ("the invariants k-induction is strengthened with: mined candidates Houdini "
               "proved inductive", "shmemcheck lemmas --design memfd"),
    "replay": ("replay trace files (or directories of them) on the model and/or this kernel",
               "shmemcheck replay traces/scenarios --on both"),
    "export": ("export a trace: a C (kselftest-style) or Python reproducer, a syzkaller "
               "program, ITF JSON, a DOT or mermaid diagram, or the trace text",
               "shmemcheck export FILE.trace --to c -o repro.c"),
    "explore": ("the reachable state graph of a small scope, as Graphviz DOT",
                "shmemcheck explore --design guest_memfd --graph gmem.dot"),
    "conform": ("differential conformance: model transitions and random walks replayed on "
                "the live kernel", "shmemcheck conform --design memfd --random 200"),
    "diff": ("do two designs behave the same: outcomes, effects and every common property's "
             "value? (exit 0 same, 1 different)",
             "shmemcheck diff v5-inaccessible v5-flags"),
    "encoding": ("flag bits distinct, round-trip, layout consistent; uapi collisions",
                 "shmemcheck encoding --compose memfd v5-inaccessible"),
    "compare": ("the seed's promise: v5 MFD_INACCESSIBLE vs guest_memfd, as a markdown table",
                "shmemcheck compare --engine pdr"),
    "kernels": ("other kernels (Debian's cloud builds) to boot under QEMU: list the archive's, "
                "fetch them into the cache", "shmemcheck kernels fetch 6.1 7.2"),
    "strace": ("judge every memfd call of a raw strace log (or of `-- CMD ARGS...` run under "
               "strace -f) against the model: agrees, disagrees, or outside the model",
               "shmemcheck strace --annotate -- ./prog"),
    "mutate": ("the mutation score of the property catalogue (and the scenario library) on "
               "a design: every fail/signal rule dropped, negated or made to fire too often; "
               "survivors with their shortest distinguishing trace",
               "shmemcheck mutate --design memfd --min-score 80"),
    "corpus": ("the bug corpus: each historical bug caught on its -broken design, each fix "
               "holding on its -fixed design", "shmemcheck corpus --format markdown"),
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("shmemcheck")
    except PackageNotFoundError:
        return "unknown (not installed)"


MAX_MEMORY_HELP = ("stop the explicit search, inconclusive (exit 3), once this process's "
                   "resident memory passes SIZE (e.g. 4G; default: half of MemAvailable)")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="shmemcheck", description=__doc__,
                 formatter_class=argparse.RawDescriptionHelpFormatter,
                 epilog="examples:\n" + "\n".join(f"  {ex}" for _, ex in
                                                   SUBCOMMANDS.values()))
    ap.add_argument("--version", action="version", version=f"shmemcheck {_version()}")
    ap.add_argument("--debug", action="store_true",
                    help="show the Python traceback of an internal error (also: "
                    "SHMEMCHECK_DEBUG=1)")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND",
                            parser_class=_Parser)

    def cmd(name: str) -> argparse.ArgumentParser:
        text, example = SUBCOMMANDS[name]
        return sub.add_parser(name, help=text, description=text + ".",
                              epilog=f"example:\n  {example}",
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    timeout_help = "seconds per solver query (default %(default)s; a timeout is UNKNOWN)"
    cmd("list")
    c = cmd("check")
    c.add_argument("--design", action="append",
                   help="a built-in design or a what-if FILE.py; a what-if file is executed "
                   "as Python with your privileges (root, if you run as root): load only "
                   "files you trust")
    c.add_argument("--property", action="append",
                   help="only this property (repeatable; default: every one that applies)")
    c.add_argument("--engine", action="append", choices=[*ENGINES, "all"],
                   help="explicit (default), bmc, kind, pdr, or all (repeatable)")
    c.add_argument("--scope", help="NAME=N,... (explicit engine bounds; default per design, "
                   "see `shmemcheck list`)")
    c.add_argument("--depth", type=_int_at_least(1), default=20,
                   help="bmc depth (default %(default)s)")
    c.add_argument("--k-max", type=_int_at_least(0), default=8,
                   help="largest k for k-induction (default 8; a CTI at k-max is reported)")
    c.add_argument("--no-lemmas", dest="lemmas", action="store_false",
                   help="k-induction without the tool-found (Houdini) strengthening lemmas")
    c.add_argument("--timeout", type=_seconds, default=60.0, help=timeout_help)
    c.add_argument("--format", choices=["text", "json", "ktap", "mail"], default="text",
                   help="text (default; result lines as they finish), json, ktap, mail")
    c.add_argument("--out", metavar="DIR", type=_path,
                   help="write every counterexample/witness here in every format, "
                   "and every certificate as DESIGN.PROPERTY.ENGINE.smt2")
    c.add_argument("--certificate", metavar="FILE", type=_path,
                   help="write every certificate of the run to FILE as one SMT-LIB2 script "
                   "(each labelled by an echo; every check-sat must answer unsat)")
    c.add_argument("--quiet", action="store_true", help="no progress on stderr")
    c.add_argument("--max-memory", metavar="SIZE", help=MAX_MEMORY_HELP)
    r = cmd("replay")
    r.add_argument("files", nargs="+", metavar="FILE|DIR",
                   help="trace files, or directories searched for *.trace")
    r.add_argument("--on", type=guest_target, default="model",
                   help="replay on the model (default), on this kernel, or both; or on other "
                   "kernels under QEMU: kernel@VERSION[,kernel@VERSION...] (a version prefix: "
                   "the newest fetched build) or kernels (every fetched one)")
    e = cmd("export")
    e.add_argument("trace", nargs="?", help="the trace file to export")
    e.add_argument("--to", help="the format: text, itf, dot, mermaid, c, python or syz")
    e.add_argument("-o", "--output", metavar="FILE", type=_path,
                   help="write here (default: standard output)")
    e.add_argument("--selftest", metavar="DIR", type=_path,
                   help="instead of one trace: write a kselftest directory (Makefile, C "
                   "source, config fragment, README) running the scenario library and a "
                   "sample of conform's random walks, each step expecting what --design "
                   "predicts for its kernel")
    e.add_argument("--design", help="with --selftest: a design that claims a kernel "
                   "(default memfd)")
    e.add_argument("--walks", type=_int_at_least(0), metavar="N",
                   help="with --selftest: conform's random walks to include (default 200)")
    e.add_argument("--seed", type=_int_at_least(0),
                   help="with --selftest: the walks' seed (default 1)")
    k = cmd("conform")
    k.add_argument("--design", default="memfd",
                   help="a design that claims a kernel: memfd (default), guest_memfd (this "
                   "machine's), memfd@6.1, memfd@6.12, memfd@7.2, memfd@7.3-rc (a fetched "
                   "kernel under QEMU)")
    k.add_argument("--scope", help="conformance scope NAME=N,... plus depth=D (states within D "
                   "steps); default per design (memfd: pages=2,maps=2,pins=2,fds=2,depth=3)")
    k.add_argument("--random", type=_int_at_least(0), default=2000, metavar="N",
                   help="random walks (default 2000)")
    k.add_argument("--seed", type=_int_at_least(0), default=1, help="random seed (default 1)")
    k.add_argument("--length", type=_int_at_least(1), default=12, metavar="L",
                   help="steps per random walk (default 12)")
    k.add_argument("--walk-scope", help="scope of the random walks (memfd: "
                   "pages=3,maps=3,pins=2,fds=3)")
    k.add_argument("--no-exhaustive", action="store_true",
                   help="random walks only, not every transition of the conformance scope")
    k.add_argument("--actions", metavar="A,B,...",
                   help="only these actions of the design (`shmemcheck list` names them; "
                   "include the one that creates the file): the calls around a patch, to a "
                   "greater depth than every call allows")
    k.add_argument("--out", metavar="DIR", type=_path,
                   help="write each minimal divergent trace here")
    k.add_argument("--jobs", type=_int_at_least(1), default=2,
                   help="kernel worker processes (default 2)")
    k.add_argument("--no-hugetlb", action="store_true",
                   help="leave out MFD_HUGETLB files (no huge pages reserved)")
    k.add_argument("--hugetlb-1g", action="store_true",
                   help="include MFD_HUGE_1GB files (reserves 4 free 1 GiB pages a job, +1; "
                        "left out by default)")
    k.add_argument("--quiet", action="store_true", help="no progress on stderr")
    df = cmd("diff")
    df.add_argument("a", metavar="A", help="a design (built-in name or what-if .py file)")
    df.add_argument("b", metavar="B", help="the design to compare it with")
    df.add_argument("--scope", help="NAME=N,... of the explicit product search (default: "
                    "the designs' default scopes)")
    df.add_argument("--exclude-flag", action="append", metavar="ACTION.PARAM=MASK",
                    type=_exclude_flag,
                    help="leave out parameter values with these bits")
    df.add_argument("--format", choices=["text", "mail"], default="text",
                    help="text (default) or mail (72 columns)")
    df.add_argument("--engine", choices=["explicit", "symbolic", "both"], default="both",
                    help="explicit product within a scope, z3 without one, or both (default)")
    df.add_argument("--timeout", type=_seconds, default=120.0,
                    help="seconds for the z3 query (default %(default)s)")
    df.add_argument("--quiet", action="store_true", help="no progress on stderr")
    df.add_argument("--max-memory", metavar="SIZE", help=MAX_MEMORY_HELP)
    df.add_argument("--flags-word", action="store_true",
                    help="compare only the inode flags words: each bit's flag in A and B and "
                         "the rules that write and test it (static; exit 0 the same, 1 not)")
    en = cmd("encoding")
    en.add_argument("--design", action="append",
                    help="only this design (repeatable; default: every built-in design)")
    en.add_argument("--compose", nargs=2, metavar=("A", "B"),
                    help="also check that A's and B's uapi constants do not collide")
    cp = cmd("compare")
    cp.add_argument("--engine", choices=ENGINES, default="explicit",
                    help="the engine deciding each cell (default explicit)")
    cp.add_argument("--timeout", type=_seconds, default=60.0, help=timeout_help)
    cp.add_argument("--legend", action="store_true", help="also print each method in full")
    x = cmd("explore")
    x.add_argument("--design", default="memfd", help="a design (default memfd)")
    x.add_argument("--scope", help="NAME=N,... (default pages=1,maps=0,pins=0,fds=1: the "
                   "checking scope's graph is far too large to draw)")
    x.add_argument("--graph", metavar="FILE", type=_path,
                   help="write DOT here (and SVG beside it if Graphviz is installed); "
                   "default: standard output")
    x.add_argument("--max-states", type=_int_at_least(1), default=20000,
                   help="refuse a graph with more states (default %(default)s)")
    x.add_argument("--max-memory", metavar="SIZE", help="stop the search (exit 2, nothing "
                   "written) once resident memory passes SIZE (default: half of MemAvailable)")
    lm = cmd("lemmas")
    lm.add_argument("--design", action="append",
                    help="only this design (repeatable; default: every built-in design)")
    lm.add_argument("--timeout", type=_seconds, default=120.0, help=timeout_help)
    cp = cmd("corpus")
    cp.add_argument("--bug", action="append", help="only this bug (B1, ..., G1; repeatable)")
    cp.add_argument("--explicit", action="store_true",
                    help="explicit engine only (fixes then hold within the scope, unproved)")
    cp.add_argument("--timeout", type=_seconds, default=60.0,
                    help="seconds per pdr query (default %(default)s)")
    cp.add_argument("--format", choices=["text", "markdown"], default="text",
                    help="text (default) or markdown")
    cp.add_argument("--out", metavar="DIR", type=_path,
                    help="write <id>-broken/-fixed traces and C reproducers here "
                    "(traces/scenarios/corpus holds the committed ones)")
    cp.add_argument("--kernels", action="store_true",
                    help="also run each pair's -fixed trace on this kernel and on every "
                    "fetched kernel under QEMU: which kernel has which bug")
    cp.add_argument("--quiet", action="store_true", help="no progress on stderr")
    kernels_arguments(cmd("kernels"))
    strace_arguments(cmd("strace"))
    mutate_arguments(cmd("mutate"))
    return ap


#: commands that run z3 queries (Ctrl-C must reach into them)
_Z3_COMMANDS = {"check", "lemmas", "diff", "compare", "corpus", "encoding"}
EXIT_INTERNAL = 70  # EX_SOFTWARE (sysexits.h): a bug in shmemcheck, not in the input
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a C tool whose reader went away


def main(argv: Sequence[str] | None = None) -> int:
    from checker.atomic import OutputError
    from checker.interrupt import EXIT_INTERRUPTED, active, install, requested

    ap = build_parser()
    head, command = split_command(sys.argv[1:] if argv is None else argv)
    try:
        args = ap.parse_args(head)
        args.command = command
    except SystemExit as e:  # --help, --version, usage errors (already printed)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    if getattr(args, "engine", None) is None and args.cmd == "check":
        args.engine = ["explicit"]
    handlers = {"list": cmd_list, "check": cmd_check, "replay": cmd_replay,
                "export": cmd_export, "explore": cmd_explore, "conform": cmd_conform,
                "diff": cmd_diff, "encoding": cmd_encoding, "compare": cmd_compare,
                "corpus": cmd_corpus, "lemmas": cmd_lemmas, "kernels": cmd_kernels,
                "strace": cmd_strace, "mutate": cmd_mutate}
    try:
        install(with_z3=args.cmd in _Z3_COMMANDS)
        with active():
            return handlers[args.cmd](args)
    except UsageError as e:
        print(f"shmemcheck: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OutputError as e:
        print(f"shmemcheck: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ScopeError as e:  # a --scope value beyond what the design explores
        print(f"shmemcheck: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("shmemcheck: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (`shmemcheck list | head`): stop quietly; point stdout at
        # /dev/null so the interpreter's final flush does not complain either
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_BROKEN_PIPE
    except Exception as e:  # noqa: BLE001 -- the last resort: one line, never a traceback
        if requested():  # e.g. ctypes wraps a KeyboardInterrupt raised in an argument
            print("shmemcheck: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        if args.debug or os.environ.get("SHMEMCHECK_DEBUG"):
            raise
        print(f"shmemcheck: internal error: {type(e).__name__}: {e} (a bug: please report "
              "it; --debug or SHMEMCHECK_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


def _entry() -> None:
    """The console script: exit with main()'s status."""
    sys.exit(main())


if __name__ == "__main__":
    _entry()

__all__ = ["EXIT_INCONCLUSIVE", "EXIT_UNEXPECTED", "main"]
