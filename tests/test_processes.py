"""A trace's processes (checker/processes.py): `fork() = c1`, `[c1] call(...)`, `exit_group`,
`wait4`, lowered to the model's fork_vma/dup/munmap/close steps.

The table is written from kernel/fork.c and the VFS, not from the model: dup_fd() gives the
child a descriptor of the *same* open file description (one f_pos: a child's write moves the
parent's offset), its own descriptor table (a child's close or dup2 leaves the parent's
alone), and dup_mmap() a copy of each VMA (a VM_SHARED|VM_MAYWRITE copy counts in
i_mmap_writable until the child unmaps it or exits: exit_mmap()); an O_RDONLY description
stays one (EBADF for a write through the child's copy); a pipe holding a vmsplice()d page is
inherited (dup_fd()), so the page reference F_SEAL_WRITE waits for lives until the last
process holding the pipe exits. Each row runs on the model and, the same lowered steps, on
the live kernel.
"""

from __future__ import annotations

import pytest

from checker.processes import _roles, flatten
from checker.replay import TraceInputError
from model import designs
from model.lang.callspec import Fd, MapRef, NewFd, PinRef
from tests.conftest import kernel_agrees, replay_text
from traces.textfmt import TraceSyntaxError, format_step, format_trace, parse_step, parse_trace
from traces.trace import New, Ret

CREATE = 'memfd_create("t", MFD_ALLOW_SEALING) = 3\n'
SH_RW = "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1\n"
WSEAL = "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE)"
REAP = "[c1] exit_group(0) = ?\nwait4(c1, NULL, 0, NULL) = c1\n"

PROCS = {
    "the child's write moves the parent's f_pos (one description)": CREATE
        + 'fork() = c1\n[c1] write(3, "abc", 3) = 3\n' + REAP + "lseek(3, 0, SEEK_CUR) = 3",
    "the child's close leaves the parent's descriptor open": CREATE
        + 'fork() = c1\n[c1] close(3) = 0\npwrite64(3, "x", 1, 0) = 1',
    "the child's own fd 4 is not the parent's fd 4": CREATE
        + 'open("/proc/self/fd/3", O_RDONLY) = 4\nfork() = c1\n[c1] close(4) = 0\n'
        '[c1] dup2(3, 4) = 4\n[c1] write(4, "ab", 2) = 2\nlseek(4, 0, SEEK_CUR) = 0\n'
        'lseek(3, 0, SEEK_CUR) = 2\npwrite64(4, "x", 1, 0) = -1 EBADF (Bad file descriptor)',
    "a read-only description stays read-only in the child": CREATE
        + 'open("/proc/self/fd/3", O_RDONLY) = 4\nfork() = c1\n'
        '[c1] pwrite64(4, "x", 1, 0) = -1 EBADF (Bad file descriptor)',
    "the child's copy of a shared writable mapping keeps F_SEAL_WRITE busy until its exit":
        CREATE + SH_RW + "fork() = c1\nmunmap(m1, 4096) = 0\n" + WSEAL
        + " = -1 EBUSY (Device or resource busy)\n" + REAP + WSEAL + " = 0",
    "the child's munmap of its copy leaves the parent's mapping": CREATE
        + "ftruncate(3, 4096) = 0\n" + SH_RW + "fork() = c1\n[c1] munmap(m1, 4096) = 0\n"
        "store(m1, 0) = 0\n" + WSEAL + " = -1 EBUSY (Device or resource busy)",
    "a mapping the child makes is its own, and its exit unmaps it": CREATE
        + "fork() = c1\n[c1] " + SH_RW + WSEAL + " = -1 EBUSY (Device or resource busy)\n"
        + REAP + WSEAL + " = 0",
    "a grandchild's copies keep the seal busy after the child's exit": CREATE + SH_RW
        + "fork() = c1\nmunmap(m1, 4096) = 0\n[c1] fork() = c2\n" + REAP + WSEAL
        + " = -1 EBUSY (Device or resource busy)\n[c2] exit_group(0) = ?\n" + WSEAL + " = 0",
    "a child made after the seal cannot write through its copy's mprotect": CREATE + WSEAL
        + " = 0\nmmap(NULL, 4096, PROT_READ, MAP_SHARED, 3, 0) = m1\nfork() = c1\n"
        "[c1] mprotect(m1, 4096, PROT_READ|PROT_WRITE) = -1 EACCES (Permission denied)",
    "a pin's pipe is inherited: its page reference goes with the last holder":
        CREATE + "ftruncate(3, 4096) = 0\n" + SH_RW + "fork() = c1\nmunmap(m1, 4096) = 0\n"
        "[c1] store(m1, 0) = 0\n[c1] pin(m1) = p1\n[c1] fork() = c2\n"
        "[c2] munmap(m1, 4096) = 0\n" + REAP + WSEAL + " = -1 EBUSY (Device or resource busy)\n"
        "[c2] exit_group(0) = ?\n" + WSEAL + " = 0",
    "strace's pid column names the child as well": CREATE + "ftruncate(3, 1) = 0\n" + SH_RW
        + "fork() = 4242\n"
        "munmap(m1, 4096) = 0\n[pid  4242] store(m1, 0) = 0\n[pid 4242] exit_group(0) = ?\n"
        "wait4(-1, NULL, 0, NULL) = 4242\n" + WSEAL + " = 0",
}


