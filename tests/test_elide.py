"""The explicit search leaves out of its key the fields nothing it computes reads
(checker/explicit.py unread_fields): exact, or not done."""

from __future__ import annotations

import numpy as np
import pytest

from checker.explicit import Explorer, ExploreResult, unread_fields
from checker.interpreter import ReplayedFieldRead
from checker.packer import Packer
from checker.replay import check_expectation
from model import designs
from model.lang import Action, Design, If, fail
from properties.catalogue import Property, for_design, load
from tests.conftest import run
from traces.concretize import run_to_trace


def _no_deny_writable() -> Design:
    return designs.get("memfd").derive(
        "memfd-no-deny-writable", "F_ADD_SEALS without the mapping check",
        edit={"fcntl_add_seals": lambda a: a.drop_rule("deny_writable")})


def _explore(d: Design, props: list[Property], elide: bool) -> tuple[Explorer, ExploreResult]:
    ex = Explorer(d, d.scope(), props, keep_layers=True, elide=elide)
    return ex, ex.run()


#: s_nodump and s_noatime: only FS_IOC_GETFLAGS's output reads them (memfd@5.17 has none);
#: the pages that hold data: only lseek(SEEK_DATA/SEEK_HOLE), which the search does not take
PAGES = ["data0", "data1", "data2", "falloc0", "falloc1", "falloc2", "data_far"]
UNREAD = ["s_nodump", "s_noatime", "created_noexec", *PAGES]
CASES = [  # (design, property, the fields it leaves out)
    ("memfd", "seals-only-grow", UNREAD),
    ("memfd", "exec-seal-mode-fixed", UNREAD),  # violated on hugetlbfs
    ("memfd", "sometimes-all-seals", UNREAD),
    ("memfd@5.17", "write-seal-no-writable-mapping", ["mode", "created_noexec", *PAGES]),
    ("no-deny-writable", "write-seal-no-writable-mapping", UNREAD),
]


@pytest.mark.parametrize(("dname", "pname", "unread"), CASES)
def test_elision_explores_the_quotient_graph(dname: str, pname: str, unread: list[str]) -> None:
    """Same verdict, same coverage, same shortest counterexample length, and the collapsed
    state count is the number of distinct states of the full search modulo the fields."""
    d = _no_deny_writable() if dname == "no-deny-writable" else designs.get(dname)
    props = [load()[pname]]
    full_ex, full = _explore(d, props, elide=False)
    ex, r = _explore(d, props, elide=True)
    assert r.elided == ex.elided == unread
    # without elision the search leaves out the replayed fields only (replayed_fields)
    assert full.elided == [n for n in PAGES if n in unread]
    # the full search's states, each with the left-out fields cleared: one per collapsed state
    keys = np.concatenate([layer[0] for layer in full.layers])
    pk, kp = full_ex.kp, ex.kp
    assert list(kp.shift) == [n for n in pk.shift if n not in unread]
    proj, first = np.unique(kp.keys_of({n: pk.decode(n, keys) for n in pk.shift}),
                            return_index=True)
    assert r.states == proj.size < full.states
    # layer by layer: each collapsed state at the least depth of the states it stands for
    depth = np.repeat(np.arange(len(full.layers)), [layer[0].size for layer in full.layers])
    for dd, layer in enumerate(r.layers):
        assert np.array_equal(layer[0], proj[depth[first] == dd])
    assert r.depth == int(depth[first].max())
    o, fo = r.props[pname], full.props[pname]
    assert o.holds == fo.holds
    assert r.uncovered() == full.uncovered()
    assert (o.run is None) == (fo.run is None)
    if o.run is not None and fo.run is not None:
        assert len(o.run.steps) == len(fo.run.steps)
        # the run is re-executed on full states: it replays on the model as the design says
        kind = "violates" if o.prop.kind in ("always", "action") else "witnesses"
        rep = check_expectation(d, run_to_trace(d, o.run, expect=f"{kind} {pname}"))
        assert rep.divergence is None and rep.expectation_met, rep.message
        assert set(o.run.init) == {f.name for f in d.schema.fields}


