"""tmpfs files on /dev/shm (glibc's shm_open()/shm_unlink(): model/designs/memfd_open.py)
against a decision table written from fs/namei.c and mm/shmem.c and probed on 6.18.44 as root
in a private tmpfs mount (the executor mounts one per trace):

- open(O_CREAT) of a missing name makes a shmem inode with info->seals = F_SEAL_SEAL
  (__shmem_get_inode()): F_GET_SEALS is 0x1, every F_ADD_SEALS EPERM; its i_mode is the
  argument less the umask 022 (0777 -> 0755, 0644 stays); O_RDONLY|O_CREAT opens it read-only;
- an existing name: O_CREAT|O_EXCL EEXIST (before may_open(), so also on an immutable file);
  O_CREAT alone opens it, the mode unread; O_TRUNC truncates; a writable open of an
  append-only (without O_APPEND) or immutable file EPERM, O_RDONLY still works;
- a missing name without O_CREAT is ENOENT, and so is unlink() of it; unlink() of an
  append-only or immutable file EPERM (may_delete()); after unlink() the descriptors still
  map and write the file.
"""

from __future__ import annotations

import pytest

from checker.replay import TraceInputError
from tests.conftest import kernel_agrees, replay_text

SHM = "/dev/shm/t"
EPERM, ENOENT, EEXIST = "-1 EPERM", "-1 ENOENT", "-1 EEXIST"


def create(flags: str, mode: str = "0600", name: str = SHM) -> str:
    return f'openat(AT_FDCWD, "{name}", {flags}, {mode})'


def stat(fd: int, mode: str, size: int) -> str:
    return (f'newfstatat({fd}, "", {{st_mode=S_IFREG|{mode}, st_size={size}, ...}}, '
            "AT_EMPTY_PATH) = 0")


TABLE = {
    "created: F_SEAL_SEAL, the mode less the umask":
        f"{create('O_RDWR|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC', '0777')} = 3\n"
        f"{stat(3, '0755', 0)}\nfcntl(3, F_GET_SEALS) = 0x1\n"
        f"fcntl(3, F_ADD_SEALS, 0) = {EPERM}\nfcntl(3, F_ADD_SEALS, F_SEAL_SEAL) = {EPERM}\n"
        f"fcntl(3, F_ADD_SEALS, F_SEAL_WRITE|F_SEAL_SHRINK) = {EPERM}\n"
        'pwrite64(3, "x", 10, 0) = 10',
    "created read-only: no write, no seal":
        f"{create('O_RDONLY|O_CREAT', '0644')} = 3\n{stat(3, '0644', 0)}\n"
        f'pwrite64(3, "x", 10, 0) = -1 EBADF\nfcntl(3, F_ADD_SEALS, 0) = {EPERM}',
    "existing: EXCL refused, O_CREAT opens it, O_TRUNC truncates":
        f"{create('O_RDWR|O_CREAT|O_EXCL')} = 3\n"
        'pwrite64(3, "x", 100, 0) = 100\n'
        f"{create('O_RDWR|O_CREAT|O_EXCL')} = {EEXIST}\n"
        f"{create('O_RDONLY|O_CREAT', '0777')} = 4\n{stat(4, '0600', 100)}\n"
        f"{create('O_RDWR|O_CREAT|O_TRUNC')} = 5\n{stat(3, '0600', 0)}",
    "no name: ENOENT for open and unlink":
        f'open("{SHM}", O_RDWR) = {ENOENT}\nunlink("{SHM}") = {ENOENT}\n'
        f'openat(AT_FDCWD, "{SHM}", O_RDONLY|O_CLOEXEC) = {ENOENT}',
    "append-only: writable opens and unlink EPERM, read-only open works":
        f"{create('O_RDWR|O_CREAT|O_EXCL')} = 3\n"
        "ioctl(3, FS_IOC_SETFLAGS, [FS_APPEND_FL]) = 0\n"
        f'open("{SHM}", O_RDWR) = {EPERM}\nopen("{SHM}", O_RDWR|O_TRUNC) = {EPERM}\n'
        f'unlink("{SHM}") = {EPERM}\nopen("{SHM}", O_RDONLY) = 4\n'
        f"{create('O_RDWR|O_CREAT|O_EXCL')} = {EEXIST}",
    "immutable: the same, and EXCL is still EEXIST first":
        f"{create('O_RDWR|O_CREAT|O_EXCL')} = 3\n"
        "ioctl(3, FS_IOC_SETFLAGS, [FS_IMMUTABLE_FL]) = 0\n"
        f"{create('O_RDWR|O_CREAT|O_EXCL')} = {EEXIST}\n"
        f"{create('O_RDWR|O_CREAT')} = {EPERM}\nunlink(\"{SHM}\") = {EPERM}\n"
        f'open("{SHM}", O_RDONLY) = 4\nioctl(3, FS_IOC_SETFLAGS, [0]) = 0\n'
        f'unlink("{SHM}") = 0',
    "unlinked: the name is gone, the file lives on":
        f"{create('O_RDWR|O_CREAT|O_EXCL')} = 3\nftruncate(3, 4096) = 0\n"
        f'unlink("{SHM}") = 0\nunlink("{SHM}") = {ENOENT}\nopen("{SHM}", O_RDONLY) = {ENOENT}\n'
        "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1\n"
        "store(m1, 0) = 0\nfcntl(3, F_GET_SEALS) = 0x1",
}


