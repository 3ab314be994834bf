"""mmap() at a file offset (model/designs/memfd.py mmap_body, memfd_access.py's faults).

The decision table is written from mm/mmap.c and fs/hugetlbfs/inode.c (6.18) and was probed
on 6.18.44 before the rules were: sys_mmap() refuses an offset that is not page-aligned
(EINVAL) before anything else; do_mmap()'s file_mmap_ok() refuses an end past
MAX_LFS_FILESIZE (EOVERFLOW) before the FMODE and seal checks; hugetlbfs_file_mmap() refuses
an offset that is not a multiple of the huge page (EINVAL) only after them, and raises i_size
to offset + length for a VM_WRITE mapping. A fault reaches the file page at the mapping's
offset plus the byte's offset in it. Each row's last line carries the cell; the kernel test
runs every line of every row.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import replay_text, run
from tests.test_decision_tables import run_rows

CREATE = 'memfd_create("t", MFD_ALLOW_SEALING) = 3\n'
HUGE = 'memfd_create("t", MFD_ALLOW_SEALING|MFD_HUGETLB) = 3\n'
RDONLY = 'open("/proc/self/fd/3", O_RDONLY) = 4\n'
WSEAL = "fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0\n"
TOP = "0x7ffffffffffff000"  # the last 4 KiB page below LLONG_MAX
HTOP = "0x7fffffffffe00000"  # the last 2 MiB page below LLONG_MAX


def mm(length: int, prot: str, share: str, fd: int, off: str) -> str:
    return f"mmap(NULL, {length}, {prot}, {share}, {fd}, {off})"


RW, RO = "PROT_READ|PROT_WRITE", "PROT_READ"
SH, PR = "MAP_SHARED", "MAP_PRIVATE"

MMAP_OFF = {
    # shmem
    "offset not page-aligned: EINVAL": CREATE + mm(4096, RO, SH, 3, "0x800") + " = -1 EINVAL",
    "offset a page within EOF: its page is the file's page 1": CREATE
        + "ftruncate(3, 8192) = 0\n" + mm(4096, RW, SH, 3, "0x1000") + " = m1\n"
        "store(m1, 4095) = 0\nload(m1, 0) = 0",
    "offset past EOF maps; a fault there SIGBUSes": CREATE + "ftruncate(3, 4096) = 0\n"
        + mm(4096, RO, SH, 3, "0x1000") + " = m1\nload(m1, 0) = SIGBUS",
    "the page holding EOF maps through its last byte": CREATE + "ftruncate(3, 4097) = 0\n"
        + mm(4096, RO, PR, 3, "0x1000") + " = m1\nload(m1, 4095) = 0",
    "a longer mapping: its second page is the file's page offset + 1": CREATE
        + "ftruncate(3, 8192) = 0\n" + mm(8192, RO, SH, 3, "0x1000") + " = m1\n"
        "load(m1, 0) = 0\nload(m1, 4096) = SIGBUS",
    "end past MAX_LFS_FILESIZE: EOVERFLOW": CREATE + mm(4096, RO, SH, 3, TOP)
        + " = -1 EOVERFLOW",
    "offset 2^63 (a negative off_t): EOVERFLOW": CREATE
        + mm(4096, RO, SH, 3, "0x8000000000000000") + " = -1 EOVERFLOW",
    "offset 2^62: maps (past EOF)": CREATE + mm(4096, RO, SH, 3, "0x4000000000000000")
        + " = m1\nload(m1, 0) = SIGBUS",
    "unaligned before EOVERFLOW": CREATE + mm(4096, RO, SH, 3, "0x7ffffffffffff800")
        + " = -1 EINVAL",
    "EOVERFLOW before EACCES (O_RDONLY, shared rw)": CREATE + RDONLY
        + mm(4096, RW, SH, 4, TOP) + " = -1 EOVERFLOW",
    "EACCES at a good offset (O_RDONLY, shared rw)": CREATE + RDONLY
        + mm(4096, RW, SH, 4, "0x1000") + " = -1 EACCES",
    "EOVERFLOW before the write seal": CREATE + WSEAL + mm(4096, RW, SH, 3, TOP)
        + " = -1 EOVERFLOW",
    "write seal at an offset: EPERM": CREATE + WSEAL + mm(4096, RW, SH, 3, "0x1000")
        + " = -1 EPERM",
    "write seal: a private rw mapping at an offset stores (a copy)": CREATE
        + "ftruncate(3, 8192) = 0\n" + WSEAL + mm(4096, RW, PR, 3, "0x1000") + " = m1\n"
        "store(m1, 0) = 0",
    "FOLL_FORCE write through an offset mapping past EOF: EIO": CREATE
        + "ftruncate(3, 4096) = 0\n" + mm(4096, RO, PR, 3, "0x1000") + " = m1\n"
        "mem_write(m1, 0) = -1 EIO",
    "process_vm_writev at an offset within EOF: 1": CREATE + "ftruncate(3, 8192) = 0\n"
        + mm(4096, RW, SH, 3, "0x1000") + " = m1\nvm_write(m1, 0) = 1",
    "MADV_POPULATE_READ at an offset past EOF: EFAULT": CREATE + "ftruncate(3, 4096) = 0\n"
        + mm(4096, RO, SH, 3, "0x1000") + " = m1\nmadvise(m1, 4096, MADV_POPULATE_READ) = -1 "
        "EFAULT",
    "MADV_REMOVE at an offset: punched (the file's page 1)": CREATE
        + "ftruncate(3, 8192) = 0\n" + mm(4096, RW, SH, 3, "0x1000") + " = m1\n"
        "store(m1, 0) = 0\nmadvise(m1, 4096, MADV_REMOVE) = 0",
    "mremap's duplicate keeps the offset": CREATE + "ftruncate(3, 8192) = 0\n"
        + mm(4096, RO, SH, 3, "0x1000") + " = m1\n"
        "mremap(m1, 0, 4096, MREMAP_MAYMOVE) = m2\nftruncate(3, 4096) = 0\n"
        "load(m2, 0) = SIGBUS",
    # hugetlbfs
    "hugetlbfs: offset not huge-aligned: EINVAL": HUGE + mm(2097152, RO, SH, 3, "0x1000")
        + " = -1 EINVAL",
    "hugetlbfs: the write seal before the huge alignment: EPERM": HUGE + WSEAL
        + mm(2097152, RW, SH, 3, "0x1000") + " = -1 EPERM",
    "hugetlbfs: EACCES before the huge alignment": HUGE + RDONLY
        + mm(2097152, RW, SH, 4, "0x1000") + " = -1 EACCES",
    "hugetlbfs: EOVERFLOW before the huge alignment": HUGE
        + mm(2097152, RO, SH, 3, "0x7ffffffffff00000") + " = -1 EOVERFLOW",
    "hugetlbfs: end past MAX_LFS_FILESIZE: EOVERFLOW": HUGE + mm(2097152, RO, SH, 3, HTOP)
        + " = -1 EOVERFLOW",
    "hugetlbfs: a writable shared mapping raises i_size to its end": HUGE
        + mm(2097152, RW, SH, 3, "0x200000") + " = m1\n"
        "fstat(3, {st_mode=S_IFREG|0777, st_size=4194304}) = 0\nstore(m1, 0) = 0",
    "hugetlbfs: a writable private one too, under F_SEAL_GROW": HUGE
        + "fcntl(3, F_ADD_SEALS, F_SEAL_GROW) = 0\n" + mm(2097152, RW, PR, 3, "0x200000")
        + " = m1\nfstat(3, {st_mode=S_IFREG|0777, st_size=4194304}) = 0",
    "hugetlbfs: a read-only one does not": HUGE + mm(2097152, RO, SH, 3, "0x200000")
        + " = m1\nfstat(3, {st_mode=S_IFREG|0777, st_size=0}) = 0",
}


@pytest.mark.parametrize("name", list(MMAP_OFF))
def test_mmap_offset(name: str) -> None:
    assert replay_text(MMAP_OFF[name]) is None


def test_a_wrong_offset_cell_is_reported() -> None:
    """The page a fault reaches is the offset's: a mapping at page 1 of a one-page file
    SIGBUSes where one at page 0 would not."""
    out = replay_text(CREATE + "ftruncate(3, 4096) = 0\n" + mm(4096, RO, SH, 3, "0x1000")
                      + " = m1\nload(m1, 0) = 0")
    assert out is not None and "model says SIGBUS" in out


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(MMAP_OFF))
def test_mmap_offset_on_kernel(name: str) -> None:
    """The same rows on the live kernel: every outcome, not only the last."""
    steps, run_ = run_rows(MMAP_OFF[name])
    assert run_.outcomes == [s.outcome for s in steps]


REFUSED = {
    "a hugetlbfs mapping past the pool replay reserves": (
        HUGE + mm(2097152, RO, SH, 3, "0x400000") + " = m1",
        "(requires hugetlb_reserve)"),
    "a pin through a mapping at an offset": (
        CREATE + "ftruncate(3, 8192) = 0\n" + mm(4096, RW, SH, 3, "0x1000") + " = m1\n"
        "pin(m1) = p1", "the model's pins hold the file's first page"),
    "a hugetlbfs fault past the first page and past EOF": (
        HUGE + mm(2097152, RO, SH, 3, "0x200000") + " = m1\nload(m1, 0) = SIGBUS",
        "(requires hugetlb_cached_beyond)"),
    "an offset past unsigned long": (
        CREATE + mm(4096, RO, SH, 3, "0x10000000000000000") + " = -1 EOVERFLOW",
        "not a value of the call's"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_outside_offsets_are_refused(tmp_path: Path, name: str) -> None:
    body, why = REFUSED[name]
    f = tmp_path / "t.trace"
    f.write_text("# shmemcheck trace 1\n# design: memfd\n" + body + "\n")
    r = run("replay", str(f))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "outside the model" in r.stderr and why in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
