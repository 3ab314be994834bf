"""The guest_memfd design (kernel-semantics.md §5.3): its decision table, its properties, the G1
counterexample, and the gmem-*.trace scenarios on the model and on /dev/kvm.

Every expected outcome below is what Linux 6.18.44 returns (checked by the kernel-marked tests
of this file), not what the model computes: each row is a short strace-style program whose
last line carries the table's cell.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from checker.explicit import Explorer
from checker.replay import TraceInputError, check_expectation, model_outcomes
from model import designs
from model.designs.guest_memfd import REPLAY_ONLY
from properties.catalogue import HOLDS, VIOLATED, WITNESSED, Property, load
from tests.conftest import replay_text
from traces.kernel import capability, run_on_kernel
from traces.textfmt import load_trace, parse_trace
from traces.trace import Any_, Trace

GMEM, G68 = "guest_memfd", "guest_memfd@6.8-rc"
SCENARIOS = Path(__file__).resolve().parent.parent / "traces" / "scenarios"
FILES = sorted(SCENARIOS.glob("gmem-*.trace"))

VM = 'open("/dev/kvm", O_RDWR) = 3\nioctl(3, KVM_CREATE_VM, 0) = 4\n'


def gmem(size: int = 4096, flags: str = "0", fd: int = 5, vm: int = 4) -> str:
    return f"ioctl({vm}, KVM_CREATE_GUEST_MEMFD, {{size={size}, flags={flags}}}) = {fd}\n"


def region(slot: int, flags: str, size: int, off: int | str = 0, g: int = 5,
           gpa: int | None = None) -> str:
    """KVM_SET_USER_MEMORY_REGION2 on the first VM (fd 4); slot i lies at GPA i × 4 GiB
    unless `gpa` says otherwise."""
    return (f"ioctl(4, KVM_SET_USER_MEMORY_REGION2, {{slot={slot}, flags={flags}, "
            f"guest_phys_addr={slot << 32 if gpa is None else gpa}, memory_size={size}, "
            f"userspace_addr=0, guest_memfd_offset={off}, guest_memfd={g}}})")


LLONG_MAX, U64_MAX = (1 << 63) - 1, (1 << 64) - 1
MIB = 1 << 20


G = "KVM_MEM_GUEST_MEMFD"
MMAP, SHARED = "GUEST_MEMFD_FLAG_MMAP", "GUEST_MEMFD_FLAG_MMAP|GUEST_MEMFD_FLAG_INIT_SHARED"
MAP = "mmap(NULL, 16384, PROT_READ|PROT_WRITE, {share}, 5, 0)"
MAPPED = VM + gmem(4096, SHARED) + MAP.format(share="MAP_SHARED") + " = m1\n"
BOUND = VM + gmem(8192) + region(0, G, 4096, 4096) + " = 0\n"

# KVM_CREATE_GUEST_MEMFD: kvm_gmem_create()
CREATE = {
    "flags 0": VM + gmem(4096, "0").strip(),
    "MMAP": VM + gmem(4096, MMAP).strip(),
    "INIT_SHARED alone is accepted": VM + gmem(4096, "GUEST_MEMFD_FLAG_INIT_SHARED").strip(),
    "MMAP|INIT_SHARED": VM + gmem(4096, SHARED).strip(),
    "unsupported bit 2":
        VM + "ioctl(4, KVM_CREATE_GUEST_MEMFD, {size=4096, flags=0x4}) = -1 EINVAL",
    "unsupported bit 62":
        VM + "ioctl(4, KVM_CREATE_GUEST_MEMFD, {size=4096, flags=0x4000000000000000}) = -1 EINVAL",
    "size 0": VM + "ioctl(4, KVM_CREATE_GUEST_MEMFD, {size=0, flags=0}) = -1 EINVAL",
    "size 1": VM + "ioctl(4, KVM_CREATE_GUEST_MEMFD, {size=1, flags=0}) = -1 EINVAL",
    "size 4095": VM + f"ioctl(4, KVM_CREATE_GUEST_MEMFD, {{size=4095, flags={MMAP}}}) = -1 EINVAL",
    "size 4097": VM + "ioctl(4, KVM_CREATE_GUEST_MEMFD, {size=4097, flags=0}) = -1 EINVAL",
    "size 2^63 (a negative loff_t)": VM + gmem(1 << 63).replace("= 5", "= -1 EINVAL").strip(),
    "size 2^64-1": VM + gmem(U64_MAX).replace("= 5", "= -1 EINVAL").strip(),
    "size 2^64-4096 (aligned, negative)": VM
        + gmem(U64_MAX - 4095).replace("= 5", "= -1 EINVAL").strip(),
    "size LLONG_MAX": VM + gmem(LLONG_MAX).replace("= 5", "= -1 EINVAL").strip(),
    "size 2^63-4096: the largest, nothing allocated": VM + gmem(LLONG_MAX - 4095).strip(),
    "on the second VM": VM + "ioctl(3, KVM_CREATE_VM, 0) = 5\n" + gmem(8192, "0", 6, 5).strip(),
    "two files, lowest free fds": VM + gmem(4096) + gmem(8192, fd=6) + "close(5) = 0\n"
        + gmem(4096, fd=5).strip(),
}

# file operations: the VFS and kvm_gmem_setattr() / memfd_fcntl()
FILE = {
    "read: no read op": VM + gmem() + 'read(5, "", 4096) = -1 EINVAL',
    "write: no write op": VM + gmem() + 'write(5, "x"..., 4096) = -1 EINVAL',
    "read: any count (0)": VM + gmem() + 'read(5, "", 0) = -1 EINVAL',
    "read: any count (2^64-1)": VM + gmem() + f'read(5, "", {U64_MAX}) = -1 EINVAL',
    "write: any count (0)": VM + gmem() + 'write(5, "x"..., 0) = -1 EINVAL',
    "write: any count (5000)": VM + gmem() + 'write(5, "x"..., 5000) = -1 EINVAL',
    "pread64: any count and position": VM + gmem()
        + f'pread64(5, "", 1, {LLONG_MAX}) = -1 ESPIPE',
    "pwrite64: any count and position": VM + gmem() + 'pwrite64(5, "x"..., 3, 4097) = -1 ESPIPE',
    "lseek: any offset": VM + gmem() + "lseek(5, 12345, SEEK_SET) = -1 ESPIPE",
    "ftruncate: unaligned": VM + gmem() + "ftruncate(5, 5000) = -1 EINVAL",
    "ftruncate: LLONG_MAX": VM + gmem() + f"ftruncate(5, {LLONG_MAX}) = -1 EINVAL",
    "pread64: not FMODE_PREAD": VM + gmem() + 'pread64(5, "", 4096, 0) = -1 ESPIPE',
    "pwrite64: not FMODE_PWRITE": VM + gmem() + 'pwrite64(5, "x"..., 4096, 0) = -1 ESPIPE',
    "lseek: not FMODE_LSEEK": VM + gmem() + "lseek(5, 0, SEEK_SET) = -1 ESPIPE",
    "ftruncate to the same size": VM + gmem() + "ftruncate(5, 4096) = -1 EINVAL",
    "ftruncate up": VM + gmem() + "ftruncate(5, 8192) = -1 EINVAL",
    "ftruncate to 0": VM + gmem(4096, SHARED) + "ftruncate(5, 0) = -1 EINVAL",
    "fchmod": VM + gmem() + "fchmod(5, 0600) = -1 EINVAL",
    "F_GET_SEALS": VM + gmem() + "fcntl(5, F_GET_SEALS) = -1 EINVAL",
    "F_ADD_SEALS": VM + gmem() + "fcntl(5, F_ADD_SEALS, F_SEAL_SEAL) = -1 EINVAL",
    "F_ADD_SEALS invalid bit": VM + gmem() + "fcntl(5, F_ADD_SEALS, 0x40) = -1 EINVAL",
    "F_ADD_SEALS on an MMAP file": VM + gmem(4096, SHARED)
        + "fcntl(5, F_ADD_SEALS, F_SEAL_WRITE) = -1 EINVAL",
}

# fallocate: vfs_fallocate() then kvm_gmem_fallocate(), kvm_gmem_allocate()
FALLOC = {
    "len 0 before the mode (vfs)": VM + gmem()
        + "fallocate(5, FALLOC_FL_PUNCH_HOLE, 0, 0) = -1 EINVAL",
    "len 0 with KEEP_SIZE": VM + gmem() + "fallocate(5, FALLOC_FL_KEEP_SIZE, 0, 0) = -1 EINVAL",
    "PUNCH_HOLE without KEEP_SIZE (vfs)":
        VM + gmem() + "fallocate(5, FALLOC_FL_PUNCH_HOLE, 0, 4096) = -1 EOPNOTSUPP",
    "mode 0: KEEP_SIZE required": VM + gmem() + "fallocate(5, 0, 0, 4096) = -1 EOPNOTSUPP",
    "mode before alignment": VM + gmem() + "fallocate(5, 0, 1, 4096) = -1 EOPNOTSUPP",
    "ZERO_RANGE|KEEP_SIZE": VM + gmem()
        + "fallocate(5, FALLOC_FL_KEEP_SIZE|FALLOC_FL_ZERO_RANGE, 0, 4096) = -1 EOPNOTSUPP",
    "COLLAPSE_RANGE|KEEP_SIZE (vfs)": VM + gmem()
        + "fallocate(5, FALLOC_FL_KEEP_SIZE|FALLOC_FL_COLLAPSE_RANGE, 0, 4096) = -1 EOPNOTSUPP",
    "two modes (vfs)": VM + gmem() + "fallocate(5, FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE|"
        "FALLOC_FL_ZERO_RANGE, 0, 4096) = -1 EOPNOTSUPP",
    "unaligned offset": VM + gmem() + "fallocate(5, FALLOC_FL_KEEP_SIZE, 1, 4096) = -1 EINVAL",
    "unaligned length": VM + gmem(8192) + "fallocate(5, FALLOC_FL_KEEP_SIZE, 0, 4097) = -1 EINVAL",
    "unaligned before past-EOF": VM + gmem()
        + "fallocate(5, FALLOC_FL_KEEP_SIZE, 4097, 4096) = -1 EINVAL",
    "offset + len past MAX_LFS_FILESIZE: EFBIG": VM + gmem()
        + f"fallocate(5, FALLOC_FL_KEEP_SIZE, {1 << 62}, {1 << 62}) = -1 EFBIG",
    "EFBIG before the KEEP_SIZE check (vfs)": VM + gmem()
        + f"fallocate(5, 0, {1 << 62}, {1 << 62}) = -1 EFBIG",
    "EFBIG before the alignment check (vfs)": VM + gmem()
        + f"fallocate(5, FALLOC_FL_KEEP_SIZE, {LLONG_MAX}, 1) = -1 EFBIG",
    "EFBIG: offset + len = 2^63": VM + gmem()
        + f"fallocate(5, FALLOC_FL_KEEP_SIZE, {LLONG_MAX - 4095}, 4096) = -1 EFBIG",
    "mode before EFBIG (vfs)": VM + gmem()
        + f"fallocate(5, FALLOC_FL_PUNCH_HOLE, {1 << 62}, {1 << 62}) = -1 EOPNOTSUPP",
    "offset + len = LLONG_MAX - 4095: no EFBIG": VM + gmem()
        + f"fallocate(5, FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE, {LLONG_MAX - 8191}, 4096) = 0",
    "allocate the last page of the largest file": VM + gmem(LLONG_MAX - 4095)
        + f"fallocate(5, FALLOC_FL_KEEP_SIZE, {LLONG_MAX - 8191}, 4096) = 0",
    "allocate past the largest file": VM + gmem(LLONG_MAX - 4095)
        + f"fallocate(5, FALLOC_FL_KEEP_SIZE, {LLONG_MAX - 4095}, 4096) = -1 EFBIG",
    "unaligned length past i_size": VM + gmem()
        + "fallocate(5, FALLOC_FL_KEEP_SIZE, 0, 5000) = -1 EINVAL",
    "allocate inside": VM + gmem(8192) + "fallocate(5, FALLOC_FL_KEEP_SIZE, 4096, 4096) = 0",
    "allocate across i_size": VM + gmem()
        + "fallocate(5, FALLOC_FL_KEEP_SIZE, 0, 8192) = -1 EINVAL",
    "allocate at i_size": VM + gmem()
        + "fallocate(5, FALLOC_FL_KEEP_SIZE, 4096, 4096) = -1 EINVAL",
    "punch inside": VM + gmem()
        + "fallocate(5, FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE, 0, 4096) = 0",
    "punch past i_size": VM + gmem()
        + "fallocate(5, FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE, 8192, 4096) = 0",
    "punch a bound range": BOUND
        + "fallocate(5, FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE, 0, 8192) = 0",
}

# mmap and faults: kvm_gmem_mmap(), kvm_gmem_fault_user_mapping(), mprotect_fixup()
MAPS = {
    "no MMAP flag: ENODEV": VM + gmem() + MAP.format(share="MAP_SHARED") + " = -1 ENODEV",
    "no MMAP flag, private: ENODEV first": VM + gmem()
        + MAP.format(share="MAP_PRIVATE") + " = -1 ENODEV",
    "INIT_SHARED without MMAP: ENODEV": VM + gmem(4096, "GUEST_MEMFD_FLAG_INIT_SHARED")
        + MAP.format(share="MAP_SHARED") + " = -1 ENODEV",
    "MMAP, private: EINVAL": VM + gmem(4096, MMAP) + MAP.format(share="MAP_PRIVATE")
        + " = -1 EINVAL",
    "MMAP, shared": VM + gmem(4096, MMAP) + MAP.format(share="MAP_SHARED") + " = m1",
    "MMAP without INIT_SHARED: load SIGBUS": VM + gmem(4096, MMAP)
        + MAP.format(share="MAP_SHARED") + " = m1\nload(m1, 0) = SIGBUS",
    "MMAP without INIT_SHARED: store SIGBUS": VM + gmem(4096, MMAP)
        + MAP.format(share="MAP_SHARED") + " = m1\nstore(m1, 0) = SIGBUS",
    "store inside": MAPPED + "store(m1, 0) = 0",
    "load at i_size: SIGBUS": MAPPED + "load(m1, 4096) = SIGBUS",
    "store past i_size: SIGBUS": MAPPED + "store(m1, 12288) = SIGBUS",
    "mprotect PROT_EXEC: EACCES": MAPPED + "mprotect(m1, 16384, PROT_READ|PROT_EXEC) = -1 EACCES",
    "mprotect PROT_READ|PROT_WRITE": MAPPED + "mprotect(m1, 16384, PROT_READ|PROT_WRITE) = 0",
    "the mapping holds the file": MAPPED + "close(5) = 0\nstore(m1, 0) = 0",
    "a punched page refaults": MAPPED + "store(m1, 0) = 0\n"
        "fallocate(5, FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE, 0, 4096) = 0\nload(m1, 0) = 0",
    "the file outlives the VM fd": VM + gmem(4096, SHARED) + "close(4) = 0\n"
        + MAP.format(share="MAP_SHARED") + " = m1\nstore(m1, 0) = 0",
}

# KVM_SET_USER_MEMORY_REGION2: check_memory_region_flags(), kvm_set_memory_region(),
# kvm_gmem_bind()
BIND = {
    "GUEST_MEMFD|LOG_DIRTY_PAGES": VM + gmem() + region(0, f"{G}|KVM_MEM_LOG_DIRTY_PAGES", 4096)
        + " = -1 EINVAL",
    "GUEST_MEMFD|READONLY (G1)": VM + gmem() + region(0, f"KVM_MEM_READONLY|{G}", 4096)
        + " = -1 EINVAL",
    "unknown flag bit 3": VM + gmem() + region(0, f"{G}|0x8", 4096) + " = -1 EINVAL",
    "unaligned guest_memfd_offset": VM + gmem(8192) + region(0, G, 4096, 2048) + " = -1 EINVAL",
    "not a guest_memfd (the VM fd)": VM + gmem() + region(0, G, 4096, g=4) + " = -1 EINVAL",
    "not a guest_memfd (/dev/kvm)": VM + gmem() + region(0, G, 4096, g=3) + " = -1 EINVAL",
    "another VM's guest_memfd": VM + "ioctl(3, KVM_CREATE_VM, 0) = 5\n" + gmem(4096, "0", 6, 5)
        + region(0, G, 4096, g=6) + " = -1 EINVAL",
    "offset + size > i_size": VM + gmem(8192) + region(0, G, 8192, 4096) + " = -1 EINVAL",
    "offset at i_size": VM + gmem() + region(0, G, 4096, 4096) + " = -1 EINVAL",
    "unaligned memory_size": VM + gmem(8192) + region(0, G, 5000) + " = -1 EINVAL",
    "unaligned memory_size before the offset": VM + gmem(8192) + region(0, G, 5000, 1)
        + " = -1 EINVAL",
    "unaligned guest_phys_addr": VM + gmem() + region(0, G, 4096, gpa=MIB + 1) + " = -1 EINVAL",
    "unaligned guest_phys_addr on delete": BOUND + region(0, "0", 0, 0, g=0, gpa=2048)
        + " = -1 EINVAL",
    "delete at another guest_phys_addr": BOUND + region(0, "0", 0, 0, g=0, gpa=MIB) + " = 0",
    "more than KVM_MEM_MAX_NR_PAGES": VM + gmem(LLONG_MAX - 4095) + region(0, G, 1 << 43)
        + " = -1 EINVAL",
    "a 1 GiB slot at 63 GiB": VM + gmem(1 << 30) + region(0, G, 1 << 30, gpa=63 << 30)
        + " = 0",
    "guest_memfd_offset + memory_size wraps": VM + gmem() + region(0, G, 4096, U64_MAX - 4095)
        + " = -1 EINVAL",
    "guest_phys_addr + memory_size wraps": VM + gmem()
        + region(0, G, 8192, gpa=U64_MAX - 4095) + " = -1 EINVAL",
    "negative guest_memfd_offset (loff_t)": VM + gmem() + region(0, G, 4096, 1 << 63)
        + " = -1 EINVAL",
    "guest_memfd_offset past i_size, sum below LLONG_MAX": VM + gmem()
        + region(0, G, 4096, LLONG_MAX - 8191) + " = -1 EINVAL",

    "a slot at 1 MiB": VM + gmem() + region(0, G, 4096, gpa=MIB) + " = 0",
    "a slot at the same guest address: EEXIST": VM + gmem(8192) + region(0, G, 4096, gpa=MIB)
        + " = 0\n" + region(1, G, 4096, 4096, gpa=MIB) + " = -1 EEXIST",
    "a slot overlapping the end: EEXIST": VM + gmem(16384) + region(0, G, 8192, gpa=MIB)
        + " = 0\n" + region(1, G, 4096, 8192, gpa=MIB + 4096) + " = -1 EEXIST",
    "a slot overlapping the start: EEXIST": VM + gmem(16384) + region(0, G, 8192, gpa=MIB)
        + " = 0\n" + region(1, G, 8192, 8192, gpa=MIB - 4096) + " = -1 EEXIST",
    "adjacent guest ranges": VM + gmem(16384) + region(0, G, 8192, gpa=MIB) + " = 0\n"
        + region(1, G, 4096, 8192, gpa=MIB + 8192) + " = 0\n"
        + region(0, "0", 0, 0, g=0) + " = 0",
    "EEXIST before the file's checks": VM + gmem(8192) + region(0, G, 4096, gpa=MIB)
        + " = 0\n" + region(1, G, 4096, 0, g=4, gpa=MIB) + " = -1 EEXIST",
    "EEXIST before the bindings overlap": VM + gmem(8192) + region(0, G, 4096, gpa=MIB)
        + " = 0\n" + region(1, G, 4096, 0, gpa=MIB) + " = -1 EEXIST",
    "a released file's slot keeps its guest range": VM + gmem(8192) + region(0, G, 8192, gpa=0)
        + " = 0\nclose(5) = 0\n" + gmem(8192) + region(1, G, 4096, gpa=4096) + " = -1 EEXIST\n"
        + region(1, G, 4096, gpa=8192) + " = 0",
    "bind": BOUND.strip(),
    "bind the whole file": VM + gmem(8192) + region(0, G, 8192) + " = 0",
    "bind a file without MMAP and one with": VM + gmem() + gmem(4096, SHARED, 6)
        + region(0, G, 4096) + " = 0\n" + region(1, G, 4096, g=6) + " = 0",
    "re-issue identical: immutable": BOUND + region(0, G, 4096, 4096) + " = -1 EINVAL",
    "re-issue without GUEST_MEMFD (9935df5333aa)": BOUND + region(0, "0", 4096, 4096)
        + " = -1 EINVAL",
    "re-issue READONLY only": BOUND + region(0, "KVM_MEM_READONLY", 4096, 4096) + " = -1 EINVAL",
    "re-issue elsewhere in the file": BOUND + region(0, G, 4096, 0) + " = -1 EINVAL",
    "overlap in another slot": BOUND + region(1, G, 8192, 0) + " = -1 EINVAL",
    "same range in another slot": BOUND + region(1, G, 4096, 4096) + " = -1 EINVAL",
    "adjacent range in another slot": BOUND + region(1, G, 4096, 0) + " = 0",
    "delete a missing slot": VM + gmem() + region(1, "0", 0, 0, g=0) + " = -1 EINVAL",
    "delete": BOUND + region(0, "0", 0, 0, g=0) + " = 0",
    "delete with GUEST_MEMFD": BOUND + region(0, G, 0, 0, g=0) + " = 0",
    "delete: flags checked first": BOUND + region(0, f"KVM_MEM_READONLY|{G}", 0, 0, g=0)
        + " = -1 EINVAL",
    "delete: unknown flag": BOUND + region(0, "0x8", 0, 0, g=0) + " = -1 EINVAL",
    "delete twice": BOUND + region(0, "0", 0, 0, g=0) + " = 0\n" + region(0, "0", 0, 0, g=0)
        + " = -1 EINVAL",
    "rebind after delete": BOUND + region(0, "0", 0, 0, g=0) + " = 0\n"
        + region(1, G, 8192) + " = 0",
    "close while bound: slot stays": BOUND + "close(5) = 0\n" + gmem(8192)
        + region(0, G, 4096, 4096) + " = -1 EINVAL",
    "close while bound: delete works": BOUND + "close(5) = 0\n" + region(0, "0", 0, 0, g=0)
        + " = 0",
    "close while bound: range free in a new file": BOUND + "close(5) = 0\n" + gmem(8192)
        + region(1, G, 4096, 4096) + " = 0",
    "a mapped file stays bound after close": VM + gmem(8192, SHARED)
        + region(0, G, 4096) + " = 0\n" + MAP.format(share="MAP_SHARED") + " = m1\n"
        + "close(5) = 0\nstore(m1, 0) = 0\n" + region(0, G, 4096, g=4) + " = -1 EINVAL",
}

TABLES = {"create": CREATE, "file": FILE, "fallocate": FALLOC, "mmap": MAPS, "bind": BIND}
ROWS = [(t, name) for t, rows in TABLES.items() for name in rows]


@pytest.mark.parametrize(("table", "name"), ROWS)
def test_decision_table(table: str, name: str) -> None:
    assert replay_text(TABLES[table][name], GMEM) is None


#: kvm_gmem_bind()'s `offset + size > i_size_read(inode)` is computed in loff_t: a sum past
#: LLONG_MAX wraps negative and passes, so 6.18.44 binds a slot to pages past i_size. The model
#: refuses these calls as outside the model (a kernel bug it does not represent).
LOFF_WRAP = [VM + gmem() + region(0, G, 4096, LLONG_MAX - 4095) + " = 0",
             VM + gmem() + region(0, G, 8192, LLONG_MAX - 4095) + " = 0"]


def _refused(text: str) -> str:
    with pytest.raises(TraceInputError) as e:
        replay_text(text, GMEM)
    return str(e.value)


@pytest.mark.parametrize("text", LOFF_WRAP)
def test_loff_wrap_is_outside_the_model(text: str) -> None:
    out = _refused(text)
    assert "outside the model" in out and "no_loff_wrap" in out, out


@pytest.mark.kernel
@pytest.mark.parametrize("text", LOFF_WRAP)
def test_loff_wrap_binds_past_i_size_on_the_kernel(text: str) -> None:
    """What the model refuses, the kernel accepts: the binding lies past the 4 KiB file."""
    _kernel_or_skip()
    _on_kernel(parse_trace("# shmemcheck trace 1\n" + text, "<loff wrap>"), "loff wrap")


def _invalid_sizes_loop() -> Trace:
    """guest_memfd_test.c test_create_guest_memfd_invalid_sizes() as written: every size
    1..4095, then page + 1 and 0, with the flags MMAP|INIT_SHARED (the other flag sets take
    the same path), then one valid page."""
    lines = [gmem(n, SHARED).replace("= 5", "= -1 EINVAL")
             for n in (*range(1, 4096), 4097, 0)]
    return parse_trace("# shmemcheck trace 1\n# design: guest_memfd\n" + VM + "".join(lines)
                       + gmem(4096, SHARED), "<invalid sizes>")


def test_invalid_sizes_whole_loop() -> None:
    assert model_outcomes(designs.get(GMEM), _invalid_sizes_loop()).divergence is None


@pytest.mark.kernel
def test_invalid_sizes_whole_loop_on_the_kernel() -> None:
    _kernel_or_skip()
    _on_kernel(_invalid_sizes_loop(), "invalid sizes")


def test_slot_past_any_maxphyaddr_is_outside_the_model() -> None:
    """A slot that would succeed but ends above 2^36 depends on the host's MAXPHYADDR."""
    out = _refused(VM + gmem(LLONG_MAX - 4095) + region(0, G, 1 << 36, gpa=4096) + " = 0")
    assert "outside the model" in out and "below_any_maxphyaddr" in out, out
    assert replay_text(VM + gmem() + region(0, G, 4096, gpa=(1 << 36) - 4096) + " = 0",
                       GMEM) is None


