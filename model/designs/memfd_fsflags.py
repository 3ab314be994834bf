"""FS_IOC_SETFLAGS and FS_IOC_GETFLAGS (chattr, lsattr) on a memfd: shmem's inode flags since
6.0 (e408e695f5f1 "mm/shmem: support FS_IOC_[SG]ETFLAGS in tmpfs"), on the internal shm_mnt as
on a tmpfs mount.

The flags are the inode's (`s_immutable`, `s_append`: S_IMMUTABLE, S_APPEND), so they bind
every description and mapping of the file. What they stop is decided where each path opens
or changes the inode, not in shmem's write_iter (probed on 6.18.44, tests/test_fsflags.py):
- FS_IMMUTABLE_FL: a new writable open (may_open(): EPERM), fchmod (notify_change()), fallocate
  and MADV_REMOVE (vfs_fallocate()), copy_file_range (generic_copy_file_checks()). Not write(),
  pwrite64(), splice, io_uring writes or stores through an existing writable description or
  mapping, and not ftruncate() (do_ftruncate() checks IS_APPEND only; notify_change() checks
  IS_IMMUTABLE for mode, owner and times): the file's size and content still change.
- FS_APPEND_FL: ftruncate (EPERM), fallocate other than preallocation, MADV_REMOVE, fchmod, a
  writable open without O_APPEND or with O_TRUNC (EPERM), MAP_SHARED through an FMODE_WRITE
  description (do_mmap(): EACCES, even PROT_READ). pwrite64 through a description opened
  before still writes at its offset.
- FS_NODUMP_FL, FS_NOATIME_FL: kept in info->fsflags, shown by FS_IOC_GETFLAGS; nothing else
  the model judges reads them.
FS_IOC_GETFLAGS shows the four bits as they were last set, through any description (probed on
6.18.44: `[FS_APPEND_FL|FS_NODUMP_FL|FS_NOATIME_FL]`, `[0]`; hugetlbfs ENOTTY).
FS_IOC_FSSETXATTR (xfs_io's chattr) is a second way to the same four flags: the xflags
FS_XFLAG_IMMUTABLE, _APPEND, _NODUMP, _NOATIME, through the same vfs_fileattr_set() (probed on
6.18.44 bit by bit, tests/test_fsflags.py).
"""

from __future__ import annotations

from collections.abc import Callable

from model.designs.memfd_state import FD, FD_ALL, FSFLAG_BITS, SHMEM_FSFLAGS, have_fd
from model.lang import Action, E, If, Not, Param, Rule, enum, fail, ok, word
from model.lang.action import as_updates
from model.lang.callspec import C, Choice, Fd, Fields, Flags, Harmless, Num, Out, Ptr
from model.lang.schema import StateView, integer
from model.vocab import (
    AT_EMPTY_PATH,
    AT_SYMLINK_NOFOLLOW,
    FILE_ATTR_AT_FLAGS,
    FS_APPEND_FL,
    FS_FLAGS,
    FS_IMMUTABLE_FL,
    FS_NOATIME_FL,
    FS_NODUMP_FL,
    FS_XFLAGS,
)

#: SHMEM_FL_USER_MODIFIABLE less FS_CASEFOLD_FL, which only a directory of a tmpfs mounted with
#: an encoding takes (shmem_set_inode_flags(): EOPNOTSUPP on shm_mnt, which has none)
SHMEM_FL_MODIFIABLE = sum(SHMEM_FSFLAGS.values())
FS_SECRM_FL = FS_FLAGS["FS_SECRM_FL"]


def _flag_updates(s: StateView, flags: E, bit_of: dict[int, int] | None = None
                  ) -> dict[str, E | int]:
    """info->fsflags = flags: each kept flag field from its bit (the fields the design has);
    with `bit_of` (FS_*_FL -> the bit of `flags` that sets it) from another flag family."""
    return {f: If(flags.has(bit if bit_of is None else bit_of[bit]), 1, 0)
            for f, bit in FSFLAG_BITS if hasattr(s, f)}


def no_fileattr(s: StateView, why: str, errno: str = "ENOTTY") -> Rule:
    """hugetlbfs's inode operations have neither ->fileattr_get nor ->fileattr_set: the
    vfs_fileattr_*() call is ENOIOCTLCMD, which vfs_ioctl() turns into ENOTTY (and
    file_getattr()/file_setattr() into EOPNOTSUPP)."""
    return fail(errno, when=s.hugetlb, label="no_fileattr", why=why)


