"""O_WRONLY and O_APPEND open file descriptions of a memfd (issue 14: descriptions as objects),
against a decision table.

Probed on 6.18.44 with a ctypes program (raw syscalls, as root) and written down here from
its output:
- an O_WRONLY description (no FMODE_READ): pread64/read/readv/preadv/preadv2 are EBADF, after
  pread64's and preadv2's own negative-offset EINVAL and before readv's empty-array 0; every
  mmap() is EACCES (after a zero length's EINVAL); copy_file_range() from it is EBADF (after
  its flags' EINVAL, before a zero count's 0); F_ADD_SEALS and pwrite64 work (FMODE_WRITE);
- an O_APPEND description: pwrite64 writes at i_size whatever its offset (a negative one is
  still EINVAL) and leaves f_pos alone; write/writev/pwritev2 at f_pos move it to the new
  i_size; a zero-length write moves nothing; RWF_NOAPPEND writes at the offset given;
  splice() into it is EINVAL (EBADF first for a read-only one), copy_file_range() into it
  EBADF; a write refused by a seal leaves f_pos where it was;
- FS_APPEND_FL: a writable open needs O_APPEND and refuses O_TRUNC (EPERM); RWF_NOAPPEND on an
  O_APPEND description is EPERM, for reads too, after RWF_NOWAIT's EOPNOTSUPP, and not on a
  description opened without O_APPEND (which keeps writing where it says);
- O_TRUNC with F_SEAL_SHRINK is EPERM whatever the access mode;
- io_uring's IORING_OP_WRITE/READ check the descriptor before the offset: EBADF where
  pwrite64/pread64 say EINVAL;
- fcntl(F_SETFL) sets or clears the description's O_APPEND (any change of it on an
  append-only file is EPERM, first), O_DIRECT is EINVAL (no FMODE_CAN_ODIRECT), O_ASYNC is
  dropped without ->fasync, the access mode and O_LARGEFILE are ignored; O_DIRECT is EINVAL on
  memfd_create()'s description and on hugetlbfs, 0 on a shmem reopen (shmem_file_open() sets
  FMODE_CAN_ODIRECT);
- fcntl(F_GETFL) is f_flags: the access mode, O_LARGEFILE (memfd_create() sets it, open()
  forces it), O_APPEND and what F_SETFL or FIONBIO left of O_NONBLOCK and O_NOATIME; not
  O_CLOEXEC, O_CREAT or O_TRUNC; F_SETFL(O_ASYNC) sets nothing (no ->fasync);
- open()'s O_NONBLOCK, O_NOATIME, O_DSYNC, O_SYNC (with O_DSYNC, also for __O_SYNC alone)
  and O_ASYNC stay in f_flags, and F_SETFL keeps the last three;
- ioctl(FIONBIO, [n]) sets O_NONBLOCK for any non-zero int, clears it for 0; FIOCLEX and
  FIONCLEX are 0; a terminal's TCGETS and TIOCGWINSZ are ENOTTY (no ->unlocked_ioctl).
The search explores O_RDONLY and O_RDWR descriptions only; these rows are replay's.
"""

from __future__ import annotations

import pytest

from checker.replay import TraceInputError
from tests.conftest import kernel_agrees, replay_text

MFD = 'memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, 5) = 0\n'
EBADF, EINVAL, EACCES, EPERM = "-1 EBADF", "-1 EINVAL", "-1 EACCES", "-1 EPERM"


def reopen(how: str, out: str) -> str:
    return f'openat(AT_FDCWD, "/proc/self/fd/3", {how}) = {out}\n'


def opened(how: str, fd: int, flags: str) -> str:
    """A reopen as descriptor fd, and what F_GETFL says of its description."""
    return reopen(how, str(fd)) + f"fcntl({fd}, F_GETFL) = {flags}\n"


def size(n: int) -> str:
    return f"fstat(3, {{st_mode=S_IFREG|0777, st_size={n}, ...}}) = 0\n"


def iov(n: int, base: str = '"ab"') -> str:
    return f"[{{iov_base={base}, iov_len={n}}}], 1"


