"""Page sizes and byte grids of the memfd designs (model/designs/memfd.py): a file's page is
4 KiB on shmem, 2 MiB or 1 GiB on hugetlbfs (the hstate MFD_HUGE_* picked, hstate_file()),
and every size computation of the rules goes through these helpers. Exploration keeps a
finite grid of byte values per scope (NOTES.md "Sizes in bytes")."""

from __future__ import annotations

from collections.abc import Mapping

from model.lang import E, If, Param, Sort, integer, nat
from model.lang.schema import LOFF_T, SIZE_T, StateView
from model.vocab import HPAGE_SIZE, PAGE_SIZE

#: A gigantic page: the 1 GiB hstate x86-64 has with X86_FEATURE_GBPAGES (MFD_HUGE_1GB)
GPAGE_SIZE = 1 << 30


def page_bytes(st: Mapping[str, int]) -> int:
    """Bytes per model page in state st: 4 KiB, or the hugetlbfs file's 2 MiB or 1 GiB."""
    if not st.get("hugetlb"):
        return PAGE_SIZE
    return GPAGE_SIZE if st.get("huge_1g") else HPAGE_SIZE


#: MAX_LFS_FILESIZE (include/linux/fs.h, 64-bit): LLONG_MAX, the s_maxbytes of shmem and
#: hugetlbfs. RLIMIT_FSIZE is unlimited in the model (generic_write_check_limits(),
#: inode_newsize_ok() never see a finite limit).
MAX_LFS_FILESIZE = (1 << 63) - 1


def hpage(s: StateView) -> E:
    """huge_page_size(hstate_file()): the hugetlbfs file's hstate, 1 GiB or 2 MiB."""
    return If(s.huge_1g, GPAGE_SIZE, HPAGE_SIZE)


def page(s: StateView) -> E:
    """The file's page size in bytes: PAGE_SIZE on shmem, its hstate's page on hugetlbfs."""
    return If(s.hugetlb, hpage(s), PAGE_SIZE)


