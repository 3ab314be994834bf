"""uapi constants and errno/signal names, as the kernel headers define them.

Sources: include/uapi/linux/memfd.h, include/uapi/linux/fcntl.h, include/uapi/linux/falloc.h,
include/uapi/asm-generic/mman-common.h, include/uapi/linux/kvm.h, include/uapi/asm-generic/errno*.h
(kernel-semantics.md §1.1, §2.1, §5.3). tests/test_vocab.py checks them against this machine's
uapi headers (/usr/include, compiled with the C compiler) where those define them.
"""

from __future__ import annotations

import errno as _errno

PAGE_SIZE = 4096
#: the bytes a pipe holds by default (PIPE_DEF_BUFFERS pages, fs/pipe.c)
PIPE_BYTES = 16 * PAGE_SIZE
HPAGE_SIZE = 2 * 1024 * 1024

# include/uapi/linux/memfd.h
MFD_CLOEXEC = 0x0001
MFD_ALLOW_SEALING = 0x0002
MFD_HUGETLB = 0x0004
MFD_NOEXEC_SEAL = 0x0008
MFD_EXEC = 0x0010
MFD_HUGE_SHIFT = 26
MFD_HUGE_MASK = 0x3F
#: include/uapi/linux/memfd.h: MFD_HUGE_* = log2(page size) << MFD_HUGE_SHIFT (parsed, not
#: printed: they are multi-bit values, not flags)
MFD_HUGE_SIZES = {f"MFD_HUGE_{n}": log << MFD_HUGE_SHIFT for n, log in (
    ("64KB", 16), ("512KB", 19), ("1MB", 20), ("2MB", 21), ("8MB", 23), ("16MB", 24),
    ("32MB", 25), ("256MB", 28), ("512MB", 29), ("1GB", 30), ("2GB", 31), ("16GB", 34))}
MFD_ALL_FLAGS = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC
MFD_INACCESSIBLE_V5 = 0x0008  # PATCH v5 01/13 (2022, never merged); collides with MFD_NOEXEC_SEAL

# include/uapi/linux/fcntl.h
F_LINUX_SPECIFIC_BASE = 1024
F_ADD_SEALS = F_LINUX_SPECIFIC_BASE + 9
F_GET_SEALS = F_LINUX_SPECIFIC_BASE + 10
#: mm/memfd.c: NAME_MAX - strlen("memfd:"); a longer memfd_create name is EINVAL
MFD_NAME_MAX_LEN = 249
F_SEAL_SEAL = 0x01
F_SEAL_SHRINK = 0x02
F_SEAL_GROW = 0x04
F_SEAL_WRITE = 0x08
F_SEAL_FUTURE_WRITE = 0x10
F_SEAL_EXEC = 0x20
F_ALL_SEALS = 0x3F

O_RDONLY = 0o0
O_WRONLY = 0o1
O_RDWR = 0o2
O_CREAT = 0o100
O_TRUNC = 0o1000
O_CLOEXEC = 0o2000000
# the description's flags fcntl(F_SETFL) reads (include/uapi/asm-generic/fcntl.h, x86-64)
O_APPEND = 0o2000
O_NONBLOCK = 0o4000
O_ASYNC = 0o20000
#: O_DSYNC, and O_SYNC (__O_SYNC|O_DSYNC: build_open_flags() adds O_DSYNC to __O_SYNC)
O_DSYNC, O_SYNC = 0o10000, 0o4010000
#: open()'s flags that stay in f_flags (F_GETFL shows them) and change no outcome on shmem
#: or hugetlbfs (iocb_flags(): O_DSYNC/__O_SYNC make a write sync, and their fsync is a no-op)
OPEN_STATUS_FLAGS = {"O_NONBLOCK": 0o4000, "O_DSYNC": O_DSYNC, "O_ASYNC": O_ASYNC,
                     "O_NOATIME": 0o1000000, "O_SYNC": O_SYNC}
