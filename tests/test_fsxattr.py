"""FS_IOC_FSSETXATTR and FS_IOC_FSGETXATTR (xfs_io's chattr and lsattr: struct fsxattr) on a
memfd, a second way to chattr's flags (model/designs/memfd_fsflags.py), against a decision
table.

Probed on 6.18.44 with ctypes programs, bit by bit, as root: FS_XFLAG_IMMUTABLE, _APPEND,
_NODUMP and _NOATIME set the four FS_*_FL flags (FS_IOC_GETFLAGS shows them; ftruncate is
then EPERM on append-only); PREALLOC and HASATTR are ignored; EXTSIZE and COWEXTSIZE with a
zero size are cleared and succeed; EXTSZINHERIT is EINVAL (not a directory), and so is
project id 0xffffffff; a non-zero extsize, project id or cowextsize, SYNC, DAX, PROJINHERIT
and the other xflags are EOPNOTSUPP; bits outside the kernel's mask (0x4, 0x20000 and up but
the top bit) are EOPNOTSUPP even on hugetlbfs, where every other request is ENOTTY.
fsx_nextents is not read. Any description may set them; seals do not stop it.
FS_IOC_FSGETXATTR fills fsx_xflags with the four flags as xflags, however they were set, and
zeroes the other four fields; hugetlbfs is ENOTTY (strace then prints the address).
6.1.192 and 6.12.118, and 7.2.13 and 7.3-rc7 (QEMU guests), differ in the set masks: rows of
their own below; their FS_IOC_FSGETXATTR is 6.18's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from checker.replay import TraceInputError
from model import designs, vocab
from tests.conftest import kernel_agrees, replay_text

MFD = 'memfd_create("t", MFD_ALLOW_SEALING) = 3\nftruncate(3, 8192) = 0\n'
EOPNOTSUPP, EINVAL, ENOTTY = "-1 EOPNOTSUPP", "-1 EINVAL", "-1 ENOTTY"


def setx(xflags: str, extsize: int = 0, projid: int = 0, cow: int = 0, fd: int = 3,
         nextents: int | None = None) -> str:
    """One FS_IOC_FSSETXATTR line as strace prints it (nextents only when given)."""
    nx = "" if nextents is None else f", fsx_nextents={nextents}"
    return (f"ioctl({fd}, FS_IOC_FSSETXATTR, {{fsx_xflags={xflags}, fsx_extsize={extsize}"
            f"{nx}, fsx_projid={projid}, fsx_cowextsize={cow}}})")


def get(flags: str) -> str:
    return f"ioctl(3, FS_IOC_GETFLAGS, [{flags}]) = 0"


def getx(xflags: str, fd: int = 3, zero: str = "0") -> str:
    """FS_IOC_FSGETXATTR as strace prints a successful one (`zero`: the other four fields)."""
    return (f"ioctl({fd}, FS_IOC_FSGETXATTR, {{fsx_xflags={xflags}, fsx_extsize={zero}, "
            f"fsx_nextents={zero}, fsx_projid={zero}, fsx_cowextsize={zero}}}) = 0")


TABLE = {
    "append: FS_XFLAG_APPEND is FS_APPEND_FL: ftruncate EPERM, shared mappings EACCES":
        MFD + f"{setx('FS_XFLAG_APPEND')} = 0\n{get('FS_APPEND_FL')}\n"
        "ftruncate(3, 4096) = -1 EPERM\n"
        "mmap(NULL, 4096, PROT_READ, MAP_SHARED, 3, 0) = -1 EACCES\n"
        f"{setx('0')} = 0\n{get('0')}\nftruncate(3, 4096) = 0",
    "immutable, nodump, noatime: the other three, set and cleared together":
        MFD + f"{setx('FS_XFLAG_IMMUTABLE|FS_XFLAG_NODUMP|FS_XFLAG_NOATIME')} = 0\n"
        f"{get('FS_IMMUTABLE_FL|FS_NODUMP_FL|FS_NOATIME_FL')}\n"
        'fchmod(3, 0600) = -1 EPERM\nopen("/proc/self/fd/3", O_RDWR) = -1 EPERM\n'
        f"{setx('FS_XFLAG_NOATIME')} = 0\n{get('FS_NOATIME_FL')}\nfchmod(3, 0600) = 0",
    "ignored: read-only xflags, zero-size extent hints, fsx_nextents":
        MFD + f"{setx('FS_XFLAG_PREALLOC')} = 0\n{setx('FS_XFLAG_HASATTR')} = 0\n"
        f"{setx('FS_XFLAG_EXTSIZE|FS_XFLAG_COWEXTSIZE')} = 0\n"
        f"{setx('FS_XFLAG_APPEND', nextents=5)} = 0\n{get('FS_APPEND_FL')}",
    "refused: a refused set keeps the flags":
        MFD + f"{setx('FS_XFLAG_APPEND')} = 0\n"
        f"{setx('FS_XFLAG_EXTSZINHERIT')} = {EINVAL}\n"
        f"{setx('0', projid=0xFFFFFFFF)} = {EINVAL}\n"
        f"{setx('FS_XFLAG_EXTSZINHERIT', extsize=4096)} = {EINVAL}\n"
        f"{setx('0', extsize=4096)} = {EOPNOTSUPP}\n"
        f"{setx('FS_XFLAG_EXTSIZE', extsize=4096)} = {EOPNOTSUPP}\n"
        f"{setx('0', projid=1)} = {EOPNOTSUPP}\n{setx('0', cow=1)} = {EOPNOTSUPP}\n"
        f"{setx('FS_XFLAG_SYNC')} = {EOPNOTSUPP}\n{setx('FS_XFLAG_DAX')} = {EOPNOTSUPP}\n"
        f"{setx('FS_XFLAG_PROJINHERIT')} = {EOPNOTSUPP}\n"
        f"{setx('FS_XFLAG_REALTIME')} = {EOPNOTSUPP}\n"
        f"{setx('FS_XFLAG_IMMUTABLE|FS_XFLAG_NODEFRAG')} = {EOPNOTSUPP}\n"
        f"{setx('0x4')} = {EOPNOTSUPP}\n{setx('0x20000')} = {EOPNOTSUPP}\n"
        f"{setx('0x40000000')} = {EOPNOTSUPP}\n{get('FS_APPEND_FL')}",
    "any description, seals do not stop it; FS_IOC_SETFLAGS clears what it set":
        'memfd_create("t", MFD_ALLOW_SEALING) = 3\nopen("/proc/self/fd/3", O_RDONLY) = 4\n'
        "fcntl(3, F_ADD_SEALS, F_SEAL_SEAL|F_SEAL_WRITE|F_SEAL_GROW|F_SEAL_SHRINK) = 0\n"
        f"{setx('FS_XFLAG_IMMUTABLE', fd=4)} = 0\n{get('FS_IMMUTABLE_FL')}\n"
        f"ioctl(4, FS_IOC_SETFLAGS, [0]) = 0\n{get('0')}",
    "getting: the four flags as xflags, set either way, through any description":
        MFD + f"{getx('0')}\nioctl(3, FS_IOC_SETFLAGS, [FS_APPEND_FL|FS_NODUMP_FL]) = 0\n"
        f"{getx('FS_XFLAG_APPEND|FS_XFLAG_NODUMP')}\n"
        f"{setx('FS_XFLAG_IMMUTABLE|FS_XFLAG_NOATIME')} = 0\n"
        'open("/proc/self/fd/3", O_RDONLY) = 4\n'
        f"{getx('FS_XFLAG_IMMUTABLE|FS_XFLAG_NOATIME', fd=4)}\n"
        f"{setx('FS_XFLAG_PREALLOC|FS_XFLAG_HASATTR')} = 0\n{getx('0')}",
}

#: hugetlbfs has no ->fileattr_set (ENOTTY), but a bit outside the mask is refused first
HUGE = ('memfd_create("t", MFD_HUGETLB) = 3\n'
        f"{setx('FS_XFLAG_APPEND')} = {ENOTTY}\n{setx('FS_XFLAG_REALTIME')} = {ENOTTY}\n"
        f"{setx('0', projid=0xFFFFFFFF)} = {ENOTTY}\n{setx('0x4')} = {EOPNOTSUPP}\n"
        f"{setx('0x100000')} = {EOPNOTSUPP}\n"
        "ioctl(3, FS_IOC_FSGETXATTR, 0x7ffc3a1b2c40) = -1 ENOTTY")

#: the same calls on other kernels (probed bit by bit in QEMU guests): 6.1.192 and 6.12.118
#: have no mask and no read-only xflags; 7.2.13 and 7.3-rc7 take 0x20000 (FS_XFLAG_VERITY),
#: 0x40000 and 0x80000 as read-only ones
OTHER = {
    "6.1": MFD + f"{setx('FS_XFLAG_PREALLOC')} = {EOPNOTSUPP}\n"
    f"{setx('FS_XFLAG_HASATTR')} = {EOPNOTSUPP}\n{setx('0x4')} = {EOPNOTSUPP}\n"
    f"{setx('FS_XFLAG_APPEND')} = 0\n{get('FS_APPEND_FL')}\n{getx('FS_XFLAG_APPEND')}",
    "6.1-huge": 'memfd_create("t", MFD_HUGETLB) = 3\n'
    f"{setx('0x4')} = {ENOTTY}\n{setx('0x100000')} = {ENOTTY}",
    "7.2": MFD + f"{setx('FS_XFLAG_PREALLOC')} = 0\n{setx('0x20000')} = 0\n"
    f"{setx('0x40000')} = 0\n{setx('0x80000')} = 0\n{setx('0x100000')} = {EOPNOTSUPP}\n"
    f"{setx('FS_XFLAG_APPEND')} = 0\n{get('FS_APPEND_FL')}\n{getx('FS_XFLAG_APPEND')}",
    "7.2-huge": 'memfd_create("t", MFD_HUGETLB) = 3\n'
    f"{setx('0x20000')} = {ENOTTY}\n{setx('0x100000')} = {EOPNOTSUPP}",
}
#: the series probed to check as another does (one trace per xflag, on shmem and hugetlbfs)
SAME_XFLAGS = {"6.12": "6.1", "7.3-rc": "7.2"}
for _series, _as in SAME_XFLAGS.items():
    OTHER[_series], OTHER[f"{_series}-huge"] = OTHER[_as], OTHER[f"{_as}-huge"]


@pytest.mark.parametrize("name", list(TABLE))
def test_fssetxattr_table(name: str) -> None:
    assert replay_text(TABLE[name]) is None


def test_hugetlbfs_refuses_unknown_bits_before_enotty() -> None:
    assert replay_text(HUGE) is None


def test_a_wrong_outcome_is_reported() -> None:
    text = TABLE["refused: a refused set keeps the flags"]
    assert replay_text(text.replace(f"{setx('0', projid=1)} = {EOPNOTSUPP}",
                                    f"{setx('0', projid=1)} = 0")) is not None
    assert replay_text(text.replace(get("FS_APPEND_FL"), get("0"))) is not None


#: the getting row with one output the kernel does not write (NODUMP is not IMMUTABLE), and
#: one with a non-zero size the kernel zeroes
WRONG_GETX = [TABLE["getting: the four flags as xflags, set either way, through any "
                    "description"].replace(old, new) for old, new in (
    ("fsx_xflags=FS_XFLAG_APPEND|FS_XFLAG_NODUMP,", "fsx_xflags=FS_XFLAG_APPEND,"),
    (getx("0"), getx("0", zero="1")))]


@pytest.mark.parametrize("text", WRONG_GETX, ids=["xflags", "extsize"])
def test_a_wrong_getxattr_output_is_reported(text: str) -> None:
    div = replay_text(text)
    assert div is not None and "fsx_" in div, div


@pytest.mark.parametrize("null", ["NULL", "0"])
def test_getxattr_to_null_is_outside_the_model(null: str) -> None:
    with pytest.raises(TraceInputError, match=r"outside the model: .*NULL.*EFAULT"):
        replay_text(MFD + f"ioctl(3, FS_IOC_FSGETXATTR, {null}) = -1 EFAULT")


def test_the_executor_fills_the_outputs_the_model_names() -> None:
    """The model's output labels are the fields the executor fills (OUT_STRUCTS), and a trace
    line's struct is read under them: else nothing would be compared."""
    from model.designs.memfd_fsflags import GETXATTR_OUT
    from traces.outputs import shown_outputs
    from traces.syscalls import OUT_STRUCTS
    from traces.textfmt import parse_trace

    assert OUT_STRUCTS[vocab.FS_IOC_FSGETXATTR] == tuple(n for n, _ in GETXATTR_OUT.items)
    t = parse_trace("# shmemcheck trace 1\n" + getx("FS_XFLAG_NODUMP") + "\n", "<t>")
    assert shown_outputs(t.steps[0]) == {"fsx_xflags": 0x80, "fsx_extsize": 0,
                                         "fsx_nextents": 0, "fsx_projid": 0,
                                         "fsx_cowextsize": 0}