def test_a_wrong_cell_is_reported() -> None:
    out = replay_text(BOUND + region(0, G, 4096, 4096) + " = 0", GMEM)
    assert out is not None and "model says -1 EINVAL" in out


def test_g1_delta_accepts_readonly() -> None:
    """On guest_memfd@6.8-rc the only change is that READONLY binds; the rest is 6.18."""
    text = VM + gmem() + region(0, f"KVM_MEM_READONLY|{G}", 4096)
    assert replay_text(text + " = 0", G68) is None
    assert replay_text(text + " = -1 EINVAL", GMEM) is None
    assert replay_text(VM + gmem() + region(0, f"{G}|KVM_MEM_LOG_DIRTY_PAGES", 4096)
                       + " = -1 EINVAL", G68) is None


# ---- properties ------------------------------------------------------------------------------
def gmem_props() -> list[Property]:
    return [p for p in load().values() if p.family == "gmem"]


def test_gmem_properties_apply_where_they_speak() -> None:
    props = gmem_props()
    assert len(props) >= 20
    for p in props:
        assert p.applies(designs.get(GMEM)), p.name
        assert p.applies(designs.get(G68)), p.name
        assert not p.applies(designs.get("memfd")), p.name
        assert p.rationale and p.enforced_by, p.name
    names = {p.name for p in props}
    for want in ("gmem-never-sealable", "gmem-user-mappable-only-with-MMAP",
                 "gmem-no-private-mapping", "gmem-user-fault-only-if-shared",
                 "gmem-size-immutable", "gmem-bindings-disjoint", "gmem-slots-immutable",
                 "gmem-no-readonly-slot", "seed-inaccessible-never-sealable",
                 "seed-inaccessible-never-user-mappable", "seed-every-gmem-never-user-mappable"):
        assert want in names


