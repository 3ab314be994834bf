"""copy_file_range() within a memfd (model/designs/memfd_rw.py copy_file_range_body) against a
decision table.

The outcomes were probed on 6.18.44 with a plain C program and a ctypes one (not the executor),
both descriptors naming the one memfd, and follow fs/read_write.c: vfs_copy_file_range() (flags
EINVAL) -> generic_copy_file_checks(): the out file's FMODE_WRITE (EBADF), pos + count
wrapping in 64 unsigned bits (EOVERFLOW: a negative pos with a count that reaches 0, too), the
count shortened to the source's EOF and to s_maxbytes (EFBIG at it), overlapping ranges
(EINVAL); then rw_verify_area() (a negative pos: EINVAL), nothing to copy (0), and
do_splice_direct() into shmem's write_iter, whose seals are pwrite64's (EPERM, a short copy at
F_SEAL_GROW); hugetlbfs has no splice_read (EINVAL).
"""

from __future__ import annotations

import pytest

from checker.replay import TraceInputError
from tests.conftest import kernel_agrees, replay_text

MFD = 'memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, 8192) = 0\n'
CFR = "copy_file_range(3, [{}], 3, [{}], {}, {}) = {}"


def cfr(a: int, b: int, n: int, out: str, flags: int = 0) -> str:
    return CFR.format(a, b, n, flags, out)


TABLE = {
    "a page to the next": MFD + cfr(0, 4096, 4096, "4096"),
    "past EOF: the file grows": MFD + cfr(0, 8192, 4096, "4096")
    + '\nnewfstatat(3, "", {st_mode=S_IFREG|0777, st_size=12288, ...}, AT_EMPTY_PATH) = 0',
    "overlapping ranges: EINVAL": MFD + cfr(0, 2048, 4096, "-1 EINVAL"),
    "the same range: EINVAL": MFD + cfr(0, 0, 1, "-1 EINVAL"),
    "the count stops at the source's EOF": MFD + cfr(4096, 0, 8192, "4096"),
    "a source at or past EOF copies nothing": MFD + cfr(8192, 0, 4096, "0") + "\n"
    + cfr(20000, 0, 4096, "0"),
    "flags: EINVAL": MFD + cfr(0, 4096, 4096, "-1 EINVAL", 1),
    "len 0: 0": MFD + cfr(0, 4096, 0, "0"),
    "a negative pos_in with a count reaching 0 wraps: EOVERFLOW": MFD + cfr(-1, 4096, 10,
                                                                           "-1 EOVERFLOW"),
    "a negative pos_in with len 0: rw_verify_area()'s EINVAL": MFD + cfr(-1, 4096, 0,
                                                                        "-1 EINVAL"),
    "a negative pos_out: EOVERFLOW, or EINVAL with len 0": MFD + cfr(0, -5, 10, "-1 EOVERFLOW")
    + "\n" + cfr(0, -1, 0, "-1 EINVAL"),
    "len 2^64 - 1 wraps: EOVERFLOW": MFD + cfr(0, 4096, (1 << 64) - 1, "-1 EOVERFLOW"),
    "pos_out at s_maxbytes: EFBIG, even for len 0": MFD + cfr(0, (1 << 63) - 1, 100, "-1 EFBIG")
    + "\n" + cfr(0, (1 << 63) - 1, 0, "-1 EFBIG"),
    "near s_maxbytes the count is cut to it": MFD + cfr(0, (1 << 63) - 10, 100, "9"),
    "F_SEAL_GROW: a short copy up to EOF, EPERM past it":
        MFD + "fcntl(3, F_ADD_SEALS, F_SEAL_GROW) = 0\n" + cfr(0, 4096, 4096, "4096") + "\n"
        + cfr(0, 6000, 4096, "2192") + "\n" + cfr(0, 8192, 4096, "-1 EPERM"),
    "F_SEAL_WRITE: EPERM, but nothing to copy is 0 and overlap is checked first":
        MFD + "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0\n" + cfr(0, 4096, 4096, "-1 EPERM")
        + "\n" + cfr(0, 4096, 0, "0") + "\n" + cfr(9000, 0, 10, "0") + "\n"
        + cfr(0, 0, 10, "-1 EINVAL"),
    "F_SEAL_FUTURE_WRITE: EPERM": MFD + "fcntl(3, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) = 0\n"
    + cfr(0, 4096, 10, "-1 EPERM"),
    "an O_RDONLY target: EBADF; an O_RDONLY source reads":
        MFD + 'open("/proc/self/fd/3", O_RDONLY) = 4\n'
        "copy_file_range(3, [0], 4, [4096], 10, 0) = -1 EBADF\n"
        "copy_file_range(4, [0], 3, [4096], 10, 0) = 10",
}

HUGE = ('memfd_create("t", MFD_HUGETLB) = 3\nftruncate(3, 4194304) = 0\n'
        + cfr(0, 0, 4096, "-1 EINVAL") + "\n" + cfr(0, 2097152, 0, "0") + "\n"
        + cfr(0, 2097152, 4096, "-1 EINVAL"))


@pytest.mark.parametrize("name", list(TABLE))
def test_copy_file_range_table(name: str) -> None:
    assert replay_text(TABLE[name]) is None


def test_hugetlbfs_has_no_splice_read() -> None:
    assert replay_text(HUGE) is None


def test_a_wrong_cell_is_reported() -> None:
    assert replay_text(TABLE["overlapping ranges: EINVAL"].replace("EINVAL", "EBADF")) \
        is not None


def test_a_null_offset_is_outside_the_model() -> None:
    """NULL: the description's f_pos, read and advanced, which this action does not hold."""
    with pytest.raises(TraceInputError, match=r"outside the model: .*f_pos"):
        replay_text(MFD + "copy_file_range(3, NULL, 3, [4096], 10, 0) = 10")


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(TABLE))
def test_copy_file_range_table_on_kernel(name: str) -> None:
    kernel_agrees(TABLE[name])


@pytest.mark.kernel
def test_hugetlb_row_on_kernel() -> None:
    kernel_agrees(HUGE, hugepages=2)


def test_the_kernel_designs_cut_a_copy_where_their_write_chunk_ends() -> None:
    """The deltas that edit every write path (WRITE_PATHS) see the copy's own count at
    off_out (memfd_rw.written()): under F_SEAL_GROW 6.18.44 writes 4 KiB chunks (a short
    copy), 6.12's PMD chunks refuse the first (EPERM, as its pwrite64 does)."""
    text = ('memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, 10000) = 0\n'
            "fcntl(3, F_ADD_SEALS, F_SEAL_GROW) = 0\n")
    assert replay_text(text + cfr(0, 8000, 4096, "192")) is None
    assert replay_text(text + cfr(0, 8000, 4096, "-1 EPERM"), "memfd@6.12") is None
    assert replay_text(text + "pwrite64(3, \"x\"..., 4096, 8000) = -1 EPERM", "memfd@6.12") \
        is None
