"""chattr's flags on a memfd (model/designs/memfd_fsflags.py and the rules that read them)
against a decision table.

Probed on 6.18.44 with ctypes programs (not the executor), as root (CAP_LINUX_IMMUTABLE):
FS_IOC_SETFLAGS takes FS_IMMUTABLE_FL, FS_APPEND_FL, FS_NODUMP_FL and FS_NOATIME_FL through any
description (EOPNOTSUPP for other bits; ENOTTY on hugetlbfs). FS_IMMUTABLE_FL makes a writable
open, fchmod, every fallocate, MADV_REMOVE and copy_file_range into the file EPERM, but not
pwrite64, splice, stores or ftruncate through what was opened or mapped before.
FS_APPEND_FL makes ftruncate, a writable open without O_APPEND or with O_TRUNC, fchmod,
fallocate other than preallocation and MADV_REMOVE EPERM, and MAP_SHARED through an O_RDWR
description EACCES (even PROT_READ). FS_IOC_GETFLAGS writes the four bits as last set, through
any description (`[FS_APPEND_FL|FS_NODUMP_FL|FS_NOATIME_FL]`, `[0]`), and is ENOTTY on
hugetlbfs, where strace prints the address instead.
"""

from __future__ import annotations

import pytest

from checker.replay import TraceInputError
from model import vocab
from tests.conftest import kernel_agrees, replay_text

MFD = ('memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, 8192) = 0\n'
       "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1\n")
IMM = MFD + "ioctl(3, FS_IOC_SETFLAGS, [FS_IMMUTABLE_FL]) = 0\n"
APP = MFD + "ioctl(3, FS_IOC_SETFLAGS, [FS_APPEND_FL]) = 0\n"
STAT = 'newfstatat(3, "", {{st_mode=S_IFREG|{mode}, st_size={size}, ...}}, AT_EMPTY_PATH) = 0'