def test_a_field_the_properties_read_is_stored() -> None:
    d = designs.get("memfd")
    cat = load()
    # only an output reads these two (FS_IOC_GETFLAGS's), and only lseek (not explored)
    # the pages that hold data: the search leaves them out always
    out_only = ["s_nodump", "s_noatime", *PAGES]
    ex = Explorer(d, d.scope(), [cat["noexec-seal-never-executable"]], elide=True)
    # (the interpreter's packing already leaves the replayed fields out)
    assert ex.elided == out_only and ex.kp.bits == ex.packer.bits - 2
    # the whole catalogue (what `shmemcheck check` runs) reads it: its counts stay
    assert Explorer(d, d.scope(), for_design(d), elide=True).elided == out_only
    ex = Explorer(d, d.scope(), [cat["seals-only-grow"]], elide=True)
    unread, reads = unread_fields(ex)
    assert unread == UNREAD and ex.kp.bits == ex.packer.bits - len(UNREAD) + len(PAGES)
    assert all("created_noexec" not in per for per in reads)
    assert not any(f.sort.kind == "nat" and f.name in unread for f in d.schema.fields)


@pytest.mark.parametrize("how", ["condition", "update"])
def test_a_field_a_rule_reads_is_stored(how: str) -> None:
    """A ghost field read by a rule condition, or by the update of a stored field, is not
    left out (it would change what the search computes)."""
    base = designs.get("memfd")
    act = next(a for a in base.actions if a.name == "fchmod")
    last = act.semantics(base.schema).branches[-1].rule.label  # the deciding `ok`
    if how == "condition":
        def edit(a: Action) -> Action:
            return a.insert_rule(lambda s: fail("EPERM", when=s.created_noexec & s.hugetlb,
                                                label="noexec_ghost"), before=last)
    else:
        def edit(a: Action) -> Action:
            return a.amend_rule(last, lambda s: {"hugetlb": If(s.created_noexec, 1, s.hugetlb)})
    d = base.derive("memfd-reads-ghost", "", edit={"fchmod": edit})
    assert "created_noexec" in Explorer(base, base.scope(), [load()["seals-only-grow"]],
                                        elide=True).elided
    ex = Explorer(d, d.scope(), [load()["seals-only-grow"]], elide=True)
    assert ex.elided == ["s_nodump", "s_noatime", *PAGES]


@pytest.mark.parametrize("how", ["condition", "update"])
def test_a_replayed_field_an_explored_action_reads_is_refused(how: str) -> None:
    """A field declared `replayed` (the pages that hold data) must not decide anything the
    search computes: an explored action whose rule, or whose update of a stored field, reads
    one is a design error, never a smaller search."""
    base = designs.get("memfd")
    assert Explorer(base, base.scope(), []).elided == PAGES
    act = next(a for a in base.actions if a.name == "fchmod")
    last = act.semantics(base.schema).branches[-1].rule.label
    if how == "condition":
        def edit(a: Action) -> Action:
            return a.insert_rule(lambda s: fail("EPERM", when=s.data0, label="reads_data"),
                                 before=last)
    else:
        def edit(a: Action) -> Action:
            return a.amend_rule(last, lambda s: {"mode": If(s.data_far, 0, s.mode)})
    d = base.derive("memfd-reads-pages", "", edit={"fchmod": edit})
    with pytest.raises(ReplayedFieldRead, match="action fchmod reads the replayed field"):
        Explorer(d, d.scope(), [])
    # an update of a replayed field from replayed fields is fine: it is never stored
    ok_edit = base.derive("memfd-moves-pages", "", edit={"fchmod": lambda a: a.amend_rule(
        last, lambda s: {"data1": s.data0 | s.data_far})})
    assert Explorer(ok_edit, ok_edit.scope(), []).elided == PAGES


def test_packer_without_a_field() -> None:
    d = designs.get("memfd")
    full = Packer(d, d.scope())
    kp = Packer(d, d.scope(), ["created_noexec"])
    assert kp.bits == full.bits - 1 and "created_noexec" not in kp.shift
    st = {f.name: 0 for f in d.schema.fields} | {"exists": 1, "created_noexec": 1, "seals": 5}
    key = kp.pack(st)
    assert key == kp.pack({**st, "created_noexec": 0})
    cols = kp.fields(np.array([key], np.int64))
    assert int(cols["seals"][0, 0]) == 5 and int(cols["created_noexec"][0, 0]) == 0


def test_check_names_what_it_explored() -> None:
    one = run("check", "--design", "memfd", "--property", "seals-only-grow", "--quiet")
    assert one.returncode == 0, one.stderr
    assert ("modulo s_nodump, s_noatime, created_noexec, data0, data1, data2, falloc0, "
            "falloc1, falloc2, data_far (read by no selected property or rule)") in one.stdout
    assert "states=828,870 " in one.stdout
    both = run("check", "--design", "memfd", "--property", "seals-only-grow",
               "--property", "noexec-seal-never-executable", "--quiet")
    assert both.returncode == 0, both.stderr
    assert "modulo s_nodump, s_noatime, data0, " in both.stdout
    assert "states=1,097,670 " in both.stdout