def setflags_body(s: StateView, fd: E, flags: E) -> list[Rule]:
    """ioctl(FS_IOC_SETFLAGS) -> ioctl_setflags() -> vfs_fileattr_set() (fs/file_attr.c): an
    inode without ->fileattr_set (hugetlbfs) is ENOIOCTLCMD, ENOTTY to the caller;
    inode_owner_or_capable() and fileattr_set_prepare()'s CAP_LINUX_IMMUTABLE (for a change of
    IMMUTABLE or APPEND) hold for the model's caller, root; then shmem_fileattr_set(): bits
    outside SHMEM_FL_USER_MODIFIABLE are EOPNOTSUPP, else info->fsflags = flags and
    shmem_set_inode_flags() sets S_IMMUTABLE and S_APPEND (and S_NOATIME) as they say. Any
    description may ask: no FMODE_WRITE check, and seals do not stop it."""
    return [
        have_fd(s, fd),
        no_fileattr(s, "vfs_fileattr_set(): hugetlbfs has no ->fileattr_set"),
        fail("EOPNOTSUPP", when=(flags & ~SHMEM_FL_MODIFIABLE) != 0, label="unsupported",
             why="shmem_fileattr_set(): flags & ~SHMEM_FL_USER_MODIFIABLE"),
        ok(0, **as_updates(_flag_updates(s, flags))),
    ]


def getflags_body(s: StateView, fd: E) -> list[Rule]:
    """ioctl(FS_IOC_GETFLAGS) -> ioctl_getflags() -> vfs_fileattr_get() (fs/file_attr.c): an
    inode without ->fileattr_get (hugetlbfs) is ENOIOCTLCMD, ENOTTY to the caller; then
    shmem_fileattr_get() fills info->fsflags & SHMEM_FL_USER_VISIBLE, and put_user() writes
    it as an int (the output `GETFLAGS_OUT`). Any description may ask."""
    return [have_fd(s, fd),
            no_fileattr(s, "vfs_fileattr_get(): hugetlbfs has no ->fileattr_get"), ok(0)]


#: explored: clear, each flag that stops a path, and one bit shmem refuses; NODUMP, NOATIME
#: and combinations are replay's (no rule reads them apart) and the symbolic engines' (every
#: 32-bit value)
SETFLAGS_DOMAIN = (0, FS_IMMUTABLE_FL, FS_APPEND_FL, FS_SECRM_FL)

FS_SETFLAGS = Action(
    "fs_setflags", (Param("fd", FD, FD_ALL), Param("flags", word(32, FS_FLAGS),
                                                   SETFLAGS_DOMAIN, "the int the kernel reads")),
    setflags_body, "ioctl",
    (Fd("fd"), C("FS_IOC_SETFLAGS"),
     Ptr("flags", "EFAULT (copy_from_user of the flags)", family=FS_FLAGS)),
    "chattr: FS_IOC_SETFLAGS")

#: the int FS_IOC_GETFLAGS writes: the four bits of info->fsflags, as strace prints it
GETFLAGS_OUT = Out("fsflags", family=FS_FLAGS, bits=FSFLAG_BITS, cell=True)

FS_GETFLAGS = Action(
    "fs_getflags", (Param("fd", FD, FD_ALL),), getflags_body, "ioctl",
    (Fd("fd"), C("FS_IOC_GETFLAGS"), GETFLAGS_OUT), "lsattr: FS_IOC_GETFLAGS")


X = FS_XFLAGS
#: fileattr_fill_xflags(): the xflag that sets each shmem flag (FS_*_FL -> FS_XFLAG_*)
XFLAG_OF = {FS_IMMUTABLE_FL: X["FS_XFLAG_IMMUTABLE"], FS_APPEND_FL: X["FS_XFLAG_APPEND"],
            FS_NODUMP_FL: X["FS_XFLAG_NODUMP"], FS_NOATIME_FL: X["FS_XFLAG_NOATIME"]}