O_DIRECT = 0o40000
O_LARGEFILE = 0o100000
O_NOATIME = 0o1000000
#: fcntl(F_SETFL)'s argument as strace prints it (the access mode and O_LARGEFILE, which a
#: program passes back from F_GETFL, are ignored by setfl())
SETFL_FLAGS = {"O_RDONLY": O_RDONLY, "O_WRONLY": O_WRONLY, "O_RDWR": O_RDWR,
               "O_APPEND": O_APPEND, "O_NONBLOCK": O_NONBLOCK, "O_ASYNC": O_ASYNC,
               "O_DIRECT": O_DIRECT, "O_LARGEFILE": O_LARGEFILE, "O_NOATIME": O_NOATIME}

# include/uapi/linux/falloc.h
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_COLLAPSE_RANGE = 0x08
FALLOC_FL_ZERO_RANGE = 0x10
FALLOC_FL_INSERT_RANGE = 0x20
FALLOC_FL_UNSHARE_RANGE = 0x40
FALLOC_FL_WRITE_ZEROES = 0x80  # 6.17
FALLOC_FL_MODE_MASK = (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_ZERO_RANGE
                       | FALLOC_FL_INSERT_RANGE | FALLOC_FL_UNSHARE_RANGE
                       | FALLOC_FL_WRITE_ZEROES)

# include/uapi/asm-generic/mman-common.h
PROT_NONE = 0x0
PROT_READ = 0x1
PROT_WRITE = 0x2
PROT_EXEC = 0x4
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MADV_REMOVE = 9  # madvise(): free the range and its backing store (a hole punch)
# the other advice values (include/uapi/asm-generic/mman-common.h), largest first so that
# render_flags() names a value exactly (they are numbers, not bits)
MADV_OTHER = {
    "MADV_GUARD_REMOVE": 103, "MADV_GUARD_INSTALL": 102, "MADV_SOFT_OFFLINE": 101,
    "MADV_HWPOISON": 100, "MADV_COLLAPSE": 25, "MADV_DONTNEED_LOCKED": 24,
    "MADV_POPULATE_WRITE": 23, "MADV_POPULATE_READ": 22, "MADV_PAGEOUT": 21, "MADV_COLD": 20,
    "MADV_KEEPONFORK": 19, "MADV_WIPEONFORK": 18, "MADV_DODUMP": 17, "MADV_DONTDUMP": 16,
    "MADV_NOHUGEPAGE": 15, "MADV_HUGEPAGE": 14, "MADV_UNMERGEABLE": 13, "MADV_MERGEABLE": 12,
    "MADV_DOFORK": 11, "MADV_DONTFORK": 10, "MADV_FREE": 8, "MADV_DONTNEED": 4,
    "MADV_WILLNEED": 3, "MADV_SEQUENTIAL": 2, "MADV_RANDOM": 1, "MADV_NORMAL": 0,
}

# include/uapi/asm-generic/ioctl.h: an ioctl number is dir << 30 | size << 16 | type << 8 | nr
_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2


def _ioc(direction: int, type_: int, nr: int, size: int) -> int:
    return direction << 30 | size << 16 | type_ << 8 | nr


# include/uapi/linux/udmabuf.h: struct udmabuf_create { __u32 memfd, flags; __u64 offset, size; }
UDMABUF_DEV = "/dev/udmabuf"
#: _IOW('u', 0x42, struct udmabuf_create): 24 bytes = 0x40187542
UDMABUF_CREATE = _ioc(_IOC_WRITE, ord("u"), 0x42, 24)
#: _IOW('u', 0x43, struct udmabuf_create_list): the 8-byte header = 0x40087543
UDMABUF_CREATE_LIST = _ioc(_IOC_WRITE, ord("u"), 0x43, 8)

