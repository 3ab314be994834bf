"""munmap() and mprotect() of a part of a mapping: the VMA splits (NOTES.md "VMA splits").

Every expected outcome below is written from the kernel source, not computed by the model:
mm/vma.c do_vmi_munmap() -> vms_gather_munmap_vmas() splits the VMA at both ends of the range
(__split_vma(), whose new VMA joins i_mmap and, when VM_SHARED|VM_MAYWRITE, i_mmap_writable:
vma_link_file() -> mapping_allow_writable()); mm/mprotect.c do_mprotect_pkey() ->
mprotect_fixup() -> vma_modify_flags() splits likewise, keeps VM_MAYWRITE on the part made
read-only, and refuses PROT_WRITE on a VMA without VM_MAYWRITE (EACCES) before it splits
anything; newflags == oldflags changes nothing. memfd_add_seals(F_SEAL_WRITE) is EBUSY while
i_mmap_writable > 0 (mapping_deny_writable()). Each row runs on the model and on the live
kernel.
"""

from __future__ import annotations

import pytest

from checker.judge import TraceInputError
from tests.conftest import kernel_agrees, replay_text
from traces.textfmt import parse_trace

THREE = ('memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, 12288) = 0\n')
SH_RW3 = "mmap(NULL, 12288, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1\n"
SEAL = "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = "
HUGE = ('memfd_create("t", MFD_ALLOW_SEALING|MFD_HUGETLB) = 3\nftruncate(3, 4194304) = 0\n'
        "mmap(NULL, 4194304, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1\n")

