"""open(): a new open file description of the one inode, through "/proc/self/fd/N" (a reopen)
or through a name on /dev/shm (a tmpfs regular file: glibc's shm_open()/shm_unlink()).

tmpfs files are the same shmem inode as a memfd's, reached through a name. Probed on 6.18.44
in a private tmpfs mount (traces/scenarios/tmpfs-shm-open.trace, tests/test_tmpfs.py):
- open(O_CREAT) makes the inode: shmem_mknod() -> __shmem_get_inode() sets info->seals to
  F_SEAL_SEAL (only memfd_create(MFD_ALLOW_SEALING) clears it), so every F_ADD_SEALS is EPERM
  and F_GET_SEALS says F_SEAL_SEAL; i_mode is the mode argument less the umask
  (vfs_prepare_mode(): the model's process has umask 022, which the executor sets);
- the name stays until unlink(), so a later open() of it is a new open file description
  (may_open()'s FS_IMMUTABLE_FL/FS_APPEND_FL checks, as a reopen's), O_CREAT|O_EXCL on it is
  EEXIST (before may_open()), and unlink() of an immutable or append-only file is EPERM
  (may_delete());
- after unlink() the file lives on through its descriptors and mappings, like a memfd.
The model holds one inode: an O_CREAT of the name beside a memfd or after unlink() would make
a second file and is refused (issue 14: several files).
"""

from __future__ import annotations

from collections.abc import Mapping

from model.designs.memfd_data import cut_to
from model.designs.memfd_rw import DESC_APPEND, DESC_READ, fmode_read_param, o_append_param
from model.designs.memfd_state import (
    FD,
    FD_ALL,
    FD_FIELDS,
    RO,
    RW,
    append_only,
    bump,
    fsflags_cleared,
    have_fd,
    immutable,
    pinned_page0_kept,
)
from model.lang import Action, E, If, Param, Rule, boolean, enum, fail, ok, requires, word
from model.lang.action import as_updates
from model.lang.callspec import C, Choice, Fd, Flags, Harmless, Num, ProcFd, ShmPath
from model.lang.expr import bv
from model.lang.schema import StateView
from model.vocab import (
    F_SEAL_SEAL,
    F_SEAL_SHRINK,
    O_APPEND,
    O_DIRECT,
    O_DSYNC,
    O_LARGEFILE,
    O_NOATIME,
    O_NONBLOCK,
    O_RDONLY,
    O_RDWR,
    O_SYNC,
    O_WRONLY,
    OPEN_STATUS_FLAGS,
    SETFL_FLAGS,
    render_flags,
)

#: open()'s flags on an existing file, as the `how` of a reopen: the access mode, O_TRUNC and
#: O_APPEND. The first three are explored; the others (issue 14: O_WRONLY and O_APPEND
#: descriptions) are judged in replay, since the handle table, not the state, knows which
#: description has which (Action.describes, NOTES.md "Descriptions")
(OPEN_RDONLY, OPEN_RDWR, OPEN_RDWR_TRUNC, OPEN_WRONLY, OPEN_WRONLY_TRUNC, OPEN_RDWR_APPEND,
 OPEN_WRONLY_APPEND, OPEN_RDONLY_APPEND, OPEN_RDWR_APPEND_TRUNC,
 OPEN_WRONLY_APPEND_TRUNC) = range(10)
HOW_TEXT = {OPEN_RDONLY: "O_RDONLY", OPEN_RDWR: "O_RDWR", OPEN_RDWR_TRUNC: "O_RDWR|O_TRUNC",
            OPEN_WRONLY: "O_WRONLY", OPEN_WRONLY_TRUNC: "O_WRONLY|O_TRUNC",
            OPEN_RDWR_APPEND: "O_RDWR|O_APPEND", OPEN_WRONLY_APPEND: "O_WRONLY|O_APPEND",
            OPEN_RDONLY_APPEND: "O_RDONLY|O_APPEND",
            OPEN_RDWR_APPEND_TRUNC: "O_RDWR|O_APPEND|O_TRUNC",
            OPEN_WRONLY_APPEND_TRUNC: "O_WRONLY|O_APPEND|O_TRUNC"}
#: the explored values (and the symbolic engines': their traces' descriptions must be ones
#: the handle table describes as the search assumed, readable and not appending)
HOW_EXPLORED = (OPEN_RDONLY, OPEN_RDWR, OPEN_RDWR_TRUNC)
#: FMODE_WRITE's absence (O_RDONLY), FMODE_READ's (O_WRONLY), O_TRUNC, O_APPEND
HOW_RDONLY = (OPEN_RDONLY, OPEN_RDONLY_APPEND)
HOW_WRONLY = (OPEN_WRONLY, OPEN_WRONLY_TRUNC, OPEN_WRONLY_APPEND, OPEN_WRONLY_APPEND_TRUNC)
HOW_TRUNC = (OPEN_RDWR_TRUNC, OPEN_WRONLY_TRUNC, OPEN_RDWR_APPEND_TRUNC,
             OPEN_WRONLY_APPEND_TRUNC)
