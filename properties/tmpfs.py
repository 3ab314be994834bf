"""What a tmpfs file on /dev/shm promises (glibc's shm_open(), model/designs/memfd_open.py):
it is created sealed with F_SEAL_SEAL, so no seal is ever added to it, and its name goes with
unlink(), after which it lives on like a memfd."""

from __future__ import annotations

from model.lang.expr import E, Implies
from model.lang.schema import StateView
from model.vocab import F_SEAL_SEAL
from properties.catalogue import NOT_WITNESSED, prop
from properties.views import TransitionView


@prop("tmpfs-file-never-sealed", "always", """A file open(O_CREAT) made on /dev/shm has
      exactly F_SEAL_SEAL while it has its name: shmem_mknod() creates it so, and
      memfd_add_seals() refuses every later seal (EPERM); only memfd_create(MFD_ALLOW_SEALING)
      makes a sealable shmem file.""", "__shmem_get_inode(), memfd_add_seals()")
def tmpfs_file_never_sealed(s: StateView) -> E:
    return Implies(s.linked, s.seals == F_SEAL_SEAL)


@prop("sometimes-tmpfs-file-unlinked", "sometimes-action", """unlink() removes the /dev/shm
      name of a file open(O_CREAT) made there (the tmpfs paths are not vacuous: creation, and
      a name that may_delete() lets go). The historical designs have no unlink().""",
      "shmem_mknod(), may_delete(), shmem_unlink()",
      expect=dict.fromkeys(("memfd@5.17", "v5-inaccessible", "v5-flags"), NOT_WITNESSED))
def w_tmpfs_unlinked(t: TransitionView) -> E:
    return t.ok & t.is_("unlink")