TABLE = {
    "O_WRONLY: no read, no mapping, no copy from it; writes and seals work":
        MFD + reopen("O_WRONLY", "4")
        + f"pread64(4, 4096, 0) = {EBADF}\npread64(4, 4096, -1) = {EINVAL}\n"
        f'read(4, "", 0) = {EBADF}\nreadv(4, [], 0) = {EBADF}\n'
        f"preadv2(4, [], 0, -5, 0) = {EINVAL}\n"
        f"preadv2(4, {iov(4, chr(34) * 2)}, 0, RWF_APPEND) = {EBADF}\n"
        f"preadv(4, {iov(4, chr(34) * 2)}, 0) = {EBADF}\n"
        f"mmap(NULL, 4096, PROT_READ, MAP_SHARED, 4, 0) = {EACCES}\n"
        f"mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 4, 0) = {EACCES}\n"
        f"mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 4, 0) = {EACCES}\n"
        f"mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE, 4, 0) = {EACCES}\n"
        f"mmap(NULL, 0, PROT_READ, MAP_PRIVATE, 4, 0) = {EINVAL}\n"
        f"copy_file_range(4, [0], 3, [100], 3, 0) = {EBADF}\n"
        f"copy_file_range(4, [0], 3, [100], 0, 0) = {EBADF}\n"
        f"copy_file_range(4, [0], 3, [100], 3, 1) = {EINVAL}\n"
        'pwrite64(4, "ab", 2, 0) = 2\nfcntl(4, F_ADD_SEALS, F_SEAL_SHRINK) = 0\n' + size(5),
    "O_APPEND: every write lands at i_size; f_pos follows the writes at f_pos":
        MFD + reopen("O_RDWR|O_APPEND", "4")
        + 'pwrite64(4, "ab", 2, 0) = 2\n' + size(7)
        + f'lseek(4, 0, SEEK_CUR) = 0\npwrite64(4, "ab", 2, -1) = {EINVAL}\n'
        'write(4, "abc", 3) = 3\nlseek(4, 0, SEEK_CUR) = 10\nwrite(4, "", 0) = 0\n'
        'lseek(4, 0, SEEK_CUR) = 10\nlseek(4, 1, SEEK_SET) = 1\nwrite(4, "", 0) = 0\n'
        "lseek(4, 0, SEEK_CUR) = 1\n"
        f"pwritev2(4, {iov(2)}, 0, RWF_NOAPPEND) = 2\n" + size(10)
        + f"pwritev2(4, {iov(2)}, 0, 0) = 2\n" + size(12)
        + f"pwritev2(4, {iov(2)}, -1, 0) = 2\nlseek(4, 0, SEEK_CUR) = 14\n"
        "lseek(4, 1, SEEK_SET) = 1\n"
        f"pwritev2(4, {iov(2)}, -1, RWF_NOAPPEND) = 2\nlseek(4, 0, SEEK_CUR) = 3\n" + size(14)
        + f"writev(4, {iov(2)}) = 2\nlseek(4, 0, SEEK_CUR) = 16\n"
        f'io_uring_write(4, "ab", 2, 0) = 2\n' + size(18),
    "RWF_APPEND at f_pos moves f_pos to the new i_size too":
        MFD + f"pwritev2(3, {iov(2)}, -1, RWF_APPEND) = 2\nlseek(3, 0, SEEK_CUR) = 7\n"
        + f"pwritev2(3, {iov(2)}, -5, RWF_APPEND) = {EINVAL}\n" + size(7),
    "splice and copy_file_range refuse an O_APPEND target":
        MFD + reopen("O_RDWR|O_APPEND", "4") + reopen("O_RDONLY|O_APPEND", "5")
        + f"splice_write(4, 3, 0) = {EINVAL}\nsplice_write(4, 3, -1) = {EINVAL}\n"
        f"splice_write(5, 3, 0) = {EBADF}\nsplice_write(4, 0, 0) = 0\n"
        f"copy_file_range(3, [0], 4, [100], 3, 0) = {EBADF}\n"
        f"copy_file_range(3, [0], 4, [100], 0, 0) = {EBADF}\n"
        f"copy_file_range(3, [0], 4, [100], 3, 1) = {EINVAL}\n"
        f'pwrite64(5, "a", 1, 0) = {EBADF}\n' + size(5),
    "a write refused by a seal leaves f_pos where it was":
        MFD + reopen("O_RDWR|O_APPEND", "4") + "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0\n"
        f"lseek(4, 2, SEEK_SET) = 2\nwrite(4, \"abc\", 3) = {EPERM}\n"
        f"lseek(4, 0, SEEK_CUR) = 2\nwritev(4, {iov(3)}) = {EPERM}\nlseek(4, 0, SEEK_CUR) = 2\n",
    "FS_APPEND_FL: writable opens need O_APPEND and no O_TRUNC; RWF_NOAPPEND is refused":
        MFD + "ioctl(3, FS_IOC_SETFLAGS, [FS_APPEND_FL]) = 0\n"
        + reopen("O_RDWR", EPERM) + reopen("O_WRONLY", EPERM)
        + reopen("O_RDWR|O_APPEND", "4") + reopen("O_WRONLY|O_APPEND", "5")
        + reopen("O_RDONLY|O_APPEND", "6") + reopen("O_WRONLY|O_APPEND|O_TRUNC", EPERM)
        + reopen("O_RDONLY", "7")
        + 'pwrite64(4, "ab", 2, 0) = 2\n' + size(7)
        + f"pwritev2(4, {iov(2)}, 0, RWF_NOAPPEND) = {EPERM}\n"
        f"pwritev2(4, {iov(2)}, 0, RWF_NOWAIT|RWF_NOAPPEND) = -1 EOPNOTSUPP\n"
        f"pwritev2(3, {iov(2)}, 0, RWF_NOAPPEND) = 2\n" + size(7)
        + 'pwrite64(3, "ab", 2, 0) = 2\n' + size(7)
        + f"preadv2(6, {iov(2, chr(34) * 2)}, 0, RWF_NOAPPEND) = {EPERM}\n"
        f"preadv2(4, {iov(2, chr(34) * 2)}, -1, RWF_NOAPPEND) = {EPERM}\n"
        f"preadv2(3, {iov(2, chr(34) * 2)}, 0, RWF_NOAPPEND) = 2\n"
        f"preadv2(4, [], 0, 0, RWF_NOAPPEND) = 0\npwritev2(4, [], 0, 0, RWF_NOAPPEND) = 0\n"
        f"mmap(NULL, 4096, PROT_READ, MAP_SHARED, 4, 0) = {EACCES}\n"
        f"mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 5, 0) = {EACCES}\n"
        "mmap(NULL, 4096, PROT_READ, MAP_SHARED, 7, 0) = m1",
    "O_TRUNC under F_SEAL_SHRINK, whatever the access mode":
        MFD + "fcntl(3, F_ADD_SEALS, F_SEAL_SHRINK) = 0\n"
        + reopen("O_WRONLY|O_TRUNC", EPERM) + reopen("O_RDWR|O_APPEND|O_TRUNC", EPERM)
        + reopen("O_WRONLY|O_APPEND", "4") + size(5),
    "F_SETFL sets and clears O_APPEND; not on an append-only file; O_DIRECT is EINVAL":
        MFD + "fcntl(3, F_SETFL, O_APPEND) = 0\n" + 'pwrite64(3, "a", 1, 0) = 1\n' + size(6)
        + 'dup(3) = 4\nwrite(4, "ab", 2) = 2\nlseek(4, 0, SEEK_CUR) = 8\n'
        "fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK|O_LARGEFILE) = 0\n"
        'pwrite64(3, "a", 1, 0) = 1\n' + size(8)
        + f"fcntl(3, F_SETFL, O_DIRECT) = {EINVAL}\nfcntl(3, F_SETFL, 0xffffffff) = {EINVAL}\n"
        "fcntl(3, F_SETFL, O_ASYNC|O_NOATIME) = 0\n" + reopen("O_RDWR|O_APPEND", "5")
        + "ioctl(3, FS_IOC_SETFLAGS, [FS_APPEND_FL]) = 0\n"
        f"fcntl(5, F_SETFL, 0) = {EPERM}\nfcntl(3, F_SETFL, O_APPEND) = {EPERM}\n"
        f"fcntl(3, F_SETFL, 0xffffffff) = {EPERM}\nfcntl(3, F_SETFL, O_NONBLOCK) = 0\n"
        "fcntl(5, F_SETFL, O_APPEND|O_NONBLOCK) = 0\n" + 'pwrite64(5, "a", 1, 0) = 1\n'
        + size(9),
    "io_uring checks the descriptor before the offset, pwrite64/pread64 the offset first":
        MFD + reopen("O_RDONLY", "4") + reopen("O_WRONLY", "5")
        + f'io_uring_write(4, "ab", 2, -4096) = {EBADF}\npwrite64(4, "ab", 2, -4096) = {EINVAL}\n'
        f"io_uring_read(5, 4096, -2) = {EBADF}\npread64(5, 4096, -2) = {EINVAL}\n"
        f'io_uring_write(3, "ab", 2, -2) = {EINVAL}\nio_uring_read(4, 4096, 0) = 5',
    "F_GETFL: the access mode, O_LARGEFILE, O_APPEND, and F_SETFL's O_NONBLOCK/O_NOATIME":
        'memfd_create("t", MFD_CLOEXEC) = 3\n'
        "fcntl(3, F_GETFL) = 0x8002 (flags O_RDWR|O_LARGEFILE)\n"
        + opened("O_RDONLY|O_CLOEXEC", 4, "0x8000")
        + opened("O_WRONLY|O_APPEND", 5, "0x8401")
        + opened("O_RDWR|O_TRUNC|O_CREAT", 6, "0x8002")
        + "fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK|O_NOATIME|O_APPEND|O_ASYNC) = 0\n"
        "dup(3) = 7\nfcntl(7, F_GETFL) = 0x48c02\n"
        "fcntl(3, F_SETFL, O_ASYNC) = 0\nfcntl(7, F_GETFL) = 0x8002\n"
        "fcntl(5, F_SETFL, O_NONBLOCK|O_APPEND) = 0\nfcntl(5, F_GETFL) = 0x8c01\n"
        "fcntl(4, F_GETFL) = 0x8000\n",
    "open()'s O_NONBLOCK, O_NOATIME, O_SYNC, O_DSYNC, O_ASYNC stay in f_flags; F_SETFL keeps "
    "the last three":
        MFD + opened("O_RDWR|O_NONBLOCK|O_CLOEXEC", 4, "0x8802")
        + opened("O_RDONLY|O_NOATIME", 5, "0x48000")
        + opened("O_WRONLY|O_APPEND|O_SYNC", 6, "0x109401")
        + opened("O_RDWR|O_DSYNC|O_ASYNC", 7, "0xb002")
        + "fcntl(7, F_SETFL, O_NONBLOCK) = 0\nfcntl(7, F_GETFL) = 0xb802\n"
        "fcntl(7, F_SETFL, 0) = 0\nfcntl(7, F_GETFL) = 0xb002\n"
        "ioctl(6, FIONBIO, [1]) = 0\nfcntl(6, F_GETFL) = 0x109c01\n"
        'pwrite64(6, "abc", 3, 0) = 3\npwrite64(7, "abc", 3, 1) = 3\n'
        'pread64(5, "", 10, 0) = 8\n'
        # __O_SYNC alone: build_open_flags() adds O_DSYNC
        + opened("O_RDWR|0x100000", 8, "0x109002"),
    "a /dev/shm file's descriptions: F_GETFL from its creating open and a later one":
        'openat(AT_FDCWD, "/dev/shm/t", O_RDWR|O_CREAT|O_EXCL, 0600) = 3\n'
        "fcntl(3, F_GETFL) = 0x8002\n"
        'openat(AT_FDCWD, "/dev/shm/t", O_RDONLY|O_NONBLOCK) = 4\n'
        "fcntl(4, F_GETFL) = 0x8800\n",
    "ioctl: FIONBIO sets and clears O_NONBLOCK, FIOCLEX is 0, a terminal's request ENOTTY":
        MFD + "ioctl(3, TCGETS, 0x7ffe3ddc7ef0) = -1 ENOTTY\n"
        "ioctl(3, TIOCGWINSZ, 0x7ffe3ddc7ef0) = -1 ENOTTY\n"
        "ioctl(3, FIOCLEX) = 0\nioctl(3, FIONCLEX) = 0\n"
        "ioctl(3, FIONBIO, [1]) = 0\nfcntl(3, F_GETFL) = 0x8802\n"
        + reopen("O_RDONLY", "4") + "ioctl(4, FIONBIO, [-7]) = 0\n"
        "fcntl(4, F_GETFL) = 0x8800\nioctl(3, FIONBIO, [0]) = 0\n"
        "fcntl(3, F_GETFL) = 0x8002\nfcntl(4, F_GETFL) = 0x8800\n"
        "fcntl(4, F_SETFL, O_NOATIME) = 0\nioctl(4, FIONBIO, [1]) = 0\n"
        "fcntl(4, F_GETFL) = 0x48800\n",
}

