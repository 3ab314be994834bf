"""The seed review made checkable: memfd@5.17, PATCH v5 MFD_INACCESSIBLE, Kirill's flags word."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from checker.diff import Differ, restrict_domain
from checker.encoding import check_compose, check_design
from checker.explicit import Explorer, ExploreResult
from model import designs
from traces.concretize import run_to_trace
from traces.textfmt import format_step

SMALL = {"pages": 1, "maps": 1, "pins": 0, "fds": 1}


@pytest.mark.parametrize("name", ["memfd@5.17", "v5-inaccessible", "v5-flags"])
def test_catalogue_as_expected(name: str, explored: Callable[[str], ExploreResult]) -> None:
    r = explored(name)
    wrong = [n for n, o in r.props.items()
             if o.holds != (o.prop.expected(name) in ("holds", "witnessed"))]
    assert wrong == []
    assert {"inaccessible-never-sealable", "inaccessible-never-user-mappable",
            "inaccessible-never-swapped", "memfd-never-shm-locked"} <= set(r.props) or \
        name == "memfd@5.17"


def test_hugetlb_quirk_counterexample() -> None:
    d = designs.get("v5-inaccessible")
    from properties.catalogue import load
    r = Explorer(d, d.scope(), [load()["mfd-inaccessible-honoured"]]).run()
    run = r.props["mfd-inaccessible-honoured"].run
    assert run is not None
    assert [format_step(s) for s in run_to_trace(d, run).steps] == [
        'memfd_create("t", MFD_HUGETLB|MFD_INACCESSIBLE) = 3']


def test_flags_mutant_distinguished() -> None:
    """Kirill's conversion with one reader left behind: shmem_writepage() still tests VM_LOCKED
    in a word that now holds SHM_F_* bits."""
    b = designs.get("v5-flags")
    mutant = b.derive("v5-flags-mutant", "writepage reads VM_LOCKED",
                      layout={"writepage:LOCKED": ("iflags", 0x2000)})
    # SysV segments have no mapping in the model: without mappings the product is smaller
    r = Differ(designs.get("v5-inaccessible"), mutant, {**SMALL, "maps": 0}).run()
    assert not r.equivalent
    s = r.shortest
    assert s is not None and s.action == "reclaim"
    lines = [format_step(x) for x in run_to_trace(mutant, s.example[1]).steps]
    assert lines[-2:] == ["shmctl(0, SHM_LOCK, NULL) = 0",
                          "reclaim(LRU_EVICTABLE) = 0 (swapped)"]
    other = [format_step(x) for x in run_to_trace(designs.get("v5-inaccessible"),
                                                  s.example[0]).steps]
    assert other[-1] == "reclaim(LRU_EVICTABLE) = 1 (redirtied)"
    # and the static encoding check names the reader
    assert any("writepage tests LOCKED" in p for p in check_design(mutant))


@pytest.mark.slow
def test_patch_differential() -> None:
    """memfd@5.17 -> v5: the only divergences are memfd_create with the new flag; without it,
    every common call agrees; the patch's additions are the KVM calls."""
    a, b = designs.get("memfd@5.17"), designs.get("v5-inaccessible")
    # without mappings: README's `diff memfd@5.17 v5-inaccessible --exclude-flag ...` runs the
    # restricted comparison at the full default scope; here the divergences are all at
    # memfd_create, before any mapping exists
    r = Differ(a, b, {**SMALL, "maps": 0}).run()
    assert {d.action for d in r.divergences} == {"memfd_create"}
    assert all(d.example[1].steps[-1].params["flags"] & 0x8 for d in r.divergences)
    assert r.only_b == ["kvm_register", "kvm_map_pfn", "guest_write"]
    ra, rb = (restrict_domain(x, "memfd_create", "flags", 0x8) for x in (a, b))
    r2 = Differ(ra, rb, {**SMALL, "maps": 0}).run()
    assert r2.divergences == []


def test_encoding() -> None:
    for n in designs.names(include_corpus=True):
        assert check_design(designs.get(n)) == [], n
    assert check_compose(designs.get("memfd"), designs.get("v5-inaccessible")) == [
        "memfd_create.flags: 0x0008 is MFD_NOEXEC_SEAL in memfd and MFD_INACCESSIBLE in "
        "v5-inaccessible"]


def test_v5_decision_rows() -> None:
    """Hunks of the patch as trace rows (expected outcomes from the patch text)."""
    from tests.conftest import replay_text
    rows = [
        'memfd_create("t", MFD_INACCESSIBLE|MFD_ALLOW_SEALING) = -1 EINVAL',
        'memfd_create("t", MFD_INACCESSIBLE) = 3\nfcntl(3, F_GET_SEALS) = 1\n'
        "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = -1 EPERM",
        'memfd_create("t", MFD_INACCESSIBLE) = 3\npread64(3, 4096, 0) = -1 EPERM\n'
        "pread64(3, 4096, 4096) = 0\nftruncate(3, 4096) = 0\nftruncate(3, 4096) = -1 EPERM\n"
        'pwrite64(3, "x"..., 4096, 0) = -1 EPERM\n'
        "mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 3, 0) = -1 EPERM\n"
        "fallocate(3, FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE, 0, 4096) = 0\n"
        "reclaim(LRU_UNEVICTABLE) = 2\nmigrate() = 1",
        'memfd_create("t", MFD_HUGETLB|MFD_INACCESSIBLE) = 3\n'
        "mmap(NULL, 2097152, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1\n"
        "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = -1 EPERM",
    ]
    for text in rows:
        assert replay_text(text, "v5-inaccessible") is None, text


@pytest.mark.slow
def test_self_diff_visits_exactly_the_reachable_states() -> None:
    """A design against itself: equivalent, and the product has one pair per reachable state."""
    d = designs.get("memfd@5.17")
    r = Differ(d, d, SMALL).run()
    assert r.equivalent
    assert r.pairs == Explorer(d, d.scope(SMALL), []).run().states
