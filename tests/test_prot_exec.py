"""PROT_EXEC beside PROT_READ/PROT_WRITE on a memfd mapping (model/designs/memfd.py `PROT`)
against a decision table.

Probed on 6.18.44 with a ctypes program (not the executor): mmap() with PROT_EXEC succeeds
shared and private, through an O_RDONLY description too, and mprotect() adds it, on every
memfd, MFD_NOEXEC_SEAL ones included: F_SEAL_EXEC and vm.memfd_noexec govern the mode's x bits
(execve), not mappings, and the internal mounts are not noexec. Otherwise the mapping behaves
as without PROT_EXEC (the write seal, stores, loads). PROT_EXEC alone is outside the model (an
execute-only protection key on a CPU with PKU).
"""

from __future__ import annotations

import pytest

from checker.replay import TraceInputError
from tests.conftest import kernel_agrees, replay_text

MFD = 'memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, 4096) = 0\n'

TABLE = {
    "an executable mapping is the mapping without PROT_EXEC":
        MFD + "mmap(NULL, 4096, PROT_READ|PROT_EXEC, MAP_SHARED, 3, 0) = m1\n"
        "load(m1, 0) = 0\nstore(m1, 0) = SIGSEGV\n"
        "mmap(NULL, 4096, PROT_READ|PROT_WRITE|PROT_EXEC, MAP_SHARED, 3, 0) = m2\n"
        "store(m2, 0) = 0\n"
        "mmap(NULL, 4096, PROT_READ|PROT_WRITE|PROT_EXEC, MAP_PRIVATE, 3, 0) = m3\n"
        "store(m3, 0) = 0\nmprotect(m1, 4096, PROT_READ|PROT_WRITE|PROT_EXEC) = 0\n"
        "store(m1, 0) = 0\nmprotect(m2, 4096, PROT_READ) = 0\nstore(m2, 0) = SIGSEGV",
    "MFD_NOEXEC_SEAL: executable mappings all the same, execve EACCES":
        'memfd_create("t", MFD_NOEXEC_SEAL) = 3\nftruncate(3, 4096) = 0\n'
        "mmap(NULL, 4096, PROT_READ|PROT_EXEC, MAP_SHARED, 3, 0) = m1\n"
        "mmap(NULL, 4096, PROT_READ|PROT_EXEC, MAP_PRIVATE, 3, 0) = m2\n"
        "mprotect(m1, 4096, PROT_READ|PROT_WRITE|PROT_EXEC) = 0\nstore(m1, 0) = 0\n"
        'execveat(3, "", ["memfd"], NULL, AT_EMPTY_PATH) = -1 EACCES',
    "an O_RDONLY description maps executable, not writable shared":
        MFD + 'open("/proc/self/fd/3", O_RDONLY) = 4\n'
        "mmap(NULL, 4096, PROT_READ|PROT_EXEC, MAP_SHARED, 4, 0) = m1\n"
        "mprotect(m1, 4096, PROT_READ|PROT_WRITE|PROT_EXEC) = -1 EACCES\n"
        "mmap(NULL, 4096, PROT_READ|PROT_WRITE|PROT_EXEC, MAP_SHARED, 4, 0) = -1 EACCES",
    "the write seal: PROT_WRITE|PROT_EXEC shared EPERM, PROT_READ|PROT_EXEC allowed":
        MFD + "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0\n"
        "mmap(NULL, 4096, PROT_READ|PROT_WRITE|PROT_EXEC, MAP_SHARED, 3, 0) = -1 EPERM\n"
        "mmap(NULL, 4096, PROT_READ|PROT_EXEC, MAP_SHARED, 3, 0) = m1\n"
        "mprotect(m1, 4096, PROT_READ|PROT_WRITE|PROT_EXEC) = -1 EACCES\nload(m1, 0) = 0",
}

HUGE = ('memfd_create("t", MFD_HUGETLB) = 3\nftruncate(3, 2097152) = 0\n'
        "mmap(NULL, 2097152, PROT_READ|PROT_EXEC, MAP_SHARED, 3, 0) = m1\nload(m1, 0) = 0\n"
        "mprotect(m1, 2097152, PROT_READ|PROT_WRITE|PROT_EXEC) = 0\nstore(m1, 0) = 0")


@pytest.mark.parametrize("name", list(TABLE))
def test_prot_exec_table(name: str) -> None:
    assert replay_text(TABLE[name]) is None


def test_hugetlbfs_maps_executable() -> None:
    assert replay_text(HUGE) is None


def test_prot_exec_alone_is_outside_the_model() -> None:
    with pytest.raises(TraceInputError, match="outside the model: mmap prot PROT_EXEC"):
        replay_text(MFD + "mmap(NULL, 4096, PROT_EXEC, MAP_SHARED, 3, 0) = m1")


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(TABLE))
def test_prot_exec_table_on_kernel(name: str) -> None:
    kernel_agrees(TABLE[name])


@pytest.mark.kernel
def test_hugetlb_row_on_kernel() -> None:
    kernel_agrees(HUGE, hugepages=2)
