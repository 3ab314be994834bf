"""The memfd design's mapping access paths: loads and stores through a mapping, FOLL_FORCE
writes (/proc/self/mem), madvise(), and the page references a mapping lends (vmsplice,
long-term FOLL_WRITE pins). Rule bodies only; model/designs/memfd.py makes them actions.
"""

from __future__ import annotations

from model.designs.memfd_data import faults, fills, removes
from model.designs.memfd_pages import hpage, page, page_index, pages_bytes
from model.designs.memfd_state import (
    CHG_DMA,
    CHG_FD,
    CHG_MAP,
    GUP,
    PIN_FIELDS,
    PR_RW,
    SH_RO,
    SH_RO_MW,
    SH_RW,
    bump,
    count,
    fallocate_fsflags,
    have_fd,
    have_map,
    past_eof,
    pinned_page0_kept,
    punch_write_seal,
)
from model.lang import E, If, Rule, fail, ok, requires, signal
from model.lang.action import as_updates
from model.lang.expr import Or, true
from model.lang.schema import StateView
from model.vocab import (
    F_SEAL_FUTURE_WRITE,
    F_SEAL_SHRINK,
    F_SEAL_WRITE,
    MADV_ADVICE,
    MADV_REMOVE,
    PAGE_SIZE,
)


def within_mapping(s: StateView, off: E) -> Rule:
    """A FOLL_FORCE/process_vm_writev() write at byte `off` of a mapping, judged on the
    mapping's first page (the file's page at the mapping's offset)."""
    return requires((off >= 0) & (off < page(s)), label="within_mapping",
                    why="a write past the mapping's first page: these writes are judged on "
                        "its first page (past a one-page mapping, the caller's other memory)")


def beyond_cached(s: StateView, at: E) -> E:
    """The page holding file byte `at` is a hugetlbfs page past the first and past EOF:
    whether fallocate(KEEP_SIZE) put it in the page cache (then it maps, hpage0_cached's
    finding) is held for page 0 only, so a fault there is refused."""
    index = page_index(s, at)
    return s.hugetlb & (index >= 1) & (pages_bytes(s, index) >= s.size)


CACHED_UNKNOWN = ("a hugetlbfs page past the first and past EOF maps if fallocate() cached it, "
                  "which the model holds for page 0 only")


def cached_unknown(s: StateView, at: E) -> Rule:
    """A fault on the page holding file byte `at`, refused where beyond_cached() says."""
    return requires(~beyond_cached(s, at), label="hugetlb_cached_beyond", why=CACHED_UNKNOWN)


def within_pages(s: StateView, off: E, mpages: E, moff: E) -> list[Rule]:
    """An access at byte `off` of a mapping `mpages` pages long at file offset `moff`: an
    offset outside it is another address; the page it hits as cached_unknown() says."""
    return [
        requires((off >= 0) & (off < pages_bytes(s, mpages)), label="within_mapping",
                 why="an access outside the mapping hits the caller's other memory (or none: "
                     "SIGSEGV), which the model does not hold"),
        cached_unknown(s, moff + off),
    ]


def page_past_eof(s: StateView, at: E) -> E:
    """The page holding file byte `at` faults past EOF: page 0 as past_eof() says; a later
    page (shmem; hugetlbfs within i_size, cached_unknown()) when it starts at or after i_size
    (shmem_fault(): index >= DIV_ROUND_UP(i_size, PAGE_SIZE); hugetlb_no_page(): idx >=
    i_size >> huge_page_shift(), i_size being a multiple of the huge page there)."""
    index = page_index(s, at)
    return If(index == 0, past_eof(s), pages_bytes(s, index) >= s.size)


def store_body(s: StateView, m: E, off: E, mpages: E, moff: E) -> list[Rule]:
    """A one-byte store at byte `off` of a mapping `mpages` pages long at file offset `moff`:
    permission fault, then the file fault handler for the page it hits (file byte moff +
    off)."""
    return [
        have_map(s, m),
        *within_pages(s, off, mpages, moff),
        signal("SIGSEGV", unless=(m == SH_RW) | (m == PR_RW), label="no_vm_write",
               why="access_error(): the VMA lacks VM_WRITE"),
        signal("SIGBUS", when=page_past_eof(s, moff + off), label="past_eof",
               why="shmem_fault()/hugetlb_no_page(): page beyond i_size"),
        ok(0, effects=If(m == SH_RW, CHG_MAP, 0), **as_updates(faults(s, moff + off)),
           why="a shared store changes the file; a private one copies the page (do_cow_fault() "
               "reads the file's page in first)"),
    ]


