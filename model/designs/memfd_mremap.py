"""mremap() of a memfd mapping (mm/mremap.c, Linux 6.18): resize in place, move, duplicate a
shared mapping (old_len 0) and MREMAP_DONTUNMAP's copy, in do_mremap()'s order:
check_mremap_params(), align_hugetlb(), then mremap_to() (MREMAP_DONTUNMAP) or mremap_at()
(no resize, shrink, expand). Probed on 6.18.44 (tests/test_mremap.py's table).

A mapping is named, not placed: the trace names it (mN) and the model holds its length, not
its address. So a call whose outcome depends on the caller's other memory is outside the
model: growing in place without MREMAP_MAYMOVE (vma_expandable()), MREMAP_FIXED (it replaces
what is mapped at new_addr), and ranges that split a mapping (a part moved or unmapped).
A mapping that is resized or moved keeps its name and file offset (Action.resizes gives its
new length); a duplicate or a MREMAP_DONTUNMAP copy is a new mapping of the same kind and
offset (Action.maps_as).
"""

from __future__ import annotations

from collections.abc import Mapping

from model.designs.memfd_pages import (
    FROM_MAP,
    MAP_PAGES_HUGE,
    MAP_PAGES_SHMEM,
    MOFF,
    MPAGES,
    page_bytes,
)
from model.designs.memfd_state import (
    MAP_ALL,
    MAP_FIELDS,
    MAPK,
    SH_RO,
    SH_RO_MW,
    SH_RW,
    bump,
    have_map,
)
from model.lang import Action, E, If, Param, Rule, fail, nat, ok, requires, word
from model.lang.action import as_updates
from model.lang.callspec import Flags, Harmless, MapRef, Num
from model.lang.schema import StateView
from model.vocab import MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_FLAGS, MREMAP_MAYMOVE

#: every flag check_mremap_params() knows on 6.18 (MREMAP_FIXED | MAYMOVE | DONTUNMAP)
MREMAP_KNOWN = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP

#: old_len and new_len in pages of the file. Explored: 0 and 1 page each, so an explored
#: mapping stays one page long (the engines' mappings are); replay judges any length up to
#: MAP_PAGES_SHMEM
OLD = Param("old", nat(fixed=MAP_PAGES_SHMEM), (0, 1), "old_len, in pages of the file",
            symbolic_domain=True)
NEW = Param("new", nat(fixed=MAP_PAGES_SHMEM), (0, 1), "new_len, in pages of the file",
            symbolic_domain=True)
#: explored: no flags, MREMAP_MAYMOVE, MREMAP_DONTUNMAP (alone: EINVAL) and both; an unknown
#: bit is replay's (the symbolic engines take every value)
FLAGS_DOMAIN = (0, MREMAP_MAYMOVE, MREMAP_DONTUNMAP, MREMAP_MAYMOVE | MREMAP_DONTUNMAP)
#: new_addr: read only with MREMAP_FIXED or MREMAP_DONTUNMAP (its page alignment; a hint for
#: DONTUNMAP); NULL is aligned, and a fixed address is refused (mremap_body's fixed_address)
NEW_ADDR = Harmless("new_addr: NULL is page-aligned and, without MREMAP_FIXED, only a hint",
                    ("NULL",), optional=True)


def resized(params: Mapping[str, int]) -> int:
    """The mapping's length after a success that keeps it: mremap() resizes the range [addr,
    addr + old_len) to new_len, so vm_end moves by new_len - old_len (0 when they are equal:
    MREMAP_NO_RESIZE leaves the mapping as it is)."""
    return params["mpages"] - params["old"] + params["new"]


