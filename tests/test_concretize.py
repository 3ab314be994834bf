"""traces/concretize.py: a model run as an strace trace (handles numbered as the kernel
numbers them), argument fragments, and a trace's initial state."""

from __future__ import annotations

import pytest

from checker.explicit import Explorer
from model import designs
from model.lang import Design
from properties.catalogue import load
from traces.concretize import ResolveError, arg_from_text, initial_state, run_to_trace
from traces.textfmt import format_step, parse_trace
from traces.trace import Int, Str, Sym


def test_counterexample_prints_as_strace_lines() -> None:
    d = designs.get("memfd")
    r = Explorer(d, d.scope(), [load()["exec-seal-mode-fixed"]]).run()
    run = r.props["exec-seal-mode-fixed"].run
    assert run is not None
    lines = [format_step(s) for s in run_to_trace(d, run).steps]
    assert lines == ['memfd_create("t", MFD_HUGETLB|MFD_NOEXEC_SEAL) = 3', "fchmod(3, 0755) = 0"]


def test_a_call_without_arguments(counter: Design) -> None:
    from properties.catalogue import Property

    p = Property("never-2", "always", lambda s: s.n != 2, "test", "test")
    run = Explorer(counter, counter.scope(), [p]).run().props["never-2"].run
    assert run is not None
    assert [format_step(s) for s in run_to_trace(counter, run).steps] == ["inc() = 0"] * 2


def test_arg_from_text() -> None:
    assert arg_from_text("MFD_HUGETLB|MFD_NOEXEC_SEAL") == Sym("MFD_HUGETLB|MFD_NOEXEC_SEAL")
    assert arg_from_text('"t"') == Str("t", truncated=False)
    assert arg_from_text("4096") == Int(4096)


def test_initial_state_reads_the_init_line() -> None:
    d = designs.get("memfd")
    t = parse_trace("# shmemcheck trace 1\n# design: memfd\n# init: noexec_scope=2\n"
                    'memfd_create("t", 0) = 3\n', "t.trace")
    assert initial_state(d, t)["noexec_scope"] == 2
    bad = parse_trace("# shmemcheck trace 1\n# design: memfd\n# init: noexec_scope=7\n"
                      'memfd_create("t", 0) = 3\n', "t.trace")
    with pytest.raises(ResolveError, match="bad init choice 'noexec_scope=7'"):
        initial_state(d, bad)


def test_a_constant_argument_matches_by_the_value_the_kernel_sees() -> None:
    """C("MADV_REMOVE") accepts 9; C("NULL") accepts 0; flag order does not matter; another
    value, an unknown name or the executor's PAGE shorthand does not match."""
    from traces.concretize import same_constant
    from traces.trace import Int, Sym

    assert same_constant(Sym("MADV_REMOVE"), "MADV_REMOVE")
    assert same_constant(Int(9), "MADV_REMOVE")
    assert same_constant(Int(0), "NULL")
    assert same_constant(Sym("O_CREAT|O_RDWR"), "O_RDWR|O_CREAT")
    assert same_constant(Int(1033), "F_ADD_SEALS")
    assert not same_constant(Int(4), "MADV_REMOVE")
    assert not same_constant(Sym("MADV_DONTNEED_NO_SUCH"), "MADV_REMOVE")
    assert not same_constant(Sym("PAGE"), "4096")
