"""What a conformance run leaves out because the kernel cannot run it: memfd_create's
MFD_HUGETLB (no free huge pages, `--no-hugetlb`) or MFD_HUGE_1GB (1 GiB pages are left out
unless asked: each job would need free 1 GiB pages), and the actions whose call needs what
the kernel lacks (/dev/udmabuf, io_uring); and `--actions`, the actions a run is restricted
to."""

from __future__ import annotations

from collections.abc import Sequence

from model.lang.design import Design


def offers_hugetlb(design: Design) -> bool:
    """Whether some memfd_create instance of the design asks for MFD_HUGETLB."""
    from model.vocab import MFD_HUGETLB

    return any(v & MFD_HUGETLB for a in design.actions if a.call == "memfd_create"
               for p in a.params if p.name == "flags" for v in p.domain)


def is_gigantic(flags: int) -> bool:
    """MFD_HUGETLB|MFD_HUGE_1GB: a file of the 1 GiB hstate (or ENODEV without one)."""
    from model.vocab import MFD_HUGE_MASK, MFD_HUGE_SHIFT, MFD_HUGETLB

    return bool(flags & MFD_HUGETLB) and (flags >> MFD_HUGE_SHIFT) & MFD_HUGE_MASK == 30


def restrict_hugetlb(design: Design, *, gigantic_only: bool = False) -> Design:
    """The design without MFD_HUGETLB (or only without MFD_HUGE_1GB) in memfd_create's
    explored flags."""
    from model.vocab import MFD_HUGETLB

    def drop(v: int) -> bool:
        return is_gigantic(v) if gigantic_only else bool(v & MFD_HUGETLB)

    edit = {}
    for a in design.actions:
        if a.call != "memfd_create":
            continue
        doms = {p.name: tuple(v for v in p.domain if not drop(v))
                for p in a.params if p.name == "flags"}
        if doms:
            edit[a.name] = (lambda act, d=doms: act.with_params(**d))
    if not edit:
        return design
    what = "MFD_HUGE_1GB" if gigantic_only else "MFD_HUGETLB"
    return design.derive(design.name, design.doc + f" (no {what})", edit=edit,
                         kernel=design.kernel)


def restrict_capabilities(design: Design) -> tuple[Design, dict[str, str]]:
    """`design` without the actions whose call needs what this kernel lacks (the registry
    entry's needs: /dev/udmabuf, io_uring, KVM; huge pages are restrict_hugetlb's), and why:
    their traces would only be skipped."""
    from traces.kernel import capability
    from traces.syscalls import SYSCALLS

    gone: dict[str, str] = {}
    for a in design.actions:
        entry = SYSCALLS.get(a.call)
        for need in sorted(entry.needs if entry else ()):
            why = None if need.startswith("hugetlb") else capability(need)
            if why:
                gone[a.name] = why
                break
    if gone:
        design = design.derive(design.name, design.doc, kernel=design.kernel, drop=sorted(gone))
    return design, gone


def only_actions(design: Design, names: Sequence[str]) -> Design:
    """`design` with the actions `names` alone (`conform --actions`): the calls around a
    patch, explored deeper than every call could be. KeyError naming the unknown ones."""
    have = [a.name for a in design.actions]
    unknown = [n for n in names if n not in have]
    if unknown:
        raise KeyError(f"design {design.name} has no action {', '.join(unknown)} (its "
                       f"actions: {', '.join(have)})")
    drop = sorted(set(have) - set(names))
    return design.derive(design.name, design.doc, kernel=design.kernel, drop=drop)


__all__ = ["is_gigantic", "offers_hugetlb", "only_actions", "restrict_capabilities",
           "restrict_hugetlb"]