TABLE = {
    "immutable: what was opened and mapped before still writes and truncates":
        IMM + 'pwrite64(3, "x", 1, 0) = 1\nsplice_write(3, 2, 100) = 2\nstore(m1, 0) = 0\n'
        "ftruncate(3, 12288) = 0\nftruncate(3, 4096) = 0\n" + STAT.format(mode="0777",
                                                                          size=4096),
    "immutable: fallocate in every mode, fchmod, copy_file_range and MADV_REMOVE are EPERM":
        IMM + "fallocate(3, 0, 0, 4096) = -1 EPERM\n"
        "fallocate(3, FALLOC_FL_KEEP_SIZE, 0, 4096) = -1 EPERM\n"
        "fallocate(3, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE, 0, 4096) = -1 EPERM\n"
        "fchmod(3, 0600) = -1 EPERM\ncopy_file_range(3, [0], 3, [4096], 1, 0) = -1 EPERM\n"
        "madvise(m1, 4096, MADV_REMOVE) = -1 EPERM",
    "immutable: a writable open is EPERM, a read-only one is not":
        IMM + 'open("/proc/self/fd/3", O_RDWR) = -1 EPERM\n'
        'open("/proc/self/fd/3", O_RDWR|O_TRUNC) = -1 EPERM\n'
        'open("/proc/self/fd/3", O_RDONLY) = 4',
    "immutable: new mappings, even shared writable ones through the old description":
        IMM + "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m2\n"
        "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE, 3, 0) = m3\nstore(m2, 0) = 0",
    "immutable: copy_file_range checks the out description's FMODE_WRITE first":
        IMM + 'open("/proc/self/fd/3", O_RDONLY) = 4\n'
        "copy_file_range(3, [0], 4, [4096], 1, 0) = -1 EBADF",
    "append-only: ftruncate, fchmod, hole punching and MADV_REMOVE are EPERM, preallocation "
    "is not":
        APP + "ftruncate(3, 12288) = -1 EPERM\nfchmod(3, 0600) = -1 EPERM\n"
        "fallocate(3, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE, 0, 4096) = -1 EPERM\n"
        "madvise(m1, 4096, MADV_REMOVE) = -1 EPERM\nfallocate(3, 0, 0, 12288) = 0\n"
        "fallocate(3, FALLOC_FL_KEEP_SIZE, 0, 16384) = 0\n" + STAT.format(mode="0777",
                                                                          size=12288),
    "append-only: MAP_SHARED through an O_RDWR description is EACCES, even PROT_READ":
        APP + "mmap(NULL, 4096, PROT_READ, MAP_SHARED, 3, 0) = -1 EACCES\n"
        "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = -1 EACCES\n"
        "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE, 3, 0) = m2\n"
        'open("/proc/self/fd/3", O_RDONLY) = 4\n'
        "mmap(NULL, 4096, PROT_READ, MAP_SHARED, 4, 0) = m3\n"
        "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 4, 0) = -1 EACCES",
    "append-only: a writable open without O_APPEND is EPERM; the old description overwrites":
        APP + 'open("/proc/self/fd/3", O_RDWR) = -1 EPERM\n'
        'open("/proc/self/fd/3", O_RDWR|O_TRUNC) = -1 EPERM\n'
        'pwrite64(3, "x", 1, 0) = 1\nstore(m1, 0) = 0\n'
        "copy_file_range(3, [0], 3, [4096], 1, 0) = 1",
    "setting: other bits EOPNOTSUPP, NODUMP and NOATIME change nothing, clearing restores":
        MFD + "ioctl(3, FS_IOC_SETFLAGS, [FS_SECRM_FL]) = -1 EOPNOTSUPP\n"
        "ioctl(3, FS_IOC_SETFLAGS, [FS_IMMUTABLE_FL|FS_CASEFOLD_FL]) = -1 EOPNOTSUPP\n"
        "fchmod(3, 0600) = 0\n"
        "ioctl(3, FS_IOC_SETFLAGS, [FS_NODUMP_FL|FS_NOATIME_FL]) = 0\nfchmod(3, 0700) = 0\n"
        "ioctl(3, FS_IOC_SETFLAGS, [FS_IMMUTABLE_FL|FS_APPEND_FL]) = 0\n"
        "fchmod(3, 0600) = -1 EPERM\nftruncate(3, 0) = -1 EPERM\n"
        "ioctl(3, FS_IOC_SETFLAGS, [0]) = 0\nfchmod(3, 0600) = 0",
    "any description sets them, seals do not stop it":
        'memfd_create("t", MFD_ALLOW_SEALING) = 3\nopen("/proc/self/fd/3", O_RDONLY) = 4\n'
        "fcntl(3, F_ADD_SEALS, F_SEAL_SEAL|F_SEAL_WRITE|F_SEAL_GROW|F_SEAL_SHRINK) = 0\n"
        "ioctl(4, FS_IOC_SETFLAGS, [FS_IMMUTABLE_FL]) = 0\nfchmod(4, 0600) = -1 EPERM\n"
        "ioctl(4, FS_IOC_SETFLAGS, [0]) = 0",
    "getting: the four bits as last set, through any description; a refused set keeps them":
        MFD + "ioctl(3, FS_IOC_GETFLAGS, [0]) = 0\n"
        "ioctl(3, FS_IOC_SETFLAGS, [FS_APPEND_FL|FS_NODUMP_FL|FS_NOATIME_FL]) = 0\n"
        "ioctl(3, FS_IOC_GETFLAGS, [FS_APPEND_FL|FS_NODUMP_FL|FS_NOATIME_FL]) = 0\n"
        'open("/proc/self/fd/3", O_RDONLY) = 4\n'
        "ioctl(4, FS_IOC_GETFLAGS, [FS_APPEND_FL|FS_NODUMP_FL|FS_NOATIME_FL]) = 0\n"
        "ioctl(4, FS_IOC_SETFLAGS, [FS_IMMUTABLE_FL]) = 0\n"
        "ioctl(3, FS_IOC_SETFLAGS, [FS_SECRM_FL|FS_NODUMP_FL]) = -1 EOPNOTSUPP\n"
        "ioctl(3, FS_IOC_GETFLAGS, [FS_IMMUTABLE_FL]) = 0\n"
        "ioctl(4, FS_IOC_SETFLAGS, [0]) = 0\nioctl(4, FS_IOC_GETFLAGS, [0]) = 0",
}

