"""mremap() of memfd mappings (model/designs/memfd_mremap.py) against a decision table.

The outcomes below were probed on 6.18.44 with plain Python programs (ctypes mmap/mremap, a
store in a forked child; not the executor), and follow mm/mremap.c's order: do_mremap() ->
check_mremap_params() (flags, new_len, MREMAP_FIXED/DONTUNMAP need MAYMOVE, DONTUNMAP does
not resize), align_hugetlb() (no expansion), then mremap_to() for MREMAP_DONTUNMAP or
mremap_at(): no resize, shrink (always in place), expand (remap_is_valid(): old_len 0 of a
private mapping EINVAL, old_len past the VMA EFAULT; in place only when [addr, addr + old_len)
ends at the VMA's end, else a move, ENOMEM without MREMAP_MAYMOVE).
"""

from __future__ import annotations

import pytest

from checker.replay import TraceInputError
from tests.conftest import kernel_agrees, replay_text

MFD = 'memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, 4096) = 0\n'
SH_RW = MFD + "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1\n"
PR_RW = MFD + "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE, 3, 0) = m1\n"
SEAL_WRITE = "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = "

TABLE = {
    "grown with MREMAP_MAYMOVE: the tail past EOF SIGBUSes":
        SH_RW + "mremap(m1, 4096, 8192, MREMAP_MAYMOVE) = m1\nstore(m1, 0) = 0\n"
        "store(m1, 4096) = SIGBUS",
    "grown from a part of it without MREMAP_MAYMOVE: not at the VMA's end, ENOMEM":
        SH_RW + "mremap(m1, 4096, 8192, MREMAP_MAYMOVE) = m1\n"
        "mremap(m1, 4096, 12288, 0) = -1 ENOMEM",
    "shrunk in place, then grown back":
        SH_RW + "mremap(m1, 4096, 8192, MREMAP_MAYMOVE) = m1\nmremap(m1, 8192, 4096, 0) = m1\n"
        "mremap(m1, 4096, 8192, MREMAP_MAYMOVE) = m1\nstore(m1, 4096) = SIGBUS",
    "the same length: no resize, and old_len is not checked":
        SH_RW + "mremap(m1, 409600, 409600, 0) = m1\nstore(m1, 0) = 0",
    "new_len 0: EINVAL": SH_RW + "mremap(m1, 4096, 0, MREMAP_MAYMOVE) = -1 EINVAL",
    "an unknown flag: EINVAL": SH_RW + "mremap(m1, 4096, 4096, 0x8) = -1 EINVAL",
    "MREMAP_DONTUNMAP without MREMAP_MAYMOVE: EINVAL":
        SH_RW + "mremap(m1, 4096, 4096, MREMAP_DONTUNMAP) = -1 EINVAL",
    "MREMAP_DONTUNMAP does not resize: EINVAL":
        SH_RW + "mremap(m1, 4096, 8192, MREMAP_MAYMOVE|MREMAP_DONTUNMAP) = -1 EINVAL",
    "old_len past the VMA: EFAULT":
        SH_RW + "mremap(m1, 8192, 12288, MREMAP_MAYMOVE) = -1 EFAULT",
    "MREMAP_DONTUNMAP copies a shared mapping: two writable mappings for F_SEAL_WRITE":
        SH_RW + "mremap(m1, 4096, 4096, MREMAP_MAYMOVE|MREMAP_DONTUNMAP) = m2\n"
        + SEAL_WRITE + "-1 EBUSY\nmunmap(m1, 4096) = 0\n" + SEAL_WRITE + "-1 EBUSY\n"
        "munmap(m2, 4096) = 0\n" + SEAL_WRITE + "0",
    "old_len 0 duplicates a shared mapping":
        SH_RW + "mremap(m1, 0, 8192, MREMAP_MAYMOVE) = m2\nstore(m2, 0) = 0\n"
        "store(m2, 4096) = SIGBUS\nmunmap(m1, 4096) = 0\n" + SEAL_WRITE + "-1 EBUSY",
    "old_len 0 without MREMAP_MAYMOVE: not at the VMA's end, ENOMEM":
        SH_RW + "mremap(m1, 0, 4096, 0) = -1 ENOMEM",
    "old_len 0 of a private mapping: EINVAL":
        PR_RW + "mremap(m1, 0, 4096, MREMAP_MAYMOVE) = -1 EINVAL",
    "MREMAP_DONTUNMAP of a private mapping":
        PR_RW + "mremap(m1, 4096, 4096, MREMAP_MAYMOVE|MREMAP_DONTUNMAP) = m2\n"
        "store(m2, 0) = 0\nstore(m1, 0) = 0",
    "F_SEAL_FUTURE_WRITE: a read-only shared mapping grows and stays read-only":
        MFD + "fcntl(3, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) = 0\n"
        "mmap(NULL, 4096, PROT_READ, MAP_SHARED, 3, 0) = m1\n"
        "mremap(m1, 4096, 8192, MREMAP_MAYMOVE) = m1\n"
        "mprotect(m1, 8192, PROT_READ|PROT_WRITE) = -1 EACCES",
    "F_SEAL_FUTURE_WRITE: copies of a writable mapping still write the file":
        SH_RW + "fcntl(3, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) = 0\n"
        "mremap(m1, 0, 4096, MREMAP_MAYMOVE) = m2\n"
        "mremap(m1, 4096, 4096, MREMAP_MAYMOVE|MREMAP_DONTUNMAP) = m3\nmunmap(m1, 4096) = 0\n"
        "store(m2, 0) = 0\nstore(m3, 0) = 0\npwrite64(3, \"x\", 1, 0) = -1 EPERM",
}

