"""How the restart schedule of checker/bmc.py `slices` copes with z3's heavy tail.

Run: python bench/restarts.py [--schedule pairs|doubling] [--first 1.0] [--trials 12] [--seed 1]
                              [--design v5-flags] [--property write-seal-content-frozen]

z3's time on one unrolled query depends on the context's history (term ids): the same bmc
query is answered in about a second after some queries and times out after others. Each trial
runs bmc on a random `sometimes` property of the design first (a different history), then
times bmc on --property with a 60 s budget per query. `pairs` is the schedule in use (2, 2,
4, 4, 8, 8 ... s: each length once in the query's context, once in a fresh one); `doubling`
is the earlier one (2, 4, 8 ... s). Run the two schedules one after another on an idle
machine: the figures are wall seconds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from functools import partial

import checker.bmc as bmc_mod
from checker.symbolic import check_symbolic
from model import designs
from properties.catalogue import for_design


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--schedule", choices=("pairs", "doubling"), default="pairs")
    ap.add_argument("--first", type=float, default=bmc_mod.RESTART_FIRST,
                    help="seconds of the first slice (checker/bmc.py RESTART_FIRST)")
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--design", default="v5-flags")
    ap.add_argument("--property", default="write-seal-content-frozen")
    a = ap.parse_args()
    bmc_mod.RESTART_FIRST = a.first
    if a.schedule == "doubling":  # each length once: 2, 4, 8 ... s
        bmc_mod.slices = partial(bmc_mod.slices, repeat=1)
    d = designs.get(a.design)
    props = for_design(d)
    target = next(p for p in props if p.name == a.property)
    others = [p for p in props if p.kind.startswith("sometimes")]
    rnd = random.Random(a.seed)
    times: list[float] = []
    for i in range(a.trials):
        before = rnd.choice(others)
        check_symbolic(d, before, "bmc", depth=20, timeout=60.0)
        t = time.perf_counter()
        r = check_symbolic(d, target, "bmc", depth=20, timeout=60.0)
        times.append(time.perf_counter() - t)
        print(f"trial {i + 1:2}: after {before.name}: {r.verdict.name} in {times[-1]:.1f} s",
              flush=True)
    print(f"{a.schedule}, first slice {a.first} s: {a.design} {a.property} bmc over "
          f"{a.trials} trials: "
          f"median {statistics.median(times):.1f} s, mean {statistics.mean(times):.1f} s, "
          f"worst {max(times):.1f} s")


if __name__ == "__main__":
    main()