def mremap_body(s: StateView, m: E, old: E, new: E, flags: E, mpages: E,
                moff: E) -> list[Rule]:
    """do_mremap() of a whole mapping `mpages` pages long, at its start (addr is page-aligned,
    and no mapping is mseal()ed). Its file offset `moff` matters to no check: it is what a
    copy maps."""
    maymove = flags.has(MREMAP_MAYMOVE)
    fixed = flags.has(MREMAP_FIXED)
    dontunmap = flags.has(MREMAP_DONTUNMAP)
    shared = (m == SH_RW) | (m == SH_RO_MW) | (m == SH_RO)  # VM_SHARED | VM_MAYSHARE
    copy = as_updates(bump(s, MAP_FIELDS, m, +1))
    return [
        have_map(s, m),
        fail("EINVAL", when=(flags & ~MREMAP_KNOWN) != 0, label="unknown_flags",
             why="check_mremap_params(): flags & ~(MREMAP_FIXED|MREMAP_MAYMOVE|"
                 "MREMAP_DONTUNMAP)"),
        fail("EINVAL", when=new == 0, label="zero_new_len",
             why="check_mremap_params(): !PAGE_ALIGN(new_len)"),
        fail("EINVAL", when=(fixed | dontunmap) & ~maymove, label="move_needs_maymove",
             why="check_mremap_params(): MREMAP_FIXED and MREMAP_DONTUNMAP imply a move"),
        fail("EINVAL", when=dontunmap & (old != new), label="dontunmap_resize",
             why="check_mremap_params(): MREMAP_DONTUNMAP does not allow resizing"),
        requires(~fixed, label="fixed_address",
                 why="MREMAP_FIXED moves the mapping onto new_addr, unmapping what the caller "
                     "has there, which the model does not hold"),
        requires(new <= If(s.hugetlb, MAP_PAGES_HUGE, MAP_PAGES_SHMEM), label="map_limit",
                 why="a longer mapping succeeds or fails (ENOMEM) by the machine's address "
                     "space or hugetlb pool, which the model does not hold"),
        fail("EINVAL", when=s.hugetlb & (new > old), label="hugetlb_expand",
             why="align_hugetlb(): no remap expansion of a hugetlb mapping (its reservation "
                 "cannot be split)"),
        # MREMAP_DONTUNMAP: mremap_to() -> remap_is_valid(), then move_vma()
        fail("EINVAL", when=dontunmap & s.hugetlb, label="dontunmap_dontexpand",
             why="remap_is_valid(): MREMAP_DONTUNMAP of a VM_DONTEXPAND mapping "
                 "(hugetlbfs_file_mmap() sets it)"),
        fail("EFAULT", when=dontunmap & (old > mpages), label="dontunmap_past_vma",
             why="remap_is_valid(): old_len > vma->vm_end - addr"),
        requires(~dontunmap | (old == mpages), label="dontunmap_whole",
                 why="moving a part of a mapping splits its VMA, which the model does not "
                     "hold"),
        ok(0, when=dontunmap, label="dontunmap", **copy,
           why="move_vma() -> copy_vma(): a new VMA of the same file, flags and protection; "
               "the old one stays mapped (dontunmap_complete()) and faults its pages in again"),
        ok(0, when=old == new, label="no_resize",
           why="mremap_at(): MREMAP_NO_RESIZE returns addr and checks nothing more"),
        requires((old < new) | (old == mpages), label="shrink_whole",
                 why="shrinking from a length other than the mapping's unmaps a middle part "
                     "(a VMA split) or the caller's memory past it, which the model does not "
                     "hold"),
        ok(0, when=old > new, label="shrink",
           why="shrink_vma(): do_vmi_munmap() of [addr + new_len, addr + old_len)"),
        # expand_vma() -> remap_is_valid()
        fail("EINVAL", when=(old == 0) & ~shared, label="dup_private",
             why="remap_is_valid(): old_len 0 duplicates a mapping, refused for a private one"),
        fail("EFAULT", when=old > mpages, label="past_vma",
             why="remap_is_valid(): old_len > vma->vm_end - addr"),
        fail("ENOMEM", when=~maymove & (old != mpages), label="not_at_end",
             why="expand_vma(): [addr, addr + old_len) does not end at the VMA's end, so it "
                 "cannot grow in place (vrm_can_expand_in_place()), and may not move"),
        requires(maymove, label="grow_in_place",
                 why="whether a mapping grows in place depends on what the caller has mapped "
                     "after it (vma_expandable()), which the model does not hold"),
        requires((old == 0) | (old == mpages), label="grow_whole",
                 why="moving a part of a mapping splits its VMA, which the model does not "
                     "hold"),
        ok(0, when=old == 0, label="dup", **copy,
           why="move_vma(): old_len 0 copies the shared mapping to a new place (a VMA of "
               "new_len); the old one stays"),
        ok(0, label="grow",
           why="expand_vma(): grown in place or moved (vma_expandable(), move_vma()); the "
               "mapping keeps its name"),
    ]


MREMAP = Action(
    "mremap", (Param("m", MAPK, MAP_ALL), OLD, NEW,
               Param("flags", word(32, MREMAP_FLAGS), FLAGS_DOMAIN), MPAGES, MOFF),
    mremap_body, "mremap",
    (MapRef("m"), Num("old", page_bytes), Num("new", page_bytes), Flags("flags", MREMAP_FLAGS),
     NEW_ADDR),
    "mremap a whole mapping: resize, move, duplicate (old_len 0) or copy (MREMAP_DONTUNMAP)",
    from_map=FROM_MAP, maps_as=(("pages", "new"), ("off", "moff")), resizes=resized)


__all__ = ["FLAGS_DOMAIN", "MREMAP", "MREMAP_KNOWN", "NEW", "NEW_ADDR", "OLD", "mremap_body",
           "resized"]
