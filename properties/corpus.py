"""Properties of the bug corpus (traces/scenarios/corpus/catalogue.toml).

Two new properties: `private-mapping-cow` (bug B2, on the designs that model fork()) and
`sometimes-write-sealed-ro-shared-map-rdwr` (bug B9: the older
sometimes-write-sealed-ro-shared-map is witnessed before 6.7 too, through an O_RDONLY
description, whose MAP_SHARED mapping is not VM_SHARED).

Each corpus design's only family is `corpus-<id>`. For every catalogue entry whose property
lives in another family, this module registers a *view* named `<id>:<property>`: the same
predicate in the pair's family, expected to fail on the broken design. So `shmemcheck check`
runs exactly the pair's property on each corpus design, and nothing else.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from model.designs.corpus import CHG_PEER, family
from model.designs.memfd import PROT_R, RW, SHARED
from model.lang.expr import E, false
from model.vocab import F_SEAL_WRITE
from properties.catalogue import (
    CATALOGUE,
    HOLDS,
    NOT_WITNESSED,
    VIOLATED,
    WITNESSED,
    Property,
    load,
    prop,
)
from properties.views import TransitionView

CATALOGUE_PATH = (Path(__file__).resolve().parent.parent / "traces" / "scenarios" / "corpus"
                  / "catalogue.toml")
PRE_67 = ("memfd@5.17", "v5-inaccessible", "v5-flags")  # mmap seal rule before the 6.7 series
VERDICTS = (HOLDS, VIOLATED, WITNESSED, NOT_WITNESSED)


def entries(path: Path = CATALOGUE_PATH) -> list[dict[str, Any]]:
    """The catalogue's `[[bug]]` tables, in file order."""
    with open(path, "rb") as f:
        return list(tomllib.load(f)["bug"])


def expect(prop_name: str, design: str, verdict: str) -> None:
    """Record that `prop_name` is expected to be `verdict` on `design`."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}")
    p = CATALOGUE[prop_name]
    if not isinstance(p.expect, dict):
        raise TypeError(f"{prop_name}: expectations are read-only")
    p.expect[design] = verdict


def failing(kind: str) -> str:
    """What a property of this kind gives on a design with the bug."""
    return VIOLATED if kind in ("always", "action") else NOT_WITNESSED


def view_name(bug: str, prop_name: str) -> str:
    """The property `check` runs on bug `bug`'s designs."""
    return prop_name if CATALOGUE[prop_name].family == family(bug) else f"{bug}:{prop_name}"


@prop("private-mapping-cow", "action", """A MAP_PRIVATE mapping is copy-on-write: after fork(),
      a store through a private mapping by one process never reaches the other's page.
      Violated while F_SEAL_FUTURE_WRITE cleared VM_MAYWRITE on private mappings
      (ab3948f58ff8 until 05d351102dbe, bug B2).""",
      "copy_present_pte(): is_cow_mapping() write-protects the anonymous page in both "
      "processes; memfd_check_seals_mmap() clears VM_MAYWRITE on shared mappings only",
      expect={"B2-broken": VIOLATED}, family=family("B2"))
def private_mapping_cow(t: TransitionView) -> E:
    return ~t.eff.has(CHG_PEER)


@prop("sometimes-write-sealed-ro-shared-map-rdwr", "sometimes-action", """mmap(PROT_READ,
      MAP_SHARED) of an O_RDWR description succeeds on a WRITE-sealed file: a VM_SHARED mapping
      without VM_MAYWRITE (6.7+, bug B9; memfd_test.c test_seal_write_map_read_shared).""",
      "memfd_check_seals_mmap(); before 6.7 mapping_map_writable() refused it",
      expect=dict.fromkeys(PRE_67, NOT_WITNESSED))
def w_ro_shared_rdwr(t: TransitionView) -> E:
    if not t.is_("mmap"):
        return false
    return (t.ok & (t.param("fd") == RW) & (t.param("share") == SHARED)
            & (t.param("prot") == PROT_R) & t.s.seals.has(F_SEAL_WRITE))


def _register_views(bugs: Sequence[Mapping[str, Any]]) -> None:
    for b in bugs:
        base = CATALOGUE[b["property"]]
        bad = failing(base.kind)
        name = view_name(b["id"], base.name)
        if name == base.name:
            expect(name, b["broken"], bad)
            continue
        CATALOGUE[name] = Property(
            name, base.kind, base.pred,
            f"{base.name} on the {b['id']} pair ({b['title']}): {base.rationale}",
            base.enforced_by, {b["broken"]: bad}, family(b["id"]))


load()  # the catalogue properties the views name (this module is imported again: a no-op)
if CATALOGUE_PATH.exists():  # an installed copy without the scenario data has no views
    _register_views(entries())

__all__ = ["CATALOGUE_PATH", "entries", "expect", "failing", "view_name"]
