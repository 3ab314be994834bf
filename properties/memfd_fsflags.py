"""What chattr's inode flags promise on a memfd (FS_IOC_SETFLAGS, tmpfs since 6.0): checked over
every path of the design, as the seals are (model/designs/memfd_fsflags.py). Each speaks of one
inode: memfd+luo's retrieval in the next kernel makes a new one (memfd_alloc_file(), no flag)."""

from __future__ import annotations

from model.designs.memfd_state import append_only, immutable
from model.lang.expr import E, Implies, false, true
from properties.catalogue import HOLDS, NOT_WITNESSED, VIOLATED, prop
from properties.views import TransitionView

#: designs whose shmem has no ->fileattr_set (before 6.0): the flags are never set there
PRE_FSFLAGS = ("memfd@5.17", "v5-inaccessible", "v5-flags")
#: kernel designs without file_setattr() (v6.17)
NO_FILE_SETATTR = ("memfd@6.1", "memfd@6.12")


@prop("immutable-file-unchanged", "action", """While FS_IMMUTABLE_FL (chattr +i) is set,
      neither the content nor the size nor the mode of the file changes, by any path. Violated
      on memfd (and tmpfs): the flag is checked where a path opens the file for writing
      (may_open(): EPERM) or goes through notify_change(), vfs_fallocate() or
      generic_copy_file_checks(), but not in shmem's write_iter, in a fault or in
      do_ftruncate(), so a description or mapping made before the flag still writes and
      truncates the file. Before 6.0 no shmem file could be made immutable.""",
      "may_open(), notify_change(), vfs_fallocate(), generic_copy_file_checks(); NOT "
      "shmem_file_write_iter(), do_ftruncate(), shmem_fault()",
      expect={"memfd": VIOLATED, **dict.fromkeys(PRE_FSFLAGS, HOLDS)})
def immutable_file_unchanged(t: TransitionView) -> E:
    if t.is_("luo_retrieve"):  # memfd+luo: the next kernel's file is a new inode
        return true
    return Implies(immutable(t.s), (t.eff == 0) & (t.n.size == t.s.size)
                   & (t.n.mode == t.s.mode))


@prop("immutable-mode-fixed", "action", """While FS_IMMUTABLE_FL is set the mode never
      changes (notify_change() refuses ATTR_MODE), whatever the seals.""", "notify_change()")
def immutable_mode_fixed(t: TransitionView) -> E:
    if t.is_("luo_retrieve"):
        return true
    return Implies(immutable(t.s), t.n.mode == t.s.mode)


@prop("append-only-never-shrinks", "action", """While FS_APPEND_FL (chattr +a) is set the file
      never shrinks: ftruncate() (do_ftruncate(): IS_APPEND) and open(O_TRUNC) (may_open())
      are EPERM, and hole punching is too (vfs_fallocate(), also for MADV_REMOVE).""",
      "do_ftruncate(), may_open(), vfs_fallocate()")
def append_only_never_shrinks(t: TransitionView) -> E:
    if t.is_("luo_retrieve"):
        return true
    return Implies(append_only(t.s), t.n.size >= t.s.size)


@prop("sometimes-immutable-file-written", "sometimes-action", """A write reaches an immutable
      file (the finding behind immutable-file-unchanged: the precondition is not vacuous, and
      the explicit engine's witness is the shortest trace that shows it). Before 6.0 no shmem
      file is immutable.""", "shmem_file_write_iter()",
      expect=dict.fromkeys(PRE_FSFLAGS, NOT_WITNESSED))
def w_immutable_written(t: TransitionView) -> E:
    return immutable(t.s) & (t.eff != 0)


@prop("sometimes-append-only-set", "sometimes-action", """FS_IOC_SETFLAGS makes a file
      append-only (the precondition of append-only-never-shrinks). Not before 6.0.""",
      "shmem_fileattr_set()", expect=dict.fromkeys(PRE_FSFLAGS, NOT_WITNESSED))
def w_append_set(t: TransitionView) -> E:
    if not t.is_("fs_setflags"):
        return false
    return t.ok & append_only(t.n)


@prop("sometimes-xattr-sets-immutable", "sometimes-action", """FS_IOC_FSSETXATTR (xfs_io's
      chattr, FS_XFLAG_IMMUTABLE) makes a file immutable: the second path to the flag that
      immutable-mode-fixed and immutable-file-unchanged speak of is not vacuous. Not before
      6.0.""",
      "ioctl_fssetxattr(), shmem_fileattr_set()",
      expect=dict.fromkeys(PRE_FSFLAGS, NOT_WITNESSED))
def w_xattr_immutable(t: TransitionView) -> E:
    if not t.is_("fs_setxattr"):
        return false
    return t.ok & immutable(t.n)


@prop("sometimes-file-setattr-sets-immutable", "sometimes-action", """file_setattr(2)
      (v6.17: fd, "", FS_XFLAG_IMMUTABLE, AT_EMPTY_PATH) makes a file immutable: the third
      path to the flag is not vacuous. Not before 6.0, nor on 6.1 and 6.12 (no such call).""",
      "file_setattr(), shmem_fileattr_set()",
      expect=dict.fromkeys((*PRE_FSFLAGS, *NO_FILE_SETATTR), NOT_WITNESSED))
def w_file_setattr_immutable(t: TransitionView) -> E:
    if not t.is_("file_setattr"):
        return false
    return t.ok & immutable(t.n)
