"""Explicit-engine throughput: states/s and bytes per stored state on the memfd design.

Run: python bench/bench_explicit.py [--scope pages=2,maps=2,...]. Prints one stateright-style
line per scope. Figures go in the closing note; tests never assert timings.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

from checker.cli_common import parse_scope
from checker.explicit import Explorer
from model import designs
from properties.catalogue import for_design

SCOPES = ["pages=1,maps=1,pins=1,fds=1", "pages=2,maps=1,pins=1,fds=2",
          "pages=2,maps=2,pins=1,fds=2"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scope", action="append")
    ap.add_argument("--design", default="memfd")
    ap.add_argument("--no-props", action="store_true", help="reachability only")
    a = ap.parse_args()
    d = designs.get(a.design)
    for sc in a.scope or SCOPES:
        scope = d.scope(parse_scope(sc))
        props = [] if a.no_props else for_design(d)
        load0 = os.getloadavg()[0]
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        ex = Explorer(d, scope, props)
        compile_s = time.perf_counter() - t0
        r = ex.run()
        cpu = time.process_time() - cpu0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"design={a.design} scope={sc} props={len(props)} states={r.states} "
              f"transitions={r.transitions} depth={r.depth} sec={r.seconds:.2f} cpu_sec={cpu:.2f} "
              f"compile_sec={compile_s:.2f} states/s={r.states_per_second:,.0f} "
              f"transitions/s={r.transitions / r.seconds:,.0f} "
              f"bytes/state={r.stored_bytes / r.states:.1f} memo_mib={r.memo_bytes / 2**20:.0f} "
              f"maxrss_mib={rss:.0f} "
              f"load={load0:.2f}->{os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