@pytest.mark.parametrize("design", [GMEM, G68])
def test_every_gmem_property_as_expected(design: str) -> None:
    d = designs.get(design)
    r = Explorer(d, d.scope(), gmem_props()).run()
    for name, o in r.props.items():
        exp = o.prop.expected(design)
        if o.prop.kind in ("always", "action"):
            assert o.holds == (exp == HOLDS), f"{design}: {name}"
        else:
            assert exp == WITNESSED and o.holds, f"{design}: {name}"
    assert r.states < 300_000  # 108,638 and 222,302 with memslot addresses in bytes
    assert r.uncovered() == list(REPLAY_ONLY), r.uncovered()
    expected_violations = {p.name for p in gmem_props() if p.expected(design) == VIOLATED}
    assert {n for n, o in r.props.items() if not o.holds} == expected_violations


def _shortest(design: str, prop: str) -> list[tuple[str, dict[str, int], int]]:
    d = designs.get(design)
    r = Explorer(d, d.scope(), [load()[prop]]).run()
    run = r.props[prop].run
    assert run is not None and run.violation == prop
    return [(s.action, s.params, s.out) for s in run.steps]


def test_g1_counterexample_is_shortest() -> None:
    """open, KVM_CREATE_VM, KVM_CREATE_GUEST_MEMFD, a READONLY guest_memfd memslot: accepted."""
    from model.vocab import KVM_MEM_GUEST_MEMFD, KVM_MEM_READONLY

    steps = _shortest(G68, "gmem-no-readonly-slot")
    assert [a for a, _, _ in steps] == ["open_kvm", "create_vm", "create_gmem", "bind"]
    _, p, out = steps[-1]
    assert p["flags"] & (KVM_MEM_GUEST_MEMFD | KVM_MEM_READONLY) == (
        KVM_MEM_GUEST_MEMFD | KVM_MEM_READONLY) and p["size"] > 0 and out == 0


