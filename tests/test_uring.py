"""io_uring's IORING_OP_WRITE, IORING_OP_READ and IORING_OP_FALLOCATE on a memfd: the model
spells them as pwrite64's, pread64's and fallocate's rules (model/designs/memfd.py
URING_OFF), so this table is the check that io_uring meets the seals as those calls do.

Every expected outcome below was probed on 6.18.44 with one SQE per ring (traces/uring.py
one_op, from a plain Python program before the executor had it): io_write()/io_read() check
FMODE_WRITE/FMODE_READ (EBADF) and rw_verify_area() (a negative offset other than -1: EINVAL),
then shmem's write_iter/read_iter run at sqe->off (F_SEAL_GROW: a write crossing i_size is
short, one past it EPERM; F_SEAL_WRITE: EPERM, but a zero length returns 0 first); hugetlbfs
has no write_iter (EINVAL, even for zero bytes); io_fallocate() is vfs_fallocate().
"""

from __future__ import annotations

import pytest

from checker.replay import TraceInputError
from tests.conftest import kernel_agrees, replay_text

MFD = 'memfd_create("t", MFD_ALLOW_SEALING) = 3\n'
SIZED = MFD + "io_uring_fallocate(3, 0, 0, 8192) = 0\n"
HUGE = 'memfd_create("t", MFD_HUGETLB) = 3\n'

TABLE = {
    "a write at 0 grows the file": MFD + 'io_uring_write(3, "x"..., 10, 0) = 10\n'
                                   "io_uring_read(3, 4096, 0) = 10",
    "a read past EOF is 0": MFD + "io_uring_read(3, 4096, 100) = 0",
    "a negative offset other than -1: EINVAL": MFD + 'io_uring_write(3, "x", 1, -2) = -1 EINVAL',
    "fallocate sets i_size": SIZED + "io_uring_read(3, 4096, 8000) = 192",
    "F_SEAL_GROW: a write crossing i_size is short":
        SIZED + "fcntl(3, F_ADD_SEALS, F_SEAL_GROW) = 0\n"
        'io_uring_write(3, "x"..., 10, 8190) = 2',
    "F_SEAL_GROW: a write past i_size is EPERM":
        SIZED + "fcntl(3, F_ADD_SEALS, F_SEAL_GROW) = 0\n"
        'io_uring_write(3, "x"..., 10, 8192) = -1 EPERM',
    "F_SEAL_GROW: fallocate past i_size is EPERM, KEEP_SIZE inside is not":
        SIZED + "fcntl(3, F_ADD_SEALS, F_SEAL_GROW) = 0\n"
        "io_uring_fallocate(3, 0, 8192, 4096) = -1 EPERM\n"
        "io_uring_fallocate(3, FALLOC_FL_KEEP_SIZE, 0, 4096) = 0",
    "F_SEAL_WRITE: a write is EPERM, a zero-length one 0":
        SIZED + "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0\n"
        'io_uring_write(3, "x"..., 10, 0) = -1 EPERM\nio_uring_write(3, "x", 0, 0) = 0',
    "F_SEAL_WRITE: a hole punch is EPERM":
        SIZED + "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0\n"
        "io_uring_fallocate(3, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE, 0, 4096) = -1 EPERM",
    "F_SEAL_FUTURE_WRITE: a write is EPERM": SIZED + "fcntl(3, F_ADD_SEALS, "
                                             "F_SEAL_FUTURE_WRITE) = 0\n"
                                             'io_uring_write(3, "x", 1, 0) = -1 EPERM',
    "F_SEAL_SHRINK: a write inside is fine": SIZED + "fcntl(3, F_ADD_SEALS, F_SEAL_SHRINK) = 0\n"
                                             'io_uring_write(3, "x", 1, 0) = 1',
    "an O_RDONLY description: EBADF for write and fallocate, even of 0 bytes; read works":
        SIZED + 'open("/proc/self/fd/3", O_RDONLY) = 4\n'
        'io_uring_write(4, "x", 1, 0) = -1 EBADF\nio_uring_write(4, "x", 0, 0) = -1 EBADF\n'
        "io_uring_fallocate(4, 0, 0, 1) = -1 EBADF\nio_uring_read(4, 4096, 0) = 4096",
}
HUGE_TABLE = {
    "hugetlbfs: no write_iter, EINVAL even for 0 bytes":
        HUGE + 'io_uring_write(3, "x", 1, 0) = -1 EINVAL\nio_uring_write(3, "x", 0, 0) = -1 EINVAL',
    "hugetlbfs: fallocate one huge page, read it, punch inside and whole":
        HUGE + "io_uring_fallocate(3, 0, 0, 2097152) = 0\nio_uring_read(3, 4096, 0) = 4096\n"
        "io_uring_read(3, 4096, 2097152) = 0\n"
        "io_uring_fallocate(3, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE, 0, 4096) = 0\n"
        "io_uring_fallocate(3, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE, 0, 2097152) = 0",
}
ALL = {**TABLE, **HUGE_TABLE}


@pytest.mark.parametrize("name", list(ALL))
def test_uring_table(name: str) -> None:
    assert replay_text(ALL[name]) is None


def test_a_wrong_cell_is_reported() -> None:
    bad = TABLE["F_SEAL_GROW: a write crossing i_size is short"].replace("= 2", "= 10")
    assert replay_text(bad) is not None


def test_offset_minus_one_is_refused_not_judged_as_pwrite64() -> None:
    """-1 is the description's f_pos for io_uring, pwrite64's EINVAL for the rules it shares:
    the spelling refuses it with the reason (probed: it writes at f_pos and moves it)."""
    with pytest.raises(TraceInputError, match="f_pos for io_uring"):
        replay_text(MFD + 'io_uring_write(3, "x", 1, -1) = 1')
    assert replay_text(MFD + 'pwrite64(3, "x", 1, -1) = -1 EINVAL') is None


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(ALL))
def test_uring_table_on_kernel(name: str) -> None:
    """The rows on the live kernel (hugetlbfs rows with 2 huge pages reserved): every
    outcome, not only the last."""
    kernel_agrees(ALL[name], hugepages=2)
