"""The shmem page cache page by page (NOTES.md "Pages that hold data"): for each of the file's
first DATA_PAGES pages, whether it holds data (an uptodate folio) or a fallocated folio not
yet written (not uptodate), else it is a hole; and whether any later page may hold data.

What tells them apart, 6.18 (mm/shmem.c, mm/filemap.c):
- mapping_seek_hole_data() (lseek SEEK_DATA/SEEK_HOLE) counts an uptodate folio as data and
  a fallocated one as a hole (folio_seek_hole_data(): shmem has no is_partially_uptodate);
- shmem_file_read_iter() and shmem_file_splice_read() (SGP_READ) read both as zeroes and
  allocate nothing;
- a write (shmem_write_begin(), SGP_WRITE; shmem_write_end() marks the folio uptodate, zeroing
  what the copy left) and a fault (shmem_fault(), SGP_CACHE: a hole or a fallocated folio is
  zeroed and marked uptodate), through a private mapping too (do_cow_fault() reads the
  file's page first), give the page data;
- shmem_fallocate() allocates folios it leaves not uptodate (a page with data keeps it), and
  makes data of a folio an earlier fallocate() allocated;
- a hole punch and truncation remove the whole pages of their range (shmem_undo_range()); a
  partial page is zeroed and kept;
- memfd_pin_folios() (udmabuf, a live-update preservation) fills a hole with an uptodate
  folio (shmem_read_folio(), SGP_CACHE) but pins a fallocated one as it is.
On hugetlbfs none of this is held (every field stays 0): hugetlbfs's llseek is
default_llseek(), which sees no holes, and its page cache is `hpage0_cached`'s business.

`data_far` is a "may": a page from DATA_PAGES on may hold data. Where an outcome would depend
on those pages (a SEEK_DATA/SEEK_HOLE that looks past the held ones), the call is refused as
outside the model, never guessed."""

from __future__ import annotations

from model.lang import E, Field, If, Rule, boolean, fail, requires
from model.lang.expr import Or
from model.lang.schema import StateView
from model.vocab import PAGE_SIZE

#: the pages held one by one: the explored scope's (pages <= 3) and memfd_test.c's files
DATA_PAGES = 3
DATA = tuple(f"data{i}" for i in range(DATA_PAGES))
FALLOC = tuple(f"falloc{i}" for i in range(DATA_PAGES))
FAR = DATA_PAGES * PAGE_SIZE

DATA_FIELD_NAMES = (*DATA, *FALLOC, "data_far")
DATA_FIELDS = (
    *(Field(f"data{i}", boolean(), f"shmem: the file's page {i} is an uptodate folio (data for "
            "SEEK_DATA): written, faulted in, or filled by memfd_pin_folios()", replayed=True)
      for i in range(DATA_PAGES)),
    *(Field(f"falloc{i}", boolean(), f"shmem: the file's page {i} is a folio fallocate() "
            "allocated and nothing has written or faulted yet (not uptodate: a hole for "
            "SEEK_DATA, kept as it is by memfd_pin_folios())", replayed=True)
      for i in range(DATA_PAGES)),
    Field("data_far", boolean(), f"shmem: a page from {DATA_PAGES} on may hold data (a "
          "SEEK_DATA/SEEK_HOLE whose answer depends on one is refused)", replayed=True),
)


def holds_pages(s: StateView) -> bool:
    """The design holds the pages (a design short of state bits drops DATA_FIELDS: its
    updates are then none, and SEEK_DATA/SEEK_HOLE are refused)."""
    return hasattr(s, "data_far")


def _hits(s: StateView, start: E | int, end: E) -> list[E]:
    """Per held page: a shmem page (4 KiB) holding a byte of [start, end)."""
    return [~s.hugetlb & (start < (i + 1) * PAGE_SIZE) & (end > i * PAGE_SIZE)
            for i in range(DATA_PAGES)]


def fills(s: StateView, start: E | int, end: E, *, keep_falloc: bool = False) -> dict[str, E]:
    """A write of the bytes [start, end) (end > start), or faults on the pages holding them:
    each such page holds data (shmem only). `keep_falloc`: memfd_pin_folios(), which fills
    holes but leaves a fallocated folio as it is."""
    if not holds_pages(s):
        return {}
    out: dict[str, E] = {}
    for i, hit in enumerate(_hits(s, start, end)):
        if keep_falloc:
            out[DATA[i]] = s[DATA[i]] | (hit & ~s[FALLOC[i]])
        else:
            out[DATA[i]] = s[DATA[i]] | hit
            out[FALLOC[i]] = s[FALLOC[i]] & ~hit
    out["data_far"] = s.data_far | (~s.hugetlb & (end > FAR))
    return out


def faults(s: StateView, at: E) -> dict[str, E]:
    """A fault that maps the file's byte `at` (its page: shmem_fault(), SGP_CACHE)."""
    return fills(s, at, at + 1)


def allocates(s: StateView, start: E, end: E) -> dict[str, E]:
    """shmem_fallocate() over [start, end), past EOF too with KEEP_SIZE: shmem_get_folio(
    SGP_FALLOC) gives a hole a folio it leaves not uptodate (SGP_FALLOC becomes SGP_WRITE on
    a new folio), but zeroes and marks uptodate a folio an earlier fallocate() left ("SGP_FALLOC
    on a folio fallocated earlier must initialize it now, lest undo on failure cancel our
    earlier guarantee"): the second fallocate over a page makes it data. Found by the random
    seek traces (tests/test_seek_data.py) on 6.18.44."""
    if not holds_pages(s):
        return {}
    out: dict[str, E] = {}
    for i, hit in enumerate(_hits(s, start, end)):
        out[DATA[i]] = s[DATA[i]] | (hit & s[FALLOC[i]])
        out[FALLOC[i]] = If(hit, ~s[DATA[i]] & ~s[FALLOC[i]], s[FALLOC[i]])
    # past the held pages whether a folio was fallocated before is not held: it may be data
    out["data_far"] = s.data_far | (~s.hugetlb & (end > FAR))
    return out