def _flat(text: str) -> list[str]:
    t = parse_trace("# shmemcheck trace 1\n" + text + "\n", "<t>")
    return [format_step(s) for s in flatten(designs.get("memfd"), t).steps]


@pytest.mark.parametrize("name", list(PROCS))
def test_processes(name: str) -> None:
    assert replay_text(PROCS[name]) is None


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(PROCS))
def test_processes_on_kernel(name: str) -> None:
    """The same rows, lowered, on the live kernel: every outcome the trace writes (and the
    model's for the lowered copies, unmaps and closes)."""
    kernel_agrees(PROCS[name])


def test_a_wrong_claim_in_the_child_is_reported_at_its_line() -> None:
    out = replay_text(CREATE + SH_RW + "fork() = c1\nmunmap(m1, 4096) = 0\n" + WSEAL + " = 0")
    assert out is not None and "<table>:7:1:" in out and "model says -1 EBUSY" in out
    out = replay_text(CREATE + WSEAL + ' = 0\nfork() = c1\n[c1] pwrite64(3, "x", 1, 0) = 1')
    assert out is not None and "<table>:6:6:" in out and "model says -1 EPERM" in out


@pytest.mark.parametrize(("text", "line", "says"), [
    # a new handle claimed under a name the process holds (its inherited copy): wrong
    (CREATE + "fork() = c1\n[c1] dup(3) = 3", 5, "trace says 4"),
    (CREATE + "ftruncate(3, 8192) = 0\n" + SH_RW + "fork() = c1\nmunmap(m1, 4096) = 0\n"
     "[c1] mremap(m1, 0, 4096, MREMAP_MAYMOVE) = m1", 8, "model says m3, trace says m2"),
])
def test_a_new_handle_under_a_held_name_diverges(text: str, line: int, says: str) -> None:
    """As in one process (the kernel gives a free number, never one the caller holds), and
    the process's inherited copy is kept (its exit still closes or unmaps it)."""
    out = replay_text(text)
    assert out is not None and f"<table>:{line}:" in out and says in out, out


@pytest.mark.parametrize("who", ["", "[c1] "])
def test_dup2_onto_a_renamed_number(who: str) -> None:
    """dup2 onto a number the process holds under another flat number: its own number."""
    assert replay_text(CREATE + "dup(3) = 4\nfork() = c1\nopen(\"/proc/self/fd/3\", O_RDWR) = 5\n"
                       + who + "dup2(3, 4) = 4\n" + who + "close(4) = 0") is None
    assert replay_text(CREATE + "fork() = c1\ndup(3) = 4\n" + who + "dup2(3, 4) = 4\n"
                       + who + "pwrite64(4, \"x\", 1, 0) = 1") is None


def test_the_lowering() -> None:
    """fork() is a fork_vma of each mapping and a dup of each descriptor; the child's lines
    name the copies; exit_group unmaps and closes what the process holds."""
    assert _flat(CREATE + "ftruncate(3, 4096) = 0\n" + SH_RW + "fork() = c1\n"
                 "[c1] store(m1, 0) = 0\n" + REAP) == [
        'memfd_create("t", MFD_ALLOW_SEALING) = 3',
        "ftruncate(3, 4096) = 0",
        "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1",
        "fork_vma(m1) = m2  # fork() = c1: c1's copy of m1",
        "dup(3) = 4  # fork() = c1: c1's copy of 3",
        "store(m2, 0) = 0  # [c1] store(m1, 0) = 0",
        "munmap(m2, 4096) = 0  # exit_group() of c1 unmaps its m1",
        "close(4) = 0  # exit_group() of c1 closes its fd 3",
    ]


def test_a_flat_trace_is_the_same_trace() -> None:
    t = parse_trace("# shmemcheck trace 1\n" + CREATE + SH_RW, "<t>")
    assert flatten(designs.get("memfd"), t) is t