def page_index(s: StateView, x: E) -> E:
    """x >> PAGE_SHIFT (or huge_page_shift()): the index of the page holding byte x (x >= 0)."""
    return If(s.hugetlb, If(s.huge_1g, x // GPAGE_SIZE, x // HPAGE_SIZE), x // PAGE_SIZE)


def pages_bytes(s: StateView, n: E) -> E:
    """n << PAGE_SHIFT (or huge_page_shift()): n of the file's pages, in bytes."""
    return If(s.hugetlb, If(s.huge_1g, n * GPAGE_SIZE, n * HPAGE_SIZE), n * PAGE_SIZE)


def unaligned(s: StateView, x: E) -> E:
    """x is not a multiple of the file's page size."""
    return If(s.hugetlb, If(s.huge_1g, x % GPAGE_SIZE, x % HPAGE_SIZE), x % PAGE_SIZE) != 0


#: the longest mapping judged, in pages of the file: beyond, whether the address space
#: (shmem) or the hugetlb pool (replay reserves ALLOC_PAGES_HUGE free huge pages;
#: hugetlb_reserve_pages()) has room is the machine's
MAP_PAGES_SHMEM, MAP_PAGES_HUGE = 16384, 2


#: a mapping's length in pages of the file (4 KiB, or the huge page): explored as one page,
#: symbolically too (symbolic_domain), so proofs speak of one-page mappings; replay judges
#: any length up to MAP_PAGES_SHMEM (mmap's map_limit says why not more)
NPAGES = Param("npages", nat(fixed=MAP_PAGES_SHMEM), (1,), "length, in pages of the file",
               symbolic_domain=True)
#: the length in pages of the mapping an action names: bound from the trace's handle table
#: (Action.from_map), the npages of its mmap
MPAGES = Param("mpages", nat(fixed=MAP_PAGES_SHMEM), (1,), "the mapping's length, in pages",
               symbolic_domain=True)


#: the page of a mapping's piece where a munmap/mprotect range starts (the address `m1+8192`
#: less the piece's start, in pages of the file): explored at 0, symbolically too, as the
#: mappings are one page long there; replay binds it from the trace's address (NOTES.md
#: "VMA splits")
AT_PAGE = Param("at", nat(fixed=MAP_PAGES_SHMEM), (0,), "the range's first page in the piece",
                symbolic_domain=True)


#: the file offset of a mapping, in bytes (mmap's off, an unsigned long): explored at 0 for
#: a mapping that is made (every explored mapping maps the file from its start), and at two
#: offsets mmap refuses: one not page-aligned (EINVAL) and one whose end passes
#: MAX_LFS_FILESIZE (EOVERFLOW); replay judges any value
MMAP_OFF = Param("moff", integer(0, (1 << 64) - 1), (0, PAGE_SIZE // 2, (1 << 63) - PAGE_SIZE),
                 "offset, in bytes (unsigned long)", symbolic_domain=True)
#: the file offset of the mapping an action names, in bytes: bound from the trace's handle
#: table (Action.from_map), its mmap's offset; 0 in exploration (see MMAP_OFF)
MOFF = Param("moff", integer(0, (1 << 64) - 1), (0,), "the mapping's file offset, in bytes",
             symbolic_domain=True)
#: an action's parameters bound from the mapping it names (Action.from_map): its length,
#: its offset, or both
FROM_MAP_PAGES, FROM_MAP_OFF = (("mpages", "pages"),), (("moff", "off"),)
FROM_MAP = FROM_MAP_PAGES + FROM_MAP_OFF


#: the page sizes a file may have: shmem's, hugetlbfs's 2 MiB and 1 GiB hstates
PAGE_SIZES = (PAGE_SIZE, HPAGE_SIZE, GPAGE_SIZE)


def _grid(pages: int, *, negative: bool = True) -> tuple[int, ...]:
    """Explored byte values: half pages from 0 to `pages` pages on shmem and on hugetlbfs (a
    scope with grain 1 prunes the half-page sizes they lead to), and -1 (EINVAL paths)."""
    vals = {k * p // 2 for p in PAGE_SIZES for k in range(2 * pages + 1)}
    return tuple(sorted(vals | ({-1} if negative else set())))


def on_grid(v: int, scope: Mapping[str, int]) -> bool:
    """A byte value the scope explores: not positive, or a multiple of page / grain (grain
    rounded down to a power of two, as the size field's quantum) of the shmem or the hugetlbfs
    page, at most 3 such pages. Grain 1 explores whole pages, grain 2 half pages too."""
    if v <= 0:
        return True
    g = max(1, scope.get("grain", 1)).bit_length() - 1
    return any(v % (p >> g) == 0 and v <= 3 * p for p in PAGE_SIZES)


def _byte_param(name: str, sort: Sort, domain: tuple[int, ...], doc: str,
                limit: int | None = None, why: str = "") -> Param:
    exact = None
    if limit is not None:
        top = limit

        def exact(v: int) -> str | None:
            return None if v <= top else why
    return Param(name, sort, domain, doc, exact=exact, at_scope=on_grid)


LOFF = integer(*LOFF_T)
SIZE = integer(*SIZE_T)


#: the byte of a mapping an access hits: 0 and the last byte of a page of each size (inside
#: the mapping of a file with that page, past the end of a smaller one's mapping); which byte
#: of a page does not matter to the fault, only the page it is in
ACCESS_OFF = Param("off", LOFF, (0, PAGE_SIZE - 1, HPAGE_SIZE - 1, GPAGE_SIZE - 1),
                   "byte offset in the mapping", symbolic_domain=True)
# symbolic_domain: the engines' mappings are one page long, inside which every byte faults
# alike (the first and the last of each page size stand for them all; past the mapping the
# access is refused), so the symbolic engines need no `off // page` terms, which made z3
# twice as slow once stores reach later pages (NOTES.md "Mappings start at file offset 0")


__all__ = [
    "ACCESS_OFF",
    "AT_PAGE",
    "FROM_MAP",
    "FROM_MAP_OFF",
    "FROM_MAP_PAGES",
    "GPAGE_SIZE",
    "LOFF",
    "MAP_PAGES_HUGE",
    "MAP_PAGES_SHMEM",
    "MAX_LFS_FILESIZE",
    "MMAP_OFF",
    "MOFF",
    "MPAGES",
    "NPAGES",
    "PAGE_SIZES",
    "SIZE",
    "hpage",
    "on_grid",
    "page",
    "page_bytes",
    "page_index",
    "pages_bytes",
    "unaligned",
]