SPLIT = {
    "munmap of the middle: two VMAs, each keeps the seal out":
        THREE + SH_RW3 + "munmap(m1+4096, 4096) = 0\nstore(m1, 0) = 0\nstore(m1, 8192) = 0\n"
        "munmap(m1, 4096) = 0\n" + SEAL + "-1 EBUSY\nmunmap(m1+8192, 4096) = 0\n" + SEAL + "0",
    "munmap of the head, then of the tail: one VMA each time":
        THREE + SH_RW3 + "munmap(m1, 4096) = 0\nmunmap(m1+8192, 4096) = 0\nstore(m1, 4096) = 0\n"
        + SEAL + "-1 EBUSY\nmunmap(m1+4096, 4096) = 0\n" + SEAL + "0",
    "munmap of a part, length 0: EINVAL":
        THREE + SH_RW3 + "munmap(m1+4096, 0) = -1 EINVAL\nmunmap(m1, 12288) = 0\n" + SEAL + "0",
    "mprotect of the middle to PROT_READ: it faults there, and keeps VM_MAYWRITE":
        THREE + SH_RW3 + "mprotect(m1+4096, 4096, PROT_READ) = 0\nstore(m1, 4096) = SIGSEGV\n"
        "load(m1, 4096) = 0\nstore(m1, 0) = 0\nstore(m1, 8192) = 0\nmunmap(m1, 4096) = 0\n"
        "munmap(m1+8192, 4096) = 0\n" + SEAL + "-1 EBUSY\n"
        "mprotect(m1+4096, 4096, PROT_READ|PROT_WRITE) = 0\nstore(m1, 4096) = 0\n"
        "munmap(m1+4096, 4096) = 0\n" + SEAL + "0",
    "mprotect to the protection it has splits nothing: a whole munmap takes it":
        THREE + SH_RW3 + "mprotect(m1+4096, 4096, PROT_READ|PROT_WRITE) = 0\n"
        "munmap(m1, 12288) = 0\n" + SEAL + "0",
    "mprotect of a part of an O_RDONLY description's mapping to PROT_WRITE: EACCES":
        THREE + 'open("/proc/self/fd/3", O_RDONLY) = 4\n'
        "mmap(NULL, 12288, PROT_READ, MAP_SHARED, 4, 0) = m1\n"
        "mprotect(m1+4096, 4096, PROT_READ|PROT_WRITE) = -1 EACCES\nstore(m1, 4096) = SIGSEGV\n"
        + SEAL + "0",
    "F_SEAL_FUTURE_WRITE: a part of a mapping made after it cannot be made writable":
        THREE + "fcntl(3, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) = 0\n"
        "mmap(NULL, 12288, PROT_READ, MAP_SHARED, 3, 0) = m1\n"
        "mprotect(m1+8192, 4096, PROT_READ|PROT_WRITE) = -1 EACCES\n"
        "munmap(m1+4096, 4096) = 0\n" + SEAL + "0",
    "F_SEAL_FUTURE_WRITE: a part of a mapping from before goes read-only and back":
        THREE + SH_RW3 + "fcntl(3, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) = 0\n"
        "mprotect(m1+4096, 4096, PROT_READ) = 0\nstore(m1, 4096) = SIGSEGV\n"
        "mprotect(m1+4096, 4096, PROT_READ|PROT_WRITE) = 0\nstore(m1, 4096) = 0",
    "private: a part made read-only faults, the others store into their copies":
        THREE + "mmap(NULL, 12288, PROT_READ|PROT_WRITE, MAP_PRIVATE, 3, 0) = m1\n"
        + SEAL + "0\nmprotect(m1, 4096, PROT_READ) = 0\nstore(m1, 0) = SIGSEGV\n"
        "store(m1, 4096) = 0\nmunmap(m1+8192, 4096) = 0\nstore(m1, 4096) = 0",
    "a piece keeps its file offset: past EOF it is SIGBUS, until the file grows":
        'memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, 4096) = 0\n' + SH_RW3
        + "munmap(m1, 4096) = 0\nstore(m1, 4096) = SIGBUS\nftruncate(3, 8192) = 0\n"
        "store(m1, 4096) = 0\nstore(m1, 8192) = SIGBUS",
    "hugetlbfs: munmap of the second huge page leaves the first":
        HUGE + "munmap(m1+2097152, 2097152) = 0\nstore(m1, 0) = 0\n" + SEAL + "-1 EBUSY\n"
        "munmap(m1, 2097152) = 0\n" + SEAL + "0",
    "a range over several pieces: each VMA in it, in address order":
        THREE + SH_RW3 + "mprotect(m1+4096, 4096, PROT_READ) = 0\n"
        "mprotect(m1, 12288, PROT_READ) = 0\nstore(m1, 0) = SIGSEGV\nstore(m1, 8192) = SIGSEGV\n"
        "mprotect(m1, 8192, PROT_READ|PROT_WRITE) = 0\nstore(m1, 4096) = 0\n"
        "munmap(m1, 12288) = 0\n" + SEAL + "0",
    "F_SEAL_WRITE then a range over pieces made writable: EACCES at the first":
        THREE + 'open("/proc/self/fd/3", O_RDONLY) = 4\n'
        "mmap(NULL, 12288, PROT_READ, MAP_SHARED, 4, 0) = m1\nmunmap(m1, 4096) = 0\n"
        "mprotect(m1+4096, 4096, PROT_READ|PROT_EXEC) = 0\n"
        "mprotect(m1+4096, 8192, PROT_READ|PROT_WRITE) = -1 EACCES\nstore(m1, 8192) = SIGSEGV",
    "hugetlbfs: mprotect of the second huge page":
        HUGE + "mprotect(m1+2097152, 2097152, PROT_READ) = 0\nstore(m1, 2097152) = SIGSEGV\n"
        "store(m1, 0) = 0",
}


@pytest.mark.parametrize("name", list(SPLIT))
def test_split(name: str) -> None:
    assert replay_text(SPLIT[name]) is None


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(SPLIT))
def test_split_on_kernel(name: str) -> None:
    kernel_agrees("# design: memfd\n" + SPLIT[name], hugepages=2)