#: hugetlbfs: no write_iter (EINVAL) for an O_APPEND description too; O_WRONLY as on shmem
HUGE = ('memfd_create("t", MFD_HUGETLB) = 3\n'
        'openat(AT_FDCWD, "/proc/self/fd/3", O_RDWR) = 6\n'
        f"fcntl(6, F_SETFL, O_DIRECT) = {EINVAL}\n"
        'openat(AT_FDCWD, "/proc/self/fd/3", O_RDWR|O_APPEND) = 4\n'
        f'pwrite64(4, "a", 1, 0) = {EINVAL}\n'
        'openat(AT_FDCWD, "/proc/self/fd/3", O_WRONLY) = 5\n'
        f"pread64(5, 4096, 0) = {EBADF}\n"
        f"mmap(NULL, 2097152, PROT_READ, MAP_SHARED, 5, 0) = {EACCES}\n"
        "fcntl(3, F_GETFL) = 0x8002\nfcntl(4, F_GETFL) = 0x8402\n"
        "ioctl(5, FIONBIO, [1]) = 0\nfcntl(5, F_GETFL) = 0x8801\n"
        "ioctl(5, TCGETS, 0x7ffe3ddc7ef0) = -1 ENOTTY")


@pytest.mark.parametrize("name", list(TABLE))
def test_open_modes_table(name: str) -> None:
    assert replay_text(TABLE[name]) is None