HOW_APPEND = (OPEN_RDWR_APPEND, OPEN_WRONLY_APPEND, OPEN_RDONLY_APPEND,
              OPEN_RDWR_APPEND_TRUNC, OPEN_WRONLY_APPEND_TRUNC)


def _among(how: E, values: tuple[int, ...]) -> E:
    out: E = how == values[0]
    for v in values[1:]:
        out = out | (how == v)
    return out


def truncates(how: E) -> E:
    """The open of `how` has O_TRUNC (a design's extra O_TRUNC rule reads it)."""
    return _among(how, HOW_TRUNC)



def how_describes(p: Mapping[str, int]) -> dict[str, int]:
    """The description an open of `how` makes: FMODE_READ unless O_WRONLY; O_APPEND;
    FMODE_CAN_ODIRECT, which shmem_file_open() sets (a memfd_create() description has none:
    probed on 6.18.44, F_SETFL O_DIRECT is EINVAL there and 0 on a reopen); and the write
    count do_dentry_open() takes for FMODE_WRITE; and the status flags it was opened with
    (`ostatus`: O_NONBLOCK, O_NOATIME, O_DSYNC, O_SYNC, O_ASYNC stay in f_flags)."""
    return {"read": int(p["how"] not in HOW_WRONLY), "append": int(p["how"] in HOW_APPEND),
            "odirect": 1, "writecount": int(p["how"] not in HOW_RDONLY),
            "status": _with_dsync(p.get("ostatus", 0))}


def _with_dsync(status: int) -> int:
    """build_open_flags(): `if (flags & __O_SYNC) flags |= O_DSYNC`."""
    return status | O_DSYNC if status & (O_SYNC & ~O_DSYNC) else status


def open_rules(s: StateView, how: E, label: str, sealable: bool = True) -> list[Rule]:
    """do_open() on an existing inode: may_open() (FS_IMMUTABLE_FL; FS_APPEND_FL: a writable
    open needs O_APPEND, and O_TRUNC is refused), then O_TRUNC through handle_truncate() ->
    do_truncate() -> shmem_setattr() (its F_SEAL_SHRINK check only where the file may have
    seals: a named tmpfs file has F_SEAL_SEAL alone); a new open file description of the
    access mode `how` asks for (probed on 6.18.44, tests/test_open_modes.py)."""
    trunc = truncates(how)
    writes = ~_among(how, HOW_RDONLY)
    seal = [fail("EPERM", when=trunc & s.seals.has(F_SEAL_SHRINK) & (s.size > 0),
                 label="shrink_seal", why="handle_truncate() -> shmem_setattr(): SHRINK")]
    return [
        fail("EPERM", when=writes & immutable(s), label="immutable",
             why="may_open() -> inode_permission(MAY_WRITE): IS_IMMUTABLE"),
        fail("EPERM", when=((writes & ~_among(how, HOW_APPEND)) | trunc) & append_only(s),
             label="append_only",
             why="may_open(): IS_APPEND needs O_APPEND for writing and refuses O_TRUNC"),
        *(seal if sealable else []),
        pinned_page0_kept(s, trunc & ((s.size > 0) | s.hpage0_cached)),
        ok(0, label=label, size=If(trunc, 0, s.size),
           hpage0_cached=If(trunc, 0, s.hpage0_cached),
           **as_updates(cut_to(s, If(trunc, 0, s.size))),
           **as_updates(bump(s, FD_FIELDS, If(writes, RW, RO), +1))),
    ]


def reopen_body(s: StateView, fd: E, how: E, ostatus: E) -> list[Rule]:
    """open("/proc/self/fd/N"): a new open file description of the same inode (its status
    flags, `ostatus`, decide no outcome: the handle table keeps them)."""
    return [have_fd(s, fd), *open_rules(s, how, "ok")]