def test_g1_counterexample_trace() -> None:
    """The counterexample as strace text violates the property on the delta design, and the
    same calls conform to 6.18 with EINVAL at the last step."""
    text = VM + gmem() + region(0, f"KVM_MEM_READONLY|{G}", 4096)
    t = parse_trace(f"# shmemcheck trace 1\n# design: {G68}\n# expect: violates "
                    f"gmem-no-readonly-slot\n{text} = 0\n", "<g1>")
    assert check_expectation(designs.get(G68), t).expectation_met
    t18 = parse_trace(f"# shmemcheck trace 1\n# design: {GMEM}\n{text} = -1 EINVAL\n", "<g1>")
    assert check_expectation(designs.get(GMEM), t18).expectation_met


def test_g1_counterexample_renders_as_strace() -> None:
    """Concretisation of the engine's run (a guest_memfd descriptor inside the ioctl struct)."""
    from traces.concretize import run_to_trace
    from traces.textfmt import format_step

    d = designs.get(G68)
    prop = load()["gmem-no-readonly-slot"]
    r = Explorer(d, d.scope(), [prop]).run()
    run = r.props[prop.name].run
    assert run is not None
    lines = [format_step(s) for s in run_to_trace(d, run).steps]
    assert lines == [ln.strip() for ln in (VM + gmem()).splitlines()] + [
        region(0, f"KVM_MEM_READONLY|{G}", 4096) + " = 0"]


