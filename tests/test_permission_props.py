"""Issue 19's property families (integrity, bounds, permission, policy): each new property
notices the mutant of the rule it speaks of, and each has a `sometimes` witness of its
precondition in the same family."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from checker.explicit import Explorer
from model import designs
from model.designs.memfd import PROT_RW
from model.lang import fail, signal
from model.lang.action import Action
from model.vocab import F_SEAL_GROW, F_SEAL_WRITE
from properties.catalogue import load

#: property -> the witness that its precondition is reachable
WITNESS = {
    "ro-description-never-modifies": "sometimes-ro-description-modify-attempt",
    "ro-description-no-writable-shared-mapping":
        "sometimes-ro-description-shared-mapping-attempt",
    "pin-only-within-eof": "sometimes-pin-beyond-eof-attempt",
    "store-needs-prot-write": "sometimes-store-without-prot-write",
    "add-seals-permitted": "sometimes-write-seal-permitted-precondition",
    "exec-seal-permitted": "sometimes-exec-seal-on-executable-file",
    "memfd-create-without-exec-flag-permitted":
        "sometimes-memfd-create-without-exec-flag-under-noexec-2",
    "read-mapping-of-write-sealed-permitted":
        "sometimes-read-shared-mapping-of-write-sealed-attempt",
    "shared-write-mapping-permitted": "sometimes-shared-write-mapping-attempt",
    "pwrite-permitted": "sometimes-pwrite-growing-attempt",
    "ftruncate-permitted": "sometimes-ftruncate-shrink-attempt",
    "noexec-2-never-creates-executable": "sometimes-memfd-create-without-exec-flag-under-noexec-2",
    "noexec-1-default-is-noexec-seal": "sometimes-memfd-create-under-noexec-1",
    "inaccessible-size-fixed-once-set": "sometimes-inaccessible-size-set",
    "inaccessible-size-fixed-by-setattr": "sometimes-inaccessible-size-set",
    "inaccessible-size-settable-once": "sometimes-inaccessible-sized-from-empty",
    "kvm-maps-only-within-eof": "sometimes-kvm-map-of-empty-file",
    "kvm-mapping-of-inaccessible-within-eof": "sometimes-inaccessible-consumed-by-kvm",
    "gmem-no-allocation-beyond-eof": "sometimes-gmem-allocation-beyond-eof-attempt",
    "gmem-create-permitted": "sometimes-gmem-create-attempt-with-a-file-alive",
    "gmem-bind-permitted": "sometimes-gmem-second-binding-attempt",
    "gmem-unbind-permitted": "sometimes-gmem-unbind-attempt-of-bound-slot",
    "gmem-user-fault-permitted": "sometimes-gmem-shared-page-load-attempt",
    "mprotect-write-needs-maywrite": "sometimes-mprotect-upgrade-without-maywrite-attempt",
    "mprotect-permitted": "sometimes-mprotect-upgrade",
    "madvise-remove-needs-shared-maywrite": "sometimes-madvise-remove-without-maywrite-attempt",
    "madvise-remove-permitted": "sometimes-madvise-remove-punches",
    "gmem-fallocate-only-aligned-keep-size": "sometimes-gmem-fallocate-outside-contract-attempt",
    "gmem-mapping-never-executable": "sometimes-gmem-mprotect-exec-attempt",
    "gmem-mprotect-permitted": "sometimes-gmem-mprotect-rw",
    "shmget-accounting-decides": "sometimes-shmget-with-noreserve-under-commit-limit",
    "kvm-notifier-only-on-shmem": "sometimes-kvm-register-hugetlb-attempt",
}


def test_every_new_property_has_a_precondition_witness() -> None:
    cat = load()
    for name, w in WITNESS.items():
        p, q = cat[name], cat[w]
        assert p.kind in ("always", "action"), name
        assert q.kind.startswith("sometimes") and q.family == p.family, (name, w)


Edit = Callable[[Action], Action]

#: (base design, rule edits, the new properties the mutant must violate)
MUTANTS: list[tuple[str, dict[str, Edit], list[str]]] = [
    ("memfd", {"pwrite": lambda a: a.drop_rule("fmode_write"),
               "mmap": lambda a: a.drop_rule("shared_write_needs_fmode_write"),
               "pin": lambda a: a.drop_rule("past_eof"),
               "store": lambda a: a.drop_rule("no_vm_write")},
     ["ro-description-never-modifies", "ro-description-no-writable-shared-mapping",
      "pin-only-within-eof", "store-needs-prot-write"]),
    ("memfd", {  # rules firing too often
        "fcntl_add_seals": lambda a: a.replace_rule("deny_writable", lambda s, fd, seals: fail(
            "EBUSY", when=s.map_sh_ro > 0, label="deny_writable")),
        "memfd_create": lambda a: a.replace_rule("noexec_enforced", lambda s, name, flags: fail(
            "EACCES", when=s.noexec_scope >= 2, label="noexec_enforced")),
        "mmap": lambda a: a.replace_rule("write_seal", lambda s, fd, share, prot: fail(
            "EPERM", when=(share == 0) & s.seals.has(F_SEAL_WRITE), label="write_seal")),
        "ftruncate": lambda a: a.replace_rule("grow_seal", lambda s, fd, len: fail(
            "EPERM", when=s.seals.has(F_SEAL_GROW), label="grow_seal"))},
     ["add-seals-permitted", "memfd-create-without-exec-flag-permitted",
      "read-mapping-of-write-sealed-permitted", "ftruncate-permitted"]),
    ("guest_memfd", {
        "fallocate": lambda a: a.drop_rule("alloc_past_eof"),
        "bind": lambda a: a.replace_rule(
            "gpa_overlap", lambda s, vm, slot, flags, gpa, size, off, g: fail(
                "EEXIST", when=s.slot0 != 0, label="gpa_overlap")),
        "delete_slot": lambda a: a.replace_rule(
            "gpa_unaligned", lambda s, vm, slot, flags, gpa: fail(
                "EINVAL", when=s.slot1 != 0, label="gpa_unaligned")),
        "load": lambda a: a.replace_rule("private", lambda s, m, page: signal(
            "SIGBUS", when=page > 0, label="private"))},
     ["gmem-no-allocation-beyond-eof", "gmem-bind-permitted", "gmem-unbind-permitted",
      "gmem-user-fault-permitted"]),
    ("memfd", {  # mprotect and MADV_REMOVE without their VM_MAYWRITE checks
        "mprotect": lambda a: a.drop_rule("no_maywrite"),
        "madvise_remove": lambda a: a.drop_rule("not_shared_maywrite")},
     ["mprotect-write-needs-maywrite", "madvise-remove-needs-shared-maywrite"]),
    ("memfd", {  # ... and firing too often
        "mprotect": lambda a: a.replace_rule("no_maywrite", lambda s, m, prot: fail(
            "EACCES", when=prot == PROT_RW, label="no_maywrite")),
        "madvise_remove": lambda a: a.replace_rule("not_shared_maywrite", lambda s, m, len: fail(
            "EACCES", when=len > 0, label="not_shared_maywrite"))},
     ["mprotect-permitted", "madvise-remove-permitted"]),
    ("guest_memfd", {
        "fallocate": lambda a: a.drop_rule("unaligned"),
        "mprotect": lambda a: a.drop_rule("noexec")},
     ["gmem-fallocate-only-aligned-keep-size", "gmem-mapping-never-executable"]),
    ("guest_memfd", {
        "mprotect": lambda a: a.replace_rule("noexec", lambda s, m, prot: fail(
            "EACCES", label="noexec"))},
     ["gmem-mprotect-permitted"]),
    ("v5-inaccessible", {
        "kvm_map_pfn": lambda a: a.drop_rule("past_eof"),
        "ftruncate": lambda a: a.replace_rule("inaccessible_resize", lambda s, fd, len: fail(
            "EPERM", when=s.xflags != 0, label="inaccessible_resize"))},
     ["kvm-maps-only-within-eof", "kvm-mapping-of-inaccessible-within-eof",
      "inaccessible-size-settable-once"]),
]


@pytest.mark.parametrize("i", range(len(MUTANTS)))
def test_mutant_is_noticed(i: int) -> None:
    base, edit, killers = MUTANTS[i]
    cat = load()
    d = designs.get(base).derive(f"{base}-mutant-{i}", "a mutant of issue 19", edit=edit)
    r = Explorer(d, d.scope(), [cat[n] for n in killers]).run()
    assert r.complete
    assert [n for n in killers if r.props[n].holds] == []
    b = designs.get(base)
    rb = Explorer(b, b.scope(), [cat[n] for n in killers]).run()
    assert all(rb.props[n].holds for n in killers)  # the base satisfies them


def test_v5_fallocate_grows_a_sized_inaccessible_file() -> None:
    """The finding: shmem_setattr() fixes the size, shmem_fallocate() does not."""
    d = designs.get("v5-inaccessible")
    cat = load()
    names = ["inaccessible-size-fixed-once-set", "inaccessible-size-fixed-by-setattr"]
    r = Explorer(d, d.scope(), [cat[n] for n in names]).run()
    bad, kept = r.props[names[0]], r.props[names[1]]
    assert not bad.holds and kept.holds and bad.run is not None
    assert [s.action for s in bad.run.steps] == ["memfd_create", "ftruncate", "fallocate"]