#: open("/proc/self/fd/N", how): the path names an existing file, so O_CREAT creates nothing
#: and the mode is not read (fs/namei.c open_last_lookups(): a positive dentry); O_CLOEXEC is a
#: descriptor flag, and the model's exec never replaces the process (probed 6.18.44:
#: traces/scenarios/reopen-*.trace)
#: The status flags (OPEN_STATUS_FLAGS) are kept with the description as `ostatus`: no rule
#: reads them, F_GETFL shows them (build_open_flags() has made O_SYNC's __O_SYNC carry
#: O_DSYNC, as the value O_SYNC does)
REOPEN_HOW = Choice("how", HOW_TEXT, extra=("O_CREAT", "O_CLOEXEC"),
                    keep=tuple(OPEN_STATUS_FLAGS), into="ostatus")
OPEN_MODE = Harmless("the mode of a file open() creates; /proc/self/fd/N exists", optional=True)
HOW = Param("how", enum(*HOW_TEXT.values()), HOW_EXPLORED, symbolic_domain=HOW_EXPLORED)
#: the status flags an open names: explored as none (the search's descriptions have none)
OSTATUS = Param("ostatus", word(32, OPEN_STATUS_FLAGS), (0,),
                "open()'s status flags, kept with the description", symbolic_domain=(0,))

REOPEN = Action("reopen", (Param("fd", FD, FD_ALL), HOW, OSTATUS),
                reopen_body, "open", (ProcFd("fd"), REOPEN_HOW, OPEN_MODE),
                "reopen through /proc/self/fd", describes=how_describes,
                also=(("openat", (C("AT_FDCWD"), ProcFd("fd"), REOPEN_HOW, OPEN_MODE)),))


#: fcntl(F_SETFL)'s argument (model.vocab.SETFL_FLAGS): SETFL_MASK's bits (O_APPEND,
#: O_NONBLOCK, O_DIRECT, O_NOATIME) change the description; O_ASYNC needs ->fasync, which
#: shmem and hugetlbfs lack, so it is dropped; the access mode and O_LARGEFILE are ignored
#: (fs/fcntl.c setfl())


def setfl_body(s: StateView, fd: E, flags: E, o_append: E, can_odirect: E,
               status: E) -> list[Rule]:
    """fcntl(F_SETFL) -> setfl(), probed on 6.18.44: a change of O_APPEND on an append-only
    inode is EPERM (either way), then O_DIRECT is EINVAL without FMODE_CAN_ODIRECT (a
    memfd_create() description, any hugetlbfs one; shmem_file_open() sets it for a reopen);
    O_NOATIME needs the owner or CAP_FOWNER, which the model's caller (root) has. The
    description's O_APPEND becomes the argument's (Action.redescribes); O_NONBLOCK and
    O_NOATIME change nothing the model holds (F_GETFL is not modelled)."""
    return [
        have_fd(s, fd),
        fail("EPERM", when=(flags.has(O_APPEND) != o_append) & append_only(s),
             label="append_only", why="setfl(): O_APPEND changed on an IS_APPEND inode"),
        fail("EINVAL", when=flags.has(O_DIRECT) & ~(can_odirect & ~s.hugetlb),
             label="o_direct", why="setfl(): O_DIRECT without FMODE_CAN_ODIRECT"),
        requires(~flags.has(O_DIRECT), label="direct_io",
                 why="an O_DIRECT description's reads and writes (IOCB_DIRECT) are not "
                     "modelled"),
        ok(0),
    ]


#: the f_flags bits besides the access mode and O_APPEND that F_SETFL sets and clears
#: (SETFL_MASK less O_APPEND and O_DIRECT, whose success is refused: `direct_io`), of a
#: description's "status" attribute (Action.describes), which an open's O_DSYNC, O_SYNC and
#: O_ASYNC also hold (F_SETFL keeps those)
SETFL_STATUS = O_NONBLOCK | O_NOATIME


#: fcntl(fd, F_SETFL, flags): not explored (the search's descriptions have no O_APPEND:
#: o_append_param()); replay follows the description's O_APPEND
SETFL = Action("setfl", (Param("fd", FD, FD_ALL), Param("flags", word(32, SETFL_FLAGS), ()),
                         o_append_param(),
                         Param("can_odirect", boolean(), (0,), "FMODE_CAN_ODIRECT of the "
                               "description (the handle table)", symbolic_domain=True),
                         Param("status", word(32, SETFL_FLAGS), (), "the description's "
                               "status flags (the handle table)", symbolic_domain=(0,))),
               setfl_body, "fcntl", (Fd("fd"), C("F_SETFL"), Flags("flags", SETFL_FLAGS)),
               "fcntl(F_SETFL): the description's O_APPEND, O_NONBLOCK, O_NOATIME",
               from_desc=(*DESC_APPEND, ("can_odirect", "fd", "odirect"),
                          ("status", "fd", "status")),
               redescribes=lambda p: {"append": int(bool(p["flags"] & O_APPEND)),
                                      "status": (p["status"] & ~SETFL_STATUS)
                                      | (p["flags"] & SETFL_STATUS)})