def test_seed_promise() -> None:
    """Inaccessible (no MMAP) files are never sealable nor mappable; MMAP files are mappable,
    with the 4-step counterexample."""
    cat = load()
    d = designs.get(GMEM)
    seed = [cat["seed-inaccessible-never-sealable"], cat["seed-inaccessible-never-user-mappable"]]
    r = Explorer(d, d.scope(), seed).run()
    assert all(r.props[p.name].holds for p in seed)
    steps = _shortest(GMEM, "seed-every-gmem-never-user-mappable")
    assert [a for a, _, _ in steps] == ["open_kvm", "create_vm", "create_gmem", "mmap"]
    assert steps[2][1]["flags"] & 1  # GUEST_MEMFD_FLAG_MMAP


# ---- scenarios -------------------------------------------------------------------------------
#: guest_memfd_test.c (6.18), selftests.md §2.1 -> files
SELFTEST = {
    "test_create_guest_memfd_multiple": "gmem-create-multiple",
    "test_create_guest_memfd_invalid_sizes": "gmem-invalid-sizes",
    "test_file_read_write": "gmem-read-write",
    "test_mmap_supported": "gmem-mmap-supported",
    "test_fault_overflow": "gmem-fault-overflow",
    "test_fault_private": "gmem-fault-private",
    "test_mmap_cow": "gmem-mmap-cow",
    "test_mmap_not_supported": "gmem-mmap-not-supported",
    "test_file_size": "gmem-file-size",
    "test_fallocate": "gmem-fallocate",
    "test_invalid_punch_hole": "gmem-invalid-punch-hole",
    "test_guest_memfd_flags": "gmem-flags",
    "test_guest_memfd_guest (host side)": "gmem-guest",
}
EXTRA = ["gmem-bind", "gmem-bind-other-vm", "gmem-bind-close", "gmem-lifetime",
         "gmem-bytes-create", "gmem-bytes-memslot", "gmem-gpa-overlap", "gmem-read-write-counts",
         "gmem-delete-flags"]


