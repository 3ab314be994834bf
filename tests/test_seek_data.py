"""Which pages of a memfd hold data: lseek(SEEK_DATA/SEEK_HOLE) (NOTES.md "Pages that hold
data").

Every expected outcome is written from the kernel source, not computed by the model:
shmem_file_llseek() -> mapping_seek_hole_data() counts an uptodate folio as data, and a
folio shmem_fallocate() allocated (not uptodate: folio_seek_hole_data(), shmem has no
is_partially_uptodate) as a hole; a write (shmem_write_end() marks the folio uptodate) and a
fault (shmem_fault(), SGP_CACHE, also under a private mapping: do_cow_fault() reads the
file's page first) make data, and so does a second fallocate over a fallocated folio
(shmem_get_folio_gfp(): SGP_FALLOC on a folio fallocated earlier initializes it); read()
(SGP_READ) allocates nothing; a punch and truncation remove whole pages and keep a partial
one (shmem_undo_range()). hugetlbfs's default_llseek()
sees no hole: SEEK_DATA keeps the offset, SEEK_HOLE is i_size. Each row runs on the model
and on the live kernel.
"""

from __future__ import annotations

import random

import pytest

from checker.judge import TraceInputError
from tests.conftest import judged, kernel_agrees, random_trace_agrees_on_kernel, replay_text

THREE = 'memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, 12288) = 0\n'
SH = "mmap(NULL, 12288, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1\n"


def seeks(*rows: tuple[int, str, str]) -> str:
    return "".join(f"lseek(3, {off}, {w}) = {out}\n" for off, w, out in rows)


D, H = "SEEK_DATA", "SEEK_HOLE"

