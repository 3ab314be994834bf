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
    """A mapping name (m1, ...); the parameter is the mapping kind."""

    param: str


@dataclass(frozen=True)
class PinRef:
    param: str


@dataclass(frozen=True)
class ProcFd:
    """"/proc/self/fd/N" naming a descriptor of the parameter's kind."""

    param: str


@dataclass(frozen=True)
class Flags:
    """A flag word printed with names from `family` (name -> bit)."""

    param: str
    family: Mapping[str, int]
    zero: str = "0"


@dataclass(frozen=True)
class Num:
    """A number: parameter value × scale (bytes per model page, say); `octal` prints 0755."""

    param: str
    scale: Scale | int = 1
    octal: bool = False


@dataclass(frozen=True)
class Span:
    """A fixed length of `pages` model pages, printed in bytes (an mmap/munmap length)."""

    scale: Scale | int
    pages: int = 1


@dataclass(frozen=True)
class Choice:
    """The parameter's values printed as fixed arguments (strace text: '"t"', "NULL")."""

    param: str
    table: Mapping[int, str]


@dataclass(frozen=True)
class Fields:
    """A struct argument {name=spec, ...}."""

    items: tuple[tuple[str, ArgSpec], ...] = field(default=())


ArgSpec = C | Fd | MapRef | PinRef | ProcFd | Flags | Num | Span | Choice | Fields