def getfl_body(s: StateView, fd: E, fmode_read: E, o_append: E, status: E) -> list[Rule]:
    """fcntl(F_GETFL) -> filp->f_flags (fs/fcntl.c do_fcntl()): the access mode, O_LARGEFILE
    (memfd_alloc_file() sets it; open() forces it on 64-bit: force_o_largefile()), O_APPEND
    and the status flags F_SETFL left; not O_CLOEXEC (a descriptor flag) nor O_CREAT, O_EXCL,
    O_NOCTTY, O_TRUNC (do_dentry_open() clears them). Probed on 6.18.44."""
    acc = If(fd == RO, bv(O_RDONLY, 32), If(fmode_read, bv(O_RDWR, 32), bv(O_WRONLY, 32)))
    app = If(o_append, bv(O_APPEND, 32), bv(0, 32))
    return [have_fd(s, fd), ok(acc | O_LARGEFILE | app | status)]


def getfl_note(v: int) -> str | None:
    """strace's `(flags O_RDWR|O_LARGEFILE)` after F_GETFL's value."""
    acc = {O_RDONLY: "O_RDONLY", O_WRONLY: "O_WRONLY", O_RDWR: "O_RDWR"}.get(v & 3, hex(v & 3))
    rest = render_flags(v & ~3, {k: x for k, x in SETFL_FLAGS.items() if x & ~3})
    return "flags " + acc + ("" if rest == "0" else "|" + rest)


#: fcntl(fd, F_GETFL): not explored (it changes nothing and the search's descriptions are
#: O_RDWR or O_RDONLY without status flags); replay judges it from the handle table
GETFL = Action("getfl", (Param("fd", FD, FD_ALL), fmode_read_param(), o_append_param(),
                         Param("status", word(32, SETFL_FLAGS), (), "the description's "
                               "O_NONBLOCK and O_NOATIME (the handle table)",
                               symbolic_domain=(0,))),
               getfl_body, "fcntl", (Fd("fd"), C("F_GETFL")),
               "fcntl(F_GETFL): the description's file status flags and access mode",
               from_desc=(*DESC_READ, *DESC_APPEND, ("status", "fd", "status")),
               note=getfl_note)


#: the model's process umask: the default of login shells and systemd units (the kernel
#: executor and the reproducers set it); vfs_prepare_mode(): mode & ~umask without a default ACL
UMASK = 0o022

#: open(O_CREAT)'s flags: the description's access mode and whether O_EXCL asks for a new file
#: (O_TRUNC on a file O_CREAT made does nothing: do_open() skips it for FMODE_CREATED)
CR_RDONLY, CR_RDWR, CR_RDWR_TRUNC, EX_RDONLY, EX_RDWR = range(5)
CREATE_TEXT = {CR_RDONLY: "O_RDONLY|O_CREAT", CR_RDWR: "O_RDWR|O_CREAT",
               CR_RDWR_TRUNC: "O_RDWR|O_CREAT|O_TRUNC", EX_RDONLY: "O_RDONLY|O_CREAT|O_EXCL",
               EX_RDWR: "O_RDWR|O_CREAT|O_EXCL"}
#: O_CLOEXEC is a descriptor flag (the model's exec never replaces the process); O_NOFOLLOW
#: (glibc's shm_open() adds it) refuses a symlink, and the model's /dev/shm holds none
CREATE = Choice("oflags", CREATE_TEXT, extra=("O_CLOEXEC", "O_NOFOLLOW"))
OPEN_AGAIN = Choice("how", REOPEN_HOW.table, extra=("O_CLOEXEC", "O_NOFOLLOW"),
                    keep=REOPEN_HOW.keep, into="ostatus")


def open_how(oflags: E) -> E:
    """The reopen spelling of an existing file's open: O_RDONLY, O_RDWR, O_RDWR|O_TRUNC."""
    return If((oflags == CR_RDONLY) | (oflags == EX_RDONLY), OPEN_RDONLY,
              If(oflags == CR_RDWR_TRUNC, OPEN_RDWR_TRUNC, 1))