#: FS_XFLAGS_MASK on 6.18.44: every xflag but 0x4 and bits 17-30 (probed on hugetlbfs, where
#: a bit outside it is EOPNOTSUPP and one inside ENOTTY); FS_XFLAG_VERITY (0x20000) is not in it
XFLAGS_MASK = sum(X.values())
#: FS_XFLAG_RDONLY_MASK: the xflags a set ignores (copy_fsxattr_from_user())
XFLAG_RDONLY = X["FS_XFLAG_PREALLOC"] | X["FS_XFLAG_HASATTR"]
#: FS_XFLAG_COMMON: the xflags that have an FS_*_FL twin (include/linux/fileattr.h); of them,
#: SYNC, DAX and PROJINHERIT become flags shmem refuses (EOPNOTSUPP)
XFLAG_COMMON = sum(X["FS_XFLAG_" + n] for n in ("SYNC", "IMMUTABLE", "APPEND", "NODUMP",
                                                 "NOATIME", "DAX", "PROJINHERIT"))
XFLAG_SHMEM = sum(XFLAG_OF.values())
XFLAG_EXTSIZE, XFLAG_EXTSZINHERIT = X["FS_XFLAG_EXTSIZE"], X["FS_XFLAG_EXTSZINHERIT"]
XFLAG_COWEXTSIZE = X["FS_XFLAG_COWEXTSIZE"]
INVALID_PROJID = (1 << 32) - 1  # (projid_t)-1: projid_valid() is false for it
U32 = integer(0, (1 << 32) - 1)


def xflags_mask_rule(mask: int, errno: str = "EOPNOTSUPP",
                     where: str = "copy_fsxattr_from_user()") -> Callable[..., Rule]:
    """An xflag outside FS_XFLAGS_MASK (`mask`) is refused before any inode check (so on
    hugetlbfs too): EOPNOTSUPP in FS_IOC_FSSETXATTR's copy_fsxattr_from_user(), EINVAL in
    file_setattr()'s file_attr_to_fileattr() (its fa_xflags is a __u64, so any upper bit
    too). The mask arrived with file_getattr/file_setattr (v6.17); 6.1.192 has no such check
    in the ioctl (probed)."""
    def rule(s: StateView, xflags: E, **_: E) -> Rule:
        return fail(errno, when=(xflags & ~mask) != 0, label="xflags_mask",
                    why=f"{where}: xflags & ~FS_XFLAGS_MASK ({mask:#x})")
    return rule


def file_xflags_mask_rule(mask: int) -> Callable[..., Rule]:
    """file_setattr()'s xflags_mask rule: EINVAL from file_attr_to_fileattr()."""
    return xflags_mask_rule(mask, "EINVAL", "file_attr_to_fileattr()")


def has_fsx_rule(rdonly: int) -> Callable[..., Rule]:
    """shmem_fileattr_set(): fileattr_has_fsx() is EOPNOTSUPP: an xflag without an FS_*_FL twin
    (FS_XFLAG_COMMON), or a non-zero extsize, projid or cowextsize. The xflags in `rdonly`
    (FS_XFLAG_RDONLY_MASK) were dropped by copy_fsxattr_from_user(); an extent size of zero
    has cleared EXTSIZE/EXTSZINHERIT and a CoW extent size of zero COWEXTSIZE
    (fileattr_set_prepare()), which leaves those three only with a non-zero size, already
    refused."""
    sized = XFLAG_EXTSIZE | XFLAG_EXTSZINHERIT | XFLAG_COWEXTSIZE

    def rule(s: StateView, xflags: E, extsize: E, projid: E, cowextsize: E, **_: E) -> Rule:
        no_twin = xflags & ~(XFLAG_COMMON | rdonly | sized)
        return fail("EOPNOTSUPP", when=(no_twin != 0) | (extsize != 0) | (projid != 0)
                    | (cowextsize != 0), label="has_fsx",
                    why="shmem_fileattr_set(): fileattr_has_fsx()")
    return rule