def load_body(s: StateView, m: E, off: E, mpages: E, moff: E) -> list[Rule]:
    """A one-byte load at byte `off` of a mapping at file offset `moff`: the fault on the
    page it hits."""
    return [have_map(s, m), *within_pages(s, off, mpages, moff),
            signal("SIGBUS", when=page_past_eof(s, moff + off), label="past_eof"),
            ok(0, **as_updates(faults(s, moff + off)))]


def mem_write_body(s: StateView, m: E, off: E, moff: E) -> list[Rule]:
    """pwrite64() of one byte on /proc/self/mem at byte `off` of a mapping (fs/proc/base.c
    mem_rw() -> access_remote_vm() -> get_user_pages_remote(FOLL_FORCE|FOLL_WRITE)).
    check_vma_flags() (mm/gup.c, since 5535be309971, v6.0): without VM_WRITE a FOLL_FORCE
    write is allowed only into a COW mapping (private, VM_MAYWRITE), and then only into the
    exclusive anonymous copy it breaks COW to: the file is unchanged (bug-history B5,
    CVE-2022-2590). On hugetlbfs too: 6.18.44 COWs a read-only private hugetlb mapping
    (v6.0's refusal "hugetlb does not support FOLL_FORCE|FOLL_WRITE" is gone; probed). A
    refused VMA or a fault that fails (SIGBUS past EOF) copies nothing, and mem_rw() returns
    EIO. The page is the file's at the mapping's offset `moff`. Probed on 6.18.44
    (traces/scenarios/mem-write.trace)."""
    return [
        have_map(s, m),
        within_mapping(s, off),
        cached_unknown(s, moff),
        fail("EIO", when=(m == SH_RO) | (m == SH_RO_MW), label="force_not_cow",
             why="check_vma_flags(): FOLL_FORCE without VM_WRITE needs is_cow_mapping(); a "
                 "shared mapping is not one"),
        fail("EIO", when=page_past_eof(s, moff), label="past_eof",
             why="the fault fails (SIGBUS beyond EOF): nothing copied"),
        ok(1, effects=If(m == SH_RW, CHG_MAP, 0), label="ok", **as_updates(faults(s, moff)),
           why="through VM_WRITE|VM_SHARED the page-cache page is written, as a store; "
               "through a private mapping COW is broken first and the file is unchanged"),
    ]


SHARED_MAPS = (SH_RW, SH_RO_MW, SH_RO)


def vm_write_body(s: StateView, m: E, off: E, moff: E) -> list[Rule]:
    """process_vm_writev() of one byte into the caller's own mapping at byte `off`
    (mm/process_vm_access.c process_vm_rw_single_vec(): pin_user_pages_remote() with
    FOLL_WRITE and no FOLL_FORCE): check_vma_flags() refuses a VMA without VM_WRITE, and a fault
    beyond EOF fails; nothing copied is EFAULT. Through VM_SHARED|VM_WRITE the page-cache page
    is written, as a store; through a writable private mapping COW is broken first. Probed on
    6.18.44 (traces/scenarios/vm-write.trace)."""
    return [
        have_map(s, m),
        within_mapping(s, off),
        cached_unknown(s, moff),
        fail("EFAULT", unless=(m == SH_RW) | (m == PR_RW), label="no_vm_write",
             why="check_vma_flags(): FOLL_WRITE without FOLL_FORCE needs VM_WRITE"),
        fail("EFAULT", when=page_past_eof(s, moff), label="past_eof",
             why="the fault fails (SIGBUS beyond EOF): nothing copied"),
        ok(1, effects=If(m == SH_RW, CHG_MAP, 0), label="ok", **as_updates(faults(s, moff)),
           why="a shared writable mapping's page is the file's; a private one is copied"),
    ]


#: PAGE_ALIGN(len_in) wraps to 0 from here on (is_valid_madvise(): "len was rounded up from
#: small -ve to zero")
MADV_LEN_WRAP = (1 << 64) - PAGE_SIZE + 1


