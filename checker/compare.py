"""The seed's promise, checked on what landed: PATCH v5 MFD_INACCESSIBLE against guest_memfd
(6.18), property by property, with the verdict and the method for each.

Vocabulary mapping (documented in README): on guest_memfd, "inaccessible" means created
without GUEST_MEMFD_FLAG_MMAP; on v5, it means SHM_F_INACCESSIBLE is set.
"""

from __future__ import annotations

from collections.abc import Sequence

from checker.verdict import Result, Verdict

#: (the promise, v5 property, guest_memfd property); None: not expressible in that design.
ROWS: tuple[tuple[str, str | None, str | None], ...] = (
    ("an inaccessible file is never sealable", "inaccessible-never-sealable",
     "seed-inaccessible-never-sealable"),
    ("an inaccessible file is never user-mappable", "inaccessible-never-user-mappable",
     "seed-inaccessible-never-user-mappable"),
    ("asking for inaccessible memory always yields it", "mfd-inaccessible-honoured",
     "seed-every-gmem-never-user-mappable"),
    ("the inaccessible flag never changes", "inaccessible-immutable", None),
    ("inaccessible pages are never swapped", "inaccessible-never-swapped", None),
    ("inaccessible pages are never migrated", "inaccessible-never-migrated", None),
    ("content changes only through KVM", "inaccessible-access-only-via-notifier", None),
    ("no private (copy-on-write) mapping", None, "gmem-no-private-mapping"),
    ("the size never changes once set", None, "gmem-size-immutable"),
    ("guest bindings never overlap", None, "gmem-bindings-disjoint"),
)
DESIGNS = ("v5-inaccessible", "guest_memfd")




def _cell(r: Result | None) -> str:
    if r is None:
        return "not modelled"
    v = r.verdict
    what = {Verdict.PROVED: "holds (proved)", Verdict.EXHAUSTED: "holds (within scope)",
            Verdict.BOUNDED: "holds (bounded)", Verdict.VIOLATED: "violated"}.get(v, v.value)
    tail = f", {len(r.run)}-step trace" if r.run is not None and v is Verdict.VIOLATED else ""
    return f"{what}: {r.engine}{tail}"


def compare(engine: str = "explicit", timeout: float = 60.0) -> tuple[str, list[Result]]:
    """Run every row's properties; return the markdown table and the results."""
    from checker.check import run_explicit, run_symbolic
    from model import designs
    from properties.catalogue import load

    cat = load()
    got: dict[tuple[str, str], Result] = {}
    for dname, col in zip(DESIGNS, (1, 2), strict=True):
        d = designs.get(dname)
        names = [row[col] for row in ROWS if row[col]]
        props = [cat[n] for n in names if n is not None]
        if engine == "explicit":
            rs, _ = run_explicit(d, props, d.scope(), True)
        else:
            rs = run_symbolic(d, props, engine, depth=20, timeout=timeout)
        for r in rs:
            got[(dname, r.prop)] = r
    lines = ["| promise | v5 MFD_INACCESSIBLE (2022) | guest_memfd (6.18) |", "|---|---|---|"]
    for promise, pv5, pg in ROWS:
        a = got.get(("v5-inaccessible", pv5)) if pv5 else None
        b = got.get(("guest_memfd", pg)) if pg else None
        lines.append(f"| {promise} | {_cell(a)} | {_cell(b)} |")
    return "\n".join(lines) + "\n", list(got.values())


def legend(results: Sequence[Result]) -> str:
    scopes = sorted({r.method for r in results})
    return "Methods: " + "; ".join(scopes) + "\n"
