"""How an action prints as an strace line: declarative argument specs, no semantics.

The model does not import traces/: constants are given as strace text fragments.

traces/concretize.py renders an action instance with these specs and parses a trace line back
into (action, parameter values) with the same specs, so printing and parsing cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

#: state values (field name -> int) -> bytes per model page (4 KiB, or 2 MiB on hugetlbfs)
Scale = Callable[[Mapping[str, int]], int]


@dataclass(frozen=True)
class C:
    """A constant argument, as strace text: "F_ADD_SEALS", "NULL", "0", '"x"...'."""

    text: str


@dataclass(frozen=True)
class Fd:
    """A descriptor: the parameter is the kind (an enum of the "fd" handle family)."""

    param: str


@dataclass(frozen=True)
class MapRef:
    """A mapping name (m1, ...); the parameter is the mapping kind.

    A mapping a part of which was unmapped or reprotected is held in pieces (NOTES.md "VMA
    splits"); the piece a call reaches is bound, not the mapping: `at` names the parameter
    that gets the address's page within its piece (`m1+8192`: munmap, mprotect; the page
    size of the state's file is `scale`'s), `reach` the one holding a byte offset into the
    mapping (store, load), which is rebased to the piece. `unmaps`: the range is unmapped
    (munmap), else reprotected (mprotect)."""

    param: str
    at: str | None = None
    reach: str | None = None
    unmaps: bool = False
    scale: Callable[[Mapping[str, int]], int] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PinRef:
    param: str


@dataclass(frozen=True)
class ProcFd:
    """"/proc/self/fd/N" naming a descriptor of the parameter's kind."""

    param: str


@dataclass(frozen=True)
class ShmPath:
    """A path on the /dev/shm tmpfs mount, "/dev/shm/NAME" (glibc's shm_open()): no
    parameter. A trace names one such file, the first name it opens or unlinks with success
    (traces/concretize.py); `name` is what a generated trace prints."""

    name: str = "t"
    prefix: str = "/dev/shm/"


@dataclass(frozen=True)
class Flags:
    """A flag word printed with names from `family` (name -> bit); with `enum`, a value that
    is one name or none (madvise's advice): a value no name has is printed as a number, never
    as names ORed together."""

    param: str
    family: Mapping[str, int]
    zero: str = "0"
    enum: bool = False


@dataclass(frozen=True)
class Num:
    """A number: parameter value × scale (bytes per model page, say); `octal` prints 0755.
    `refuse`: values this spelling gives another meaning the parameter does not have, each
    with why (io_uring's offset -1 is the description's f_pos): outside the model."""

    param: str
    scale: Scale | int = 1
    octal: bool = False
    refuse: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Span:
    """A fixed length of `pages` model pages, printed in bytes (an mmap/munmap length)."""

    scale: Scale | int
    pages: int = 1


@dataclass(frozen=True)
class Choice:
    """The parameter's values printed as fixed arguments (strace text: '"t"', "NULL").

    `extra`: flag names a trace may add to a value's flag expression without changing the
    parameter (open's O_CREAT on an existing file, O_CLOEXEC); the action says why.
    `keep`: flag names a trace may add that parameter `into` holds, ORed (open's O_NONBLOCK:
    the description's status flags); printed after the value's text when set."""

    param: str
    table: Mapping[int, str]
    extra: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    into: str | None = None


@dataclass(frozen=True)
class CString:
    """A C string judged by its length alone (memfd_create's name): the parameter is `null`
    for NULL, `long` when the bytes before the first NUL number more than `max_len`, else
    `short`; `text` prints each value. A string strace truncated (`"abc"...`) is longer than
    the bytes shown, by an unknown amount: traces/concretize.py judges it only when every
    possible length gives the same outcome."""

    param: str
    text: Mapping[int, str]
    max_len: int
    null: int
    short: int
    long: int


@dataclass(frozen=True)
class NewFd:
    """The number the call gives its new descriptor (dup2/dup3's newfd): no parameter; the
    trace's handle table takes it (traces/concretize.py). A descriptor already open at that
    number is closed by the kernel after the new one is installed (fs/file.c do_dup2() ->
    filp_close()): replay applies the action `closes` to it."""

    closes: str = "close"


