"""The Trace type: a sequence of strace-style calls with their outcomes.

This is the concrete, engine-independent form of a run: file descriptors are numbers (3, 4, ... in
creation order, lowest free number first, as the kernel allocates them), mappings are names m1, m2,
... and held page pins p1, p2, ...  The model (traces/concretize.py) and the live kernel
(traces/kernel.py) both consume and produce it; the text format (traces/textfmt.py) prints and
parses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pos:
    """1-based line and column in a source file (for file:line:col errors)."""

    line: int = 0
    col: int = 0


# ---- arguments -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Int:
    """A number as written (decimal, or hex/octal via `text`)."""

    value: int
    text: str | None = None  # original spelling, e.g. "0755" or "0x9"; None -> decimal


@dataclass(frozen=True)
class Sym:
    """A symbolic constant or flag expression: NULL, F_ADD_SEALS, MFD_CLOEXEC|MFD_ALLOW_SEALING."""

    text: str


@dataclass(frozen=True)
class Str:
    """A C string literal ("t", "/proc/self/fd/3"); `text` is the unescaped content."""

    text: str
    truncated: bool = False  # strace's `"..."...`: the literal was cut; data repeats to the count


@dataclass(frozen=True)
class Ref:
    """A named handle produced by an earlier step: m1 (mapping), p1 (pin). `plus` is an
    address inside a mapping, bytes past its start (`m1+8192`: munmap and mprotect of a
    part of it)."""

    name: str
    plus: int = 0


@dataclass(frozen=True)
class Struct:
    """A brace-enclosed struct as strace prints ioctl arguments: {size=16384, flags=...}."""

    fields: tuple[tuple[str, Arg], ...]
    #: strace's `, ...}` (or `{...}`): the call filled more fields than are shown (fstat's
    #: struct stat without -v)
    more: bool = False


@dataclass(frozen=True)
class Lst:
    """A bracketed array as strace prints iovecs: [{iov_base="ab", iov_len=2}, ...]."""

    items: tuple[Arg, ...]


Arg = Int | Sym | Str | Ref | Struct | Lst


# ---- outcomes --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ret:
    """A successful return value (>= 0)."""

    value: int


@dataclass(frozen=True)
class Err:
    """-1 with errno (by name, e.g. "EBUSY")."""

    errno: str


@dataclass(frozen=True)
class Sig:
    """The step raised a signal (SIGSEGV, SIGBUS) instead of returning."""

    name: str


@dataclass(frozen=True)
class New:
    """The step created a named handle (mmap -> m1, pin -> p1)."""

    name: str


@dataclass(frozen=True)
class Any_:
    """`= ?`: whatever the model says (hand-written scenarios)."""


Outcome = Ret | Err | Sig | New | Any_


@dataclass(frozen=True)
class Step:
    """One line: call(args) = outcome  [(note)]  [# comment]."""

    call: str
    args: tuple[Arg, ...]
    outcome: Outcome
    note: str | None = None  # strace's parenthesised text after the result, e.g. "(seals ...)"
    comment: str | None = None
    pos: Pos = field(default=Pos(), compare=False)
    #: strace's value-result arguments, `[0] => [4096]`: (argument index, the value the call
    #: wrote back); the argument itself is the value passed in
    updated: tuple[tuple[int, Arg], ...] = ()
    #: the process that makes the call, as the line's `[c1]` or `[pid 1234]` names it (the
    #: name `fork() = c1` or `fork() = 1234` gave it); None: the trace's first process
    proc: str | None = None


@dataclass
class Trace:
    """A trace file: header fields (version, design, scope, expect) and steps."""

    steps: list[Step]
    design: str = "memfd"
    scope: str | None = None  # as on the command line: "pages=2,maps=1"
    expect: str = "conforms"  # "conforms" | "violates PROPERTY" | "witnesses PROPERTY"
    title: str | None = None  # free text of the first header line after the version
    comments: tuple[str, ...] = ()  # other header comment lines, kept verbatim
    path: str | None = None
    #: where each header value starts ("design", "scope", "expect", "init"), for errors
    header_pos: dict[str, Pos] = field(default_factory=dict, compare=False)