# include/uapi/linux/kvm.h (6.18)
KVMIO = 0xAE
KVM_CREATE_VM = _ioc(_IOC_NONE, KVMIO, 0x01, 0)  # _IO(KVMIO, 0x01) = 0xAE01
KVM_CHECK_EXTENSION = _ioc(_IOC_NONE, KVMIO, 0x03, 0)  # _IO(KVMIO, 0x03) = 0xAE03
#: _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd): 64 bytes = 0xC040AED4
KVM_CREATE_GUEST_MEMFD = _ioc(_IOC_READ | _IOC_WRITE, KVMIO, 0xD4, 64)
#: _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2): 160 bytes = 0x40A0AE49
KVM_SET_USER_MEMORY_REGION2 = _ioc(_IOC_WRITE, KVMIO, 0x49, 160)
KVM_CAP_GUEST_MEMFD = 234
KVM_CAP_GUEST_MEMFD_FLAGS = 244
GUEST_MEMFD_FLAG_MMAP = 1 << 0
GUEST_MEMFD_FLAG_INIT_SHARED = 1 << 1
KVM_MEM_LOG_DIRTY_PAGES = 1 << 0
KVM_MEM_READONLY = 1 << 1
KVM_MEM_GUEST_MEMFD = 1 << 2

# Flag families, in the order strace prints them.
MFD_FLAGS = {
    "MFD_CLOEXEC": MFD_CLOEXEC,
    "MFD_ALLOW_SEALING": MFD_ALLOW_SEALING,
    "MFD_HUGETLB": MFD_HUGETLB,
    "MFD_NOEXEC_SEAL": MFD_NOEXEC_SEAL,
    "MFD_EXEC": MFD_EXEC,
}
SEALS = {
    "F_SEAL_SEAL": F_SEAL_SEAL,
    "F_SEAL_SHRINK": F_SEAL_SHRINK,
    "F_SEAL_GROW": F_SEAL_GROW,
    "F_SEAL_WRITE": F_SEAL_WRITE,
    "F_SEAL_FUTURE_WRITE": F_SEAL_FUTURE_WRITE,
    "F_SEAL_EXEC": F_SEAL_EXEC,
}
FALLOC_FLAGS = {
    "FALLOC_FL_KEEP_SIZE": FALLOC_FL_KEEP_SIZE,
    "FALLOC_FL_PUNCH_HOLE": FALLOC_FL_PUNCH_HOLE,
    "FALLOC_FL_COLLAPSE_RANGE": FALLOC_FL_COLLAPSE_RANGE,
    "FALLOC_FL_ZERO_RANGE": FALLOC_FL_ZERO_RANGE,
}
PROT_FLAGS = {"PROT_READ": PROT_READ, "PROT_WRITE": PROT_WRITE, "PROT_EXEC": PROT_EXEC}
MAP_FLAGS = {"MAP_SHARED": MAP_SHARED, "MAP_PRIVATE": MAP_PRIVATE}
OPEN_FLAGS = {"O_RDWR": O_RDWR, "O_WRONLY": O_WRONLY, "O_CREAT": O_CREAT, "O_TRUNC": O_TRUNC,
              "O_CLOEXEC": O_CLOEXEC}
GMEM_FLAGS = {"GUEST_MEMFD_FLAG_MMAP": GUEST_MEMFD_FLAG_MMAP,
              "GUEST_MEMFD_FLAG_INIT_SHARED": GUEST_MEMFD_FLAG_INIT_SHARED}
MEMSLOT_FLAGS = {"KVM_MEM_LOG_DIRTY_PAGES": KVM_MEM_LOG_DIRTY_PAGES,
                 "KVM_MEM_READONLY": KVM_MEM_READONLY,
                 "KVM_MEM_GUEST_MEMFD": KVM_MEM_GUEST_MEMFD}