def fileattr_set_rules(s: StateView, xflags: E, extsize: E, projid: E, cowextsize: E
                       ) -> list[Rule]:
    """vfs_fileattr_set() past ->fileattr_set and inode_owner_or_capable() (root), for
    FS_IOC_FSSETXATTR and file_setattr() alike: fileattr_set_prepare(): a changed project id
    must be valid (INVALID_PROJID: EINVAL), FS_XFLAG_EXTSZINHERIT on a non-directory is
    EINVAL; shmem_fileattr_set(): fileattr_has_fsx() is EOPNOTSUPP, and so are the twins shmem
    does not keep (SYNC, DAX, PROJINHERIT: SHMEM_FL_USER_MODIFIABLE); else info->fsflags takes
    the four flags, as FS_IOC_SETFLAGS sets them (CAP_LINUX_IMMUTABLE: the model's caller is
    root). Any description may ask; seals do not stop it."""
    p = {"xflags": xflags, "extsize": extsize, "projid": projid, "cowextsize": cowextsize}
    return [
        fail("EINVAL", when=projid == INVALID_PROJID, label="projid_invalid",
             why="fileattr_set_prepare(): !projid_valid() for a changed project id"),
        fail("EINVAL", when=xflags.has(XFLAG_EXTSZINHERIT), label="extszinherit",
             why="fileattr_set_prepare(): FS_XFLAG_EXTSZINHERIT on a non-directory"),
        has_fsx_rule(XFLAG_RDONLY)(s, **p),
        fail("EOPNOTSUPP", when=(xflags & (XFLAG_COMMON & ~XFLAG_SHMEM)) != 0,
             label="unsupported",
             why="shmem_fileattr_set(): flags & ~SHMEM_FL_USER_MODIFIABLE (SYNC, DAX, "
                 "PROJINHERIT)"),
        ok(0, **as_updates(_flag_updates(s, xflags, XFLAG_OF))),
    ]


def setxattr_body(s: StateView, fd: E, xflags: E, extsize: E, projid: E, cowextsize: E
                  ) -> list[Rule]:
    """ioctl(FS_IOC_FSSETXATTR) -> ioctl_fssetxattr() (fs/file_attr.c), as on 6.18.44:
    copy_fsxattr_from_user() refuses an xflag outside FS_XFLAGS_MASK and drops
    FS_XFLAG_RDONLY_MASK (PREALLOC, HASATTR); fsx_nextents is copied and never read.
    vfs_fileattr_set(): hugetlbfs has no ->fileattr_set (ENOTTY); then fileattr_set_rules()."""
    return [
        have_fd(s, fd),
        xflags_mask_rule(XFLAGS_MASK)(s, xflags=xflags),
        no_fileattr(s, "vfs_fileattr_set(): hugetlbfs has no ->fileattr_set"),
        *fileattr_set_rules(s, xflags, extsize, projid, cowextsize),
    ]


#: explored: clear, each xflag that stops a path, and one value for each refusal but the
#: project id's (EXTSZINHERIT, REALTIME: no FS_*_FL twin, SYNC: a twin shmem refuses, 0x4: outside
#: the mask); sizes and project ids are replay's and the symbolic engines' (every value)
SETXATTR_DOMAIN = (0, XFLAG_OF[FS_IMMUTABLE_FL], XFLAG_OF[FS_APPEND_FL], XFLAG_EXTSZINHERIT,
                   X["FS_XFLAG_REALTIME"], X["FS_XFLAG_SYNC"], 0x4)

FS_FSSETXATTR = Action(
    "fs_setxattr", (Param("fd", FD, FD_ALL),
                    Param("xflags", word(32, FS_XFLAGS), SETXATTR_DOMAIN, "fsx_xflags"),
                    Param("extsize", U32, (0,), "fsx_extsize"),
                    Param("projid", U32, (0,), "fsx_projid"),
                    Param("cowextsize", U32, (0,), "fsx_cowextsize")),
    setxattr_body, "ioctl",
    (Fd("fd"), C("FS_IOC_FSSETXATTR"),
     Fields((("fsx_xflags", Flags("xflags", FS_XFLAGS)), ("fsx_extsize", Num("extsize")),
             ("fsx_nextents", Harmless("copy_fsxattr_from_user() copies it and nothing reads "
                                       "it; strace leaves it out", optional=True)),
             ("fsx_projid", Num("projid")), ("fsx_cowextsize", Num("cowextsize"))))),
    "xfs_io chattr: FS_IOC_FSSETXATTR")


#: the xflag each kept flag field shows as (fileattr_fill_flags())
XFLAG_BITS = tuple((f, XFLAG_OF[bit]) for f, bit in FSFLAG_BITS)


