"""Explicit-engine throughput and memory: states/s, bytes a state and peak RSS at a scope.

Run: python bench/bench_explicit.py [--design memfd] [--scope pages=2,maps=2,pins=1,fds=2]...
[--property NAME]... [--no-props] [--no-elide]. Each scope runs in a fresh process, so its
peak RSS is its own. Rates are per CPU second of the search (getrusage, user + system: the
machine may be shared, wall-clock time is printed beside it with the load average), and
"all-in" bytes a state are the process's peak RSS (interpreter, numpy, compiled actions,
memo, visited set, layers, temporaries) over the states; "search" bytes a state leave out
the RSS before the search starts (base_rss). As `shmemcheck check` does, the
search leaves out fields no selected property or rule reads (--no-elide stores them).
Figures go in the closing note; tests never assert timings.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SCOPES = ["pages=1,maps=1,pins=1,fds=1", "pages=2,maps=1,pins=1,fds=2",
          "pages=2,maps=2,pins=1,fds=2"]


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one(a: argparse.Namespace, sc: str) -> None:
    """One scope in this process: a single line of key=value figures."""
    from checker.cli_common import parse_scope
    from checker.explicit import Explorer
    from checker.memory import rss_bytes
    from model import designs
    from properties.catalogue import for_design

    d = designs.get(a.design)
    scope = d.scope(parse_scope(sc))
    props = [] if a.no_props else [p for p in for_design(d)
                                   if not a.property or p.name in a.property]
    load0 = os.getloadavg()[0]
    c0 = cpu_seconds()
    ex = Explorer(d, scope, props, elide=not a.no_elide)
    base = rss_bytes()  # the interpreter, numpy and the compiled design: a fixed cost
    c1, t1 = cpu_seconds(), time.perf_counter()
    r = ex.run()
    c2, t2 = cpu_seconds(), time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    cpu, wall = c2 - c1, t2 - t1
    print(f"design={a.design} scope={sc} props={len(props)} "
          f"elided={','.join(r.elided) or '-'} states={r.states} transitions={r.transitions} "
          f"depth={r.depth} compile_cpu_s={c1 - c0:.2f} search_cpu_s={cpu:.2f} "
          f"search_wall_s={wall:.2f} states/cpu_s={r.states / cpu:,.0f} "
          f"states/wall_s={r.states / wall:,.0f} stored_B/state={r.stored_bytes / r.states:.1f} "
          f"memo_MiB={r.memo_bytes / 2**20:.0f} peak_rss_MiB={peak / 2**20:.0f} "
          f"all_in_B/state={peak / r.states:.1f} base_rss_MiB={base / 2**20:.0f} "
          f"search_B/state={(peak - base) / r.states:.1f} "
          f"load={load0:.2f}->{os.getloadavg()[0]:.2f}",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scope", action="append", help="NAME=N,... (repeatable)")
    ap.add_argument("--design", default="memfd")
    ap.add_argument("--property", action="append", help="only this property (repeatable)")
    ap.add_argument("--no-props", action="store_true", help="reachability only")
    ap.add_argument("--no-elide", action="store_true",
                    help="store every field, read or not")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        one(a, a.scope[0])
        return
    root = Path(__file__).resolve().parent.parent
    for sc in a.scope or SCOPES:
        argv = [sys.executable, str(Path(__file__).resolve()), "--one", "--scope", sc,
                "--design", a.design, *(["--no-props"] if a.no_props else []),
                *(["--no-elide"] if a.no_elide else []),
                *(x for p in a.property or [] for x in ("--property", p))]
        rc = subprocess.run(argv, cwd=root, env={**os.environ, "PYTHONPATH": str(root)}
                            ).returncode
        if rc:
            sys.exit(rc)


if __name__ == "__main__":
    main()
