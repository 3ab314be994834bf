"""memfd+flags and memfd+luo (issue 18): the mainline flags word and memfd preservation across
a live update. Decision tables written from mm/shmem.c and mm/memfd_luo.c (linux-mm fb2257f1)
and kernel/liveupdate/luo_file.c, not from the model; no kernel here has CONFIG_LIVEUPDATE."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from checker.explicit import ExploreResult
from checker.flags_word import compare, flag_uses
from model import designs
from tests.conftest import replay_text

ROOT = Path(__file__).resolve().parent.parent
EBUSY = "-1 EBUSY (Device or resource busy)"
EPERM = "-1 EPERM (Operation not permitted)"


def agrees(text: str) -> None:
    d = replay_text(text, "memfd+luo")
    assert d is None, d


def test_preserve_freezes_pins_and_refuses_a_second_preservation() -> None:
    """luo_preserve_file(): xa_insert() of the inode finds it (00d0b372374f) -> EBUSY, through
    the same or another description; shmem_setattr()'s FROZEN check comes after the seals'."""
    agrees(f"""memfd_create("t", MFD_ALLOW_SEALING) = 3
pwrite64(3, "x"..., 4096, 0) = 4096
ioctl(SESSION, LIVEUPDATE_SESSION_PRESERVE_FD, 3) = 0
ioctl(SESSION, LIVEUPDATE_SESSION_PRESERVE_FD, 3) = {EBUSY}
open("/proc/self/fd/3", O_RDONLY) = 4
ioctl(SESSION, LIVEUPDATE_SESSION_PRESERVE_FD, 4) = {EBUSY}
ftruncate(3, 8192) = {EPERM}
ftruncate(3, 4096) = 0
fcntl(3, F_ADD_SEALS, F_SEAL_SHRINK) = 0
ftruncate(3, 0) = {EPERM}
fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = {EBUSY}
""")


def test_frozen_writes_within_eof_only_and_no_fallocate() -> None:
    """shmem_write_begin(), per page-sized chunk of generic_perform_write(): a chunk ending
    past i_size on a frozen inode is refused, EPERM when it is the first, else the bytes
    written before it; shmem_fallocate(): every mode EPERM, after its own
    mode check (vfs_fallocate() refuses PUNCH_HOLE without KEEP_SIZE before)."""
    agrees(f"""memfd_create("t", MFD_ALLOW_SEALING) = 3
ftruncate(3, 6144) = 0
ioctl(SESSION, LIVEUPDATE_SESSION_PRESERVE_FD, 3) = 0
pwrite64(3, "x"..., 8192, 0) = 4096
pwrite64(3, "x"..., 2048, 4096) = 2048
pwrite64(3, "x"..., 4096, 4096) = {EPERM}
fallocate(3, FALLOC_FL_KEEP_SIZE, 0, 4096) = {EPERM}
fallocate(3, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE, 0, 4096) = {EPERM}
fallocate(3, FALLOC_FL_PUNCH_HOLE, 0, 4096) = -1 EOPNOTSUPP (Operation not supported)
mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1
madvise(m1, 4096, MADV_REMOVE) = {EPERM}
close(SESSION) = 0
ftruncate(3, 8192) = 0
fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = {EBUSY}
""")


def test_hugetlbfs_has_no_handler_and_too_large_is_efbig() -> None:
    """memfd_luo_can_preserve(): shmem_file() && !i_nlink is false on hugetlbfs and for a
    tmpfs file (linked) -> ENOENT; more than
    UINT_MAX pages -> EFBIG, and the inode is unfrozen again."""
    agrees("""memfd_create("t", MFD_HUGETLB) = 3
ioctl(SESSION, LIVEUPDATE_SESSION_PRESERVE_FD, 3) = -1 ENOENT (No such file or directory)
""")
    agrees("""open("/dev/shm/t", O_RDWR|O_CREAT, 0600) = 3
ioctl(SESSION, LIVEUPDATE_SESSION_PRESERVE_FD, 3) = -1 ENOENT (No such file or directory)
""")
    agrees(f"""memfd_create("t", 0) = 3
ftruncate(3, {(1 << 32) * 4096 + 1}) = 0
ioctl(SESSION, LIVEUPDATE_SESSION_PRESERVE_FD, 3) = -1 EFBIG (File too large)
ftruncate(3, 0) = 0
""")


def test_retrieve_gives_mode_0777_and_the_seals_of_the_preserve_widened() -> None:
    """memfd_luo_retrieve(): memfd_alloc_file("", MFD_ALLOW_SEALING) is 0777, then
    memfd_add_seals(ser->seals) -- recorded at preserve (memfd_luo_freeze() records f_pos only,
    so F_SEAL_SEAL added after the preserve is lost) -- widens F_SEAL_EXEC on the x bits."""
    agrees("""memfd_create("t", MFD_NOEXEC_SEAL) = 3