#: hugetlbfs (VM_DONTEXPAND, align_hugetlb()): probed with 6 huge pages reserved
HUGE = ('memfd_create("t", MFD_HUGETLB) = 3\nftruncate(3, 4194304) = 0\n'
        "mmap(NULL, 4194304, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1\n"
        "mremap(m1, 4194304, 2097152, 0) = m1\n"
        "mremap(m1, 2097152, 2097152, MREMAP_MAYMOVE) = m1\n"
        "mremap(m1, 2097152, 4194304, MREMAP_MAYMOVE) = -1 EINVAL\n"
        "mremap(m1, 2097152, 2097152, MREMAP_MAYMOVE|MREMAP_DONTUNMAP) = -1 EINVAL\n"
        "mremap(m1, 0, 2097152, MREMAP_MAYMOVE) = -1 EINVAL\n"
        "store(m1, 0) = 0")


@pytest.mark.parametrize("name", list(TABLE))
def test_mremap_table(name: str) -> None:
    assert replay_text(TABLE[name]) is None


def test_hugetlb_mappings_shrink_and_move_but_never_grow() -> None:
    assert replay_text(HUGE) is None


def test_a_wrong_cell_is_reported() -> None:
    bad = TABLE["old_len past the VMA: EFAULT"].replace("EFAULT", "ENOMEM")
    assert replay_text(bad) is not None
    moved = TABLE["old_len 0 duplicates a shared mapping"].replace("= m2", "= m1", 1)
    assert replay_text(moved) is not None  # a duplicate is a new mapping, not m1


@pytest.mark.parametrize(("line", "why"), [
    ("mremap(m1, 4096, 8192, 0) = m1", "grows in place depends on what the caller has mapped"),
    ("mremap(m1, 4096, 4096, MREMAP_MAYMOVE|MREMAP_FIXED, NULL) = -1 EINVAL",
     "MREMAP_FIXED moves the mapping onto new_addr"),
    ("mremap(m1, 4096, 4096, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, 0x7f0000000000) = m2",
     "the model's is one of NULL"),
    ("mremap(m1, 4096, 8192, MREMAP_MAYMOVE) = 0x7f0000000000", "write the name instead"),
    ("mremap(m1, 8192, 4096, 0) = m1", "shrinking from a length other than the mapping's"),
])
def test_what_the_model_does_not_hold_is_refused(line: str, why: str) -> None:
    with pytest.raises(TraceInputError, match="outside the model") as e:
        replay_text(SH_RW + line)
    assert why in str(e.value)


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(TABLE))
def test_mremap_table_on_kernel(name: str) -> None:
    """The rows on the live kernel: every outcome, not only the last."""
    kernel_agrees(TABLE[name])


@pytest.mark.kernel
def test_hugetlb_row_on_kernel() -> None:
    kernel_agrees(HUGE, hugepages=6)
