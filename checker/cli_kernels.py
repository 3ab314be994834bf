"""`shmemcheck kernels` (list, fetch) and `replay --on kernel@VERSION[,...]` / `--on kernels`:
traces replayed on other kernels, booted under QEMU (traces/kernels.py, traces/guest.py), and
judged by the host's comparison code (checker/kernel_replay.py judge)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from checker.cli_common import UsageError
from checker.verdict import EXIT_INCONCLUSIVE, EXIT_OK, EXIT_UNEXPECTED
from traces.trace import Outcome, Trace

if TYPE_CHECKING:
    from checker.replay import ModelReplay
    from model.lang.design import Design
    from traces.guest import BatchItem
    from traces.kernels import FetchedKernel

__all__ = ["cmd_kernels", "guest_target", "replay_on_guests"]

#: a guest's errors that say nothing about the kernel: the trace is inconclusive (exit 3)
INCONCLUSIVE_ERRORS = ("in the guest: timeout", "in the guest: unreadable")
_TARGET = re.compile(r"^kernel@([0-9][0-9A-Za-z.+~-]*)$")


def guest_target(text: str) -> str:
    """argparse type of replay's --on: model, kernel, both, kernels, or kernel@V[,kernel@V...]."""
    if text in ("model", "kernel", "both", "kernels"):
        return text
    parts = text.split(",")
    if all(_TARGET.match(p) for p in parts):
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r}: want model, kernel, both, kernels or kernel@VERSION[,kernel@VERSION...]")


def _resolve(on: str) -> list[FetchedKernel]:
    """The fetched kernels --on names (a version prefix picks the newest fetched build)."""
    from traces import kernels

    have = kernels.fetched()
    if not have:
        raise UsageError("no kernel is fetched: run `shmemcheck kernels fetch [VERSION...]` "
                         f"(cache: {kernels.cache_dir() / 'kernels'})")
    if on == "kernels":
        return list(have)
    by = {k.version: k for k in have}
    out: list[FetchedKernel] = []
    for part in on.split(","):
        m = _TARGET.match(part)
        assert m is not None
        v = kernels.match(m.group(1), list(by))
        if v is None:
            raise UsageError(f"--on {part}: no fetched kernel matches {m.group(1)} (fetched: "
                             f"{', '.join(by)}; `shmemcheck kernels fetch {m.group(1)}`)")
        if by[v] not in out:
            out.append(by[v])
    return out