@pytest.mark.parametrize("name", list(TABLE))
def test_tmpfs_table(name: str) -> None:
    assert replay_text(TABLE[name]) is None


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(TABLE))
def test_tmpfs_table_on_kernel(name: str) -> None:
    kernel_agrees(TABLE[name])


def test_a_wrong_outcome_is_reported() -> None:
    text = TABLE["append-only: writable opens and unlink EPERM, read-only open works"]
    assert replay_text(text.replace(f'unlink("{SHM}") = {EPERM}', f'unlink("{SHM}") = 0')) \
        is not None
    assert replay_text(TABLE["created: F_SEAL_SEAL, the mode less the umask"]
                       .replace("S_IFREG|0755", "S_IFREG|0777")) is not None


@pytest.mark.kernel
def test_a_wrong_outcome_fails_on_kernel() -> None:
    with pytest.raises(AssertionError):
        kernel_agrees(TABLE["no name: ENOENT for open and unlink"].replace(
            f'unlink("{SHM}") = {ENOENT}', f'unlink("{SHM}") = 0'))


@pytest.mark.parametrize("text, why", [
    (f"{create('O_RDWR|O_CREAT')} = 3\nunlink(\"/dev/shm/u\") = {ENOENT}", "another file"),
    (f"{create('O_RDWR|O_CREAT')} = 3\nunlink(\"{SHM}\") = 0\n"
     f"{create('O_RDWR|O_CREAT')} = 4", "one inode"),
    (f'memfd_create("t", 0) = 3\n{create("O_RDWR|O_CREAT")} = 4', "one inode"),
    (f"{create('O_WRONLY|O_CREAT')} = 3", "oflags"),
    (f"{create('O_RDWR|O_CREAT', '01777')} = 3", "9-bit"),
    ('open("/dev/shm/a/b", O_RDWR|O_CREAT, 0600) = 3', "directly on /dev/shm"),
])
def test_what_the_model_does_not_hold_is_refused(text: str, why: str) -> None:
    with pytest.raises(TraceInputError, match="outside the model") as e:
        replay_text(text)
    assert why in str(e.value)


@pytest.mark.kernel
def test_the_machines_dev_shm_is_untouched() -> None:
    """The executor's tmpfs is private to the trace: a name there is not the machine's."""
    import os

    before = set(os.listdir("/dev/shm"))
    kernel_agrees(f"{create('O_RDWR|O_CREAT|O_EXCL', name='/dev/shm/shmemcheck-probe')} = 3")
    assert set(os.listdir("/dev/shm")) == before