def getxattr_body(s: StateView, fd: E) -> list[Rule]:
    """ioctl(FS_IOC_FSGETXATTR) -> ioctl_fsgetxattr() (fs/file_attr.c): an inode without
    ->fileattr_get (hugetlbfs) is ENOTTY; shmem_fileattr_get() fills the flags
    (fileattr_fill_flags(): each as its xflag) and nothing else, so copy_fsxattr_to_user()
    writes fsx_xflags and zeroes fsx_extsize, fsx_nextents, fsx_projid, fsx_cowextsize and the
    padding (the outputs `GETXATTR_OUT`). Any description may ask."""
    return [have_fd(s, fd),
            no_fileattr(s, "vfs_fileattr_get(): hugetlbfs has no ->fileattr_get"), ok(0)]


#: struct fsxattr as FS_IOC_FSGETXATTR fills it: the four flags as xflags, every size 0
GETXATTR_OUT = Fields((("fsx_xflags", Out("fsx_xflags", family=FS_XFLAGS, bits=XFLAG_BITS)),
                       *((n, Out(n, fixed=0)) for n in ("fsx_extsize", "fsx_nextents",
                                                         "fsx_projid", "fsx_cowextsize"))))

FS_FSGETXATTR = Action(
    "fs_getxattr", (Param("fd", FD, FD_ALL),), getxattr_body, "ioctl",
    (Fd("fd"), C("FS_IOC_FSGETXATTR"), GETXATTR_OUT), "xfs_io lsattr: FS_IOC_FSGETXATTR")


# ---- file_getattr(2) and file_setattr(2) (v6.17): the same inode flags through a path ------
#: FILE_ATTR_SIZE_VER0: struct file_attr is {__u64 fa_xflags; __u32 fa_extsize, fa_nextents,
#: fa_projid, fa_cowextsize} (include/uapi/linux/fs.h)
FILE_ATTR_SIZE_VER0 = 24
PAGE_SIZE = 4096
U64 = integer(0, (1 << 64) - 1)
#: the path argument: "" (the descriptor itself, with AT_EMPTY_PATH) or NULL; a real path
#: (/proc/self/fd/N relative to AT_FDCWD) is outside the model
PATH = Choice("path", {0: '""', 1: "NULL"})


def file_attr_checks(s: StateView, path: E, usize: E, at_flags: E, call: str,
                     *, xflags: E | None = None) -> list[Rule]:
    """SYSCALL_DEFINE5(file_getattr / file_setattr) (fs/file_attr.c), before the inode: an
    at_flags bit other than AT_SYMLINK_NOFOLLOW and AT_EMPTY_PATH is EINVAL, a usize over
    PAGE_SIZE E2BIG and under FILE_ATTR_SIZE_VER0 EINVAL; file_setattr() then copies the
    struct (copy_struct_from_user(): a larger usize's tail must be zero, which the model's
    callers pass) and file_attr_to_fileattr() refuses an xflag outside FS_XFLAGS_MASK
    (EINVAL); getname_maybe_null(): without AT_EMPTY_PATH the path is looked up, "" is
    ENOENT and NULL EFAULT; with it, "" or NULL mean the descriptor."""
    rules = [
        fail("EINVAL", when=(at_flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) != 0,
             label="at_flags", why=f"{call}(): at_flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)"),
        fail("E2BIG", when=usize > PAGE_SIZE, label="usize_big",
             why=f"{call}(): usize > PAGE_SIZE"),
        fail("EINVAL", when=usize < FILE_ATTR_SIZE_VER0, label="usize_small",
             why=f"{call}(): usize < FILE_ATTR_SIZE_VER0 (24)"),
    ]
    if xflags is not None:
        rules.append(file_xflags_mask_rule(XFLAGS_MASK)(s, xflags=xflags))
    lookup = Not(at_flags.has(AT_EMPTY_PATH))
    return [*rules,
            fail("ENOENT", when=lookup & (path == 0), label="empty_path",
                 why='getname_maybe_null(): "" without AT_EMPTY_PATH is a lookup of no name'),
            fail("EFAULT", when=lookup & (path == 1), label="null_path",
                 why="getname_maybe_null(): NULL without AT_EMPTY_PATH is getname(NULL)"),
            no_fileattr(s, f"vfs_fileattr_{call[5:8]}(): hugetlbfs has no "
                           f"->fileattr_{call[5:8]} (ENOIOCTLCMD, which {call}() returns as "
                           "EOPNOTSUPP)", "EOPNOTSUPP")]


