"""The handle table of a trace being replayed: live descriptors, mappings and pins by the
names the trace gives them, and what the state does not hold about them: each descriptor's
open file description (its f_pos, FMODE_READ and O_APPEND), each mapping's length and file
offset, which
descriptions hold write access, the /dev/shm name (NOTES.md "f_pos belongs to the trace",
"Descriptions")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from model.lang.action import DESC_DEFAULT, MAP_DEFAULT
from traces.refusal import ResolveError
from traces.syscalls import FD_LIMIT

PREFIX = {"map": "m", "pin": "p"}


@dataclass
class Handles:
    """Live handles: fd number / mapping name / pin name -> kind index (enum value)."""

    live: dict[str, dict[str, int]] = field(
        default_factory=lambda: {"fd": {}, "map": {}, "pin": {}})
    serial: dict[str, int] = field(default_factory=lambda: {"map": 0, "pin": 0})
    #: fd number -> its open file description (a number); description -> its f_pos
    desc: dict[str, int] = field(default_factory=dict)
    fpos: dict[int, int] = field(default_factory=dict)
    #: description -> its attributes (Action.describes: "read", "append")
    attrs: dict[int, Mapping[str, int]] = field(default_factory=dict)
    #: mapping name -> its attributes (Action.maps_as: "pages", "off"; MAP_DEFAULT unless
    #: its mmap said)
    maps: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the /dev/shm name of the trace's tmpfs file (ShmPath), once a call on it succeeded
    shm: str | None = None
    #: a mapping held in pieces since munmap or mprotect of a part of it (NOTES.md "VMA
    #: splits"): its name -> (its length in bytes, [(where a piece starts, in bytes from the
    #: mapping's address, the piece's name)] in address order). Each piece is a mapping of
    #: its own in `live` and `maps`: the first keeps the mapping's name, the others are named
    #: by where they start ("m1+8192", a name no trace line can give)
    pieces: dict[str, tuple[int, list[tuple[int, str]]]] = field(default_factory=dict)

    def has_map(self, name: str) -> bool:
        """Mapping `name` (or a piece of it) is live."""
        return name in self.live["map"] or name in self.pieces

    def piece(self, name: str, at: int, page: int) -> tuple[str, int]:
        """The piece of mapping `name` holding its byte `at`, and where that piece starts: the
        mapping itself, at 0, while it is whole. Outside the mapping's first length, the first
        or the last piece (the rules judge what lies past it); inside, a byte no piece holds
        was unmapped, and is refused: another mapping may lie there now."""
        if name not in self.pieces:
            return name, 0
        length, parts = self.pieces[name]
        for start, pid in parts:
            if start <= at < start + self.maps[pid]["pages"] * page:
                return pid, start
        if 0 <= at < length:
            raise ResolveError(f"outside the model: {name}+{at} was unmapped (munmap of a "
                               "part of the mapping): whether another mapping lies there now "
                               "is the caller's address space, which the model does not hold")
        start, pid = parts[0] if at < 0 else parts[-1]
        return pid, start

    def reshape(self, pid: str, at: int, n: int, page: int, kind: int | None) -> list[int]:
        """Pages at..at+n of piece `pid` are unmapped (`kind` None) or become a mapping of
        `kind` (mprotect): the piece splits where the range starts and ends. Returns the
        kinds of the pieces now covering the piece's old range, in address order (for the
        caller to check against the model's counters)."""
        name = pid.split("+")[0]
        if name not in self.pieces:
            self.pieces[name] = (self.maps.get(pid, MAP_DEFAULT).get("pages", 1) * page,
                                 [(0, pid)])
        length, parts = self.pieces[name]
        start = next(s for s, p in parts if p == pid)
        old, attrs = self.live["map"][pid], dict(self.maps.get(pid, MAP_DEFAULT))
        pages = attrs["pages"]
        cuts = [(0, at, old), (at, at + n, kind), (at + n, pages, old)]
        new: list[tuple[int, str]] = []
        del self.live["map"][pid]
        self.maps.pop(pid, None)
        kinds = []
        for lo, hi, k in cuts:
            if hi <= lo or k is None:
                continue
            here = start + lo * page
            nid = pid if not new else f"{name}+{here}"
            new.append((here, nid))
            self.live["map"][nid] = k
            self.maps[nid] = {**attrs, "pages": hi - lo, "off": attrs["off"] + lo * page}
            kinds.append(k)
        i = parts.index((start, pid))
        parts = [*parts[:i], *new, *parts[i + 1:]]
        if parts:
            self.pieces[name] = (length, parts)
        else:
            del self.pieces[name]
        return kinds

    def drop_map(self, name: str) -> None:
        """Forget a whole mapping's piece (munmap or mremap of it)."""
        base = name.split("+")[0]
        if base in self.pieces:
            length, parts = self.pieces[base]
            parts = [(s, p) for s, p in parts if p != name]
            if parts:
                self.pieces[base] = (length, parts)
            else:
                del self.pieces[base]

    def describe(self, hid: str, shares: str | None,
                 attrs: Mapping[str, int] = DESC_DEFAULT) -> None:
        """Descriptor `hid` is new: it shares the description of descriptor `shares` (dup),
        or has a new one at f_pos 0 with `attrs` (memfd_create, open)."""
        if shares is not None and shares in self.desc:
            self.desc[hid] = self.desc[shares]
        else:
            self.desc[hid] = len(self.fpos)
            self.fpos[self.desc[hid]] = 0
            self.attrs[self.desc[hid]] = dict(attrs)

    def attr(self, hid: str, name: str) -> int:
        """An attribute of the description descriptor `hid` names (Action.from_desc); an
        unknown description is refused, never given the default."""
        if hid not in self.desc:
            raise ResolveError(f"outside the model: descriptor {hid}'s open file description "
                               "(its access mode and O_APPEND) is not known at this point of "
                               "the trace")
        return self.attrs[self.desc[hid]][name]

    def map_attr(self, hid: str, name: str) -> int:
        """An attribute of mapping `hid` (Action.from_map): its mmap's, else MAP_DEFAULT's."""
        return self.maps.get(hid, MAP_DEFAULT).get(name, MAP_DEFAULT[name])

    def pos(self, hid: str) -> int:
        """The f_pos of the description descriptor `hid` names (every descriptor a trace
        creates has one: after_step); an unknown one is refused, never taken as 0."""
        if hid not in self.desc:
            raise ResolveError(f"outside the model: descriptor {hid}'s open file description "
                               "(and its f_pos) is not known at this point of the trace")
        return self.fpos[self.desc[hid]]

    def writers(self) -> int:
        """How many live open file descriptions hold write access on the inode (its
        i_writecount): a description lives while a descriptor names it."""
        return len({self.desc[f] for f in self.live["fd"] if f in self.desc
                    and self.attrs[self.desc[f]]["writecount"]})

    def pick(self, family: str, kind: int) -> str:
        for hid, k in self.live[family].items():
            if k == kind:
                return hid
        raise ResolveError(f"no live {family} handle of kind {kind}")

    def new(self, family: str, kind: int, want: int | None = None, least: int = 3) -> str:
        """A new handle of `kind`. A descriptor takes the number the trace gives it (`want`)
        when that number is free, at least `least` and below FD_LIMIT (RLIMIT_NOFILE's default:
        the kernel gives no higher one, fs/file.c alloc_fd()); otherwise the lowest free number
        from max(3, least) (a generated trace: 3, 4, ...). The trace's process may hold numbers
        the trace never shows, so any free number is as good as the lowest."""
        if family == "fd":
            n = max(3, least)
            if want is not None and least <= want < FD_LIMIT and str(want) not in self.live["fd"]:
                n = want
            while str(n) in self.live["fd"]:
                n += 1
            hid = str(n)
            # keep fds ordered by number so pick() prefers the lowest
            self.live["fd"][hid] = kind
            self.live["fd"] = dict(sorted(self.live["fd"].items(), key=lambda kv: int(kv[0])))
            return hid
        self.serial[family] += 1
        hid = f"{PREFIX[family]}{self.serial[family]}"
        self.live[family][hid] = kind
        return hid