def removes(s: StateView, start: E, end: E) -> dict[str, E]:
    """shmem_undo_range() over the bytes [start, end): the whole pages inside it leave the
    page cache; a partial one at either end is zeroed and kept. `data_far` goes when every
    page from DATA_PAGES up to the one holding EOF is inside (a page past EOF never has data:
    a fault there is SIGBUS, a write past it moves EOF)."""
    if not holds_pages(s):
        return {}
    out: dict[str, E] = {}
    for i in range(DATA_PAGES):
        inside = (start <= i * PAGE_SIZE) & (end >= (i + 1) * PAGE_SIZE)
        out[DATA[i]] = s[DATA[i]] & ~inside
        out[FALLOC[i]] = s[FALLOC[i]] & ~inside
    eof_page_end = ((s.size + PAGE_SIZE - 1) // PAGE_SIZE) * PAGE_SIZE
    out["data_far"] = s.data_far & ~((start <= FAR) & (end >= eof_page_end))
    return out


def cut_to(s: StateView, newsize: E) -> dict[str, E]:
    """shmem_setattr() shrinking i_size to newsize (shmem_truncate_range(newsize, -1)): the
    pages wholly past it go. Growing removes nothing; newsize >= i_size keeps every page, as
    no page past EOF holds data."""
    if not holds_pages(s):
        return {}
    out: dict[str, E] = {}
    for i in range(DATA_PAGES):
        kept = newsize > i * PAGE_SIZE
        out[DATA[i]] = s[DATA[i]] & kept
        out[FALLOC[i]] = s[FALLOC[i]] & kept
    out["data_far"] = s.data_far & (newsize > FAR)
    return out


SEEK_DATA, SEEK_HOLE = 3, 4

FAR_UNKNOWN = (f"the answer lies past the file's first {DATA_PAGES} pages, where the model "
               "holds only that some page may hold data")


def seek_rules(s: StateView, off: E, whence: E) -> tuple[list[Rule], E]:
    """lseek(fd, off, SEEK_DATA or SEEK_HOLE) once ksys_lseek() took the whence: the rules
    and the resulting offset. shmem_file_llseek(): off < 0 is ENXIO; then
    mapping_seek_hole_data(mapping, off, i_size): ENXIO when off >= i_size; SEEK_DATA the
    first byte at or after off in a page with data (ENXIO when none below i_size); SEEK_HOLE
    the first at or after off in a page without, or i_size. hugetlbfs's default_llseek():
    ENXIO when off >= i_size; SEEK_DATA keeps off (EINVAL when negative: vfs_setpos()'s
    check), SEEK_HOLE is i_size. The result becomes f_pos."""
    seeks = (whence == SEEK_DATA) | (whence == SEEK_HOLE)
    if not holds_pages(s):
        return [requires(~seeks, label="seek_pages",
                         why="this design does not hold which pages hold data")], off
    data = whence == SEEK_DATA
    first = off // PAGE_SIZE
    # the held pages at or after off's page (and before EOF), with and without data
    at = [(first <= i) & (i * PAGE_SIZE < s.size) for i in range(DATA_PAGES)]
    has = [at[i] & s[DATA[i]] for i in range(DATA_PAGES)]
    gap = [at[i] & ~s[DATA[i]] for i in range(DATA_PAGES)]
    past = If(off > FAR, off, FAR)  # the first byte at or after off past the held pages
    none_data = ~Or(*has)
    none_gap = ~Or(*gap)
    data_at: E = past
    hole_at: E = If(past < s.size, past, s.size)
    for i in reversed(range(DATA_PAGES)):
        start = If(off > i * PAGE_SIZE, off, i * PAGE_SIZE)
        data_at = If(has[i], start, data_at)
        hole_at = If(gap[i], If(start < s.size, start, s.size), hole_at)
    shm = ~s.hugetlb
    beyond = past < s.size  # pages past the held ones lie before EOF
    rules = [
        fail("ENXIO", when=seeks & shm & (off < 0), label="seek_negative",
             why="shmem_file_llseek(): offset < 0"),
        fail("ENXIO", when=seeks & (off >= s.size), label="seek_eof",
             why="mapping_seek_hole_data() / default_llseek(): offset >= i_size"),
        fail("EINVAL", when=seeks & s.hugetlb & data & (off < 0), label="seek_data_negative",
             why="default_llseek(): SEEK_DATA keeps a negative offset, vfs_setpos() refuses it"),
        requires(~(seeks & shm & beyond & s.data_far & If(data, none_data, none_gap)),
                 label="seek_far", why=FAR_UNKNOWN),
        fail("ENXIO", when=seeks & shm & data & none_data, label="seek_no_data",
             why="mapping_seek_hole_data(): no data from offset to i_size"),
    ]
    result = If(s.hugetlb, If(data, off, s.size), If(data, data_at, hole_at))
    return rules, result


__all__ = [
    "DATA",
    "DATA_FIELDS",
    "DATA_FIELD_NAMES",
    "DATA_PAGES",
    "FALLOC",
    "allocates",
    "cut_to",
    "faults",
    "fills",
    "removes",
    "seek_rules",
]
