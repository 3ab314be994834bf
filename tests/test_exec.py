"""exec of a memfd (model/designs/memfd_exec.py) against a decision table.

Every expected outcome below was probed on 6.18.44 as root with a plain Python program (not the
executor): memfd_create, then execveat(fd, "", argv, envp, AT_EMPTY_PATH) in a forked child, the
child's errno sent back through a close-on-exec pipe. The order is fs/exec.c do_open_execat():
may_open() -> inode_permission(MAY_EXEC) (root: any x bit), then exe_file_deny_write_access()
(ETXTBSY while i_writecount > 0: descriptions open()ed for writing; memfd_create()'s own holds
none), then search_binary_handler() (ENOEXEC for content no binary format takes).
"""

from __future__ import annotations

import pytest

from checker.replay import TraceInputError
from tests.conftest import kernel_agrees, replay_text

EXEC = 'execveat(3, "", ["memfd"], NULL, AT_EMPTY_PATH) = '
MFD = 'memfd_create("t", MFD_EXEC) = 3\n'

TABLE = {
    "an empty executable memfd: no format takes it": MFD + EXEC + "-1 ENOEXEC",
    "content that is no binary": MFD + 'pwrite64(3, "x", 1, 0) = 1\n' + EXEC + "-1 ENOEXEC",
    "memfd_create()'s own O_RDWR description holds no write count":
        MFD + 'write(3, "xy", 2) = 2\n' + EXEC + "-1 ENOEXEC",
    "MFD_NOEXEC_SEAL: 0666, EACCES": 'memfd_create("t", MFD_NOEXEC_SEAL) = 3\n' + EXEC
                                     + "-1 EACCES",
    "no x bit: EACCES": MFD + "fchmod(3, 0666) = 0\n" + EXEC + "-1 EACCES",
    "root: any x bit, even only others'": MFD + "fchmod(3, 0001) = 0\n" + EXEC + "-1 ENOEXEC",
    "root: only the group's x bit": MFD + "fchmod(3, 0010) = 0\n" + EXEC + "-1 ENOEXEC",
    "a reopened O_RDWR description: ETXTBSY":
        MFD + 'open("/proc/self/fd/3", O_RDWR) = 4\n' + EXEC + "-1 ETXTBSY",
    "... through its own descriptor too":
        MFD + 'open("/proc/self/fd/3", O_RDWR) = 4\n'
        + EXEC.replace("(3,", "(4,") + "-1 ETXTBSY",
    "permission before the write count": MFD + 'open("/proc/self/fd/3", O_RDWR) = 4\n'
                                         "fchmod(3, 0600) = 0\n" + EXEC + "-1 EACCES",
    "a reopened O_RDONLY description holds none":
        MFD + 'open("/proc/self/fd/3", O_RDONLY) = 4\n' + EXEC + "-1 ENOEXEC",
    "the write count lives as long as the description (dup)":
        MFD + 'open("/proc/self/fd/3", O_RDWR|O_TRUNC) = 4\ndup(4) = 5\nclose(4) = 0\n'
        + EXEC + "-1 ETXTBSY\nclose(5) = 0\n" + EXEC + "-1 ENOEXEC",
    "a writable shared mapping holds none (i_mmap_writable is not i_writecount)":
        MFD + "ftruncate(3, 4096) = 0\n"
        "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1\n" + EXEC + "-1 ENOEXEC",
    "seals do not stop exec": 'memfd_create("t", MFD_ALLOW_SEALING|MFD_EXEC) = 3\n'
                              "fcntl(3, F_ADD_SEALS, F_SEAL_EXEC|F_SEAL_WRITE) = 0\n"
                              + EXEC + "-1 ENOEXEC",
    "execve of /proc/self/fd/N is the same exec":
        MFD + 'execve("/proc/self/fd/3", ["memfd"], []) = -1 ENOEXEC',
    "MFD_CLOEXEC changes nothing for a failing exec":
        'memfd_create("t", MFD_CLOEXEC|MFD_EXEC) = 3\n' + EXEC + "-1 ENOEXEC",
}


@pytest.mark.parametrize("name", list(TABLE))
def test_exec_table(name: str) -> None:
    assert replay_text(TABLE[name]) is None


def test_a_wrong_cell_is_reported() -> None:
    bad = TABLE["a reopened O_RDWR description: ETXTBSY"].replace("ETXTBSY", "ENOEXEC")
    assert replay_text(bad) is not None


def test_hugetlbfs_b15_makes_a_noexec_file_executable() -> None:
    """bug-history B15: hugetlbfs_setattr() has no F_SEAL_EXEC check, so fchmod gives the x
    bits back and exec's permission check passes (probed on 6.18.44)."""
    text = ('memfd_create("t", MFD_HUGETLB|MFD_NOEXEC_SEAL) = 3\n' + EXEC + "-1 EACCES\n"
            "fchmod(3, 0755) = 0\n" + EXEC + "-1 ENOEXEC")
    assert replay_text(text) is None


@pytest.mark.parametrize("outcome", ["0", "-1 ENOENT"])
def test_an_exec_that_runs_the_content_is_outside_the_model(outcome: str) -> None:
    """A #! script runs (0), or through a close-on-exec descriptor fails after the image was
    read (ENOENT: /dev/fd/N is gone): the model holds no content, so it refuses such a line
    rather than judging it ENOEXEC (probed on 6.18.44)."""
    text = MFD + 'pwrite64(3, "#!/bin/true\\n", 12, 0) = 12\n' + EXEC + outcome
    with pytest.raises(TraceInputError, match=r"outside the model: execveat returns .*content"):
        replay_text(text)


def test_the_design_refuses_argument_forms_it_does_not_judge() -> None:
    """Only (fd, "", argv, envp, AT_EMPTY_PATH): another path or no AT_EMPTY_PATH is a lookup
    relative to the descriptor, which the model has no file system for."""
    with pytest.raises(TraceInputError, match="outside the model"):
        replay_text(MFD + 'execveat(3, "x", ["memfd"], NULL, AT_EMPTY_PATH) = -1 ENOTDIR')
    with pytest.raises(TraceInputError, match="outside the model"):
        replay_text(MFD + 'execveat(3, "", ["memfd"], NULL, 0) = -1 ENOENT')


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(TABLE))
def test_exec_table_on_kernel(name: str) -> None:
    """The rows on the live kernel: every outcome, not only the last."""
    kernel_agrees(TABLE[name])


@pytest.mark.parametrize("design", ["v5-inaccessible", "v5-flags"])
def test_v5_an_inaccessible_file_is_never_executed(design: str) -> None:
    """PATCH v5 01/13 makes shmem_file_read_iter() EPERM for an inaccessible file, and exec
    reads the image's first bytes through it (prepare_binprm() -> kernel_read()) after its
    permission check: EPERM with an x bit, EACCES without (a delta of one rule)."""
    text = ('memfd_create("t", MFD_INACCESSIBLE) = 3\n' + EXEC + "-1 EPERM\n"
            "fchmod(3, 0666) = 0\n" + EXEC + "-1 EACCES")
    assert replay_text(text, design) is None
    assert replay_text('memfd_create("t", 0) = 3\n' + EXEC + "-1 ENOEXEC", design) is None


def test_5_17_has_the_same_exec_checks() -> None:
    """Before 6.3 there is no MFD_EXEC: a memfd is created 0777, so it can be executed."""
    assert replay_text('memfd_create("t", 0) = 3\n' + EXEC + "-1 ENOEXEC\n"
                       'open("/proc/self/fd/3", O_RDWR) = 4\n' + EXEC + "-1 ETXTBSY",
                       "memfd@5.17") is None
