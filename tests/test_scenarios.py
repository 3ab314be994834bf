"""traces/scenarios/: the scenario library replays as expected on the model (and on the live
kernel), covers every scenario of the kernel's memfd selftest, and is catalogued."""

from __future__ import annotations

from pathlib import Path

import pytest

from checker.cli import main
from model import designs
from traces.concretize import initial_state
from traces.kernel import capability, hugepages_reserved, run_on_kernel
from traces.textfmt import load_trace
from traces.trace import Any_

SCENARIOS = Path(__file__).resolve().parent.parent / "traces" / "scenarios"
FILES = sorted(SCENARIOS.glob("*.trace"))

#: tools/testing/selftests/memfd/memfd_test.c, main() order (selftests.md §1.3) -> files
SELFTEST = {
    "1 test_create": ["create-invalid-then-valid", "create-cloexec", "create-allow-sealing"],
    "2 test_basic": ["basic-seals-accumulate", "basic-no-allow-sealing"],
    "3a test_exec_seal": ["exec-seal-non-executable"],
    "3b test_exec_seal (all seals)": ["exec-seal-implies-write-seals"],
    "4 test_exec_no_seal": ["exec-no-seal"],
    "5 test_noexec_seal": ["noexec-seal-allow-sealing", "noexec-seal-implies-sealable"],
    "6 test_seal_write": ["seal-write"],
    "7 test_seal_future_write": ["seal-future-write"],
    "8 test_seal_write_map_read_shared": ["seal-write-read-shared-map"],
    "9 test_seal_shrink": ["seal-shrink"],
    "10 test_seal_grow": ["seal-grow"],
    "11 test_seal_resize": ["seal-resize"],
    "12 test_sysctl_simple": ["sysctl-noexec-0", "sysctl-noexec-1", "sysctl-noexec-1-mfd-exec",
                              "sysctl-noexec-1-noexec-seal", "sysctl-noexec-2",
                              "sysctl-noexec-2-noexec-seal"],
    "13 test_sysctl_nested": ["sysctl-nested-inherited-2"],
    "14 test_share_dup": ["share-dup"],
    "15 test_share_mmap": ["share-mmap"],
    "16 test_share_open": ["share-open"],
    "17 test_share_fork": ["share-fork"],
}
EXTRA = {  # not from the selftest
    "the issue's example": ["seal-write-busy-mapping"],
    "fuse_test.c's pin, without the race": ["seal-write-busy-pin"],
    "hugetlbfs findings": ["hugetlb-exec-seal-fchmod", "hugetlb-grow-seal-mmap"],
}


def test_replay_verifies_everything(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["replay", str(SCENARIOS)])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0, "\n".join(out)
    assert out[-1].endswith("everything verified as expected"), out[-1]
    assert out[-1].startswith(f"replay: {len(FILES)} traces, {len(FILES)} as expected")


def test_every_selftest_item_has_a_file() -> None:
    names = {p.stem for p in FILES}
    for item, files in {**SELFTEST, **EXTRA}.items():
        for f in files:
            assert f in names, f"{item}: traces/scenarios/{f}.trace is missing"
    listed = {f for files in [*SELFTEST.values(), *EXTRA.values()] for f in files}
    assert names == listed, f"not listed here: {sorted(names - listed)}"
    items = {k.split()[0].rstrip("ab") for k in SELFTEST}
    assert items == {str(i) for i in range(1, 18)}


def test_headers_and_catalogue() -> None:
    readme = (SCENARIOS / "README.md").read_text()
    for p in FILES:
        lines = p.read_text().splitlines()
        assert lines[0].startswith("# shmemcheck trace 1: ") and len(lines[0]) > 25, p.name
        assert lines[1] == "# design: memfd", p.name
        assert lines[2].startswith("# expect: "), p.name
        assert f"`{p.name}`" in readme, f"{p.name} has no paragraph in README.md"
        t = load_trace(str(p))
        assert not any(isinstance(s.outcome, Any_) for s in t.steps), p.name
    for f in (SCENARIOS / "hugetlb-exec-seal-fchmod.trace",
              SCENARIOS / "hugetlb-grow-seal-mmap.trace"):
        assert load_trace(str(f)).expect.startswith("violates "), f.name


@pytest.mark.kernel
def test_scenarios_are_what_the_kernel_does() -> None:
    """Each file's outcomes are the live kernel's (hugetlbfs ones need free huge pages,
    vm.memfd_noexec ones a pid namespace of their own)."""
    d = designs.get("memfd")
    skipped = []
    with hugepages_reserved(2) as no_huge:
        for p in FILES:
            t = load_trace(str(p))
            scope = None
            if any(c.strip().startswith("init:") for c in t.comments):
                if capability("pidns"):
                    skipped.append(f"{p.name}: {capability('pidns')}")
                    continue
                scope = initial_state(d, t)["noexec_scope"]
            if no_huge and "MFD_HUGETLB" in p.read_text():
                skipped.append(f"{p.name}: {no_huge}")
                continue
            run = run_on_kernel(t.steps, noexec_scope=scope, timeout=30.0)
            if run.skipped:
                skipped.append(f"{p.name}: {run.skipped}")
                continue
            assert run.error is None, f"{p.name}: {run.error}"
            for i, (step, got) in enumerate(zip(t.steps, run.outcomes, strict=True), 1):
                assert step.outcome == got, f"{p.name}:{step.pos.line}: step {i}: kernel {got}"
    if len(skipped) == len(FILES):
        pytest.skip("; ".join(skipped))
