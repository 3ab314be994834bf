"""Huge-page reservations never leave vm.nr_hugepages raised: concurrent and nested holders
(traces/hugepages.py), on a stand-in sysctl file (no kernel needed)."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

import pytest

from traces import hugepages


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    sysctl, state = tmp_path / "nr_hugepages", tmp_path / "state"
    sysctl.write_text("0")
    monkeypatch.setattr(hugepages, "NR_HUGEPAGES", str(sysctl))
    monkeypatch.setattr(hugepages, "HUGEPAGES_STATE", str(state))
    # every reserved page is free: the stand-in's free count is the sysctl's value
    monkeypatch.setattr(hugepages, "_meminfo", lambda key: int(sysctl.read_text()))
    monkeypatch.setattr(hugepages, "hugetlb_reason", lambda need_free=False: None)
    return sysctl, state


def _hold(n: int, nested: bool, raised: Any, release: Any) -> None:
    """Reserve n pages (and n + 1 nested inside), tell the parent, hold until it says go."""
    with hugepages.hugepages_reserved(n) as why:
        assert why is None, why
        if nested:
            with hugepages.hugepages_reserved(n + 1) as why2:
                assert why2 is None, why2
        raised.set()
        assert release.wait(60)


def test_concurrent_runs_put_back_the_value_before_the_first_raise(
        fake: tuple[Path, Path]) -> None:
    """Ordered by events, not by sleeps: the order of raise and release is fixed however
    loaded the machine is."""
    sysctl, state = fake
    ctx = mp.get_context("fork")  # the children inherit the stand-in files
    ev = [ctx.Event() for _ in range(4)]
    first = ctx.Process(target=_hold, args=(3, True, ev[0], ev[1]))
    second = ctx.Process(target=_hold, args=(8, False, ev[2], ev[3]))
    first.start()
    assert ev[0].wait(60)
    second.start()
    assert ev[2].wait(60)
    old, *pids = state.read_text().split()
    assert old == "0" and int(sysctl.read_text()) >= 8
    assert sorted(map(int, pids)) == sorted([first.pid, second.pid])
    ev[1].set()
    first.join(60)
    assert first.exitcode == 0
    # the second run still holds its raise: the first must not have put 0 back
    assert int(sysctl.read_text()) >= 8 and state.read_text().split() == ["0", str(second.pid)]
    ev[3].set()
    second.join(60)
    assert second.exitcode == 0
    assert sysctl.read_text() == "0" and not state.exists()


def test_nested_reservation_leaves_the_restore_to_the_outer_one(fake: tuple[Path, Path]) -> None:
    sysctl, state = fake
    with hugepages.hugepages_reserved(2) as why:
        assert why is None and sysctl.read_text() == "2"
        with hugepages.hugepages_reserved(5) as why2:
            assert why2 is None and sysctl.read_text() == "5"
        assert sysctl.read_text() == "5" and state.exists()  # still held by the outer one
    assert sysctl.read_text() == "0" and not state.exists()


def test_a_killed_holder_is_undone_by_the_next_run(fake: tuple[Path, Path]) -> None:
    sysctl, state = fake
    sysctl.write_text("6")
    dead = mp.get_context("fork").Process(target=time.sleep, args=(0,))
    dead.start()
    dead.join()
    state.write_text(f"1 {dead.pid} {os.getpid()}\n")  # the caller itself does not keep it
    msg = hugepages.restore_hugepages()
    assert msg is not None and "restored vm.nr_hugepages to 1" in msg
    assert sysctl.read_text() == "1" and not state.exists()


@pytest.fixture
def fake_giga(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              fake: tuple[Path, Path]) -> tuple[Path, Path, Path]:
    """A stand-in 1 GiB hstate directory beside the 2 MiB stand-in: nr_hugepages and
    free_hugepages (free follows nr unless a test says the kernel could not allocate)."""
    d = tmp_path / "hugepages-1048576kB"
    d.mkdir()
    (d / "nr_hugepages").write_text("0")
    (d / "free_hugepages").write_text("0")
    monkeypatch.setattr(hugepages, "GIGANTIC_DIR", str(d))
    monkeypatch.setattr(hugepages, "GIGANTIC_STATE", str(tmp_path / "state-1g"))
    monkeypatch.setattr(hugepages._Pool, "free", lambda self: int(
        (d / "nr_hugepages").read_text()) if self.giga else int(fake[0].read_text()))
    return d / "nr_hugepages", tmp_path / "state-1g", fake[0]


def test_gigantic_reservation_raises_its_own_count_and_restores_it(
        fake_giga: tuple[Path, Path, Path]) -> None:
    nr, state, small = fake_giga
    with hugepages.hugepages_reserved(1, hugepages.GIGANTIC_KB) as why:
        assert why is None and nr.read_text() == "1"
        assert state.read_text().split()[0] == "0"  # the original, recorded before the raise
        assert small.read_text() == "0"  # the 2 MiB count is not touched
        with hugepages.hugepages_reserved(2) as why2:  # a 2 MiB one beside it
            assert why2 is None and small.read_text() == "2"
        assert small.read_text() == "0" and nr.read_text() == "1"
    assert nr.read_text() == "0" and not state.exists()


def test_gigantic_killed_holder_is_undone_by_the_next_run(
        fake_giga: tuple[Path, Path, Path]) -> None:
    nr, state, small = fake_giga
    nr.write_text("3")
    dead = mp.get_context("fork").Process(target=time.sleep, args=(0,))
    dead.start()
    dead.join()
    state.write_text(f"1 {dead.pid}\n")
    msg = hugepages.restore_hugepages()  # both page sizes
    assert msg is not None and "restored the 1 GiB nr_hugepages to 1" in msg
    assert nr.read_text() == "1" and not state.exists() and small.read_text() == "0"


def test_gigantic_page_the_kernel_cannot_allocate_is_a_reason_and_restored(
        fake_giga: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    nr, state, _ = fake_giga
    monkeypatch.setattr(hugepages._Pool, "free", lambda self: 0)  # fragmented memory
    with hugepages.hugepages_reserved(1, hugepages.GIGANTIC_KB) as why:
        assert why is not None and "could not allocate" in why and "1 GiB" in why
    assert nr.read_text() == "0" and not state.exists()


def test_no_gigantic_hstate_is_a_reason_and_writes_nothing(
        fake_giga: tuple[Path, Path, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    nr, state, _ = fake_giga
    monkeypatch.setattr(hugepages, "GIGANTIC_DIR", str(tmp_path / "absent"))
    assert not hugepages.hstate_1g_present()
    with hugepages.hugepages_reserved(1, hugepages.GIGANTIC_KB) as why:
        assert why is not None and "no 1 GiB hstate" in why
    assert nr.read_text() == "0" and not state.exists()
