"""sendfile() within a memfd (model/designs/memfd_rw.py sendfile_body) against a decision
table.

Written from fs/read_write.c do_sendfile() and fs/splice.c do_splice_direct() /
splice_direct_to_actor(), and probed on 6.18.44 with Python's os.sendfile (not the executor),
both descriptors naming the one memfd, the data landing at the out description's f_pos: the
in file's FMODE_READ (EBADF), rw_verify_area() of the read (EINVAL: a negative offset, a sum
past LLONG_MAX, a count past SSIZE_MAX), the out file's FMODE_WRITE (EBADF), rw_verify_area()
of the write at f_pos (EINVAL), O_APPEND on the out file (EINVAL), a count of 0 (0, before
the seals), hugetlbfs's missing splice_read (EINVAL), then the read up to EOF (none from at or
past it) into shmem's write_iter with pwrite64's seals, one pipe fill (64 KiB) at a time.
Probed beyond the source's plain reading: when the data lands after where it is read from,
the file grows ahead of the read, which never meets EOF (the whole count is moved); under
F_SEAL_GROW a fill's start is a write's start, so the short count can end there (65,536 where
pwrite64 writes 65,432); FS_IMMUTABLE_FL does not stop it.
"""

from __future__ import annotations

import pytest

from checker.replay import TraceInputError
from tests.conftest import kernel_agrees, replay_text

MFD = ('memfd_create("t", MFD_ALLOW_SEALING) = 3\npwrite64(3, "x"..., 4096, 0) = 4096\n')
SF = "sendfile({}, {}, [{}], {}) = {}"


def at(pos: int) -> str:
    return f"lseek(3, {pos}, SEEK_SET) = {pos}\n"


def sf(off: int, n: int, out: str, fd: int = 3, fd_in: int = 3) -> str:
    return SF.format(fd, fd_in, off, n, out)


def size(n: int) -> str:
    return f'\nnewfstatat(3, "", {{st_mode=S_IFREG|0777, st_size={n}, ...}}, AT_EMPTY_PATH) = 0'


def fpos(n: int) -> str:
    return f"\nlseek(3, 0, SEEK_CUR) = {n}"


TABLE = {
    "to f_pos past EOF: the file grows, f_pos advances":
        MFD + at(8192) + sf(0, 4096, "4096") + size(12288) + fpos(12288),
    "the read stops at EOF (data landing before it)": MFD + at(0) + sf(100, 20000, "3996"),
    "data landing after the read: the file grows ahead of it, the whole count moves":
        MFD + at(100) + sf(0, 20000, "20000") + size(20100) + fpos(20100),
    "from at or past EOF: 0": MFD + at(8192) + sf(4096, 100, "0") + "\n" + sf(9000, 100, "0"),
    "count 0: 0, even under F_SEAL_WRITE":
        MFD + "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0\n" + sf(0, 0, "0") + "\n"
        + sf(0, 100, "-1 EPERM") + "\n" + sf(5000, 100, "0"),
    "F_SEAL_FUTURE_WRITE: EPERM":
        MFD + "fcntl(3, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) = 0\n" + sf(0, 10, "-1 EPERM"),
    "F_SEAL_GROW: short at EOF, EPERM past it":
        MFD + "fcntl(3, F_ADD_SEALS, F_SEAL_GROW) = 0\n" + at(100) + sf(0, 20000, "3996")
        + "\n" + at(5000) + sf(0, 100, "-1 EPERM") + size(4096),
    "F_SEAL_GROW: a pipe fill's start ends the short count, not pwrite64's page":
        'memfd_create("t", MFD_ALLOW_SEALING) = 3\npwrite64(3, "x"..., 70000, 0) = 70000\n'
        "fcntl(3, F_ADD_SEALS, F_SEAL_GROW) = 0\n" + at(4200) + sf(0, 65900, "65536") + "\n"
        'pwrite64(3, "x"..., 65900, 4200) = 65432',
    "F_SEAL_GROW: an unaligned offset shortens the first fill":
        'memfd_create("t", MFD_ALLOW_SEALING) = 3\npwrite64(3, "x"..., 70000, 0) = 70000\n'
        "fcntl(3, F_ADD_SEALS, F_SEAL_GROW) = 0\n" + at(4000) + sf(1000, 68000, "65632"),
    "a negative offset, or one whose sum passes LLONG_MAX: EINVAL":
        MFD + sf(-1, 10, "-1 EINVAL") + "\n" + sf((1 << 63) - 10, 100, "-1 EINVAL") + "\n"
        + sf((1 << 63) - 10, 5, "0"),
    "a count past SSIZE_MAX: EINVAL; up to it, capped at MAX_RW_COUNT":
        MFD + sf(0, 1 << 63, "-1 EINVAL") + "\n" + sf(0, (1 << 63) - 1, "4096"),
    "f_pos near s_maxbytes: EINVAL once f_pos + count passes it":
        MFD + at((1 << 63) - 100) + sf(0, 200, "-1 EINVAL") + "\n" + sf(0, 50, "50")
        + size((1 << 63) - 50),
    "an O_APPEND out file: EINVAL; an O_APPEND in file reads":
        MFD + 'open("/proc/self/fd/3", O_RDWR|O_APPEND) = 4\n' + sf(0, 10, "-1 EINVAL", 4)
        + "\n" + sf(0, 10, "10", 3, 4),
    "an O_RDONLY out: EBADF; an O_RDONLY in reads; an O_WRONLY in: EBADF":
        MFD + 'open("/proc/self/fd/3", O_RDONLY) = 4\nopen("/proc/self/fd/3", O_WRONLY) = 5\n'
        + sf(0, 10, "-1 EBADF", 4) + "\n" + sf(0, 10, "10", 3, 4) + "\n"
        + sf(0, 10, "-1 EBADF", 3, 5),
    "FS_IMMUTABLE_FL: still written (write_iter does not check it)":
        MFD + "ioctl(3, FS_IOC_SETFLAGS, [FS_IMMUTABLE_FL]) = 0\n" + at(4096)
        + sf(0, 10, "10") + size(4106),
    "the offset written back, as strace shows it":
        MFD + at(8192) + "sendfile(3, 3, [0] => [4096], 4096) = 4096\n"
        "sendfile(3, 3, [20000] => [20000], 10) = 0",
}

