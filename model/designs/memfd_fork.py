"""fork()'s copy of a mapping (kernel/fork.c dup_mmap(), Linux 6.18), and what MADV_DONTFORK
does to it (mm/madvise.c madvise_vma_behavior(): VM_DONTCOPY).

A fork copies every VMA of the parent but a VM_DONTCOPY one into the child: the same file,
flags, protection and offset. For the inode that is all a fork does to a mapping: the copy
of a VM_SHARED|VM_MAYWRITE VMA counts in i_mmap_writable as the parent's does
(dup_mmap() -> mapping_allow_writable()), so F_SEAL_WRITE stays EBUSY until the child
unmaps it or exits; a private copy's stores are copies-on-write in the child. The model
has one counter per mapping kind and no processes, so a fork is written per mapping:
`fork_vma(m1) = m2` is the child's copy of m1, named m2 (the parent's m1 and the child's m2
are then two mappings, unmapped one by one: the child's exit is a `munmap(m2, ...)`). A
fork's descriptors are `dup`s. Probed on 6.18.44 (NOTES.md LIMITATIONS, fork;
tests/test_fork.py's table).
"""

from __future__ import annotations

from collections.abc import Mapping

from model.designs.memfd_pages import FROM_MAP, MOFF, MPAGES
from model.designs.memfd_state import MAP_ALL, MAP_FIELDS, MAPK, bump, have_map
from model.lang import Action, E, Param, Rule, boolean, ok, requires
from model.lang.action import as_updates
from model.lang.callspec import MapRef
from model.lang.schema import StateView
from model.vocab import MADV_ADVICE

#: whether MADV_DONTFORK was applied to (a part of) the mapping: the trace's handle table
#: keeps it with the mapping's name (Action.remaps), 0 in exploration
DONTCOPY = Param("dontcopy", boolean(), (0,),
                 "MADV_DONTFORK applied to the mapping (VM_DONTCOPY), from the handle table",
                 symbolic_domain=True)


def dontfork_remaps(p: Mapping[str, int]) -> Mapping[str, int]:
    """madvise()'s effect on the mapping's handle-table attributes: MADV_DONTFORK over a
    non-empty range sets VM_DONTCOPY on it (madvise_vma_behavior(); a range inside the mapping
    splits it, so the mark stays on the mapping's name). MADV_DOFORK clears it on its range
    only, so the mark stays: a later fork_vma of such a mapping is refused, not judged."""
    return {"dontcopy": 1} if p["advice"] == MADV_ADVICE["MADV_DONTFORK"] and p["len"] > 0 else {}


def fork_vma_body(s: StateView, m: E, mpages: E, moff: E, dontcopy: E) -> list[Rule]:
    """dup_mmap(): the child's copy of the mapping. Nothing is checked (no seal, no fault:
    the VMA exists already; the model assumes the memory for it)."""
    return [
        have_map(s, m),
        requires(dontcopy == 0, label="dontcopy",
                 why="dup_mmap() skips a VM_DONTCOPY VMA (MADV_DONTFORK): the child has no "
                     "copy to name, or a copy of part of it"),
        ok(0, **as_updates(bump(s, MAP_FIELDS, m, +1)),
           why="dup_mmap(): a VMA of the same file, flags, protection and offset; a "
               "VM_SHARED|VM_MAYWRITE one counts in i_mmap_writable "
               "(mapping_allow_writable()), a private one copies on write in the child"),
    ]


FORK_VMA = Action(
    "fork_vma", (Param("m", MAPK, MAP_ALL), MPAGES, MOFF, DONTCOPY), fork_vma_body, "fork_vma",
    (MapRef("m"),), "fork()'s copy of a mapping into the child (a new mapping of the same "
    "kind, length and offset)",
    from_map=(*FROM_MAP, ("dontcopy", "dontcopy")),
    maps_as=(("pages", "mpages"), ("off", "moff")))

__all__ = ["DONTCOPY", "FORK_VMA", "dontfork_remaps", "fork_vma_body"]