pwrite64(3, "x"..., 4096, 0) = 4096
ioctl(SESSION, LIVEUPDATE_SESSION_PRESERVE_FD, 3) = 0
fcntl(3, F_ADD_SEALS, F_SEAL_SEAL) = 0
reboot(LINUX_REBOOT_CMD_KEXEC) = 0
ioctl(SESSION, LIVEUPDATE_SESSION_RETRIEVE_FD) = 3
fcntl(3, F_GET_SEALS) = 0x3e
fchmod(3, 0666) = -1 EPERM (Operation not permitted)
ftruncate(3, 4096) = 0
ftruncate(3, 0) = -1 EPERM (Operation not permitted)
ioctl(SESSION, LIVEUPDATE_SESSION_FINISH) = 0
""")


def test_flags_word_landed_as_kirill_proposed_but_bit_2() -> None:
    from properties.catalogue import load  # noqa: F401  (designs' properties registered)

    lines, same = compare(designs.get("v5-flags"), designs.get("memfd+luo"))
    assert not same
    assert "  NORESERVE        iflags:0x1 -> iflags:0x1" in lines
    assert "  LOCKED           iflags:0x2 -> iflags:0x2" in lines
    assert "  iflags:0x4: INACCESSIBLE in v5-flags, MAPPING_FROZEN in memfd+luo" in lines
    uses = flag_uses(designs.get("memfd+luo"))
    assert uses["MAPPING_FROZEN"].writes == {"luo_preserve.ok", "luo_unpreserve.ok",
                                             "luo_kexec.ok"}
    assert uses["MAPPING_FROZEN"].reads == {
        "ftruncate.frozen", "reopen.frozen", "shm_open.frozen", "shm_create.frozen",
        "pwrite.frozen", "pwrite.frozen_short",
        "splice_write.frozen", "splice_write.frozen_short", "copy_file_range.frozen",
        "copy_file_range.frozen_short", "pwritev2.frozen",
        "pwritev2.frozen_short", "pwritev2_fpos.frozen", "pwritev2_fpos.frozen_short",
        "pwritev.frozen", "pwritev.frozen_short", "uring_write.frozen",
        "uring_write.frozen_short", "write.frozen",
        "write.frozen_short", "writev.frozen", "writev.frozen_short", "sendfile.frozen",
        "sendfile.frozen_short", "fallocate.frozen", "madvise_remove.frozen"}


def test_a_moved_reader_is_a_difference_in_the_flags_word() -> None:
    """A layout change alone is no difference; a reader left at the old bit is."""
    b = designs.get("memfd+flags")
    moved = b.derive("m", "", layout={"LOCKED": ("iflags", 0x2), "NORESERVE": ("iflags", 0x1)})
    assert compare(b, moved)[1]
    stale = b.derive("s", "", layout={"reclaim:LOCKED": ("commit_full", 0x1)})
    lines, same = compare(b, stale)
    assert not same and lines[-1] == "flags word: DIFFERENT (flags or the rules that use them)"


def shmemcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "checker.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)


def test_landed_flags_word_is_a_pure_refactoring() -> None:
    """6ff1610ced56 "No functional changes intended": z3 proves it for every scope."""
    p = shmemcheck("diff", "memfd+flags", "examples/flags-as-6.18.py", "--engine", "symbolic")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "  NORESERVE: memfd+flags iflags:0x1, memfd+flags@6.18 iflags:0x200000" in p.stdout
    assert p.stdout.splitlines()[-1].startswith("diff: EQUIVALENT for every scope")


def test_symbolic_diff_refuses_different_calls_and_a_scope() -> None:
    p = shmemcheck("diff", "memfd+flags", "memfd+luo", "--engine", "symbolic")
    assert p.returncode == 2 and "memfd+luo only: luo_finish" in p.stderr
    p = shmemcheck("diff", "memfd", "memfd", "--engine", "symbolic", "--scope", "pages=2")
    assert p.returncode == 2 and "no scope" in p.stderr
    p = shmemcheck("diff", "--flags-word", "memfd", "memfd", "--engine", "explicit")
    assert p.returncode == 2 and "--engine does not apply" in p.stderr


@pytest.mark.slow
def test_memfd_luo_catalogue_as_expected(explored: Callable[[str], ExploreResult]) -> None:
    """Its verdicts, and its pinned counts (tests/manifest.json: the one search of it)."""
    from tests import manifest

    r = explored("memfd+luo")
    assert r.complete
    assert manifest.entry(r) == manifest.load()["memfd+luo"], \
        "memfd+luo: regenerate with `python -m tests.manifest --update` if deliberate"
    wrong = [n for n, o in r.props.items()
             if o.holds != (o.prop.expected("memfd+luo") in ("holds", "witnessed"))]
    assert wrong == []
    assert {"frozen-size-fixed", "live-update-keeps-seals", "sometimes-retrieved"} <= set(
        r.props)
    # the findings: a live update widens F_SEAL_EXEC and makes an MFD_NOEXEC_SEAL memfd 0777
    for name in ("live-update-keeps-seals", "live-update-keeps-mode",
                 "noexec-seal-never-executable-shmem"):
        run = r.props[name].run
        assert run is not None and run.steps[-1].action == "luo_retrieve", name