@dataclass
class _PerKernel:
    traces: int = 0
    steps: int = 0
    agree: int = 0
    diverge: list[str] = field(default_factory=list)
    skipped: int = 0
    inconclusive: int = 0
    seconds: float = 0.0


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def replay_on_guests(on: str, traces: Sequence[Trace]) -> int:
    """Replay `traces` (loaded by cmd_replay) on the model, then on each kernel `on` names,
    one boot per kernel; compare each step with the trace (a `?` stands for the model's)."""
    from checker.kernel_replay import judge
    from checker.replay import (
        TraceInputError,
        check_expectation,
        kernel_noexec_scope,
        replay_for_export,
    )
    from model import designs
    from traces import kernels
    from traces.guest import BatchItem, GuestError, env_keep_dir, run_batch

    targets = _resolve(on)
    qemu = kernels.qemu_binary()
    if qemu is None:
        raise UsageError(f"{kernels.QEMU} not found: install it once with "
                         "`apt-get install qemu-system-x86`")
    ok_model: list[tuple[Trace, Design, ModelReplay]] = []
    bad = 0
    for t in traces:
        d = designs.get(t.design)
        try:
            rep = check_expectation(d, t)
        except TraceInputError as e:
            print(str(e), file=sys.stderr)
            return 2
        if not rep.expectation_met:
            print("FAIL " + rep.message)
            bad += 1
        elif d.kernel is None:
            print(f"ok   {rep.message}; kernels: SKIP design {d.name} is not a model of a live "
                  "kernel (a historical or proposed design)")
        else:
            ok_model.append((rep.trace, d, rep))  # lowered, if it names processes
    items = [BatchItem(t.path or "<trace>", replay_for_export(d, t), kernel_noexec_scope(d, t))
             for t, d, _ in ok_model]
    stats: dict[str, _PerKernel] = {}
    table: dict[int, dict[str, list[Outcome] | None]] = {i: {} for i in range(len(ok_model))}
    inconclusive = 0
    for kern in targets:
        v = kern.version
        st = stats[v] = _PerKernel()
        print(f"kernel {v} ({kern.package} {kern.deb_version}): booting "
              f"{len(items)} traces under QEMU (TCG)...", file=sys.stderr, flush=True)
        try:
            keep = env_keep_dir()
            boot = run_batch(kern.vmlinuz, items, qemu=qemu, keep=keep / v if keep else None)
        except GuestError as e:
            raise UsageError(str(e)) from None
        st.seconds = boot.seconds
        if boot.problem:
            print(f"kernel {v}: {boot.problem}")
        for i, ((t, d, rep), run) in enumerate(zip(ok_model, boot.runs, strict=True)):
            path = t.path or "<trace>"
            st.traces += 1
            if run is None:
                st.inconclusive += 1
                inconclusive += 1
                table[i][v] = None
                print(f"???  {path}: kernel {v}: no result (the guest stopped: "
                      f"{boot.problem or 'no KTAP line'}) -- inconclusive")
                continue
            table[i][v] = run.outcomes
            if run.skipped:
                st.skipped += 1
                print(f"ok   {path}: kernel {v}: SKIP {run.skipped}")
                continue
            st.steps += len(run.outcomes)
            if run.error and run.error.startswith(INCONCLUSIVE_ERRORS):
                st.inconclusive += 1
                inconclusive += 1
                print(f"???  {path}: kernel {v}: step {len(run.outcomes) + 1} "
                      f"{run.error} -- inconclusive")
                continue
            kres = judge(d, t, rep, run, against="kernel", path=path)
            if kres.divergence:
                st.diverge.append(_first_line(kres.divergence))
                bad += 1
                print(f"FAIL kernel {v}: " + kres.divergence)
            else:
                st.agree += 1
                print(f"ok   {path}: kernel {v}: {kres.summary}")
    if len(targets) > 1:
        _print_table([t for t, _, _ in ok_model], items, table, [k.version for k in targets])
    print("kernels:")
    for v, st in stats.items():
        per = (f", {1000 * st.seconds / st.steps:.1f} s per 1,000 steps, boot included"
               if st.steps else "")
        print(f"  {v}: {st.traces} traces, {st.steps} steps run, {st.agree} agree, "
              f"{len(st.diverge)} diverge, {st.skipped} skipped, {st.inconclusive} "
              f"inconclusive; boot {st.seconds:.1f} s{per}")
    verdict = ("FAILURES" if bad else "INCONCLUSIVE" if inconclusive
               else "everything verified as expected")
    print(f"replay: {len(traces)} traces on {len(targets)} kernel(s): {verdict}")
    return EXIT_UNEXPECTED if bad else EXIT_INCONCLUSIVE if inconclusive else EXIT_OK


def _print_table(traces: Sequence[Trace], items: Sequence[BatchItem],
                 table: dict[int, dict[str, list[Outcome] | None]],
                 versions: Sequence[str]) -> None:
    """Per trace where some kernel differs from the trace: each step up to the last kernel's
    first divergence where some kernel differs, a column per kernel (a poor man's bisect).
    After a kernel's first divergence its outcomes are consequences, shown as `...`."""
    from traces.concretize import outcome_str
    from traces.textfmt import format_arg

    printed = False
    width = max(14, *(len(v) for v in versions))
    for i, t in enumerate(traces):
        want = items[i].replayed.steps
        cells_of: dict[str, list[str]] = {}
        for v in versions:
            got = table[i].get(v)
            cells: list[str] = []
            gone = False
            for n, step in enumerate(want):
                if got is None:
                    cells.append("(no result)")
                elif gone:
                    cells.append("...")
                elif n >= len(got):
                    cells.append("-")
                else:
                    cells.append(outcome_str(got[n]))
                    gone = got[n] != step.outcome
            cells_of[v] = cells
        rows = [n for n, step in enumerate(want)
                if any(cells_of[v][n] not in ("-", "...", outcome_str(step.outcome))
                       for v in versions)]
        if not rows:
            continue
        if not printed:
            print("where the kernels differ from the trace (each kernel up to its first "
                  "divergence; '...' after it, '-' not run):")
            printed = True
        print(f"  {t.path}")
        print(f"    {'step':>4}  {'trace':<{width}}" + "".join(f"  {v:<{width}}"
                                                           for v in versions) + "  call")
        for n in rows:
            step = want[n]
            call = f"{step.call}({', '.join(format_arg(a) for a in step.args)})"
            print(f"    {n + 1:>4}  {outcome_str(step.outcome)[:width]:<{width}}" + "".join(
                f"  {cells_of[v][n][:width]:<{width}}" for v in versions) + f"  {call}")


