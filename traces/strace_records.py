"""What `shmemcheck strace` (traces/strace_follow.py) records of each memfd it follows: its
history of steps to judge (Event, Memfd) and the address ranges of its mappings in a
process (Mapping)."""

from __future__ import annotations

from dataclasses import dataclass, field

from traces.trace import Ref, Step


@dataclass
class Event:
    """One step of a memfd's history: `step` to judge (None: outside as followed, `why`),
    `alts` other readings of the same log event (a fault: a store, else a load)."""

    line: int
    text: str
    step: Step | None
    counted: bool = True
    why: str | None = None
    alts: tuple[Step, ...] = ()
    observer: bool = False


@dataclass(eq=False)
class Memfd:
    serial: int
    design: str
    name: str
    line: int
    noexec: int
    events: list[Event] = field(default_factory=list)
    tfd: dict[tuple[int, int], int] = field(default_factory=dict)
    maps: int = 0

    def new_tfd(self, key: tuple[int, int], want: int, least: int = 0) -> int:
        """The trace's number for a new descriptor: the log's when free in this trace."""
        live = set(self.tfd.values())
        n = want if least <= want < 1024 and want not in live else max(3, least)
        while n in live:
            n += 1
        self.tfd[key] = n
        return n


@dataclass
class Mapping:
    """[start, end) of the memfd mapping `handle` its mmap placed at `base` (a part unmapped or
    reprotected leaves records of the handle: its pieces, named by address, `m1+8192`)."""

    start: int
    end: int
    memfd: Memfd
    handle: str
    base: int

    def ref(self, at: int | None = None) -> Ref:  # the trace's name of an address in it
        return Ref(self.handle, (self.start if at is None else at) - self.base)

    def part(self, start: int, end: int) -> Mapping:
        return Mapping(start, end, self.memfd, self.handle, self.base)


__all__ = ["Event", "Mapping", "Memfd"]