SEEK = {
    "an empty file: ENXIO at 0; a file never written is one hole":
        'memfd_create("t", 0) = 3\n' + seeks((0, D, "-1 ENXIO"), (0, H, "-1 ENXIO"))
        + "ftruncate(3, 12288) = 0\n"
        + seeks((0, D, "-1 ENXIO"), (0, H, "0"), (12287, H, "12287"), (12288, H, "-1 ENXIO"),
                (-1, D, "-1 ENXIO"), (-4096, H, "-1 ENXIO")),
    "a one-byte write makes its page data; the offset is kept inside it":
        THREE + 'pwrite64(3, "x", 1, 4100) = 1\n'
        + seeks((0, D, "4096"), (5000, D, "5000"), (0, H, "0"), (4096, H, "8192"),
                (8192, D, "-1 ENXIO"), (8192, H, "8192")),
    "a write across a page boundary: both pages":
        THREE + 'pwrite64(3, "ab", 2, 4095) = 2\n' + seeks((0, H, "8192"), (0, D, "0")),
    "fallocate leaves a hole until a write or a fault":
        THREE + "fallocate(3, 0, 0, 12288) = 0\n" + seeks((0, D, "-1 ENXIO"), (0, H, "0"))
        + 'pwrite64(3, "x", 1, 8192) = 1\n' + seeks((0, D, "8192"), (8192, H, "12288")),
    "a second fallocate over a fallocated page makes it data (SGP_FALLOC, shmem_get_folio_gfp())":
        THREE + "fallocate(3, 0, 0, 8192) = 0\nfallocate(3, FALLOC_FL_KEEP_SIZE, 4096, 100) = 0\n"
        + seeks((0, D, "4096"), (4096, H, "8192")),
    "read() allocates nothing":
        THREE + 'pread64(3, "", 100, 0) = 100\nread(3, "", 4096) = 4096\n'
        + seeks((0, D, "-1 ENXIO")),
    "a load through a private mapping reads the page in: data":
        THREE + "mmap(NULL, 12288, PROT_READ, MAP_PRIVATE, 3, 0) = m1\nload(m1, 8192) = 0\n"
        + seeks((0, D, "8192"), (0, H, "0"), (8192, H, "12288")),
    "a store through a private mapping: the file's page is data (zeroes) all the same":
        THREE + "mmap(NULL, 12288, PROT_READ|PROT_WRITE, MAP_PRIVATE, 3, 0) = m1\n"
        "store(m1, 4096) = 0\n" + seeks((0, D, "4096"), (4096, H, "8192")),
    "a shared store, and a fault past EOF makes nothing":
        'memfd_create("t", 0) = 3\nftruncate(3, 4096) = 0\n' + SH
        + "store(m1, 4096) = SIGBUS\nstore(m1, 0) = 0\nftruncate(3, 12288) = 0\n"
        + seeks((0, H, "4096"), (4096, D, "-1 ENXIO")),
    "a hole punch removes whole pages and keeps a partial one":
        THREE + 'pwrite64(3, "x"..., 12288, 0) = 12288\n'
        "fallocate(3, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE, 100, 8192) = 0\n"
        + seeks((0, H, "4096"), (4096, D, "8192"), (0, D, "0"))
        + "fallocate(3, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE, 8192, 4096) = 0\n"
        + seeks((4096, D, "-1 ENXIO")),
    "truncation drops the pages past the new size, keeps the one holding it":
        THREE + 'pwrite64(3, "x"..., 12288, 0) = 12288\nftruncate(3, 5000) = 0\n'
        "ftruncate(3, 12288) = 0\n" + seeks((0, H, "8192"), (8192, D, "-1 ENXIO"))
        + "ftruncate(3, 0) = 0\nftruncate(3, 4096) = 0\n" + seeks((0, D, "-1 ENXIO")),
    "MADV_REMOVE punches the mapping's pages":
        THREE + SH + "store(m1, 0) = 0\nstore(m1, 4096) = 0\nmadvise(m1, 4096, MADV_REMOVE) = 0\n"
        + seeks((0, D, "4096"), (0, H, "0")),
    "MADV_POPULATE_READ faults the page in; other advice does not":
        THREE + SH + "madvise(m1, 4096, MADV_COLD) = 0\n" + seeks((0, D, "-1 ENXIO"))
        + "madvise(m1, 4096, MADV_POPULATE_READ) = 0\n" + seeks((0, H, "4096")),
    "vmsplice and /proc/self/mem fault the page in":
        THREE + SH + "pin(m1) = p1\n" + seeks((0, H, "4096")) + "unpin(p1) = 0\n"
        "mmap(NULL, 12288, PROT_READ, MAP_PRIVATE, 3, 4096) = m2\nmem_write(m2, 0) = 1\n"
        + seeks((4096, H, "8192"), (8192, D, "-1 ENXIO")),
    "the write paths: write, pwritev, splice, sendfile (at f_pos: 12288, where the last "
    "seek left it), copy_file_range":
        THREE + 'write(3, "ab", 2) = 2\n'
        'pwritev(3, [{iov_base="ab", iov_len=2}], 1, 8192) = 2\n' + seeks((4096, D, "8192"))
        + "splice_write(3, 10, 4096) = 10\n" + seeks((0, H, "12288"))
        + "fallocate(3, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE, 0, 12288) = 0\n"
        'pwrite64(3, "x"..., 100, 8000) = 100\nsendfile(3, 3, [8000] => [8100], 100) = 100\n'
        "copy_file_range(3, [8000], 3, [6000], 10, 0) = 10\n"
        + seeks((0, H, "0"), (0, D, "4096"), (4096, D, "4096"), (4096, H, "8192")),
    "past the pages held one by one: a write there is data, a seek into it refused":
        'memfd_create("t", 0) = 3\nftruncate(3, 20480) = 0\n'
        'pwrite64(3, "x", 1, 16384) = 1\n' + seeks((0, D, "16384")),
    "hugetlbfs: the whole file is data to default_llseek()":
        'memfd_create("t", MFD_HUGETLB) = 3\nftruncate(3, 4194304) = 0\n'
        + seeks((0, D, "0"), (100, D, "100"), (0, H, "4194304"), (4194304, D, "-1 ENXIO"),
                (-1, D, "-1 EINVAL"), (-1, H, "4194304")),
}
#: rows whose last seek the model refuses (data past its pages): run on the kernel only up to
#: the refused line, and the refusal checked apart
REFUSED = {"past the pages held one by one: a write there is data, a seek into it refused"}