HUGE = ('memfd_create("t", MFD_HUGETLB) = 3\n'
        "ioctl(3, FS_IOC_SETFLAGS, [FS_IMMUTABLE_FL]) = -1 ENOTTY\n"
        "ioctl(3, FS_IOC_SETFLAGS, [0]) = -1 ENOTTY\n"
        "ioctl(3, FS_IOC_GETFLAGS, 0x7ffc3a1b2c40) = -1 ENOTTY")


@pytest.mark.parametrize("name", list(TABLE))
def test_fsflags_table(name: str) -> None:
    assert replay_text(TABLE[name]) is None


def test_hugetlbfs_has_no_fileattr_set() -> None:
    assert replay_text(HUGE) is None


def test_a_wrong_cell_is_reported() -> None:
    text = TABLE["immutable: a writable open is EPERM, a read-only one is not"]
    assert replay_text(text.replace("O_RDWR) = -1 EPERM", "O_RDWR) = 4")) is not None


#: the getting row with one output the kernel does not write (NODUMP is not IMMUTABLE)
WRONG_GET = TABLE["getting: the four bits as last set, through any description; a refused "
                  "set keeps them"].replace("GETFLAGS, [FS_IMMUTABLE_FL]",
                                            "GETFLAGS, [FS_NODUMP_FL]")


def test_a_wrong_getflags_output_is_reported() -> None:
    assert "[FS_NODUMP_FL]" in WRONG_GET
    div = replay_text(WRONG_GET)
    assert div is not None and "fsflags=[FS_IMMUTABLE_FL]" in div, div


@pytest.mark.parametrize("null", ["NULL", "0", "0x0"])
def test_getflags_to_null_is_outside_the_model(null: str) -> None:
    with pytest.raises(TraceInputError, match=r"outside the model: .*NULL.*EFAULT"):
        replay_text(MFD + f"ioctl(3, FS_IOC_GETFLAGS, {null}) = -1 EFAULT")


def test_the_executor_fills_the_output_the_model_names() -> None:
    """The model's output label is the one the executor (OUT_IOCTLS) fills and the trace's
    [N] is read under: else nothing would be compared."""
    from model.designs.memfd_fsflags import GETFLAGS_OUT
    from traces.outputs import shown_outputs
    from traces.syscalls import OUT_IOCTLS
    from traces.textfmt import parse_trace

    assert OUT_IOCTLS[vocab.FS_IOC_GETFLAGS] == GETFLAGS_OUT.source
    t = parse_trace("# shmemcheck trace 1\nioctl(3, FS_IOC_GETFLAGS, [FS_NODUMP_FL]) = 0\n",
                    "<t>")
    assert shown_outputs(t.steps[0]) == {GETFLAGS_OUT.source: vocab.FS_NODUMP_FL}


@pytest.mark.parametrize("arg, why", [("NULL", "EFAULT"), ("[0x100000010]", "32-bit"),
                                      ("[-1]", "negative")])
def test_values_the_kernel_reads_otherwise_are_outside_the_model(arg: str, why: str) -> None:
    """NULL is copy_from_user()'s EFAULT, which the pointer spelling does not judge; the kernel
    reads an int, so a number outside 32 bits would be cut, not judged as written."""
    with pytest.raises(TraceInputError, match=f"outside the model: .*{why}"):
        replay_text(MFD + f"ioctl(3, FS_IOC_SETFLAGS, {arg}) = 0")


@pytest.mark.parametrize("req", ["FS_IOC_SETFLAGS", "FS_IOC_GETFLAGS"])
def test_before_6_0_shmem_has_no_fs_ioc_setflags(req: str) -> None:
    with pytest.raises(TraceInputError, match=r"outside the model: ioctl argument FS_IOC_"):
        replay_text(MFD + f"ioctl(3, {req}, [FS_IMMUTABLE_FL]) = 0", "memfd@5.17")


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(TABLE))
def test_fsflags_table_on_kernel(name: str) -> None:
    kernel_agrees(TABLE[name])


@pytest.mark.kernel
def test_a_wrong_getflags_output_fails_on_kernel() -> None:
    """kernel_agrees compares the flags the kernel wrote with the trace's [N]."""
    with pytest.raises(AssertionError, match="fsflags"):
        kernel_agrees(WRONG_GET)


@pytest.mark.kernel
def test_hugetlb_row_on_kernel() -> None:
    kernel_agrees(HUGE, hugepages=2)
