"""`shmemcheck strace LOG | -- CMD ARGS...`: judge every memfd call of a raw strace log.

Exit status: 0 every judged call agrees with the model, 1 a disagreement, 2 unreadable input
(a line of the log named at file:line:col) or strace missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

from checker.cli_common import UsageError

if TYPE_CHECKING:
    from checker.strace_judge import Verdict

__all__ = ["add_arguments", "cmd_strace", "split_command"]

EXIT_AGREE, EXIT_DISAGREE, EXIT_BAD = 0, 1, 2
NOEXEC_SYSCTL = "/proc/sys/vm/memfd_noexec"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("log", nargs="?", metavar="LOG",
                   help="a log written by strace (-f, -tt, -y, -X ... all read); or give "
                   "`-- CMD ARGS...` to run CMD under strace -f and judge its log")
    p.add_argument("--annotate", action="store_true",
                   help="print the log with a verdict after each memfd call")
    p.add_argument("--format", choices=["text", "json"], default="text",
                   help="text (default) or json")
    p.add_argument("--out", metavar="DIR",
                   help="write each memfd's judged prefix (memfd-N.trace) and each "
                   "disagreement's minimal reproducer (memfd-N-disagrees.trace) here")
    p.add_argument("--memfd-noexec", type=int, choices=[0, 1, 2], default=None,
                   help="vm.memfd_noexec when the log was recorded (the log does not show "
                   "it; default: this machine's)")


def split_command(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """`strace [OPTIONS] -- CMD ARGS...`: the arguments before `--`, and the command."""
    argv = list(argv)
    if "strace" in argv and "--" in argv and argv.index("strace") < argv.index("--"):
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, None


def _host_noexec() -> int:
    try:
        with open(NOEXEC_SYSCTL) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 0


def _run(command: list[str]) -> tuple[str, int]:
    """Run the command under strace -f; its log's path (a temporary file) and exit status."""
    strace = shutil.which("strace")
    if strace is None:
        raise UsageError("strace is not installed (install the distribution's strace "
                         "package, e.g. apt-get install strace)")
    fd, log = tempfile.mkstemp(prefix="shmemcheck-strace-", suffix=".log")
    os.close(fd)
    try:
        r = subprocess.run([strace, "-f", "-s", "4096", "-o", log, "--", *command],
                           check=False)
    except OSError as e:
        os.unlink(log)
        raise UsageError(f"cannot run strace: {e.strerror}") from None
    return log, r.returncode


def cmd_strace(args: argparse.Namespace) -> int:
    from checker.atomic import check_output_dir, write_text
    from checker.strace_judge import judge_log, memfd_trace
    from traces.strace_log import load_log
    from traces.textfmt import TraceSyntaxError, format_trace

    command: list[str] | None = getattr(args, "command", None)
    if (args.log is None) == (command is None):
        raise UsageError("give a LOG file, or `-- CMD ARGS...` to run under strace")
    if args.out:
        check_output_dir(args.out)
    noexec = args.memfd_noexec if args.memfd_noexec is not None else _host_noexec()
    status = None
    if command is not None:
        if not command:
            raise UsageError("no command after `--`")
        path, status = _run(command)
    else:
        path = args.log
    try:
        log = load_log(path)
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror}") from None
    except TraceSyntaxError as e:
        print(str(e), file=sys.stderr)
        return EXIT_BAD
    finally:
        if command is not None:
            os.unlink(path)
    rep = judge_log(log, noexec)
    shown = " ".join(command) if command is not None else path
    if args.out:
        for j in rep.judged:
            if j.steps:
                t = memfd_trace(j.memfd, j.steps)
                write_text(os.path.join(args.out, f"memfd-{j.memfd.serial}.trace"),
                           format_trace(t))
            if j.repro is not None:
                write_text(os.path.join(args.out, f"memfd-{j.memfd.serial}-disagrees.trace"),
                           format_trace(j.repro))
    n, agree, dis, out = (len(rep.verdicts), rep.count("agrees"), rep.count("disagrees"),
                          rep.count("outside"))
    if args.format == "json":
        print(json.dumps({
            "log": shown, "memfd_noexec": noexec, "command_status": status,
            "memfds": len(rep.judged), "calls": n, "agrees": agree, "disagrees": dis,
            "outside": out, "reasons": [[r, k] for r, k in rep.reasons()],
            "verdicts": [{k: v for k, v in vars(v).items() if v is not None}
                         for v in rep.verdicts],
            "notes": [{"line": v.line, "memfd": v.memfd, "reason": v.reason}
                      for v in rep.notes]}, indent=1))
        return EXIT_DISAGREE if dis else EXIT_AGREE
    if args.annotate:
        by_line: dict[int, list[str]] = {}
        for v in rep.verdicts:
            by_line.setdefault(v.line, []).append(_verdict_text(v))
        for i, line in enumerate(log.lines, 1):
            if i == len(log.lines) and not line:
                break
            print(line + "".join(f"   ## memfd {t}" for t in by_line.get(i, [])))
        print()
    print(f"{shown}: {n} memfd calls ({len(rep.judged)} memfds): {agree} agree, {dis} disagree, "
          f"{out} outside the model (vm.memfd_noexec={noexec})")
    for v in rep.verdicts:
        if v.verdict == "disagrees":
            print(f"  {log.path}:{v.line}: {v.text}\n    model: {v.model}, kernel: {v.kernel}")
    if out:
        print('top reasons for "outside the model":')
        for r, k in rep.reasons()[:10]:
            print(f"  {k:5d}  {r}")
    if status is not None:
        print(f"(the command exited with status {status})")
    return EXIT_DISAGREE if dis else EXIT_AGREE


def _verdict_text(v: Verdict) -> str:
    if v.verdict == "agrees":
        return f"{v.memfd}: agrees"
    if v.verdict == "disagrees":
        return f"{v.memfd}: DISAGREES: model {v.model}, kernel {v.kernel}"
    return f"{v.memfd}: outside the model: {v.reason}"
