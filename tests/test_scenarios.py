"""traces/scenarios/: the scenario library replays as expected on the model of each file's design
(and on the live kernel), covers every scenario of the kernel's memfd selftest and of its
guest_memfd selftest, and is catalogued."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from checker.cli import main
from checker.kernel_replay import needs_hugetlb_1g
from checker.processes import flatten
from model import designs, vocab
from model.lang.design import Design
from traces.concretize import initial_state
from traces.hugepages import GIGANTIC_KB
from traces.kernel import capability, hugepages_reserved, run_on_kernel
from traces.textfmt import load_trace
from traces.trace import Any_, Int, Sym, Trace

SCENARIOS = Path(__file__).resolve().parent.parent / "traces" / "scenarios"
FILES = sorted(SCENARIOS.glob("*.trace"))  # the library; regressions/ is not part of it

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
    "madvise_remove(), the issue-13 acceptance": ["madvise-remove"],
    "names as strace prints them (issue 14)": ["names-length", "names-escaped", "names-nul",
                                               "names-empty", "names-selftest"],
    "the dup family and /proc/self/fd opens (issue 14)": ["dup-family", "reopen-create-mode"],
    "sizes, offsets and lengths in bytes (issue 14)": [
        "bytes-limits", "bytes-seal-grow-short-write", "bytes-seal-shrink-subpage",
        "bytes-sigbus-at-eof", "bytes-hugetlb-unaligned", "bytes-fallocate-ranges",
        "bytes-access-offsets", "bytes-access-offsets-hugetlb", "bytes-seal-grow-pmd-chunks",
        "bytes-seal-grow-pmd-offset"],
    "the machine's huge page sizes (issue 14)": ["hugetlb-1g", "hugetlb-no-1g-hstate"],
    "argument refusals no property states (issue 19's surviving mutants)": [
        "args-refused-offsets-and-modes"],
    "FOLL_FORCE writes through /proc/self/mem (issue 15, bug-history B5)": [
        "mem-write", "mem-write-hugetlb", "vm-write"],
    "madvise() advice other than MADV_REMOVE (issue 15)": [
        "madvise-advice", "madvise-advice-hugetlb"],
    "splice() from a pipe into the memfd (issue 15)": ["splice-write"],
    "udmabuf: a dmabuf of the memfd's pages, pinned (issue 15; kernel side on the 6.12, 7.2 and "
    "7.3-rc guests: this kernel has no CONFIG_UDMABUF)": ["udmabuf", "udmabuf-hugetlb"],
    "pwritev2()/preadv2() with iovec arrays and RWF_* flags (issue 15)": ["pwritev2-preadv2"],
    "fstat()'s st_size and st_mode as outputs (issues 14, 16)": [
        "fstat-size-and-mode", "fstat-noexec-seal", "fstat-hugetlb"],
    "write()/read()/lseek() at the description's f_pos (issues 14, 15)": [
        "write-read-fpos", "writev-readv-fpos", "pwritev2-preadv2-fpos"],
    "mappings of several pages (issue 14)": ["mmap-multipage", "mmap-multipage-hugetlb"],
    "mappings at file offsets (issue 14)": ["mmap-offsets", "mmap-offsets-hugetlb"],
    "munmap and mprotect of a part of a mapping: VMA splits (issue 14)": ["vma-split"],
    "lseek SEEK_DATA/SEEK_HOLE: which pages hold data (issue 14)": [
        "seek-data-hole", "seek-data-hole-hugetlb"],
    "exec of a memfd: x bits, the write count, B15 (issue 15)": [
        "exec-permission", "exec-noexec-seal-hugetlb"],
    "io_uring WRITE/READ/FALLOCATE against the seals (issue 15)": ["io-uring-seals"],
    "copy_file_range() within the memfd (issue 15)": ["copy-file-range"],
    "sendfile() within the memfd: a read the writes feed, pipe fills under F_SEAL_GROW "
    "(issue 15)": ["sendfile"],
    "mremap(): resize, move, copy, and F_SEAL_FUTURE_WRITE's copies (issue 15)": [
        "mremap-resize-copy", "mremap-future-write-copy"],
    "fork(): a child's copy of a mapping (fork_vma), and F_SEAL_FUTURE_WRITE's (issue 15)": [
        "fork", "fork-future-write-copy"],
    "fork() with processes: [c1] lines, exit_group, wait4 (issue 15)": ["fork-processes"],
    "chattr (FS_IOC_SETFLAGS): immutable and append-only memfds (issue 15)": [
        "chattr-append-only", "chattr-immutable-still-written"],
    "xfs_io's chattr (FS_IOC_FSSETXATTR): the same flags by struct fsxattr (issue 15)": [
        "xfs-io-chattr-immutable"],
    "file_setattr(2)/file_getattr(2) (v6.17): the same flags by struct file_attr "
    "(issue 15)": ["file-setattr-immutable"],
    "PROT_EXEC mappings, MFD_NOEXEC_SEAL's reach (issue 15)": ["noexec-seal-exec-mapping"],
    "tmpfs files on /dev/shm (shm_open, shm_unlink): born F_SEAL_SEAL (issue 15)": [
        "tmpfs-shm-open"],
    "O_WRONLY and O_APPEND descriptions, and FS_APPEND_FL's rules for them (issues 14, 15)": [
        "open-wronly", "open-append"],
    "pread64 and io_uring's read with any count, as strace prints them (issue 14)": [
        "pread-counts"],
    "F_GETFL, FIONBIO, FIOCLEX and isatty()'s ENOTTY: the description's status flags "
    "(issue 14)": ["getfl-fionbio"],
}

#: tools/testing/selftests/kvm/guest_memfd_test.c (6.18; selftests.md §2.1): the functions
#: test_guest_memfd() and __test_guest_memfd() run, and test_guest_memfd_guest() -> files
GMEM_SELFTEST = {
    "test_guest_memfd_flags": ["gmem-flags"],
    "test_create_guest_memfd_multiple": ["gmem-create-multiple"],
    "test_create_guest_memfd_invalid_sizes": ["gmem-invalid-sizes"],
    "test_file_read_write": ["gmem-read-write"],
    "test_mmap_supported": ["gmem-mmap-supported"],
    "test_fault_overflow": ["gmem-fault-overflow"],
    "test_fault_private": ["gmem-fault-private"],
    "test_mmap_cow": ["gmem-mmap-cow"],
    "test_mmap_not_supported": ["gmem-mmap-not-supported"],
    "test_file_size": ["gmem-file-size"],
    "test_fallocate": ["gmem-fallocate"],
    "test_invalid_punch_hole": ["gmem-invalid-punch-hole"],
    "test_guest_memfd_guest": ["gmem-guest"],
}
GMEM_EXTRA = {  # not in the selftest: probes H.bind, H.life (kernel-semantics.md §5.3)
    "memslot bindings": ["gmem-bind", "gmem-bind-other-vm", "gmem-bind-close",
                         "gmem-delete-flags"],
    "lifetimes, seals, attributes": ["gmem-lifetime"],
    "byte values (issue 14)": ["gmem-bytes-create", "gmem-bytes-memslot", "gmem-gpa-overlap",
                               "gmem-read-write-counts"],
}

#: design -> (its selftest table, the rest, the file name prefix of its traces or None)
CATALOGUE: dict[str, tuple[dict[str, list[str]], dict[str, list[str]], str | None]] = {
    "memfd": (SELFTEST, EXTRA, None),
    "guest_memfd": (GMEM_SELFTEST, GMEM_EXTRA, "gmem-"),
}


_DESIGNS: dict[str, Design] = {}


def design_of(t: Trace) -> Design:
    if t.design not in _DESIGNS:
        _DESIGNS[t.design] = designs.get(t.design)
    return _DESIGNS[t.design]


def listed(design: str) -> set[str]:
    table, extra, _ = CATALOGUE[design]
    return {f for files in [*table.values(), *extra.values()] for f in files}


def test_replay_verifies_everything(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["replay", *map(str, FILES)])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0, "\n".join(out)
    assert out[-1].endswith("everything verified as expected"), out[-1]
    assert out[-1].startswith(f"replay: {len(FILES)} traces, {len(FILES)} as expected")
    for design in CATALOGUE:  # every file of each design, on that design's model
        for name in listed(design):
            assert any(x.startswith(f"ok   {SCENARIOS / name}.trace: ") for x in out), name


def test_every_selftest_item_has_a_file() -> None:
    names = {p.stem for p in FILES}
    for design, (table, extra, _) in CATALOGUE.items():
        for item, files in {**table, **extra}.items():
            for f in files:
                assert f in names, f"{design}: {item}: traces/scenarios/{f}.trace is missing"
                t = load_trace(str(SCENARIOS / f"{f}.trace"))
                assert t.design == design, f"{f}.trace is design {t.design}, not {design}"
    assert listed("memfd").isdisjoint(listed("guest_memfd"))
    both = listed("memfd") | listed("guest_memfd")
    assert names == both, f"not listed here: {sorted(names - both)}"
    items = {k.split()[0].rstrip("ab") for k in SELFTEST}
    assert items == {str(i) for i in range(1, 18)}
    # selftests.md §2.1: eleven checks of __test_guest_memfd(), the flags, the guest
    assert len(GMEM_SELFTEST) == 13 and all(k.startswith("test_") for k in GMEM_SELFTEST)


def readme_paragraph(readme: str, name: str) -> str:
    """The README paragraph that describes `name` (it starts with the name in backquotes)."""
    paras = [p for p in re.split(r"\n\s*\n", readme) if p.startswith(f"`{name}`")]
    assert len(paras) == 1, f"{name}: {len(paras)} paragraphs in README.md"
    return " ".join(paras[0].split())


def test_headers_and_catalogue() -> None:
    readme = (SCENARIOS / "README.md").read_text()
    for p in FILES:
        lines = p.read_text().splitlines()
        assert lines[0].startswith("# shmemcheck trace 1: ") and len(lines[0]) > 25, p.name
        assert lines[1] in ("# design: memfd", "# design: guest_memfd"), p.name
        assert lines[2].startswith("# expect: "), p.name
        t = load_trace(str(p))
        prefix = CATALOGUE[t.design][2]
        assert prefix is None or p.name.startswith(prefix), p.name
        assert t.design == "guest_memfd" or not p.name.startswith("gmem-"), p.name
        assert f"`{p.name}`" in readme, f"{p.name} has no paragraph in README.md"
        readme_paragraph(readme, p.name)
        # `= ?` is the model's to decide, but for exit_group(), which strace prints so
        assert not any(isinstance(s.outcome, Any_) and s.call != "exit_group"
                       for s in t.steps), p.name
    for finding in (SCENARIOS / "hugetlb-exec-seal-fchmod.trace",
                    SCENARIOS / "hugetlb-grow-seal-mmap.trace"):
        assert load_trace(str(finding)).expect.startswith("violates "), finding.name
    # a guest_memfd paragraph names its selftest function (or probe) and kernel functions
    for item, files in GMEM_SELFTEST.items():
        for f in files:
            para = readme_paragraph(readme, f"{f}.trace")
            assert f"`{item}()`" in para and "Kernel: `" in para, para
    for files in GMEM_EXTRA.values():
        for f in files:
            para = readme_paragraph(readme, f"{f}.trace")
            assert "probe" in para and "Kernel: `" in para, para


def uses_hugetlb(t: Trace) -> bool:
    """A memfd_create with the MFD_HUGETLB bit (also inside 0xfffffffe): the kernel executor
    then wants free huge pages."""
    for s in t.steps:
        if s.call == "memfd_create" and len(s.args) > 1:
            flags = s.args[1]
            if isinstance(flags, Int) and flags.value & vocab.MFD_HUGETLB:
                return True
            if isinstance(flags, Sym) and vocab.parse_flags(flags.text) & vocab.MFD_HUGETLB:
                return True
    return False


def needs(t: Trace) -> str | None:
    """Why this machine cannot run the trace, or None."""
    if t.design == "guest_memfd":
        return capability("kvm")
    if init_says(t, "noexec_scope"):
        return capability("pidns")
    return None


def init_says(t: Trace, name: str) -> bool:
    """The trace's `# init:` line sets `name`."""
    return any(c.strip().startswith("init:") and f"{name}=" in c for c in t.comments)


