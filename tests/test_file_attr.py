"""file_getattr(2) and file_setattr(2) (v6.17, fs/file_attr.c) on a memfd: the inode flags of
chattr through a path-based call (model/designs/memfd_fsflags.py), against a decision table.

Probed on 6.18.44 with a ctypes program (raw syscalls 468 and 469, as root), written down here
before the model was: the call's own checks come first and in this order: an at_flags bit
other than AT_SYMLINK_NOFOLLOW and AT_EMPTY_PATH is EINVAL, a usize over 4096 E2BIG and under
24 EINVAL, a non-zero byte past the struct E2BIG, an fa_xflags bit outside FS_XFLAGS_MASK
(0x4, 0x20000, any of the upper 32 bits) EINVAL where the ioctl says EOPNOTSUPP, and only then
the path: "" without AT_EMPTY_PATH is ENOENT, NULL without it EFAULT, either with it the
descriptor itself (a bad descriptor is EBADF only after all of these). Then FS_IOC_FSSETXATTR's
rules: PREALLOC and HASATTR ignored, EXTSZINHERIT and project id 0xffffffff EINVAL, SYNC,
REALTIME, a non-zero extent size, project id or CoW extent size EOPNOTSUPP; fa_nextents is
not read. hugetlbfs is EOPNOTSUPP (the ioctl's ENOTTY, turned), after the mask check.
file_getattr shows the four flags as xflags and zeroes the rest, through any description.
7.2.13 and 7.3-rc7 (QEMU guests) take 0x20000, 0x40000 and 0x80000 as read-only xflags here as
in the ioctl; 6.1 and 6.12 have no such calls (their designs leave them out).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from checker.replay import TraceInputError
from tests.conftest import kernel_agrees, replay_text

MFD = 'memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, 4096) = 0\n'
EINVAL, EOPNOTSUPP = "-1 EINVAL", "-1 EOPNOTSUPP"


def fset(xflags: str = "0", size: int = 24, flags: str = "AT_EMPTY_PATH", path: str = '""',
         fd: int = 3, extsize: int = 0, projid: int = 0, cow: int = 0) -> str:
    """One file_setattr line as strace prints it (fa_nextents left out, as strace does)."""
    return (f"file_setattr({fd}, {path}, {{fa_xflags={xflags}, fa_extsize={extsize}, "
            f"fa_projid={projid:#x}, fa_cowextsize={cow}}}, {size}, {flags})")


def fget(xflags: str = "0", size: int = 24, flags: str = "AT_EMPTY_PATH", path: str = '""',
         fd: int = 3, zero: str = "0") -> str:
    """A successful file_getattr as strace prints it (`zero`: the other four fields)."""
    return (f"file_getattr({fd}, {path}, {{fa_xflags={xflags}, fa_extsize={zero}, "
            f"fa_nextents={zero}, fa_projid={zero}, fa_cowextsize={zero}}}, {size}, {flags}) = 0")


def getflags(flags: str) -> str:
    return f"ioctl(3, FS_IOC_GETFLAGS, [{flags}]) = 0"


TABLE = {
    "argument checks, in the kernel's order, before the path and the inode":
        MFD + f"{fset('0x4', size=4097, flags='AT_EMPTY_PATH|0x2')} = {EINVAL}\n"
        f"{fset('0x4', size=4097)} = -1 E2BIG\n{fset('0x4', size=23)} = {EINVAL}\n"
        f"{fset('0x4', flags='0')} = {EINVAL}\n{fset(flags='0')} = -1 ENOENT\n"
        f"{fset(flags='0', path='NULL')} = -1 EFAULT\n{fset('0x20000')} = {EINVAL}\n"
        f"{fset('0x100000000')} = {EINVAL}\n{fset('FS_XFLAG_APPEND|0x8000000000000000')}"
        f" = {EINVAL}\n{getflags('0')}",
    "accepted: any usize from 24 to 4096, NULL or \"\" with AT_EMPTY_PATH, read-only xflags":
        MFD + f"{fset('FS_XFLAG_APPEND', size=4096)} = 0\n{getflags('FS_APPEND_FL')}\n"
        f"{fset(path='NULL', flags='AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW')} = 0\n"
        f"{fset('FS_XFLAG_PREALLOC|FS_XFLAG_HASATTR')} = 0\n"
        f"{fset('FS_XFLAG_EXTSIZE|FS_XFLAG_COWEXTSIZE', size=25)} = 0\n{getflags('0')}",
    "sets the four flags through a read-only description under every seal":
        'memfd_create("t", MFD_ALLOW_SEALING) = 3\nopen("/proc/self/fd/3", O_RDONLY) = 4\n'
        "fcntl(3, F_ADD_SEALS, F_SEAL_SEAL|F_SEAL_WRITE|F_SEAL_GROW|F_SEAL_SHRINK) = 0\n"
        f"{fset('FS_XFLAG_IMMUTABLE|FS_XFLAG_NODUMP', fd=4)} = 0\n"
        f"{getflags('FS_IMMUTABLE_FL|FS_NODUMP_FL')}\nfchmod(3, 0600) = -1 EPERM\n"
        'open("/proc/self/fd/3", O_RDWR) = -1 EPERM\n'
        f"{fset('FS_XFLAG_NOATIME', fd=4)} = 0\n{getflags('FS_NOATIME_FL')}\n"
        "fchmod(3, 0600) = 0",
    "refusals after the path: the ioctl's, and a refused set keeps the flags":
        MFD + f"{fset('FS_XFLAG_APPEND')} = 0\n{fset('FS_XFLAG_EXTSZINHERIT')} = {EINVAL}\n"
        f"{fset(projid=0xFFFFFFFF)} = {EINVAL}\n{fset(projid=1)} = {EOPNOTSUPP}\n"
        f"{fset(extsize=4096)} = {EOPNOTSUPP}\n{fset(cow=1)} = {EOPNOTSUPP}\n"
        f"{fset('FS_XFLAG_SYNC')} = {EOPNOTSUPP}\n{fset('FS_XFLAG_REALTIME')} = {EOPNOTSUPP}\n"
        f"{getflags('FS_APPEND_FL')}\nftruncate(3, 0) = -1 EPERM",
    "getting: the four flags as xflags, however set, through any description":
        MFD + f"{fget()}\nioctl(3, FS_IOC_SETFLAGS, [FS_APPEND_FL|FS_NODUMP_FL]) = 0\n"
        f"{fget('FS_XFLAG_APPEND|FS_XFLAG_NODUMP', size=32)}\n"
        'open("/proc/self/fd/3", O_RDONLY) = 4\n'
        f"{fget('FS_XFLAG_APPEND|FS_XFLAG_NODUMP', fd=4, path='NULL')}\n"
        "file_getattr(3, \"\", 0x7ffd1000, 23, AT_EMPTY_PATH) = -1 EINVAL\n"
        "file_getattr(3, \"\", 0x7ffd1000, 4097, AT_EMPTY_PATH) = -1 E2BIG\n"
        "file_getattr(3, \"\", 0x7ffd1000, 24, 0) = -1 ENOENT\n"
        "file_getattr(3, \"\", 0x7ffd1000, 24, AT_EMPTY_PATH|0x1) = -1 EINVAL",
}

#: hugetlbfs has neither ->fileattr_get nor ->fileattr_set: EOPNOTSUPP, after the mask check
HUGE = ('memfd_create("t", MFD_HUGETLB) = 3\n'
        f"{fset('FS_XFLAG_APPEND')} = {EOPNOTSUPP}\n{fset('0x4')} = {EINVAL}\n"
        f"{fset(projid=0xFFFFFFFF)} = {EOPNOTSUPP}\n"
        'file_getattr(3, "", 0x7ffc3a1b2c40, 24, AT_EMPTY_PATH) = -1 EOPNOTSUPP')

#: 7.2.13 and 7.3-rc7 (QEMU guests): 0x20000, 0x40000 and 0x80000 are read-only xflags
OTHER = (MFD + f"{fset('0x20000')} = 0\n{fset('0x80000|FS_XFLAG_APPEND')} = 0\n"
         f"{fget('FS_XFLAG_APPEND')}\n{fset('0x100000')} = {EINVAL}\n"
         f"{fset('0x100000000')} = {EINVAL}\n{fset('0x4')} = {EINVAL}")


@pytest.mark.parametrize("name", list(TABLE))
def test_file_attr_table(name: str) -> None:
    assert replay_text(TABLE[name]) is None


def test_hugetlbfs_is_eopnotsupp_after_the_mask() -> None:
    assert replay_text(HUGE) is None


@pytest.mark.parametrize("design", ["memfd@7.2", "memfd@7.3-rc"])
def test_7x_designs_take_their_read_only_xflags(design: str) -> None:
    assert replay_text(OTHER, design) is None
    assert replay_text(OTHER) is not None  # 6.18: 0x20000 is EINVAL


@pytest.mark.parametrize("design", ["memfd@6.1", "memfd@6.12", "memfd@5.17"])
def test_kernels_before_6_17_have_no_file_setattr(design: str) -> None:
    with pytest.raises(TraceInputError, match=r"has no call .file_setattr."):
        replay_text(MFD + f"{fset()} = 0", design)


def test_a_wrong_outcome_or_output_is_reported() -> None:
    text = TABLE["refusals after the path: the ioctl's, and a refused set keeps the flags"]
    assert replay_text(text.replace(f"{fset(projid=1)} = {EOPNOTSUPP}",
                                    f"{fset(projid=1)} = 0")) is not None
    div = replay_text(TABLE["getting: the four flags as xflags, however set, through any "
                            "description"].replace("FS_XFLAG_APPEND|FS_XFLAG_NODUMP, ",
                                                   "FS_XFLAG_APPEND, ", 1))
    assert div is not None and "fa_xflags" in div, div


@pytest.mark.parametrize("line, why", [
    (fset(path='"/proc/self/fd/3"', flags="0"), r'path "/proc/self/fd/3": the model'),
    (fset("0x10000000000000000"), "64-bit"),
    (fset(extsize=1 << 32), "0..4294967295"),
    ("file_setattr(3, \"\", NULL, 24, AT_EMPTY_PATH)", "EFAULT"),
    ("file_setattr(3, \"\", 0x7ffd1000, 24, AT_EMPTY_PATH)", "expected a struct"),
    (fset().replace("fa_cowextsize=0}", "fa_cowextsize=0, fa_bogus=1}"),
     "unknown struct field fa_bogus")])
def test_values_outside_the_model_are_refused(line: str, why: str) -> None:
    """A path the model does not resolve, a field wider than its __u64/__u32, a NULL struct
    (copy_struct_from_user()'s EFAULT): refused with the reason, not judged; a set's struct
    shown as an address cannot be judged either (its fields decide), nor a field struct
    file_attr does not have (fa_nextents, which a set does not read, may be shown)."""
    with pytest.raises(TraceInputError, match=why):
        replay_text(MFD + line + " = 0")


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(TABLE))
def test_file_attr_table_on_kernel(name: str) -> None:
    kernel_agrees(TABLE[name])


@pytest.mark.kernel
def test_hugetlb_row_on_kernel() -> None:
    kernel_agrees(HUGE, hugepages=2)


@pytest.mark.kernel
def test_a_wrong_output_fails_on_kernel() -> None:
    """kernel_agrees compares the struct file_getattr filled with the trace's fields."""
    text = TABLE["getting: the four flags as xflags, however set, through any description"]
    with pytest.raises(AssertionError, match="fa_"):
        kernel_agrees(text.replace(fget(), fget(zero="1"), 1))


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("version", ["7.2", "7.3-rc"])
def test_7x_rows_on_their_guests(version: str, tmp_path: Path) -> None:
    """OTHER and the decision table, replayed in the fetched guest of the kernel."""
    from tests.test_kernel_designs import _guest

    _guest(version)
    rows = {"other": OTHER, **{f"t{i}": t for i, t in enumerate(TABLE.values())}}
    for name, text in rows.items():
        table = text if name == "other" else text.replace(fset("0x20000"), fset("0x4"))
        (tmp_path / f"{name}.trace").write_text(
            f"# shmemcheck trace 1\n# design: memfd@{version}\n{table}\n")
    p = subprocess.run([sys.executable, "-m", "checker.cli", "replay", str(tmp_path), "--on",
                        f"kernel@{version}"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{len(rows)} agree, 0 diverge" in p.stdout, p.stdout
