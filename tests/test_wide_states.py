"""States wider than one 64-bit key, and the explicit searches' memory bound (issue 12)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import checker.explicit as explicit
import checker.packer as packer
from checker.explicit import Explorer, ExploreResult
from checker.memory import parse_size
from checker.packer import Packer, ScopeTooWide, largest_fitting, may_set_bits
from model import designs
from properties.catalogue import for_design
from tests.conftest import run


def test_may_set_bits_of_the_inode_flags_word() -> None:
    """memfd@5.17's 22-bit i_flags word only ever holds VM_LOCKED and VM_NORESERVE."""
    from model.designs.memfd_517 import VM_LOCKED, VM_NORESERVE

    keep = may_set_bits(designs.get("memfd@5.17"))
    assert keep["iflags"] == VM_LOCKED | VM_NORESERVE
    assert keep["seals"] == 0x3F and keep["mode"] == 0o777


def _outcomes(r: explicit.ExploreResult) -> dict[str, object]:
    return {n: (o.holds, o.run and [(s.action, s.params, s.out) for s in o.run.steps])
            for n, o in r.props.items()}


def test_sparse_packing_searches_exactly_the_plain_space(
        monkeypatch: pytest.MonkeyPatch, explored: Callable[[str], ExploreResult]) -> None:
    """Forcing the sparse layout (a 41-bit key) on memfd@5.17 at its default scope (59 bits
    plain) gives the same states, transitions, coverage, verdicts and counterexamples."""
    d = designs.get("memfd@5.17")
    props = for_design(d)
    ref = explored("memfd@5.17")
    assert Explorer(d, d.scope(), props).packer.runs == {}
    monkeypatch.setattr(packer, "KEY_BITS", 41)
    ex = Explorer(d, d.scope(), props)
    assert set(ex.packer.runs) == {"iflags"} and ex.packer.bits <= 41
    r = ex.run()
    assert (r.states, r.transitions, r.pruned, r.coverage, r.depth) == (
        ref.states, ref.transitions, ref.pruned, ref.coverage, ref.depth)
    assert _outcomes(r) == _outcomes(ref)


def test_sparse_word_round_trip_and_stray_bit() -> None:
    d = designs.get("v5-inaccessible")
    pk = Packer(d, d.scope({"pages": 2, "maps": 2}))
    assert pk.bits <= 63 and "iflags" in pk.runs
    st = next(d.init.states(d.schema))
    st = {**st, "iflags": 0x202000, "size": 8192, "map_sh_rw": 2}  # bytes, on the grid
    # every packed field round-trips; the replayed ones are never packed (Packer.omitted)
    assert pk.omitted == ["data0", "data1", "data2", "falloc0", "falloc1", "falloc2", "data_far"]
    assert pk.unpack(pk.pack(st)) == {k: v for k, v in st.items() if k not in pk.omitted}
    with pytest.raises(RuntimeError, match="outside the bits"):
        pk.encode("iflags", np.array([0x1], np.int64))


def test_too_wide_names_the_design_and_the_largest_scope_that_fits() -> None:
    d = designs.get("memfd")
    sc = d.scope({"maps": 1 << 40, "fds": 1 << 40})
    with pytest.raises(ScopeTooWide, match=r"design memfd needs \d+ bits .* largest scope"):
        Packer(d, sc)
    fit = largest_fitting(d, sc)
    Packer(d, fit)  # fits
    assert max(fit.values()) < 1 << 40


def test_cli_refuses_a_too_wide_scope_before_running_anything() -> None:
    p = run("check", "--design", "memfd", "--design", "v5-inaccessible", "--scope",
            "maps=1099511627776,fds=1099511627776", timeout=120)
    assert p.returncode == 2, p.stderr
    assert p.stdout == ""
    (line,) = p.stderr.strip().splitlines()
    assert line.startswith("shmemcheck: design memfd needs") and "largest scope" in line


def test_parse_size() -> None:
    assert parse_size("4G") == 4 << 30 and parse_size("512M") == 512 << 20
    assert parse_size("1.5GiB") == 3 << 29 and parse_size("1000") == 1000
    for bad in ("", "0", "-1G", "4X", "nan", "١G", "inf"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_memory_bound_stops_check_inconclusive() -> None:
    """`--scope maps=15,fds=20` grows past any small bound (pages above 3 are refused: memfd's
    domains reach 3 pages); a memory bound stops it: every property
    not yet decided is UNKNOWN (exit 3), never EXHAUSTED."""
    p = run("check", "--design", "memfd", "--scope", "maps=15,fds=20", "--max-memory",
            "400M", "--quiet", timeout=300)
    assert p.returncode == 3, (p.stdout[-2000:], p.stderr[-2000:])
    assert "memory bound 400.0 MiB reached" in p.stderr and "Traceback" not in p.stderr
    assert "EXHAUSTED" not in p.stdout and "NOT WITNESSED" not in p.stdout
    assert "UNKNOWN" in p.stdout and "(--max-memory)" in p.stdout
    # what was found before the stop stands (a replayed counterexample)
    assert "VIOLATED" in p.stdout


@pytest.mark.slow
def test_memory_bound_stops_diff_inconclusive() -> None:
    p = run("diff", "memfd", "memfd", "--engine", "explicit", "--scope", "maps=15,fds=20",
            "--max-memory", "300M", "--quiet", timeout=300)
    assert p.returncode == 3, (p.stdout[-2000:], p.stderr[-2000:])
    assert "diff: UNKNOWN: memory bound" in p.stdout


@pytest.mark.parametrize("cmd", [["check", "--design", "memfd"], ["diff", "memfd", "memfd"],
                                 ["explore"]])
def test_bad_max_memory_is_a_usage_error(cmd: list[str]) -> None:
    p = run(*cmd, "--max-memory", "lots", timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [
        "shmemcheck: --max-memory: bad size 'lots': want a number of bytes with an optional "
        "K, M, G or T suffix (e.g. 4G)"]


@pytest.mark.parametrize("cmd", [["explore"], ["conform", "--random", "1"],
                                 ["diff", "memfd", "memfd", "--engine", "explicit"]])
def test_other_commands_refuse_a_too_wide_scope(cmd: list[str]) -> None:
    p = run(*cmd, "--scope", "maps=1099511627776", timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    (line,) = p.stderr.strip().splitlines()
    assert "needs" in line and "largest scope that fits" in line