def test_every_selftest_scenario_has_a_file() -> None:
    names = {p.stem for p in FILES}
    assert names == set(SELFTEST.values()) | set(EXTRA)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_scenario_on_the_model(path: Path) -> None:
    t = load_trace(str(path))
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# shmemcheck trace 1: ") and len(lines[0]) > 25
    assert lines[1] == f"# design: {GMEM}" and lines[2] == "# expect: conforms"
    assert not any(isinstance(s.outcome, Any_) for s in t.steps)
    rep = check_expectation(designs.get(t.design), t)
    assert rep.expectation_met, rep.message


def _kernel_or_skip() -> None:
    reason = capability("kvm")
    if reason:
        print(f"skipped: {reason}")
        pytest.skip(reason)


def _on_kernel(t: Trace, where: str) -> None:
    run = run_on_kernel(t.steps, timeout=30.0)
    if run.skipped:
        pytest.skip(f"{where}: {run.skipped}")
    assert run.error is None, f"{where}: {run.error}"
    for i, (step, got) in enumerate(zip(t.steps, run.outcomes, strict=True), 1):
        assert step.outcome == got, f"{where}: step {i} ({step.call}): kernel says {got}"


@pytest.mark.kernel
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_scenario_on_the_kernel(path: Path) -> None:
    _kernel_or_skip()
    _on_kernel(load_trace(str(path)), path.name)


@pytest.mark.kernel
@pytest.mark.parametrize(("table", "name"), ROWS)
def test_decision_table_on_the_kernel(table: str, name: str) -> None:
    _kernel_or_skip()
    t = parse_trace("# shmemcheck trace 1\n# design: guest_memfd\n" + TABLES[table][name],
                    f"<{table}: {name}>")
    assert model_outcomes(designs.get(GMEM), t).divergence is None
    _on_kernel(t, f"{table}: {name}")