@pytest.mark.parametrize("name", list(OTHER))
def test_other_kernels_designs(name: str) -> None:
    """memfd@6.1, 6.12, 7.2 and 7.3-rc hold their kernels' masks; 6.18's rules judge the rows
    otherwise."""
    design = "memfd@" + name.removesuffix("-huge")
    assert replay_text(OTHER[name], design) is None
    assert replay_text(OTHER[name]) is not None


def test_before_6_0_shmem_has_no_fsgetxattr() -> None:
    with pytest.raises(TraceInputError, match=r"outside the model: ioctl argument FS_IOC_"):
        replay_text(MFD + getx("0"), "memfd@5.17")


def test_before_5_18_shmem_has_no_fssetxattr() -> None:
    """5.17's shmem has no ->fileattr_set (memfd@5.17 leaves the action out)."""
    with pytest.raises(TraceInputError, match=r"outside the model: ioctl argument FS_IOC_"):
        replay_text(MFD + f"{setx('0')} = 0", "memfd@5.17")


@pytest.mark.parametrize("value, why", [
    ("NULL", "EFAULT"), ("{fsx_xflags=0x100000000, fsx_extsize=0, fsx_projid=0, "
                         "fsx_cowextsize=0}", "32-bit"),
    ("{fsx_xflags=0, fsx_extsize=-1, fsx_projid=0, fsx_cowextsize=0}", "0..4294967295"),
    ("{fsx_xflags=0, fsx_extsize=0, fsx_projid=4294967296, fsx_cowextsize=0}",
     "0..4294967295")])
