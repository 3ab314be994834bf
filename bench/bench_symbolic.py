"""Symbolic-engine figures on the memfd design (printed; tests never assert timings).

Run: python bench/bench_symbolic.py [--design memfd] [--depth 20] [--full]

1. pdr over the whole catalogue, each PROVED certificate re-checked (fresh solver + the
   exported SMT-LIB2 script in a fresh z3 context), per property and in total;
2. bmc to --depth per property;
3. the tool-found lemmas (Houdini), then k-induction (k <= 8) with them, per property;
4. explicit exploration at the default scope and at scopes with about 10x (and, with
   --full, about 100x) as many states, against pdr on designs whose default scope is changed
   the same way: pdr does not depend on the scope (naturals are unbounded in z3).

Wall-clock and CPU seconds are both printed: the CPU figure is the one to compare on a
loaded machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from checker.certificate import check_smt2
from checker.check import run_symbolic
from checker.explicit import Explorer
from checker.houdini import lemmas_for
from checker.symbolic import encoder
from model import designs
from model.lang.design import Design
from properties.catalogue import for_design

SCOPE_X10 = {"maps": 2, "pages": 2}
SCOPE_X100 = {"maps": 3, "pages": 2, "fds": 2}


def timed(fn: Callable[..., Any], *args: Any, **kw: Any) -> tuple[Any, float, float]:
    w, c = time.perf_counter(), time.process_time()
    r = fn(*args, **kw)
    return r, time.perf_counter() - w, time.process_time() - c


def symbolic(d: Design, p: Any, engine: str, **kw: Any) -> Any:
    """One property by one symbolic engine, through the checker's facade."""
    return run_symbolic(d, [p], engine, **kw)[0]


def pdr_catalogue(d: Design, quiet: bool = False) -> tuple[float, float]:
    tw = tc = 0.0
    for p in for_design(d):
        r, w, c = timed(symbolic, d, p, "pdr", timeout=120)
        extra = ""
        if r.certificate_smt2:
            ans, w2, c2 = timed(check_smt2, r.certificate_smt2)
            assert ans == ["unsat"] * 3, (p.name, ans)
            w, c = w + w2, c + c2
            extra = f" invariant_conjuncts={r.stats.get('invariant_conjuncts', 0)}"
        if r.run is not None:
            extra = f" run={len(r.run)}"
        tw, tc = tw + w, tc + c
        if not quiet:
            print(f"  pdr  {p.name:<44} {r.verdict.value:<13} wall={w:6.2f}s cpu={c:6.2f}s"
                  f"{extra}", flush=True)
    return tw, tc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--design", default="memfd")
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--full", action="store_true", help="also the ~100x explicit scope")
    a = ap.parse_args()
    d = designs.get(a.design)
    props = for_design(d)

    print(f"== pdr, {a.design} catalogue ({len(props)} properties), certificates re-checked")
    tw, tc = pdr_catalogue(d)
    print(f"  pdr total: wall={tw:.2f}s cpu={tc:.2f}s (target <= 10 s)", flush=True)

    print(f"== bmc to depth {a.depth}, per property")
    worst = 0.0
    for p in props:
        r, w, c = timed(symbolic, d, p, "bmc", depth=a.depth, timeout=300)
        worst = max(worst, c)
        n = f" run={len(r.run)}" if r.run else ""
        print(f"  bmc  {p.name:<44} {r.verdict.value:<13} wall={w:6.2f}s cpu={c:6.2f}s{n}",
              flush=True)
    print(f"  bmc worst cpu: {worst:.2f}s (target <= 1 s each)")

    print("== k-induction (k <= 8) with the tool-found lemmas, per property")
    lem, w, c = timed(lemmas_for, d, encoder(d), 300)
    print(f"  houdini: {lem.summary()}, mining {lem.stats['mine_seconds']}s "
          f"({lem.mined_states} states) wall={w:.2f}s cpu={c:.2f}s", flush=True)
    for p in props:
        r, w, c = timed(symbolic, d, p, "kind", depth=8, timeout=120, lemmas=True)
        print(f"  kind {p.name:<44} {r.verdict.value:<13} wall={w:6.2f}s cpu={c:6.2f}s "
              f"k={r.stats.get('k', '')} lemmas_in_certificate={r.stats.get('lemmas', '-')}",
              flush=True)

    print("== scope: explicit (grows with the scope) vs pdr (scope-independent)")
    scopes: list[tuple[str, dict[str, int]]] = [("default", {}), ("~x10", SCOPE_X10)]
    if a.full:
        scopes.append(("~x100", SCOPE_X100))
    base_states = None
    for label, over in scopes:
        sc = d.scope(over)
        res, w, c = timed(Explorer(d, sc, props).run)
        base_states = base_states or res.states
        dd = dataclasses.replace(d, default_scope=sc)
        pw, pc = pdr_catalogue(dd, quiet=True)
        print(f"  {label:<8} scope={sc} explicit: states={res.states} "
              f"(x{res.states / base_states:.1f}) wall={w:.1f}s cpu={c:.1f}s | "
              f"pdr catalogue: wall={pw:.1f}s cpu={pc:.1f}s", flush=True)


if __name__ == "__main__":
    main()