def test_a_wrong_cell_is_reported() -> None:
    """The seal after unmapping one of the middle munmap's two parts: still EBUSY."""
    out = replay_text(THREE + SH_RW3 + "munmap(m1+4096, 4096) = 0\nmunmap(m1, 4096) = 0\n"
                      + SEAL + "0")
    assert out is not None and "model says -1 EBUSY" in out


#: mmap(MAP_FIXED) over a part of a mapping (mm/vma.c __mmap_region(): the old VMAs in the
#: range are gathered, and unmapped once the new mapping stands; a failed mmap keeps them)
FIXED = {
    "a private mapping over the middle of a shared one":
        THREE + SH_RW3 + "mmap(m1+4096, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED, 3, 8192) = m2\n"
        "store(m2, 0) = SIGSEGV\nstore(m1, 8192) = 0\nmunmap(m1, 4096) = 0\n"
        "munmap(m1+8192, 4096) = 0\n" + SEAL + "0\nload(m2, 0) = 0",
    "a failed one (F_SEAL_WRITE) keeps the old mapping":
        THREE + SH_RW3 + "munmap(m1+4096, 8192) = 0\n"
        "mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 3, 0) = m2\n"
        "munmap(m1, 4096) = 0\n" + SEAL + "0\n"
        "mmap(m2, 4096, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, 3, 0) = -1 EPERM\n"
        "load(m2, 0) = 0\nmunmap(m2, 4096) = 0",
    "over two pieces of a mapping, which F_SEAL_WRITE then no longer counts":
        THREE + SH_RW3 + "mprotect(m1+4096, 4096, PROT_READ) = 0\n"
        "mmap(m1, 8192, PROT_READ, MAP_PRIVATE|MAP_FIXED, 3, 0) = m2\n"
        + SEAL + "-1 EBUSY\nmunmap(m1+8192, 4096) = 0\n" + SEAL + "0\nstore(m2, 4096) = SIGSEGV",
}


@pytest.mark.parametrize("name", list(FIXED))
def test_map_fixed(name: str) -> None:
    assert replay_text(FIXED[name]) is None


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(FIXED))
def test_map_fixed_on_kernel(name: str) -> None:
    """Lowered (mmap, then munmap of what it replaced) and as written (one MAP_FIXED mmap at
    the address), the kernel gives the trace's outcomes."""
    from traces.kernel import run_on_kernel

    kernel_agrees("# design: memfd\n" + FIXED[name])
    steps = parse_trace("# shmemcheck trace 1\n# design: memfd\n" + FIXED[name], "<t>").steps
    run = run_on_kernel(steps)
    assert (run.skipped, run.error) == (None, None)
    assert run.outcomes == [st.outcome for st in steps]


def test_map_fixed_refusals() -> None:
    from checker.replay import model_outcomes
    from model import designs

    for line, why in (
            ("mmap(m1+4096, 4096, PROT_READ, MAP_PRIVATE, 3, 0) = m2", "with MAP_FIXED"),
            ("mmap(m1+2048, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED, 3, 0) = m2", "page-aligned"),
            ("mmap(m1+8192, 8192, PROT_READ, MAP_PRIVATE|MAP_FIXED, 3, 0) = m2", "memory past"),
            ("mmap(m1, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED_NOREPLACE, 3, 0) = m2",
             "MAP_FIXED")):
        t = parse_trace("# shmemcheck trace 1\n# design: memfd\n" + THREE + SH_RW3 + line
                        + "\n", "<t>")
        with pytest.raises(TraceInputError, match=why) as e:
            model_outcomes(designs.get("memfd"), t)
        assert "outside the model" in str(e.value)