def test_values_the_kernel_reads_otherwise_are_outside_the_model(value: str, why: str) -> None:
    """NULL is copy_from_user()'s EFAULT; each field is a __u32, so a value outside it would
    be cut, not judged as written."""
    with pytest.raises(TraceInputError, match=f"outside the model: .*{why}"):
        replay_text(MFD + f"ioctl(3, FS_IOC_FSSETXATTR, {value}) = 0")


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(TABLE))
def test_fssetxattr_table_on_kernel(name: str) -> None:
    kernel_agrees(TABLE[name])


@pytest.mark.kernel
def test_hugetlb_row_on_kernel() -> None:
    kernel_agrees(HUGE, hugepages=2)


@pytest.mark.kernel
@pytest.mark.parametrize("text", WRONG_GETX, ids=["xflags", "extsize"])
def test_a_wrong_getxattr_output_fails_on_kernel(text: str) -> None:
    """kernel_agrees compares the struct the kernel filled with the trace's fields."""
    with pytest.raises(AssertionError, match="fsx_"):
        kernel_agrees(text)


@pytest.mark.kernel
def test_a_wrong_outcome_fails_on_kernel() -> None:
    with pytest.raises(AssertionError):
        kernel_agrees(TABLE["ignored: read-only xflags, zero-size extent hints, fsx_nextents"]
                      .replace(f"{setx('FS_XFLAG_HASATTR')} = 0",
                               f"{setx('FS_XFLAG_HASATTR')} = {EOPNOTSUPP}"))


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("version", ["6.1", "6.12", "7.2", "7.3-rc"])
def test_other_kernels_rows_on_their_guests(version: str, tmp_path: Path) -> None:
    """The rows of OTHER, replayed in the fetched guest of their kernel."""
    from tests.test_kernel_designs import _guest

    _guest(version)
    for name in (version, version + "-huge"):
        (tmp_path / f"{name}.trace").write_text(
            f"# shmemcheck trace 1\n# design: memfd@{version}\n{OTHER[name]}\n")
    p = subprocess.run([sys.executable, "-m", "checker.cli", "replay", str(tmp_path), "--on",
                        f"kernel@{version}"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2 agree, 0 diverge" in p.stdout, p.stdout


def test_a_predicted_selftest_shows_the_designs_outputs() -> None:
    """`export --selftest` for memfd@6.1 expects 6.1's outputs, not the trace's: there the
    FS_XFLAG_PREALLOC set of the scenario is EOPNOTSUPP, so the flags stay and both
    FS_IOC_GETFLAGS and FS_IOC_FSGETXATTR show FS_IMMUTABLE after it."""
    from checker.replay import replay_for_export
    from traces.textfmt import format_step, parse_trace

    path = (Path(__file__).resolve().parent.parent / "traces" / "scenarios"
            / "xfs-io-chattr-immutable.trace")
    t = parse_trace(path.read_text(), str(path))
    lines = [format_step(s) for s in replay_for_export(designs.get("memfd@6.1"), t,
                                                        predict=True).steps]
    pre = next(i for i, ln in enumerate(lines) if "FS_XFLAG_PREALLOC" in ln)
    assert lines[pre].endswith("= -1 EOPNOTSUPP (Operation not supported)"), lines[pre]
    assert "[FS_IMMUTABLE_FL]" in lines[pre + 1] and "fsx_xflags=FS_XFLAG_IMMUTABLE" in \
        lines[pre + 2], lines[pre:]
    same = [format_step(s) for s in replay_for_export(designs.get("memfd"), t,
                                                       predict=True).steps]
    assert same == [format_step(s) for s in t.steps]