def test_hugetlbfs_row() -> None:
    assert replay_text(HUGE) is None


@pytest.mark.parametrize("old, new", [
    ("lseek(4, 0, SEEK_CUR) = 10", "lseek(4, 0, SEEK_CUR) = 5"),  # f_pos as if not appended
    ('pwrite64(4, "ab", 2, 0) = 2\n' + size(7), 'pwrite64(4, "ab", 2, 0) = 2\n' + size(5)),
])
def test_a_wrong_position_is_reported(old: str, new: str) -> None:
    text = TABLE["O_APPEND: every write lands at i_size; f_pos follows the writes at f_pos"]
    assert old in text
    assert replay_text(text.replace(old, new, 1)) is not None


def test_a_wrong_access_mode_outcome_is_reported() -> None:
    text = TABLE["O_WRONLY: no read, no mapping, no copy from it; writes and seals work"]
    assert replay_text(text.replace(f"pread64(4, 4096, 0) = {EBADF}",
                                    "pread64(4, 4096, 0) = 5")) is not None


def test_the_search_takes_readable_descriptions_without_o_append() -> None:
    """The explored (and symbolic) open modes are the three whose descriptions the search's
    rules assume (FMODE_READ, no O_APPEND); the others are replay's."""
    from model import designs
    from model.designs.memfd_open import HOW_APPEND, HOW_WRONLY

    d = designs.get("memfd")
    how = next(p for p in d.action("reopen").params if p.name == "how")
    assert not set(how.domain) & {*HOW_WRONLY, *HOW_APPEND}
    assert how.symbolic_values() == how.domain
    for a in d.actions:
        for p in a.params:
            if p.name in ("fmode_read", "o_append"):
                assert p.domain == ((1,) if p.name == "fmode_read" else (0,)), a.name
                assert p.symbolic_values() == p.domain, a.name


