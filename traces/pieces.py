"""A mapping held in pieces (NOTES.md "VMA splits"): munmap or mprotect of a part of a mapping
(`munmap(m1+8192, 4096)`) splits its VMA, and the trace's handle table (traces/handles.py
`Handles.pieces`) holds each piece as a mapping of its own. Here: which piece a call reaches
(map_ref, rebase) and the pieces after a step (reshape), checked against the model's mapping
counters, which the rules change (model/designs/memfd_mmap.py munmap_body(),
mprotect_body())."""

from __future__ import annotations

from collections.abc import Mapping

from model.lang.action import Action
from model.lang.callspec import MapRef
from traces.handles import Handles
from traces.refusal import Outside, ResolveError
from traces.trace import Arg, Ref, Step


def map_ref(spec: MapRef, arg: Arg, st: Mapping[str, int], h: Handles,
            params: dict[str, int], used: dict[str, str], call: str) -> str | Outside | None:
    """A mapping, or an address inside it (`m1+8192`, MapRef.at): the piece it reaches
    is bound (Handles.piece). A call that reaches a byte through its own offset
    (MapRef.reach) is rebound in resolve_step; any other call of a mapping held in pieces
    is outside the model."""
    if not isinstance(arg, Ref):
        return "expected a mapping (m1, ...)"
    if not h.has_map(arg.name):
        return f"{arg.name} does not exist at this point of the trace"
    if arg.plus and spec.at is None:
        return (f"{arg.name}+{arg.plus}: an address inside a mapping is read by munmap and "
                f"mprotect; {call} names the mapping (and a store or load its byte offset)")
    name = arg.name
    if arg.name in h.pieces and spec.at is None and spec.reach is None:
        return Outside(f"{call} of {arg.name}, a mapping held in pieces since munmap or "
                       "mprotect of a part of it: only munmap, mprotect, store, load, "
                       "mem_write and vm_write are judged on its pieces")
    if spec.at is not None and spec.scale is not None:
        page = spec.scale(st)
        if arg.plus % page:
            return Outside(f"{call} at {arg.name}+{arg.plus}: not a multiple of the file's "
                           f"page ({page} bytes): an unaligned address is EINVAL (and a "
                           "hugetlbfs VMA is not split inside a huge page: "
                           "hugetlb_vm_op_split()), not modelled")
        try:
            name, start = h.piece(arg.name, arg.plus, page)
        except ResolveError as e:
            return Outside(str(e).removeprefix("outside the model: "))
        if arg.plus >= start + h.map_attr(name, "pages") * page or arg.plus < start:
            return Outside(f"{call} at {arg.name}+{arg.plus}: past the end of the mapping "
                           "(the caller's other memory, which the model does not hold)")
        params[spec.at] = (arg.plus - start) // page
    elif name in h.pieces:  # a store's or load's piece is its byte's: rebase() binds it
        params[spec.param] = h.live["map"][h.pieces[name][1][0][1]]
        used[spec.param] = name
        return None
    params[spec.param] = h.live["map"][name]
    used[spec.param] = name
    return None


def rebase(specs: tuple[object, ...], st: Mapping[str, int], h: Handles,
           params: dict[str, int], used: dict[str, str], step: Step) -> None:
    """A store or load (MapRef.reach) of a mapping held in pieces reaches the piece holding
    its byte: that piece is bound, and the byte offset made the piece's."""
    spec = next((s for s in specs if isinstance(s, MapRef)), None)
    if spec is None or spec.reach is None or spec.scale is None \
            or used.get(spec.param) not in h.pieces:
        return
    try:
        name, start = h.piece(used[spec.param], params[spec.reach], spec.scale(st))
    except ResolveError as e:
        raise ResolveError(str(e), step) from None
    params[spec.param] = h.live["map"][name]
    used[spec.param] = name
    params[spec.reach] -= start


def reshape(h: Handles, action: Action | None, out: int, used: Mapping[str, str],
            params: Mapping[str, int], before: Mapping[str, int], after: Mapping[str, int],
            fields: list[str]) -> bool:
    """A munmap or mprotect of a part of a mapping's piece (MapRef.at): the table's pieces
    after it (Handles.reshape), checked against the model's counters, which the rule changed
    (memfd_mmap.munmap_body(), mprotect_body()). False for any other step, and for a range
    covering its whole piece (the counters say then which mapping goes or is retagged)."""
    spec = next((s for s in action.args if isinstance(s, MapRef) and s.at), None) \
        if action is not None else None
    if action is None or spec is None or spec.scale is None or spec.param not in used:
        return False
    if out < 0:
        return True
    delta = [after[f] - before[f] for f in fields]
    pid, at, n = used[spec.param], params[spec.at or ""], params["npages"]
    if n == 0 or (at == 0 and n == h.map_attr(pid, "pages")):
        return False
    if not spec.unmaps and not any(delta):  # failed, or the protection it has already
        return True
    old = h.live["map"][pid]
    gained = [i for i, d in enumerate(delta) if d > 0 and i != old]
    kind = None if spec.unmaps else (gained[0] if gained else old)
    kinds = h.reshape(pid, at, n, spec.scale(before), kind)
    got = [0] * len(fields)
    for k in kinds:
        got[k] += 1
    got[old] -= 1
    if got != delta:
        raise RuntimeError(f"{action.name}: the model's mapping counters changed by {delta}, "
                           f"the handle table's pieces by {got}")
    return True


__all__ = ["map_ref", "rebase", "reshape"]