FCNTL_CMDS = {"F_ADD_SEALS": F_ADD_SEALS, "F_GET_SEALS": F_GET_SEALS}
#: include/uapi/linux/fs.h: pwritev2()/preadv2() flags (rwf_t), in bit order
RWF_FLAGS = {
    "RWF_HIPRI": 0x1, "RWF_DSYNC": 0x2, "RWF_SYNC": 0x4, "RWF_NOWAIT": 0x8,
    "RWF_APPEND": 0x10, "RWF_NOAPPEND": 0x20, "RWF_ATOMIC": 0x40, "RWF_DONTCACHE": 0x80,
    "RWF_NOSIGNAL": 0x100,
}
RWF_NOWAIT, RWF_APPEND, RWF_NOAPPEND = 0x8, 0x10, 0x20
RWF_ATOMIC, RWF_DONTCACHE = 0x40, 0x80
#: RWF_SUPPORTED (include/linux/fs.h) on Linux 6.18: every flag above; a ninth bit, 0x200,
#: is EOPNOTSUPP on 6.18.44 (probed)
RWF_SUPPORTED_6_18 = 0x1FF
#: include/uapi/linux/stat.h: the file type in st_mode (a memfd is a regular file)
S_IFREG = 0o100000
STAT_MODE = {"S_IFREG": S_IFREG}
#: include/uapi/linux/fcntl.h: newfstatat()'s flag for "the descriptor itself"
AT_EMPTY_PATH = 0x1000
AT_FLAGS = {"AT_EMPTY_PATH": AT_EMPTY_PATH}
#: file_getattr()/file_setattr()'s at_flags (fs/file_attr.c), as strace's file_attr_flags
AT_SYMLINK_NOFOLLOW = 0x100
FILE_ATTR_AT_FLAGS = {"AT_SYMLINK_NOFOLLOW": AT_SYMLINK_NOFOLLOW, "AT_EMPTY_PATH": AT_EMPTY_PATH}
MADV_ADVICE = dict(sorted({"MADV_REMOVE": MADV_REMOVE, **MADV_OTHER}.items(),
                          key=lambda kv: -kv[1]))
#: include/uapi/linux/mman.h: mremap()'s flags, in bit order
MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP = 1, 2, 4
MREMAP_FLAGS = {"MREMAP_MAYMOVE": MREMAP_MAYMOVE, "MREMAP_FIXED": MREMAP_FIXED,
                "MREMAP_DONTUNMAP": MREMAP_DONTUNMAP}