def file_setattr_body(s: StateView, fd: E, path: E, xflags: E, extsize: E, projid: E,
                      cowextsize: E, usize: E, at_flags: E) -> list[Rule]:
    """file_setattr(fd, "", &attr, usize, AT_EMPTY_PATH) (fs/file_attr.c, v6.17): the
    argument checks (file_attr_checks()), then vfs_fileattr_set() as FS_IOC_FSSETXATTR does
    (fileattr_set_rules(): FS_XFLAG_RDONLY_MASK dropped, fa_nextents not read). Probed on
    6.18.44 (tests/test_file_attr.py)."""
    return [have_fd(s, fd),
            *file_attr_checks(s, path, usize, at_flags, "file_setattr", xflags=xflags),
            *fileattr_set_rules(s, xflags, extsize, projid, cowextsize)]


def file_getattr_body(s: StateView, fd: E, path: E, usize: E, at_flags: E) -> list[Rule]:
    """file_getattr(fd, "", &attr, usize, AT_EMPTY_PATH) (fs/file_attr.c, v6.17): the
    argument checks (file_attr_checks()), then shmem_fileattr_get() and
    copy_struct_to_user(): fa_xflags holds the four flags as xflags, every other field 0
    (the outputs `FILE_ATTR_OUT`; a larger usize's tail is zeroed, not judged)."""
    return [have_fd(s, fd), *file_attr_checks(s, path, usize, at_flags, "file_getattr"),
            ok(0)]


#: explored: the usual size and flags, each xflag that stops a path, and one outside the mask;
#: the other argument checks and refusals are replay's and the symbolic engines' (every value)
FILE_SETATTR_DOMAIN = (0, XFLAG_OF[FS_IMMUTABLE_FL], XFLAG_OF[FS_APPEND_FL], 0x4)
USIZE = Param("usize", U64, (FILE_ATTR_SIZE_VER0,), "size_t usize")
AT_PARAM = Param("at_flags", word(32, FILE_ATTR_AT_FLAGS), (AT_EMPTY_PATH,), "at_flags")
AT_ARG = Flags("at_flags", FILE_ATTR_AT_FLAGS)
FD_PATH = (Param("fd", FD, FD_ALL), Param("path", enum("empty", "null"), (0,), '"" or NULL'))

FILE_SETATTR = Action(
    "file_setattr", (*FD_PATH,
                     Param("xflags", word(64, FS_XFLAGS), FILE_SETATTR_DOMAIN, "fa_xflags"),
                     Param("extsize", U32, (0,), "fa_extsize"),
                     Param("projid", U32, (0,), "fa_projid"),
                     Param("cowextsize", U32, (0,), "fa_cowextsize"), USIZE, AT_PARAM),
    file_setattr_body, "file_setattr",
    (Fd("fd"), PATH,
     Fields((("fa_xflags", Flags("xflags", FS_XFLAGS)), ("fa_extsize", Num("extsize")),
             ("fa_nextents", Harmless("file_attr_to_fileattr() does not read it; strace "
                                      "leaves it out of a set", optional=True)),
             ("fa_projid", Num("projid")), ("fa_cowextsize", Num("cowextsize")))),
     Num("usize"), AT_ARG),
    "file_setattr(fd, \"\", &attr, usize, AT_EMPTY_PATH) (v6.17): FS_IOC_FSSETXATTR's rules")

#: struct file_attr as file_getattr fills it: the four flags as xflags, every other field 0
FILE_ATTR_OUT = Fields((("fa_xflags", Out("fa_xflags", family=FS_XFLAGS, bits=XFLAG_BITS)),
                        *((n, Out(n, fixed=0)) for n in ("fa_extsize", "fa_nextents",
                                                          "fa_projid", "fa_cowextsize"))))

FILE_GETATTR = Action(
    "file_getattr", (*FD_PATH, USIZE, AT_PARAM),
    file_getattr_body, "file_getattr", (Fd("fd"), PATH, FILE_ATTR_OUT, Num("usize"), AT_ARG),
    "file_getattr(fd, \"\", &attr, usize, AT_EMPTY_PATH) (v6.17): the four flags as xflags")