@pytest.fixture(scope="module")
def huge_pages() -> Iterator[str | None]:
    """Free huge pages for the hugetlbfs files, reserved once for all of them: None, or why
    there are none."""
    with hugepages_reserved(2) as why:
        yield why


@pytest.fixture(scope="module")
def giga_pages() -> Iterator[str | None]:
    """Free 1 GiB pages for the MFD_HUGE_1GB files (when the machine has that hstate)."""
    with hugepages_reserved(2, GIGANTIC_KB) as why:
        yield why


@pytest.mark.kernel
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_is_what_the_kernel_does(path: Path, request: pytest.FixtureRequest) -> None:
    """The file's outcomes are the live kernel's: memfd ones on shmem or hugetlbfs (those need
    free huge pages, vm.memfd_noexec ones a pid namespace of their own), guest_memfd ones on
    /dev/kvm. A missing capability is a skip with its reason."""
    t = load_trace(str(path))
    why = needs(t)
    if why:
        pytest.skip(f"{path.name}: {why}")
    t = flatten(design_of(t), t)  # the kernel runs a trace's processes lowered
    scope = hstate = None
    if init_says(t, "noexec_scope"):
        scope = initial_state(design_of(t), t)["noexec_scope"]
    if init_says(t, "hstate_1g"):
        hstate = initial_state(design_of(t), t)["hstate_1g"]
    giga = needs_hugetlb_1g(t.steps)
    if uses_hugetlb(t):
        no_huge = request.getfixturevalue("giga_pages" if giga and hstate != 0
                                          else "huge_pages")
        if no_huge:
            pytest.skip(f"{path.name}: {no_huge}")
    run = run_on_kernel(t.steps, noexec_scope=scope, hstate_1g=hstate, timeout=30.0)
    if run.skipped:
        pytest.skip(f"{path.name}: {run.skipped}")
    assert run.error is None, f"{path.name}: {run.error}"
    for i, (step, got) in enumerate(zip(t.steps, run.outcomes, strict=True), 1):
        assert step.outcome == got, f"{path.name}:{step.pos.line}: step {i}: kernel {got}"


#: traces/scenarios/regressions/: one trace per divergence conformance found and the model
#: fixed (NOTES.md "Divergences found by conformance testing")
REGRESSIONS = sorted((SCENARIOS / "regressions").glob("*.trace"))


def test_regressions_replay_on_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(REGRESSIONS) >= 3
    rc = main(["replay", *map(str, REGRESSIONS)])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0 and out[-1].endswith("everything verified as expected"), "\n".join(out)


@pytest.mark.kernel
@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.stem for p in REGRESSIONS])
def test_regression_is_what_the_kernel_does(path: Path, request: pytest.FixtureRequest) -> None:
    test_scenario_is_what_the_kernel_does(path, request)