@pytest.mark.parametrize(("text", "why"), [
    (CREATE + "[c1] close(3) = 0", "no process c1"),
    (CREATE + "fork() = c1\n" + REAP + "[c1] close(3) = 0", "c1 has exited (line 4)"),
    (CREATE + "fork() = c1\nwait4(c1, NULL, 0, NULL) = c1", "wait4() would block"),
    (CREATE + "fork() = c1\n[c1] fork() = c2\n[c2] exit_group(0) = ?\n"
     "wait4(c2, NULL, 0, NULL) = c2", "must return a child of the first process"),
    (CREATE + "fork() = -1 EAGAIN (Resource temporarily unavailable)",
     "a failed fork is not modelled"),
    (CREATE + "fork() = c1\nfork() = c1", "process c1 exists already"),
    (CREATE + "fork() = c1\n[c1] exit_group(0) = 0", "does not return"),
    (CREATE + "fork() = c1\n[c1] exit_group(0) = ?\nwait4(c2, NULL, 0, NULL) = c1",
     "wait4()'s first argument is the child it returns"),
    (CREATE + 'fork() = c1\nopen("/proc/self/fd/\u00b2", O_RDWR) = 4', "/proc/self/fd/\u00b2"),
    (CREATE + "fork() = c1\n[c1] close(4) = 0", "descriptor 4 is not open in c1"),
    (CREATE + "fork() = c1\n[c1] " + SH_RW + "store(m1, 0) = SIGBUS",
     "m1 is not mapped in the first process"),
])
def test_what_the_lowering_refuses(text: str, why: str) -> None:
    t = parse_trace("# shmemcheck trace 1\n" + text + "\n", "<t>")
    with pytest.raises(TraceInputError) as e:
        flatten(designs.get("memfd"), t)
    assert why in str(e.value)


def test_a_reaped_pid_may_come_again() -> None:
    assert replay_text(CREATE + "fork() = 77\n[pid 77] exit_group(0) = ?\n"
                       "wait4(-1, NULL, 0, NULL) = 77\nfork() = 77\n[pid 77] close(3) = 0") is None


def test_after_a_divergence_the_flat_trace_stops() -> None:
    """A line naming a mapping whose mmap the model refused is not lowered: the replay
    reports the mmap's divergence instead."""
    text = (CREATE + WSEAL + " = 0\n" + SH_RW + "fork() = c1\n[c1] store(m1, 0) = 0")
    t = parse_trace("# shmemcheck trace 1\n" + text + "\n", "<t>")
    flat = flatten(designs.get("memfd"), t)
    assert [s.call for s in flat.steps] == ["memfd_create", "fcntl", "mmap", "dup"]
    assert flat.comments[-1].startswith("lowering stopped at line 6, after a divergence: ")
    assert "m1 does not exist" in flat.comments[-1]
    out = replay_text(text)
    assert out is not None and "<table>:5:1:" in out and "model says -1 EPERM" in out


def test_process_lines_parse_and_print() -> None:
    s = parse_step("[pid  1234] store(m1, 0) = 0")
    assert (s.proc, s.call, s.pos.col) == ("1234", "store", 13)
    assert format_step(s) == "[pid 1234] store(m1, 0) = 0"
    assert parse_step("[c1] close(3) = 0").proc == parse_step("[pid c1] close(3) = 0").proc == "c1"
    assert format_step(parse_step("[c1] close(3) = 0")) == "[c1] close(3) = 0"
    assert parse_step("fork() = c1").outcome == New("c1")
    assert parse_step("fork() = 1234").outcome == Ret(1234)
    text = "# shmemcheck trace 1\n# design: memfd\n# expect: conforms\nfork() = c1\n" \
        "[c1] close(3) = 0\n"
    assert format_trace(parse_trace(text)) == text
    for bad in ("[x1] close(3) = 0", "[c1 close(3) = 0", "[pid] close(3) = 0"):
        with pytest.raises(TraceSyntaxError, match="expected a process after"):
            parse_step(bad)


def test_each_call_names_its_handles_at_the_same_places() -> None:
    """The lowering renames a call's descriptors by position (_roles): the actions spelled by
    one call must agree on where a descriptor, mapping or pin stands (open's /proc/self/fd/N
    is renamed only where the argument is such a path)."""
    kinds = (Fd, NewFd, MapRef, PinRef)
    for name in designs.names():
        d = designs.get(name)
        seen: dict[str, set[tuple[tuple[int, str], ...]]] = {}
        for a in d.actions:
            for call, specs in a.spellings():
                seen.setdefault(call, set()).add(tuple(
                    (i, type(s).__name__) for i, s in enumerate(specs) if isinstance(s, kinds)))
        assert {c: v for c, v in seen.items() if len(v) > 1} == {}, name
        assert _roles(d)  # and the lowering reads them