def madvise_range(s: StateView, len: E) -> list[Rule]:  # noqa: A002
    """What madvise() checks of the range for every advice: is_valid_madvise() (EINVAL when
    PAGE_ALIGN(len) wraps to 0), madvise_should_skip() (nothing to do for len 0), and the
    model's limit: the range lies in the mapping's one page."""
    return [
        fail("EINVAL", when=len >= MADV_LEN_WRAP, label="len_wraps",
             why="is_valid_madvise(): len_in && !PAGE_ALIGN(len_in)"),
        ok(0, when=len == 0, label="zero_len", why="madvise_should_skip(): end == start"),
        requires(len <= page(s), label="within_mapping",
                 why="a range past the mapping's first page: madvise() is judged over page "
                     "0 (past a one-page mapping it covers the caller's other memory, or none: "
                     "ENOMEM)"),
    ]


def madvise_remove_body(s: StateView, m: E, len: E, moff: E) -> list[Rule]:  # noqa: A002
    """madvise(addr of the mapping, len, MADV_REMOVE) (mm/madvise.c, 6.18): is_valid_madvise()
    (EINVAL when PAGE_ALIGN(len) wraps to 0), nothing to do for len 0, then for the mapping's
    VMA madvise_remove(): EINVAL on a VM_LOCKED VMA (none here: the model has no mlock),
    EACCES unless vma_is_shared_maywrite() (VM_SHARED and VM_MAYWRITE, not VM_WRITE: a
    PROT_READ shared map that may be upgraded qualifies), then vfs_fallocate(PUNCH_HOLE|
    KEEP_SIZE, moff, PAGE_ALIGN(len)) on the VMA's file (moff: the mapping's file offset),
    whose FMODE_WRITE such a VMA implies. Probed on 6.18.44
    (traces/scenarios/madvise-remove.trace)."""
    span = ((len + PAGE_SIZE - 1) // PAGE_SIZE) * PAGE_SIZE  # PAGE_ALIGN(len), 4 KiB pages
    removes0 = (moff == 0) & (span >= page(s))  # the punched range covers all of page 0
    return [
        have_map(s, m),
        *madvise_range(s, len),
        fail("EACCES", unless=(m == SH_RW) | (m == SH_RO_MW), label="not_shared_maywrite",
             why="madvise_remove(): !vma_is_shared_maywrite()"),
        *fallocate_fsflags(s, true),  # vfs_fallocate(PUNCH_HOLE|KEEP_SIZE), as fallocate()
        punch_write_seal(s),
        pinned_page0_kept(s, removes0 & (s.size > 0)),
        ok(0, effects=If(s.size > moff, CHG_FD, 0),
           hpage0_cached=If(removes0, 0, s.hpage0_cached),
           **as_updates(removes(s, moff, moff + span)),
           why="the range is punched out of the file, as fallocate() through a descriptor "
               "does (seal-checked like it), even past EOF (nothing to remove)"),
    ]


#: the advice values madvise_behavior_valid() accepts on x86-64 (6.18), MADV_REMOVE included
MADV_VALID = tuple(sorted(MADV_ADVICE.values()))
#: advice values the model does not judge, and why (MADV_REMOVE is its own action)
MADV_OUTSIDE = {
    MADV_REMOVE: "MADV_REMOVE is the madvise_remove action: write it by name",
    MADV_ADVICE["MADV_COLLAPSE"]: "MADV_COLLAPSE succeeds or not by the machine's THP "
    "settings (shmem_enabled), which the model does not hold",
    MADV_ADVICE["MADV_GUARD_INSTALL"]: "guard regions make later accesses fault (SIGSEGV), "
    "and the model's mappings hold no guard state",
    MADV_ADVICE["MADV_GUARD_REMOVE"]: "guard regions are not modelled",
    MADV_ADVICE["MADV_HWPOISON"]: "memory-failure injection (CAP_SYS_ADMIN) is not modelled",
    MADV_ADVICE["MADV_SOFT_OFFLINE"]: "memory-failure injection (CAP_SYS_ADMIN) is not modelled",
}


def madvise_body(s: StateView, m: E, len: E, advice: E, moff: E) -> list[Rule]:  # noqa: A002
    """madvise(addr of the mapping, len, advice) for the advice values other than MADV_REMOVE
    (mm/madvise.c, 6.18): is_valid_madvise() (EINVAL for an unknown advice, or when
    PAGE_ALIGN(len) wraps to 0), nothing to do for len 0, then per VMA: MADV_FREE only on
    anonymous VMAs and MADV_WIPEONFORK on neither a file nor a shared one (EINVAL on every
    memfd mapping); MADV_COLD/MADV_PAGEOUT not on hugetlb (can_madv_lru_vma()); MADV_POPULATE_
    (READ|WRITE) fault the range in (madvise_populate(): check_vma_flags() refuses FOLL_WRITE
    without VM_WRITE, EINVAL; a fault beyond EOF, EFAULT). None changes the file or the model's
    state. MADV_MERGEABLE/MADV_HUGEPAGE and their opposites need CONFIG_KSM/CONFIG_TRANSPARENT_
    HUGEPAGE (EINVAL without: every kernel here has both). Probed on 6.18.44
    (traces/scenarios/madvise-advice.trace)."""
    populate = (advice == MADV_ADVICE["MADV_POPULATE_READ"]) | (
        advice == MADV_ADVICE["MADV_POPULATE_WRITE"])
    rules = [have_map(s, m)]
    name = {v: n for n, v in MADV_ADVICE.items()}
    rules += [requires(advice != v, label=name[v].lower(), why=why)
              for v, why in MADV_OUTSIDE.items()]
    return [
        *rules,
        fail("EINVAL", unless=Or(*(advice == v for v in MADV_VALID)), label="unknown_advice",
             why="is_valid_madvise(): !madvise_behavior_valid()"),
        *madvise_range(s, len),
        fail("EINVAL", when=(advice == MADV_ADVICE["MADV_FREE"])
             | (advice == MADV_ADVICE["MADV_WIPEONFORK"]), label="file_vma",
             why="madvise_free_single_vma(): !vma_is_anonymous(); madvise_update_vma() for "
                 "WIPEONFORK: vma->vm_file || VM_SHARED"),
        fail("EINVAL", when=s.hugetlb & ((advice == MADV_ADVICE["MADV_COLD"])
                                         | (advice == MADV_ADVICE["MADV_PAGEOUT"])),
             label="hugetlb_lru", why="can_madv_lru_vma(): VM_HUGETLB"),
        fail("EINVAL", when=(advice == MADV_ADVICE["MADV_POPULATE_WRITE"])
             & (m != SH_RW) & (m != PR_RW), label="populate_no_write",
             why="madvise_populate(): check_vma_flags() refuses FOLL_WRITE without VM_WRITE"),
        requires(~(populate & beyond_cached(s, moff)), label="hugetlb_cached_beyond",
                 why=CACHED_UNKNOWN),
        fail("EFAULT", when=populate & page_past_eof(s, moff), label="populate_past_eof",
             why="madvise_populate(): the fault beyond EOF is VM_FAULT_SIGBUS"),
        ok(0, when=populate, label="populated", **as_updates(faults(s, moff)),
           why="the fault maps the page in: data (memfd_data.py)"),
        ok(0, why="advice only: no content, size or seal changes"),
    ]


#: the advice values exploration takes (one per rule; replay judges any value)
MADV_EXPLORED = tuple(MADV_ADVICE[n] for n in (
    "MADV_FREE", "MADV_COLD", "MADV_POPULATE_READ", "MADV_POPULATE_WRITE"))


#: a pin of a mapping at a file offset other than 0 (the model's pin counts are page 0's)
PAGE0_ONLY = ("the model's pins hold the file's first page (a mapping at another offset pins "
              "another)")


def pin_body(s: StateView, m: E, moff: E) -> list[Rule]:
    """vmsplice() of the mapped page into a pipe: the pipe holds a page reference."""
    return [
        have_map(s, m),
        requires((m == SH_RW) | (m == SH_RO_MW) | (m == SH_RO), label="shared_only",
                 why="pins through private mappings are not modelled (COW state)"),
        requires(moff == 0, label="page0", why=PAGE0_ONLY),
        fail("EFAULT", when=past_eof(s), label="past_eof",
             why="get_user_pages() cannot fault the page in"),
        ok(0, pin_ref=s.pin_ref + 1, **as_updates(faults(s, moff)),
           why="get_user_pages() faults the page in"),
    ]


def gup_pin_body(s: StateView, m: E, moff: E) -> list[Rule]:
    """pin_user_pages(FOLL_WRITE|FOLL_LONGTERM) of the mapped page (io_uring fixed buffer)."""
    return [
        have_map(s, m),
        requires((m == SH_RW) | (m == SH_RO_MW) | (m == SH_RO), label="shared_only"),
        requires(moff == 0, label="page0", why=PAGE0_ONLY),
        fail("EFAULT", unless=m == SH_RW, label="no_vm_write",
             why="check_vma_flags(): FOLL_WRITE needs VM_WRITE"),
        fail("EFAULT", when=past_eof(s), label="past_eof"),
        ok(0, pin_gup=s.pin_gup + 1, **as_updates(faults(s, moff))),
    ]


#: udmabuf's size_limit_mb module parameter (default 64): pglimit = 64 MiB of 4 KiB pages
UDMABUF_LIMIT = 64 << 20
#: check_memfd_seals(): SEALS_WANTED and SEALS_DENIED (F_SEAL_FUTURE_WRITE since 9cb189a882738c
#: "udmabuf: also check for F_SEAL_FUTURE_WRITE", v6.13; memfd@6.12 takes it too: probed)
UDMABUF_WANTED = F_SEAL_SHRINK
UDMABUF_DENIED = F_SEAL_WRITE | F_SEAL_FUTURE_WRITE


def udmabuf_body(s: StateView, fd: E, off: E, size: E) -> list[Rule]:
    """ioctl(open("/dev/udmabuf"), UDMABUF_CREATE, {memfd=fd, offset=off, size=size}):
    udmabuf_create() checks the range's alignment (PAGE_SIZE, also on hugetlbfs), pglimit and
    a non-empty range (EINVAL), then check_memfd_seals() (F_SEAL_SHRINK wanted, F_SEAL_WRITE
    and F_SEAL_FUTURE_WRITE denied: EINVAL) and memfd_pin_folios() (the range must end before
    i_size: EINVAL; holes are allocated). The pages stay FOLL_PIN-pinned until the dmabuf's
    last reference goes: a long-term pin like gup_pin's, which F_SEAL_WRITE waits for. No
    FMODE_ check: an O_RDONLY description pins too, and the dmabuf is O_RDWR."""
    return [
        have_fd(s, fd),
        fail("EINVAL", when=((off % PAGE_SIZE) != 0) | ((size % PAGE_SIZE) != 0), label="unaligned",
             why="udmabuf_create(): !PAGE_ALIGNED(list[i].offset or list[i].size)"),
        fail("EINVAL", when=(size == 0) | (size > UDMABUF_LIMIT), label="pglimit",
             why="udmabuf_create(): pgcnt > pglimit (size_limit_mb) or !pgcnt"),
        fail("EINVAL", when=~s.seals.has_all(UDMABUF_WANTED) | s.seals.has(UDMABUF_DENIED),
             label="seals", why="check_memfd_seals(): SEALS_WANTED / SEALS_DENIED"),
        fail("EINVAL", when=off + size > s.size, label="past_eof",
             why="memfd_pin_folios(): end >= i_size_read(inode) (or start < 0)"),
        requires(off == 0, label="page0", why=PAGE0_ONLY),
        ok(0, pin_gup=s.pin_gup + 1,
           hpage0_cached=If(s.hugetlb & (s.size < hpage(s)), 1, s.hpage0_cached),
           **as_updates(fills(s, off, off + size, keep_falloc=True)),
           why="memfd_pin_folios() -> memfd_alloc_folio() fills a hole (hugetlbfs: a huge "
               "page from the pool, which the model assumes has enough)"),
    ]


def unpin_body(s: StateView, p: E) -> list[Rule]:
    return [requires(count(s, PIN_FIELDS, p) > 0, label="have_pin"),
            ok(0, **as_updates(bump(s, PIN_FIELDS, p, -1)))]


def dma_write_body(s: StateView, p: E) -> list[Rule]:
    """A device (or io_uring read) writes through a held FOLL_WRITE pin: no seal is checked.
    Only a FOLL_WRITE pin can write (a vmsplice reference cannot)."""
    return [requires((p == GUP) & (s.pin_gup > 0), label="have_pin"), ok(0, effects=CHG_DMA)]