def cmd_kernels(args: argparse.Namespace) -> int:
    """`kernels`: the archive's cloud kernels, which are fetched, and whether QEMU can boot
    them; `kernels fetch [VERSION...]`: download and unpack them (default: the newest build of
    each series the archive offers)."""
    from traces import kernels

    qemu = kernels.qemu_binary()
    try:
        known = kernels.discover(update=args.update)
        archive_error = None
    except kernels.ArchiveError as e:
        if args.action == "fetch":
            raise UsageError(f"the archive: {e}") from None
        known, archive_error = [], str(e)
    have = {k.version: k for k in kernels.fetched()}
    if args.action == "fetch":
        by = {k.version: k for k in known}
        wanted: list[str] = []
        if args.versions:
            for pre in args.versions:
                v = kernels.match(pre, list(by))
                if v is None:
                    raise UsageError(f"no kernel {pre} in the archive (known: "
                                     f"{', '.join(by) or 'none'})")
                wanted.append(v)
        else:
            series: dict[str, str] = {}
            for v in by:
                series[_series(v)] = v  # known is oldest first: the newest stays
            wanted = list(series.values())
        for v in dict.fromkeys(wanted):
            if v in have:
                print(f"{v}: already fetched ({have[v].path})")
                continue
            kp = by[v]
            print(f"{v}: fetching {kp.package} {kp.deb_version} ({kp.size / 1e6:.0f} MB)...",
                  flush=True)
            try:
                f = kernels.fetch(kp)
            except kernels.ArchiveError as e:
                raise UsageError(str(e)) from None
            print(f"{v}: fetched into {f.path}")
        return EXIT_OK
    print(f"QEMU: {qemu + ' (fetched kernels are bootable)' if qemu else 'not installed: '}"
          f"{'' if qemu else 'apt-get install qemu-system-x86 (root), once'}")
    if archive_error:
        print(f"archive: unreachable ({archive_error}); only the fetched kernels are listed")
    print(f"cache: {kernels.cache_dir() / 'kernels'}")
    rows = {k.version: (k.package, k.deb_version) for k in known}
    for v, f in have.items():
        rows.setdefault(v, (f.package, f.deb_version))
    for v in sorted(rows, key=kernels._version_key):
        pkg, deb = rows[v]
        state = "fetched" + (", bootable" if qemu else "") if v in have else "-"
        print(f"  {v:<10} {state:<17} {pkg} {deb}")
    return EXIT_OK


def _series(version: str) -> str:
    """6.1.176 -> 6.1; 7.3-rc7 -> 7.3-rc."""
    if "-rc" in version:
        return version.split("-rc")[0] + "-rc"
    return ".".join(version.split(".")[:2])


def add_arguments(k: argparse.ArgumentParser) -> None:
    """The `kernels` subcommand's arguments."""
    k.add_argument("action", nargs="?", choices=["list", "fetch"], default="list",
                   help="list (default) or fetch")
    k.add_argument("versions", nargs="*", metavar="VERSION",
                   help="fetch: version prefixes (6.1, 7.3-rc); default: the newest build of "
                   "each series")
    k.add_argument("--update", action="store_true",
                   help="refresh the private apt lists first (apt-get update)")