def shm_created(s: StateView, oflags: E, mode: E) -> Rule:
    """shmem_mknod() -> __shmem_get_inode(): a new shmem inode, seals {SEAL}, i_mode the
    argument less the umask; the open that made it has its access mode."""
    rdonly = (oflags == CR_RDONLY) | (oflags == EX_RDONLY)
    return ok(0, when=~s.exists, label="create", exists=1, linked=1, hugetlb=0, huge_1g=0,
              hstate_1g=0, noexec_scope=0, size=0, seals=F_SEAL_SEAL, mode=mode & (0o777 & ~UMASK),
              created_noexec=0, **fsflags_cleared(s),
              **as_updates(bump(s, FD_FIELDS, If(rdonly, RO, RW), +1)),
              why="shmem_mknod(): __shmem_get_inode() sets info->seals = F_SEAL_SEAL")


def shm_create_body(s: StateView, oflags: E, mode: E) -> list[Rule]:
    """open("/dev/shm/NAME", O_CREAT...): path_openat() -> open_last_lookups(): a missing
    name is created (lookup_open() -> vfs_create()); an existing one is EEXIST under O_EXCL,
    else opened as it is (do_open() -> may_open(), O_TRUNC: handle_truncate())."""
    excl = (oflags == EX_RDONLY) | (oflags == EX_RDWR)
    return [
        requires(~s.exists | s.linked, label="one_inode",
                 why="the model holds one inode: the name beside a memfd, or after unlink(), "
                     "would be a second file"),
        shm_created(s, oflags, mode),
        fail("EEXIST", when=excl, label="exists",
             why="open_last_lookups(): O_CREAT|O_EXCL and a positive dentry"),
        *open_rules(s, open_how(oflags), "existing", sealable=False),
    ]


def shm_open_body(s: StateView, how: E, ostatus: E) -> list[Rule]:
    """open("/dev/shm/NAME") without O_CREAT: ENOENT unless the name exists, then a new open
    file description (may_open(), O_TRUNC: handle_truncate()), as a reopen."""
    return [fail("ENOENT", when=~s.linked, label="no_name",
                 why="lookup_fast()/lookup_slow(): no dentry of that name"),
            *open_rules(s, how, "opened", sealable=False)]


def unlink_body(s: StateView) -> list[Rule]:
    """unlink("/dev/shm/NAME") (glibc's shm_unlink()): do_unlinkat() -> may_delete() refuses
    an append-only or immutable inode (EPERM); then shmem_unlink() drops the name, and the
    inode lives while a descriptor or mapping holds it."""
    return [
        fail("ENOENT", when=~s.linked, label="no_name",
             why="do_unlinkat(): lookup_one_qstr_excl() finds no dentry"),
        fail("EPERM", when=immutable(s) | append_only(s), label="fsflags",
             why="may_delete(): IS_APPEND(inode) || IS_IMMUTABLE(inode)"),
        ok(0, label="unlinked", linked=0),
    ]


#: explored: a new file (O_EXCL, mode 0600) and the same open without O_EXCL (a second
#: description of the existing file); replay judges every flag spelling and mode
TMPFS_ACTIONS: tuple[Action, ...] = (
    Action("shm_create", (Param("oflags", enum(*CREATE_TEXT.values()), (EX_RDWR, CR_RDWR)),
                          Param("mode", word(9), (0o600,))),
           shm_create_body, "open", (ShmPath(), CREATE, Num("mode", octal=True)),
           "create (or open) the /dev/shm file: glibc's shm_open(O_CREAT)",
           describes=lambda p: {"read": 1, "append": 0, "odirect": 1,
                                "writecount": int(p["oflags"] not in (CR_RDONLY, EX_RDONLY))},
           also=(("openat", (C("AT_FDCWD"), ShmPath(), CREATE, Num("mode", octal=True))),)),
    Action("shm_open", (Param("how", enum(*REOPEN_HOW.table.values()),
                              (OPEN_RDONLY, OPEN_RDWR_TRUNC), symbolic_domain=HOW_EXPLORED),
                        OSTATUS),
           shm_open_body, "open", (ShmPath(), OPEN_AGAIN),
           "open the /dev/shm file by its name: glibc's shm_open() without O_CREAT",
           describes=how_describes,
           also=(("openat", (C("AT_FDCWD"), ShmPath(), OPEN_AGAIN)),)),
    Action("unlink", (), unlink_body, "unlink", (ShmPath(),),
           "remove the /dev/shm name: glibc's shm_unlink()"),
)

__all__ = [
    "GETFL",
    "HOW_APPEND",
    "HOW_RDONLY",
    "HOW_TEXT",
    "HOW_TRUNC",
    "HOW_WRONLY",
    "OPEN_RDONLY",
    "OPEN_RDWR",
    "OPEN_RDWR_TRUNC",
    "REOPEN",
    "REOPEN_HOW",
    "SETFL",
    "TMPFS_ACTIONS",
    "UMASK",
    "how_describes",
    "open_how",
    "open_rules",
    "truncates",
]