@pytest.mark.parametrize("name", [n for n in SEEK if n not in REFUSED])
def test_seek(name: str) -> None:
    assert replay_text(SEEK[name]) is None


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(SEEK))
def test_seek_on_kernel(name: str) -> None:
    kernel_agrees("# design: memfd\n" + SEEK[name], hugepages=2)


def test_a_seek_past_the_held_pages_is_refused() -> None:
    text = SEEK["past the pages held one by one: a write there is data, a seek into it refused"]
    with pytest.raises(TraceInputError, match=r"outside the model: .*past the file's first 3 "
                       r"pages"):
        replay_text(text)
    # a SEEK_HOLE that finds its hole among the held pages is judged all the same
    assert replay_text(text.rsplit("lseek", 1)[0] + "lseek(3, 0, SEEK_HOLE) = 0\n") is None


def test_a_wrong_cell_is_reported() -> None:
    """A fallocated page counted as data: the model says ENXIO."""
    out = replay_text(THREE + "fallocate(3, 0, 0, 4096) = 0\nlseek(3, 0, SEEK_DATA) = 0\n")
    assert out is not None and "ENXIO" in out


def _random_line(rng: random.Random) -> str:
    """A call that may change which pages hold data, or a seek, at offsets around the held
    pages (0..3 pages, and a page past them)."""
    a = rng.choice((0, 1, 4095, 4096, 5000, 8191, 8192, 12287, 12288, 16384, rng.randrange(16400)))
    n = rng.choice((1, 2, 100, 4096, 8192, rng.randrange(1, 13000)))
    call = rng.randrange(11)
    if call == 0:
        return f'pwrite64(3, "x"..., {n}, {a}) = ?'
    if call == 1:
        mode = rng.choice(("0", "FALLOC_FL_KEEP_SIZE", "FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE"))
        return f"fallocate(3, {mode}, {a}, {n}) = ?"
    if call == 2:
        return f"ftruncate(3, {rng.choice((0, 100, 4096, 5000, 12288, a))}) = ?"
    if call == 3:
        return f"store(m{rng.choice((1, 2))}, {rng.choice((0, 4095, 4096, 8191))}) = ?"
    if call == 4:
        return f"load(m{rng.choice((1, 2))}, {rng.choice((0, 4096, 8191))}) = ?"
    if call == 5:
        advice = rng.choice(("MADV_REMOVE", "MADV_POPULATE_READ", "MADV_POPULATE_WRITE"))
        return f"madvise(m1, {rng.choice((1, 4096))}, {advice}) = ?"
    if call == 6:
        return f'pread64(3, "", {n}, {a}) = ?'
    return f"lseek(3, {rng.choice((a, -1, 0, 4096))}, {rng.choice(('SEEK_DATA', 'SEEK_HOLE'))}) = ?"


def random_seek_traces(n: int, seed: int = 46) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        size = rng.choice((0, 100, 4096, 8192, 12288))
        body = (f'memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, {size}) = 0\n'
                "mmap(NULL, 12288, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1\n"
                "mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE, 3, 0x1000) = m2\n"
                + "".join(_random_line(rng) + "\n" for _ in range(8))
                + "lseek(3, 0, SEEK_DATA) = ?\nlseek(3, 0, SEEK_HOLE) = ?\n")
        out.append("# shmemcheck trace 1\n# design: memfd\n" + body)
    return out


SEEK_TRACES = random_seek_traces(30)


def test_random_seeks_are_judged_or_refused_with_a_reason() -> None:
    results = [judged(text) for text in SEEK_TRACES]
    for r in results:
        assert not isinstance(r, str) or "outside the model: " in r, r
    assert sum(not isinstance(r, str) for r in results) >= len(SEEK_TRACES) // 2


@pytest.mark.kernel
@pytest.mark.parametrize("i", range(len(SEEK_TRACES)))
def test_random_seeks_agree_with_the_kernel(i: int) -> None:
    random_trace_agrees_on_kernel(SEEK_TRACES[i])