def test_a_range_over_pieces_is_judged_piece_by_piece() -> None:
    """The line's outcome is the last lowered step's: a wrong one is reported at the line,
    and the lowered steps say what they were."""
    from checker.processes import flatten
    from model import designs
    from traces.textfmt import format_step

    text = (THREE + SH_RW3 + "mprotect(m1+4096, 4096, PROT_READ) = 0\n"
            "mprotect(m1, 12288, PROT_READ) = -1 EACCES\n")
    out = replay_text(text)
    assert out is not None and "<table>:7:1" in out and "model says 0" in out, out
    t = parse_trace("# shmemcheck trace 1\n# design: memfd\n" + text, "<table>")
    flat = [format_step(s) for s in flatten(designs.get("memfd"), t).steps][4:]
    assert [f.split("  #")[0] for f in flat] == [
        "mprotect(m1, 4096, PROT_READ) = 0", "mprotect(m1+4096, 4096, PROT_READ) = 0",
        "mprotect(m1+8192, 4096, PROT_READ) = -1 EACCES (Permission denied)"]
    assert all("its part in piece" in f for f in flat)


REFUSED = {
    "a store into a part that was unmapped": (
        "munmap(m1+4096, 4096) = 0\nstore(m1, 4096) = SIGSEGV", "was unmapped"),
    "a range over a part unmapped": (
        "munmap(m1+4096, 4096) = 0\nmprotect(m1, 12288, PROT_READ) = 0", "was unmapped"),
    "a range past the mapping": ("munmap(m1+8192, 8192) = 0", "within_piece"),
    "an address past the mapping": ("munmap(m1+12288, 4096) = 0", "past the end"),
    "an address inside a page": ("munmap(m1+100, 4096) = 0", "not a multiple"),
    "madvise of a mapping in pieces": (
        "munmap(m1+4096, 4096) = 0\nmadvise(m1, 4096, MADV_DONTNEED) = 0", "held in pieces"),
    "mremap of a mapping in pieces": (
        "munmap(m1+4096, 4096) = 0\nmremap(m1, 4096, 8192, MREMAP_MAYMOVE) = m1",
        "held in pieces"),
    "fork_vma of a mapping in pieces": (
        "munmap(m1+4096, 4096) = 0\nfork_vma(m1) = m2", "held in pieces"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_outside_the_model(name: str) -> None:
    """What the model does not hold is refused with the reason, never judged."""
    from checker.replay import model_outcomes
    from model import designs

    text, why = REFUSED[name]
    t = parse_trace("# shmemcheck trace 1\n# design: memfd\n" + THREE + SH_RW3 + text,
                    "<table>")
    with pytest.raises(TraceInputError) as e:
        model_outcomes(designs.get("memfd"), t)
    assert why in str(e.value) and "outside the model" in str(e.value), str(e.value)


def test_an_address_inside_a_mapping_is_for_munmap_and_mprotect() -> None:
    """A store names the mapping and its byte offset: `store(m1+4096, 0)` is a malformed
    line (exit 2), said so."""
    from checker.replay import model_outcomes
    from model import designs

    t = parse_trace("# shmemcheck trace 1\n# design: memfd\n" + THREE + SH_RW3
                    + "store(m1+4096, 0) = 0\n", "<table>")
    with pytest.raises(TraceInputError, match="read by munmap and mprotect; store names"):
        model_outcomes(designs.get("memfd"), t)


def test_hugetlb_inside_a_huge_page_is_refused() -> None:
    from checker.replay import model_outcomes
    from model import designs

    t = parse_trace("# shmemcheck trace 1\n# design: memfd\n" + HUGE
                    + "munmap(m1+4096, 4096) = 0\n", "<table>")
    with pytest.raises(TraceInputError, match="not a multiple of the file's page"):
        model_outcomes(designs.get("memfd"), t)


def test_pieces_and_counters_agree() -> None:
    """After each step the handle table's pieces are the model's mapping counters: a piece
    is a mapping of its own, named by where it starts, with its file offset and length."""
    from checker.judge import judge_step, replay_interpreter
    from model import designs
    from traces.concretize import Handles, initial_state

    d = designs.get("memfd")
    t = parse_trace("# shmemcheck trace 1\n# design: memfd\n" + THREE + SH_RW3
                    + "mprotect(m1+4096, 4096, PROT_READ) = 0\nmunmap(m1, 4096) = 0\n"
                    "mprotect(m1+8192, 4096, PROT_READ) = 0\n", "<table>")
    ex, h, st = replay_interpreter(d), Handles(), initial_state(d, t)
    seen = []
    for step in t.steps:
        whole = judge_step(d, ex, h, st, step, "<table>")[3]
        st = whole.after
        seen.append((st["map_sh_rw"], st["map_sh_ro_mw"], dict(h.live["map"]),
                     h.pieces.get("m1")))
    sh_rw, ro_mw = 0, 1
    assert seen[3] == (2, 1, {"m1": sh_rw, "m1+4096": ro_mw, "m1+8192": sh_rw},
                       (12288, [(0, "m1"), (4096, "m1+4096"), (8192, "m1+8192")]))
    assert seen[4][:3] == (1, 1, {"m1+4096": ro_mw, "m1+8192": sh_rw})
    assert seen[5][:3] == (0, 2, {"m1+4096": ro_mw, "m1+8192": ro_mw})
    assert h.maps["m1+8192"]["off"] == 8192 and h.maps["m1+8192"]["pages"] == 1


def test_processes_exit_unmaps_every_piece() -> None:
    """exit_group() of a child that split its copy unmaps each piece (exit_mmap())."""
    from checker.processes import flatten
    from model import designs
    from traces.textfmt import format_step

    t = parse_trace("# shmemcheck trace 1\n# design: memfd\n" + THREE + SH_RW3
                    + "fork() = c1\n[c1] munmap(m1+4096, 4096) = 0\n"
                    "[c1] exit_group(0) = ?\nwait4(c1, NULL, 0, NULL) = c1\n"
                    "munmap(m1, 12288) = 0\n" + SEAL + "0\n", "<table>")
    flat = [format_step(s).split("  #")[0] for s in flatten(designs.get("memfd"), t).steps]
    assert "munmap(m2, 4096) = 0" in flat and "munmap(m2+8192, 4096) = 0" in flat
    assert flat[-1] == "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0"


@pytest.mark.parametrize("to", ["c", "python", "syz"])
def test_export_names_the_address(to: str) -> None:
    from checker.replay import replay_for_export
    from model import designs
    from traces.export import EXPORTERS

    t = parse_trace("# shmemcheck trace 1\n# design: memfd\n" + SPLIT[
        "mprotect of the middle to PROT_READ: it faults there, and keeps VM_MAYWRITE"],
        "<table>")
    d = designs.get("memfd")
    text = EXPORTERS[to][1](d, replay_for_export(d, t))
    want = {"c": ("(char *)maps[1] + 4096", "sys_munmap(1, 8192, 4096)"),
            "python": ("maps[1] + 4096", "sys_munmap(1, 8192, 4096)"),
            "syz": ("mprotect(&(0x7f0000201000/0x1000)", "munmap(&(0x7f0000202000/0x1000)")}[to]
    for w in want:
        assert w in text


def random_split_traces(n: int, seed: int = 45) -> list[str]:
    """Random munmap/mprotect ranges (page-aligned or not, inside, across pieces, past the
    end, length 0) over a four-page mapping, shared or private, with stores, loads and
    seals between them."""
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        share = rng.choice(("MAP_SHARED", "MAP_SHARED", "MAP_PRIVATE"))
        how = rng.choice(("3", "3", "4"))  # an O_RDONLY description's mapping: no VM_MAYWRITE
        prot = "PROT_READ" if how == "4" else rng.choice(("PROT_READ", "PROT_READ|PROT_WRITE"))
        lines = ['memfd_create("t", MFD_ALLOW_SEALING) = 3',
                 f"ftruncate(3, {rng.choice((4096, 8192, 12288, 16384))}) = 0",
                 'open("/proc/self/fd/3", O_RDONLY) = 4',
                 f"mmap(NULL, 16384, {prot}, {share}, {how}, 0) = m1"]
        for _ in range(6):
            k = rng.randrange(6)
            at = rng.choice((0, 4096, 8192, 12288))
            n_ = rng.choice(tuple(range(4096, 16384 - at + 1, 4096)))
            if rng.randrange(8) == 0:  # unaligned, empty, or past the mapping
                at, n_ = rng.choice(((2048, 4096), (at, 0), (at, 16384)))
            addr = f"m1+{at}" if at else "m1"
            if k == 0:
                lines.append(f"munmap({addr}, {n_}) = ?")
            elif k in (1, 2):
                p = rng.choice(("PROT_READ", "PROT_READ|PROT_WRITE", "PROT_READ|PROT_EXEC"))
                lines.append(f"mprotect({addr}, {n_}, {p}) = ?")
            elif k == 3:
                lines.append(f"store(m1, {rng.choice((0, 4096, 8191, 12288, 16383))}) = ?")
            elif k == 4:
                lines.append(f"load(m1, {rng.choice((0, 4096, 8191, 12288, 16383))}) = ?")
            else:
                seal = rng.choice(("F_SEAL_WRITE", "F_SEAL_FUTURE_WRITE"))
                lines.append(f"fcntl(3, F_ADD_SEALS, {seal}) = ?")
        out.append("# shmemcheck trace 1\n# design: memfd\n" + "\n".join(lines) + "\n")
    return out


RANDOM = random_split_traces(30)


def _judged(text: str) -> object:
    from checker.replay import model_outcomes
    from model import designs

    d, t = designs.get("memfd"), parse_trace(text, "<random>")
    try:
        return d, t, model_outcomes(d, t, stop_at_divergence=False)
    except TraceInputError as e:
        return str(e)


def test_random_ranges_are_judged_or_refused_with_a_reason() -> None:
    judged = 0
    for text in RANDOM:
        r = _judged(text)
        if isinstance(r, str):  # or a line naming a mapping all of whose pieces are gone
            assert "outside the model: " in r or "m1 does not exist" in r, r
        else:
            judged += 1
    assert judged >= len(RANDOM) // 2, judged


@pytest.mark.kernel
@pytest.mark.parametrize("i", range(len(RANDOM)))
def test_random_ranges_agree_with_the_kernel(i: int) -> None:
    from checker.kernel_replay import replay_on_kernel

    r = _judged(RANDOM[i])
    if isinstance(r, str):
        pytest.skip(f"refused: {r}")
    d, t, rep = r  # type: ignore[misc]
    k = replay_on_kernel(d, t, rep, against="both")
    assert not k.skipped and k.divergence is None, (RANDOM[i], k.divergence)


def test_a_childs_mapping_is_gone_with_its_last_piece() -> None:
    """The piece bearing the mapping's name unmapped before the others: the mapping lives
    until its last piece goes, and then the child's exit has nothing of it to unmap, and a
    new mapping may take its name (found by review: an error, and a false divergence)."""
    for tail in ("[c1] exit_group(0) = ?\nwait4(c1, NULL, 0, NULL) = c1\n",
                 "[c1] mmap(NULL, 4096, PROT_READ, MAP_SHARED, 3, 0) = m1\n"):
        assert replay_text(THREE + SH_RW3 + "fork() = c1\n[c1] munmap(m1+4096, 4096) = 0\n"
                           "[c1] munmap(m1, 4096) = 0\n[c1] munmap(m1+8192, 4096) = 0\n"
                           + tail) is None
    assert replay_text(THREE + SH_RW3 + "munmap(m1+4096, 4096) = 0\nmunmap(m1, 4096) = 0\n"
                       "munmap(m1+8192, 4096) = 0\nfork() = c1\n[c1] exit_group(0) = ?\n"
                       + SEAL + "0") is None
