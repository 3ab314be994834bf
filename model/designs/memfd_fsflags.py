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
"""

from __future__ import annotations

from model.designs.memfd_state import FD, FD_ALL, FSFLAG_BITS, SHMEM_FSFLAGS, have_fd
from model.lang import Action, E, If, Param, Rule, fail, ok, word
from model.lang.action import as_updates
from model.lang.callspec import C, Fd, Out, Ptr
from model.lang.schema import StateView
from model.vocab import FS_APPEND_FL, FS_FLAGS, FS_IMMUTABLE_FL

#: SHMEM_FL_USER_MODIFIABLE less FS_CASEFOLD_FL, which only a directory of a tmpfs mounted with
#: an encoding takes (shmem_set_inode_flags(): EOPNOTSUPP on shm_mnt, which has none)
SHMEM_FL_MODIFIABLE = sum(SHMEM_FSFLAGS.values())
FS_SECRM_FL = FS_FLAGS["FS_SECRM_FL"]


def _flag_updates(s: StateView, flags: E) -> dict[str, E | int]:
    """info->fsflags = flags: each kept flag field from its bit (the fields the design has)."""
    return {f: If(flags.has(bit), 1, 0) for f, bit in FSFLAG_BITS if hasattr(s, f)}


def no_fileattr(s: StateView, why: str) -> Rule:
    """hugetlbfs's inode operations have neither ->fileattr_get nor ->fileattr_set: the
    vfs_fileattr_*() call is ENOIOCTLCMD, which vfs_ioctl() turns into ENOTTY."""
    return fail("ENOTTY", when=s.hugetlb, label="no_fileattr", why=why)


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