#: include/uapi/linux/fs.h: the inode flags of FS_IOC_GETFLAGS/FS_IOC_SETFLAGS (chattr), in bit
#: order as strace names them (FS_INDEX_FL is also FS_BTREE_FL)
FS_FLAGS = {
    "FS_SECRM_FL": 0x1, "FS_UNRM_FL": 0x2, "FS_COMPR_FL": 0x4, "FS_SYNC_FL": 0x8,
    "FS_IMMUTABLE_FL": 0x10, "FS_APPEND_FL": 0x20, "FS_NODUMP_FL": 0x40, "FS_NOATIME_FL": 0x80,
    "FS_DIRTY_FL": 0x100, "FS_COMPRBLK_FL": 0x200, "FS_NOCOMP_FL": 0x400,
    "FS_ENCRYPT_FL": 0x800, "FS_INDEX_FL": 0x1000, "FS_IMAGIC_FL": 0x2000,
    "FS_JOURNAL_DATA_FL": 0x4000, "FS_NOTAIL_FL": 0x8000, "FS_DIRSYNC_FL": 0x10000,
    "FS_TOPDIR_FL": 0x20000, "FS_HUGE_FILE_FL": 0x40000, "FS_EXTENT_FL": 0x80000,
    "FS_VERITY_FL": 0x100000, "FS_EA_INODE_FL": 0x200000, "FS_EOFBLOCKS_FL": 0x400000,
    "FS_NOCOW_FL": 0x800000, "FS_DAX_FL": 0x2000000, "FS_INLINE_DATA_FL": 0x10000000,
    "FS_PROJINHERIT_FL": 0x20000000, "FS_CASEFOLD_FL": 0x40000000,
    "FS_RESERVED_FL": 0x80000000,
}
FS_IMMUTABLE_FL, FS_APPEND_FL, FS_NODUMP_FL, FS_NOATIME_FL = 0x10, 0x20, 0x40, 0x80
#: _IOR('f', 1, long) and _IOW('f', 2, long); the kernel reads and writes an int there
FS_IOC_GETFLAGS, FS_IOC_SETFLAGS = 0x80086601, 0x40086602
#: include/uapi/linux/fs.h: struct fsxattr's fsx_xflags (FS_IOC_FSGETXATTR/FSSETXATTR, xfs_io's
#: chattr), in bit order as strace names them
FS_XFLAGS = {
    "FS_XFLAG_REALTIME": 0x1, "FS_XFLAG_PREALLOC": 0x2, "FS_XFLAG_IMMUTABLE": 0x8,
    "FS_XFLAG_APPEND": 0x10, "FS_XFLAG_SYNC": 0x20, "FS_XFLAG_NOATIME": 0x40,
    "FS_XFLAG_NODUMP": 0x80, "FS_XFLAG_RTINHERIT": 0x100, "FS_XFLAG_PROJINHERIT": 0x200,
    "FS_XFLAG_NOSYMLINKS": 0x400, "FS_XFLAG_EXTSIZE": 0x800, "FS_XFLAG_EXTSZINHERIT": 0x1000,
    "FS_XFLAG_NODEFRAG": 0x2000, "FS_XFLAG_FILESTREAM": 0x4000, "FS_XFLAG_DAX": 0x8000,
    "FS_XFLAG_COWEXTSIZE": 0x10000, "FS_XFLAG_HASATTR": 0x80000000,
}
#: _IOR('X', 31, struct fsxattr) and _IOW('X', 32, struct fsxattr) (28 bytes: five __u32 and 8
#: bytes of padding)
FS_IOC_FSGETXATTR, FS_IOC_FSSETXATTR = 0x801C581F, 0x401C5820
#: the ioctl requests do_vfs_ioctl() answers for any file (include/uapi/asm-generic/ioctls.h):
#: close-on-exec, O_NONBLOCK; and terminal requests a shmem file has no handler for (isatty()'s
#: TCGETS, a terminal size's TIOCGWINSZ)
VFS_IOCTLS = {"FIOCLEX": 0x5451, "FIONCLEX": 0x5450, "FIONBIO": 0x5421}
TTY_IOCTLS = {"TCGETS": 0x5401, "TIOCGWINSZ": 0x5413}
FIOCLEX, FIONCLEX, FIONBIO = VFS_IOCTLS["FIOCLEX"], VFS_IOCTLS["FIONCLEX"], VFS_IOCTLS["FIONBIO"]

#: Every named constant a trace may use, name -> value.
CONSTANTS: dict[str, int] = {
    **MFD_FLAGS, **SEALS, **FALLOC_FLAGS, **PROT_FLAGS, **MAP_FLAGS, **OPEN_FLAGS,
    **GMEM_FLAGS, **MEMSLOT_FLAGS, **FCNTL_CMDS, **MADV_ADVICE, **MFD_HUGE_SIZES, **RWF_FLAGS,
    **MREMAP_FLAGS, **STAT_MODE, **FILE_ATTR_AT_FLAGS, **SETFL_FLAGS, "PROT_NONE": PROT_NONE,
    "KVM_CREATE_VM": KVM_CREATE_VM, "KVM_CREATE_GUEST_MEMFD": KVM_CREATE_GUEST_MEMFD,
    "KVM_SET_USER_MEMORY_REGION2": KVM_SET_USER_MEMORY_REGION2,
    **FS_FLAGS, "FS_IOC_GETFLAGS": FS_IOC_GETFLAGS, "FS_IOC_SETFLAGS": FS_IOC_SETFLAGS,
    **FS_XFLAGS, "FS_IOC_FSGETXATTR": FS_IOC_FSGETXATTR, "FS_IOC_FSSETXATTR": FS_IOC_FSSETXATTR,
    **VFS_IOCTLS, **TTY_IOCTLS, **OPEN_STATUS_FLAGS,
}