@pytest.mark.parametrize("line, why", [
    # a reopen has FMODE_CAN_ODIRECT (shmem_file_open()); I/O through O_DIRECT is not modelled
    ("fcntl(4, F_SETFL, O_DIRECT) = 0", "O_DIRECT description"),
    ('openat(AT_FDCWD, "/proc/self/fd/3", O_RDONLY|O_TRUNC) = 5', "O_RDONLY|O_TRUNC"),
])
def test_outside_the_model_is_refused(line: str, why: str) -> None:
    """O_RDONLY|O_TRUNC and a description with O_DIRECT are not modelled."""
    with pytest.raises(TraceInputError, match=why):
        replay_text(MFD + reopen("O_RDWR", "4") + line)


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(TABLE))
def test_open_modes_table_on_kernel(name: str) -> None:
    kernel_agrees(TABLE[name])


@pytest.mark.kernel
def test_hugetlbfs_row_on_kernel() -> None:
    kernel_agrees(HUGE, hugepages=2)


def test_check_names_what_it_did_not_explore_and_why() -> None:
    """`check` lists the replay-only actions with the parameters the search had no value for,
    and says which of them a trace's handle table holds (f_pos) and which it does not."""
    from tests.conftest import run

    p = run("check", "--design", "memfd", "--property", "seals-only-grow", "--quiet")
    assert p.returncode == 0, p.stdout + p.stderr
    line = next(x for x in p.stdout.splitlines() if "not explored" in x)
    assert "setfl (the trace's handle table holds status; no explored value: flags)" in line
    assert "uring_read (no explored value: off, len)" in line
    assert "fionbio (the trace's handle table holds status; no explored value: on)" in line
    assert "write (the trace's handle table holds off; no explored value: len)" in line
    assert "exec (the trace's handle table holds writers)" in line