@dataclass(frozen=True)
class MinFd:
    """The least number the call's new descriptor may get (fcntl F_DUPFD's arg): no parameter;
    the new descriptor is the lowest free number from there (traces/concretize.py)."""


@dataclass(frozen=True)
class Harmless:
    """An argument the action's rules do not read, and `why`: one of the strace texts in
    `values` (by the value the kernel sees), or any number when `values` is empty; with
    `optional` it may be left out (strace prints open's mode only with O_CREAT). Printed as
    values[0], or left out."""

    why: str
    values: tuple[str, ...] = ()
    optional: bool = False


@dataclass(frozen=True)
class IoVec:
    """An iovec array as strace prints it, `[{iov_base="x"..., iov_len=N}, ...]`: the parameter
    is the total of the iov_len fields (size_t); the data is not read (a write's bytes do
    not decide its outcome, a read's are its result). Printed as one iovec with `data`."""

    param: str
    data: str = '"x"...'


@dataclass(frozen=True)
class IoCnt:
    """The iovec count after an IoVec: the number of iovecs listed (no parameter)."""


@dataclass(frozen=True)
class Ptr:
    """A pointer to a number the call reads (copy_file_range's loff_t *off_in), as strace
    prints it: `[N]`, judged as Num(param) would judge N; with a `family`, a flag word
    (FS_IOC_SETFLAGS's `[FS_IMMUTABLE_FL]`), judged as Flags(param, family). NULL means
    something else (the description's f_pos) or EFAULT, which `null` says why the model does
    not judge. Printed `[N]` or `[NAME|NAME]`."""

    param: str
    null: str
    family: Mapping[str, int] | None = None

    def inner(self) -> Num | Flags:
        """How the number inside the brackets is read and printed."""
        return Num(self.param) if self.family is None else Flags(self.param, self.family)


@dataclass(frozen=True)
class Bytes:
    """A buffer whose bytes decide no outcome (write's data, read's result): any string as
    strace prints it (truncated too), or an address strace showed instead; printed as
    `text`."""

    text: str = '"x"...'


@dataclass(frozen=True)
class Argv:
    """A string list (execve's argv, envp) as strace prints it, `["a", "b"]`, or an address
    (strace's envp, `0x7ffd... /* 22 vars */`) or NULL: not read by the rules (`why`).
    Printed as `text`."""

    why: str = "the arguments: exec's checks on the file do not read them"
    text: str = '["memfd"]'


@dataclass(frozen=True)
class Out:
    """An output the call fills in (a struct stat field): the state field `source` after the
    call, ORed with `base` (st_mode's S_IFREG), printed with the names of `family` and the
    rest in octal (`octal`) or decimal. With `bits` ((field, bit), ...), the value is instead
    the OR of the bits whose boolean field is set, and `source` only names the output. With
    `cell`, the call writes it through a pointer that strace prints as `[N]` (an address when
    the call failed). With `fixed`, the value is always that (a field the kernel zeroes, as
    struct fsxattr's fsx_extsize on shmem). Not a parameter: replay compares the value a
    trace shows with the model's (and the kernel's), a difference is a divergence."""

    source: str
    base: int = 0
    family: Mapping[str, int] = field(default_factory=dict)
    octal: bool = False
    bits: tuple[tuple[str, int], ...] = ()
    cell: bool = False
    fixed: int | None = None


@dataclass(frozen=True)
class Fields:
    """A struct argument {name=spec, ...}. With `others` (why they are not judged), the
    trace's struct may also show fields the spec does not list, and strace's `...`."""

    items: tuple[tuple[str, ArgSpec], ...] = field(default=())
    others: str = ""


ArgSpec = (C | Fd | MapRef | PinRef | ProcFd | ShmPath | Flags | Num | Span | Choice | CString
           | NewFd | MinFd | Harmless | IoVec | IoCnt | Ptr | Bytes | Argv | Out | Fields)