def render_flags(value: int, family: dict[str, int], zero: str = "0") -> str:
    """Render a flag word the way strace does: NAME|NAME|0xrest, or `zero` for 0."""
    if value == 0:
        return zero
    names = []
    rest = value
    for name, bit in family.items():
        if bit and value & bit == bit and rest & bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append(hex(rest))
    return "|".join(names)


def render_enum(value: int, family: dict[str, int], zero: str = "0") -> str:
    """Render a value of an enumeration the way strace does: its name (`zero` for 0 when no
    name has 0), or the number (hex) when no name has it (strace adds `/* MADV_??? */`)."""
    if value == 0 and 0 not in family.values():
        return zero
    for name, v in family.items():
        if v == value:
            return name
    return hex(value) if value > 9 else str(value)


def parse_flags(text: str, family: dict[str, int] | None = None) -> int:
    """Inverse of render_flags: names from `family` first (a design's own uapi), then
    CONSTANTS; decimal/hex/octal numbers too. Raises KeyError naming the first unknown word."""
    value = 0
    for word in text.split("|"):
        word = word.strip()
        if family and word in family:
            value |= family[word]
        elif word in CONSTANTS:
            value |= CONSTANTS[word]
        else:
            try:  # strace prints C octal (0600), which int(word, 0) refuses
                value |= int(word, 8) if word[:1] == "0" and word.isdigit() else int(word, 0)
            except ValueError:
                raise KeyError(word) from None
    return value


# Errno and signal names (asm-generic; x86_64).
ERRNO: dict[str, int] = {name: getattr(_errno, name) for name in (
    "EPERM", "ENOENT", "EINTR", "EIO", "EBADF", "EAGAIN", "ENOMEM", "EACCES", "EFAULT",
    "EBUSY", "EEXIST", "ENODEV", "EINVAL", "EMFILE", "ENOSPC", "ESPIPE", "EFBIG",
    "ENOTTY", "EOPNOTSUPP", "ENOSYS", "ETXTBSY", "ENOEXEC", "ENOTDIR", "EOVERFLOW", "EXDEV",
    "E2BIG", "ENXIO")}
ERRNO_NAME: dict[int, str] = {v: k for k, v in ERRNO.items()}
SIGNALS: dict[str, int] = {"SIGSEGV": 11, "SIGBUS": 7}
SIGNAL_NAME: dict[int, str] = {v: k for k, v in SIGNALS.items()}
STRERROR: dict[str, str] = {
    "EPERM": "Operation not permitted", "ENOENT": "No such file or directory",
    "EIO": "Input/output error", "EBADF": "Bad file descriptor",
    "ENOMEM": "Cannot allocate memory", "EACCES": "Permission denied", "EFAULT": "Bad address",
    "EBUSY": "Device or resource busy", "ENODEV": "No such device",
    "EINVAL": "Invalid argument", "ESPIPE": "Illegal seek", "ENOTTY":
    "Inappropriate ioctl for device", "EOPNOTSUPP": "Operation not supported",
    "ENOSPC": "No space left on device", "EMFILE": "Too many open files",
    "EAGAIN": "Resource temporarily unavailable", "EEXIST": "File exists",
    "EINTR": "Interrupted system call", "EFBIG": "File too large",
    "ENOSYS": "Function not implemented", "ETXTBSY": "Text file busy",
    "ENOEXEC": "Exec format error", "ENOTDIR": "Not a directory",
    "EOVERFLOW": "Value too large for defined data type", "EXDEV": "Invalid cross-device link",
    "ENXIO": "No such device or address",
    "E2BIG": "Argument list too long",
}