HUGE = ('memfd_create("t", MFD_HUGETLB) = 3\nftruncate(3, 2097152) = 0\n'
        + sf(0, 10, "-1 EINVAL") + "\n" + sf(0, 0, "0") + "\n" + sf(4194304, 10, "-1 EINVAL"))


@pytest.mark.parametrize("name", list(TABLE))
def test_sendfile_table(name: str) -> None:
    assert replay_text(TABLE[name]) is None


def test_hugetlbfs_has_no_splice_read() -> None:
    assert replay_text(HUGE) is None


@pytest.mark.parametrize("name, wrong", [
    ("the read stops at EOF (data landing before it)", ("3996", "20000")),
    ("data landing after the read: the file grows ahead of it, the whole count moves",
     ("20000) = 20000", "20000) = 3996")),
    ("F_SEAL_GROW: a pipe fill's start ends the short count, not pwrite64's page",
     ("65536", "65432")),
])
def test_a_wrong_cell_is_reported(name: str, wrong: tuple[str, str]) -> None:
    assert replay_text(TABLE[name].replace(*wrong, 1)) is not None


def test_a_null_offset_is_outside_the_model() -> None:
    """NULL: the in description's f_pos, read and advanced beside the out one's."""
    with pytest.raises(TraceInputError, match=r"outside the model: sendfile off_in NULL"):
        replay_text(MFD + "sendfile(3, 3, NULL, 10) = 10")


def test_a_feed_past_64_mib_is_outside_the_model() -> None:
    """Data landing after the read with a count of 1 GiB writes the whole GiB: memory the
    model does not account for."""
    with pytest.raises(TraceInputError, match=r"outside the model: .*more than 67108864 bytes"):
        replay_text(MFD + at(100) + sf(0, 1 << 30, "1073741824"))


def test_a_written_back_offset_must_be_the_outcome_s() -> None:
    with pytest.raises(TraceInputError, match=r"writes back \[4096\] .* not \[4000\]"):
        replay_text(MFD + at(8192) + "sendfile(3, 3, [0] => [4000], 4096) = 4096")


def test_the_kernel_designs_cut_where_their_write_chunk_ends() -> None:
    """6.12's PMD-sized write chunks (memfd_kernels._pmd_write_chunks, through
    memfd_rw.written()) see sendfile's count and fills: under F_SEAL_GROW at 8000 of a
    10,000-byte file the first chunk crosses EOF (EPERM), where 6.18.44 writes up to its
    last page boundary below EOF."""
    text = ('memfd_create("t", MFD_ALLOW_SEALING) = 3\npwrite64(3, "x"..., 10000, 0) = 10000\n'
            "fcntl(3, F_ADD_SEALS, F_SEAL_GROW) = 0\n" + at(8000))
    assert replay_text(text + sf(0, 4096, "192")) is None
    assert replay_text(text + sf(0, 4096, "-1 EPERM"), "memfd@6.12") is None
    # a pipe fill's start is a write's start in any chunk: 7.2.13 moved 65,536 bytes here
    # where its pwrite64 is EPERM (`replay --on kernel@7.2` of the scenario, stop 42)
    big = ('memfd_create("t", MFD_ALLOW_SEALING) = 3\npwrite64(3, "x"..., 70000, 0) = 70000\n'
           "fcntl(3, F_ADD_SEALS, F_SEAL_GROW) = 0\n" + at(4200))
    assert replay_text(big + sf(0, 65900, "65536") + '\npwrite64(3, "x"..., 65900, 4200) = '
                       "-1 EPERM", "memfd@7.2") is None


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(TABLE))
def test_sendfile_table_on_kernel(name: str) -> None:
    kernel_agrees(TABLE[name])


@pytest.mark.kernel
def test_hugetlb_row_on_kernel() -> None:
    kernel_agrees(HUGE, hugepages=2)


def test_the_written_back_value_parses_and_prints_as_strace_shows_it() -> None:
    from traces.textfmt import format_step, parse_trace

    line = "copy_file_range(3, [0] => [10], 3, [4096]=>[4106], 10, 0) = 10"
    step = parse_trace("# shmemcheck trace 1\n" + line + "\n", "t").steps[0]
    assert [i for i, _ in step.updated] == [1, 3]
    assert format_step(step) == line.replace("]=>[", "] => [")


def test_a_written_back_value_with_an_outcome_left_to_the_model_is_refused() -> None:
    """`= ?` leaves the bytes moved to the model, so the value written back cannot be told."""
    with pytest.raises(TraceInputError, match=r"argument 3: '=> \.\.\.' with '= \?'"):
        replay_text(MFD + "sendfile(3, 3, [0] => [5], 5) = ?")


def test_a_written_back_value_after_another_argument_is_refused() -> None:
    with pytest.raises(TraceInputError, match=r"argument 4: '=> \.\.\.' follows a pointer"):
        replay_text(MFD + "sendfile(3, 3, [0], 10 => 11) = 10")
