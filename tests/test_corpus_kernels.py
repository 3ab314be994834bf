"""`shmemcheck corpus --kernels` (checker/corpus_kernels.py): which kernel has which bug,
judged from each pair's -fixed trace run on a kernel."""

from __future__ import annotations

import pytest

from checker import corpus
from checker.corpus_kernels import Column, table, verdict
from traces.kernel import KernelRun
from traces.trace import Err, Ret


@pytest.fixture(scope="module")
def b15() -> corpus.PairResult:
    (bug,) = [b for b in corpus.catalogue() if b.id == "B15"]
    return corpus.check_pair(bug, symbolic=False)


def test_a_kernel_is_fixed_broken_or_different(b15: corpus.PairResult) -> None:
    broken, fixed = corpus.pair_traces(b15)
    outs = [s.outcome for s in fixed.steps]
    assert verdict(fixed, broken, KernelRun(outs, None, None, None)) == "fixed"
    i = next(i for i, (a, b) in enumerate(zip(fixed.steps, broken.steps, strict=True))
             if a.outcome != b.outcome)
    bad = [*outs[:i], broken.steps[i].outcome]
    assert verdict(fixed, broken, KernelRun(bad, None, None, None)).startswith(
        f"BROKEN (step {i + 1}")
    # another outcome than either design's is a difference, never rounded to a verdict
    odd = [*outs[:i], Err("ENOSYS")]
    assert verdict(fixed, broken, KernelRun(odd, None, None, None)) == (
        f"differs at step {i + 1}: -1 ENOSYS")
    if i > 0:
        early = [Err("EINVAL")]
        assert verdict(fixed, broken, KernelRun(early, None, None, None)).startswith(
            "differs at step 1")
    assert verdict(fixed, broken, KernelRun([], None, "no io_uring (ENOSYS)", None)) == (
        "skip: no io_uring (ENOSYS)")
    assert verdict(fixed, broken, KernelRun(outs[:1], None, None, "executor died")) == (
        "stopped at step 2: executor died")
    assert verdict(fixed, broken, None) == "no result"
    # a pair no outcome tells apart: agreeing with it says nothing about the bug
    assert verdict(fixed, fixed, KernelRun(outs, None, None, None)).startswith("undecided")
    assert isinstance(outs[0], Ret)


def test_table_has_a_column_per_kernel(b15: corpus.PairResult) -> None:
    cols = [Column("6.18 (this machine)", ["BROKEN (step 2: 0)"]), Column("6.1.192", ["x"])]
    md = table([b15], cols, markdown=True).splitlines()
    assert md[0] == "| bug | 6.18 (this machine) | 6.1.192 |"
    assert md[2] == "| B15 | BROKEN (step 2: 0) | x |"


@pytest.mark.kernel
def test_b15_is_broken_on_this_kernel(b15: corpus.PairResult) -> None:
    """B15 is unfixed (catalogue.toml kernel = "broken"): fchmod(0755) of an exec-sealed
    hugetlbfs memfd succeeds on this machine's kernel."""
    from checker.corpus_kernels import _host_run

    broken, fixed = corpus.pair_traces(b15)
    cell = verdict(fixed, broken, _host_run(fixed))
    if cell.startswith("skip:"):
        pytest.skip(f"B15's trace cannot run here: {cell}")
    assert cell.startswith("BROKEN"), cell


def test_a_source_read_pair_is_skipped_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """L1 (LUO) cannot run on any kernel here: its cell says so, and nothing is run for it
    (a run would stop at `unknown constant SESSION2`, which is not a verdict)."""
    from checker import corpus_kernels
    from traces import kernels

    (bug,) = [b for b in corpus.catalogue() if b.id == "L1"]
    pair = corpus.check_pair(bug, symbolic=False)
    monkeypatch.setattr(corpus_kernels, "_host_run", lambda fx: pytest.fail("ran L1"))
    monkeypatch.setattr(kernels, "qemu_binary", lambda: None)
    (col,) = corpus_kernels.columns([pair])
    assert col.cells == [corpus_kernels.UNRUNNABLE["liveupdate"]]
    assert col.cells[0].startswith("skip: ") and "source-read" in col.cells[0]
