"""A trace's processes, lowered to the one-process steps the model and the executor take.

A hand-written trace may say which process makes each call, as `strace -f` does: a line
`fork() = c1` (or `fork() = 1234`) makes a child, and a line beginning `[c1]` (`[pid c1]`,
strace's `[pid 1234]`) is a call of that child; `exit_group(0) = ?` ends a process and
`wait4(c1, NULL, 0, NULL) = c1` reaps it. Each process names its descriptors and mappings as
its own program would: the child's fd 3 and mapping m1 are its copies of the parent's.

The model has no processes (NOTES.md, "fork() is a copy per mapping"): what a fork does to
the inode is kernel/fork.c dup_mmap()'s copy of each VMA (`fork_vma`) and dup_fd()'s copy of
each descriptor (`dup`: the same open file description); an exit is exit_mmap()'s munmap of
each mapping and exit_files()'s close of each descriptor. `flatten` rewrites such a trace
into those steps, judging each on the model as it goes (the handle table says which
descriptors and mappings are live), and renames every process's handles to the one table's.
The result is an ordinary trace: model replay, the kernel executor (whose `fork_vma` forks
a child that keeps the copy) and the exporters read it; each rewritten line keeps its
position and says in its comment what it was. `shmemcheck strace` makes the same steps from
a log's pid column (traces/strace_follow.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from itertools import pairwise

from checker.judge import TraceInputError, judge_step, replay_interpreter
from model.lang.callspec import Fd, Fields, MapRef, NewFd, ProcFd
from model.lang.design import Design
from traces.concretize import initial_state, page_scale
from traces.handles import Handles
from traces.refusal import ResolveError
from traces.textfmt import format_arg, format_step
from traces.trace import (
    Any_,
    Arg,
    Int,
    Lst,
    New,
    Outcome,
    Ref,
    Ret,
    Step,
    Str,
    Struct,
    Sym,
    Trace,
)

#: the calls that make, end and reap processes (not model actions)
PROC_CALLS = frozenset({"fork", "exit_group", "wait4"})
FIRST = "the first process"
PROC_FD = "/proc/self/fd/"
FAMILIES = ("fd", "map", "pin")


def proc_calls(design: Design) -> frozenset[str]:
    """The process calls a design leaves to the lowering (a corpus design that models fork()
    itself, B2's, keeps its own)."""
    return PROC_CALLS - {c for a in design.actions for c, _ in a.spellings()}


def has_processes(trace: Trace, design: Design) -> bool:
    """Whether a trace names processes (then it must be flattened before it is judged)."""
    calls = proc_calls(design)
    return any(s.proc is not None or s.call in calls for s in trace.steps)


#: the calls whose range may cover several pieces of a mapping (NOTES.md "VMA splits")
RANGE_CALLS = ("munmap", "mprotect")


def lowering(design: Design, trace: Trace, grew: bool) -> str:
    """What the flattening lowered in a trace, in words ("" for nothing; `grew`: the
    lowered trace has more steps), for replay's verdict line."""
    what = ["their processes"] if has_processes(trace, design) else []
    if grew and may_split(design, trace):
        what.append("calls on parts of mappings")
    return " and ".join(what)


def may_split(design: Design, trace: Trace) -> bool:
    """Whether a trace may take a part of a mapping (then a later range may cover several
    of its pieces, which the flattening lowers): a munmap or mprotect at an address inside
    a mapping (m1+8192), or of another length than the mmap that made the mapping said, in
    a design whose munmap takes a part (MapRef.at)."""
    if not any(isinstance(sp, MapRef) and sp.at for a in design.actions
               for _, specs in a.spellings() for sp in specs):
        return False
    made: dict[str, int | None] = {}
    for s in trace.steps:
        if s.call == "mmap" and s.args and isinstance(s.args[0], Ref):  # MAP_FIXED over one
            return True
        if s.call in RANGE_CALLS and s.args and isinstance(s.args[0], Ref):
            n = s.args[1] if len(s.args) > 1 else None
            if s.args[0].plus or not isinstance(n, Int) or made.get(s.args[0].name) != n.value:
                return True
        if isinstance(s.outcome, New):
            n = s.args[1] if s.call == "mmap" and len(s.args) > 1 else None
            made[s.outcome.name] = n.value if isinstance(n, Int) else None
    return False


@dataclass
class _Proc:
    """A process: its names for the live handles (its own -> the flat table's)."""

    name: str
    parent: str | None
    names: dict[str, dict[str, str]] = field(
        default_factory=lambda: {fam: {} for fam in FAMILIES})
    exited: int = 0  # the line of its exit_group
    reaped: bool = False


def _roles(design: Design) -> dict[str, dict[int, str]]:
    """Per call, the argument positions that name a descriptor (`fd`, `newfd`: dup2's target,
    `procfd`: "/proc/self/fd/N", `nested`: inside a struct), from the design's call specs. The
    actions spelled by one call agree on them (tests/test_processes.py)."""
    kinds: dict[type, str] = {Fd: "fd", NewFd: "newfd", ProcFd: "procfd"}
    roles: dict[str, dict[int, str]] = {}

    def nested(spec: object) -> bool:
        return isinstance(spec, Fields) and any(
            type(s) in kinds or nested(s) for _, s in spec.items)

    for a in design.actions:
        for call, specs in a.spellings():
            r = roles.setdefault(call, {})
            for i, spec in enumerate(specs):
                if type(spec) in kinds:
                    r[i] = kinds[type(spec)]
                elif nested(spec):
                    r[i] = "nested"
    return roles


class _Flattener:
    def __init__(self, design: Design, trace: Trace) -> None:
        self.design, self.trace = design, trace
        self.path = trace.path or "<trace>"
        self.ex = replay_interpreter(design)
        self.h = Handles()
        self.roles = _roles(design)
        self.scale = page_scale(design)
        self.calls = {c for a in design.actions for c, _ in a.spellings()}
        self.lowered = proc_calls(design)
        self.procs: dict[str | None, _Proc] = {None: _Proc(FIRST, None)}
        #: the processes holding each live pin's pipe, ring or dmabuf (by flat name), and
        #: the call that made it
        self.holders: dict[str, set[str]] = {}
        self.pin_call: dict[str, str] = {}
        #: this line's dup2/dup3 target: (the process's number, the flat one)
        self.newfd: tuple[str, str] | None = None
        self.out: list[Step] = []
        self.diverged = False
        try:
            self.st = initial_state(design, trace)
        except ResolveError as e:
            raise TraceInputError(self.path, None, e.msg, trace.header_pos.get("init")) from None

    def refuse(self, step: Step, why: str) -> TraceInputError:
        return TraceInputError(self.path, step, f"outside the model: {why}")

    # -- the handle tables -------------------------------------------------------------------
    def flat(self, p: _Proc, fam: str, name: str, step: Step) -> str:
        """The flat table's name for process p's handle `name`; a live handle of another
        process is refused (an unknown one is left for the resolver to refuse)."""
        got = p.names[fam].get(name)
        if got is not None:
            return got
        if name in self.h.live[fam]:  # the number or name is the flat table's for another
            what = {"fd": "descriptor {} is not open in {}", "map": "{} is not mapped in {}",
                    "pin": "pin {} is not held by {}"}[fam]
            raise self.refuse(step, what.format(name, p.name))
        return name

    def free_fd(self, want: int) -> str:
        """A number no live descriptor has: `want` when free, else the lowest from 3."""
        n = want if want >= 0 and str(want) not in self.h.live["fd"] else 3
        while str(n) in self.h.live["fd"]:
            n += 1
        return str(n)

    def rename_arg(self, p: _Proc, arg: Arg, step: Step) -> Arg:
        """Mapping and pin names anywhere in an argument, through p's table."""
        if isinstance(arg, Ref) and arg.name[:1] in ("m", "p"):
            return Ref(self.flat(p, "map" if arg.name[0] == "m" else "pin", arg.name, step),
                       arg.plus)
        if isinstance(arg, Struct):
            return replace(arg, fields=tuple((k, self.rename_arg(p, v, step))
                                             for k, v in arg.fields))
        if isinstance(arg, Lst):
            return replace(arg, items=tuple(self.rename_arg(p, v, step) for v in arg.items))
        return arg

    def rename(self, p: _Proc, step: Step) -> Step:
        """The step in the flat table's names."""
        self.newfd = None
        args = [self.rename_arg(p, a, step) for a in step.args]
        for i, role in self.roles.get(step.call, {}).items():
            if i >= len(args):
                continue
            arg = args[i]
            if role == "fd" and isinstance(arg, Int) and arg.value >= 0:
                args[i] = Int(int(self.flat(p, "fd", str(arg.value), step)))
            elif role == "newfd" and isinstance(arg, Int) and arg.value >= 0:
                mine = p.names["fd"].get(str(arg.value))
                flat = mine if mine is not None else self.free_fd(arg.value)
                self.newfd = (str(arg.value), flat)
                args[i] = Int(int(flat))
            elif role == "procfd" and isinstance(arg, Str) and arg.text.startswith(PROC_FD) \
                    and re.fullmatch(r"[0-9]+", arg.text[len(PROC_FD):]):
                n = self.flat(p, "fd", str(int(arg.text[len(PROC_FD):])), step)
                args[i] = replace(arg, text=PROC_FD + n)
            elif role == "nested" and any(k != v for k, v in p.names["fd"].items()):
                raise self.refuse(step, f"{step.call}() names a descriptor inside a struct, "
                                  f"and {p.name}'s descriptors have other numbers in the "
                                  "lowered trace (another process's copies took them)")
        return replace(step, args=tuple(args), proc=None)

    # -- judging -----------------------------------------------------------------------------
    def judge(self, p: _Proc, step: Step, named: Step | None, comment: str | None) -> None:
        """Judge one flat step; record it with its outcome in flat names, and give the
        handles it made their names in p's table (`named`: the line as the trace wrote it;
        None: a synthetic step, named as its source says)."""
        before = {fam: set(self.h.live[fam]) for fam in FAMILIES}
        held = {fam: dict(p.names[fam]) for fam in FAMILIES}  # p's names before the step
        serial = dict(self.h.serial)
        _, _, _, whole, got = judge_step(self.design, self.ex, self.h, self.st, step, self.path)
        self.st = whole.after
        # a mapping's pieces (Handles.pieces) are the mapping's: a new piece is not a new
        # handle, and a mapping lives while a piece of it does
        made = {fam: [x for x in self.h.live[fam] if x not in before[fam] and "+" not in x]
                for fam in FAMILIES}
        gone = {fam: {x for x in before[fam] - set(self.h.live[fam])
                      if "+" not in x and x not in self.h.pieces} for fam in FAMILIES}
        # a mapping whose last piece went (its name's own piece went earlier)
        gone["map"] |= {x for q in self.procs.values() for x in q.names["map"].values()
                        if x not in self.h.live["map"] and x not in self.h.pieces}
        for q in self.procs.values():  # a closed or unmapped handle leaves every table
            for fam in FAMILIES:
                for k in [k for k, v in q.names[fam].items() if v in gone[fam]]:
                    del q.names[fam][k]
        outcome = got
        if named is not None:
            outcome = self.flat_outcome(p, named, made, serial, held)
            for fam in FAMILIES:
                for x in made[fam]:
                    own = self.own_name(named, fam, x)
                    if own in held[fam]:  # a wrong claim (it diverges): keep p's handle
                        own = x
                    p.names[fam][own] = x
            if self.newfd is not None and self.newfd[1] in self.h.live["fd"]:
                p.names["fd"][self.newfd[0]] = self.newfd[1]  # dup2's target, maybe displaced
            for x in made["pin"]:
                self.holders[x] = {p.name}
                self.pin_call[x] = named.call
            if not isinstance(outcome, Any_) and outcome != got:
                self.diverged = True
        self.newfd = None
        self.out.append(replace(step, outcome=outcome, comment=comment))

    @staticmethod
    def own_name(named: Step, fam: str, flat: str) -> str:
        """What the process calls a handle its line made: the outcome's name or number."""
        o = named.outcome
        if fam == "fd" and isinstance(o, Ret):
            return str(o.value)
        if fam != "fd" and isinstance(o, New) and o.name[0] == ("m" if fam == "map" else "p"):
            return o.name
        return flat

    def flat_outcome(self, p: _Proc, named: Step, made: dict[str, list[str]],
                     serial: dict[str, int], held: dict[str, dict[str, str]]) -> Outcome:
        """The line's outcome in flat names. A claim that names a handle p held before the
        step as the one it made is wrong: it becomes that handle's flat name, which the
        model's new one cannot be (so the replay reports the divergence)."""
        o = named.outcome
        if isinstance(o, Ret):
            own = str(o.value)
            if self.newfd is not None and own == self.newfd[0]:
                return Ret(int(self.newfd[1]))
            if made["fd"]:
                return Ret(int(held["fd"].get(own, made["fd"][0])))
            return o
        if isinstance(o, New) and o.name[0] in ("m", "p"):
            fam = "map" if o.name[0] == "m" else "pin"
            if made[fam]:
                return New(held[fam].get(o.name, made[fam][0]))
            if o.name in p.names[fam]:
                return New(p.names[fam][o.name])
            return New(f"{o.name[0]}{serial[fam] + 1}")  # what the model would call it
        return o

    # -- processes ---------------------------------------------------------------------------
    def fork(self, p: _Proc, step: Step) -> None:
        """kernel/fork.c: dup_mmap() copies each VMA (fork_vma; a VM_DONTCOPY one is refused
        by the model), dup_fd() each descriptor (dup), and so the pipe, ring or dmabuf that
        holds a pin: the child holds the parent's pins too (the same page references)."""
        o = step.outcome
        name = o.name if isinstance(o, New) and o.name[0] == "c" else \
            str(o.value) if isinstance(o, Ret) and o.value > 0 else None
        if step.args or name is None:
            raise self.refuse(step, "fork() takes no arguments and returns the child's name "
                              "(= c1) or pid (= 1234); a failed fork is not modelled")
        if any(q.name == name and not q.reaped for q in self.procs.values()):
            raise self.refuse(step, f"process {name} exists already")
        child = _Proc(name, p.name)
        # a pin is held by a pipe, an io_uring ring or a dmabuf, whose descriptor the child
        # inherits: the same reference, held until its last holder lets it go
        child.names["pin"] = dict(p.names["pin"])
        for x in p.names["pin"].values():
            self.holders.setdefault(x, set()).add(name)
        for fam, call in (("map", "fork_vma"), ("fd", "dup")):
            for own, x in list(p.names[fam].items()):
                if call not in self.calls:
                    raise self.refuse(step, f"design {self.design.name} has no {call}: its "
                                      f"{'mappings' if fam == 'map' else 'descriptors'} cannot "
                                      "be copied into a child")
                arg: Arg = Ref(x) if fam == "map" else Int(int(x))
                made = self.synth(p, Step(call, (arg,), Any_(), pos=step.pos),
                                  f"fork() = {name}: {name}'s copy of {own}", fam)
                if made is not None:
                    child.names[fam][own] = made
        self.procs[name] = child

    def synth(self, p: _Proc, step: Step, comment: str, fam: str) -> str | None:
        """Judge a step the trace implies; the handle of `fam` it made, if any."""
        before = set(self.h.live[fam])
        self.judge(p, step, None, comment)
        return next((x for x in self.h.live[fam] if x not in before), None)

    def exit(self, p: _Proc, step: Step) -> None:
        """exit_group(): exit_mmap() unmaps every mapping, exit_files() closes every
        descriptor; a pin's pipe, ring or dmabuf goes with the last process holding it (then
        the page reference is dropped: unpin)."""
        if not isinstance(step.outcome, Any_):
            raise self.refuse(step, "exit_group() does not return: write '= ?'")
        st = self.st
        for own, x in list(p.names["map"].items()):
            if self.scale is None:
                raise self.refuse(step, f"design {self.design.name}'s munmap has no length")
            page = self.scale(st)
            parts = self.h.pieces[x][1] if x in self.h.pieces else [(0, x)]
            for start, piece in list(parts):
                length = self.h.map_attr(piece, "pages") * page
                self.synth(p, Step("munmap", (Ref(x, start), Int(length)), Any_(),
                                   pos=step.pos),
                           f"exit_group() of {p.name} unmaps its {own}"
                           + (f"+{start}" if start else ""), "map")
        for own, x in list(p.names["fd"].items()):
            self.synth(p, Step("close", (Int(int(x)),), Any_(), pos=step.pos),
                       f"exit_group() of {p.name} closes its fd {own}", "fd")
        for own, x in list(p.names["pin"].items()):
            held = self.holders.get(x, set())
            held.discard(p.name)
            if not held and x in self.h.live["pin"]:
                self.synth(p, Step("unpin", (Ref(x),), Any_(), pos=step.pos),
                           f"exit_group() of {p.name} closes the last holder of its {own}",
                           "pin")
        p.exited = step.pos.line or 1

    def parts(self, step: Step) -> list[tuple[int, int]] | None:
        """A munmap or mprotect over more than one piece of a mapping held in pieces: the
        [start, end) of each piece's part it covers (bytes past the mapping's address), in
        address order. None for any other step (a range inside one piece is the model's
        own); a range reaching a part unmapped, or memory past the mapping, is refused."""
        if step.call not in RANGE_CALLS or len(step.args) < 2 or self.scale is None:
            return None
        ref, n = step.args[0], step.args[1]
        if not (isinstance(ref, Ref) and isinstance(n, Int)) or ref.name not in self.h.pieces:
            return None
        page = self.scale(self.st)
        if n.value <= 0 or ref.plus % page or n.value % page:  # the model's rules judge it
            return None
        out = self.cover(step, ref, n.value)
        return out if len(out) > 1 else None

    def cover(self, step: Step, ref: Ref, n: int) -> list[tuple[int, int]]:
        """The [start, end) of each piece's part the n bytes at `ref` cover, in address order;
        a range reaching a part unmapped, or memory past the mapping, is refused."""
        assert self.scale is not None
        page, lo, hi = self.scale(self.st), ref.plus, ref.plus + n
        pieces = self.h.pieces[ref.name][1] if ref.name in self.h.pieces else [(0, ref.name)]
        out = []
        for start, piece in pieces:
            a, b = max(lo, start), min(hi, start + self.h.map_attr(piece, "pages") * page)
            if a < b:
                out.append((a, b))
        if not out or out[0][0] != lo or out[-1][1] != hi \
                or any(x[1] != y[0] for x, y in pairwise(out)):
            raise self.refuse(step, f"{step.call} of {n} bytes at {format_arg(ref)} reaches a "
                              "part of the mapping that was unmapped, or memory past it: what "
                              "lies there is the caller's, which the model does not hold")
        return out

    def fixed(self, p: _Proc, named: Step, flat: Step) -> None:
        """mmap(MAP_FIXED) at an address inside a mapping: do_mmap() -> mmap_region() maps the
        file there and unmaps what the range held (vms_gather_munmap_vmas(), completed only
        once the new mapping stands: a failed mmap leaves the old VMAs,
        vms_abort_munmap_vmas()). Lowered to the mmap (at an address of the kernel's
        choosing: the same VMA for the file) and, if it succeeded, a munmap of each piece's
        part it replaced."""
        ref, n, flags = flat.args[0], flat.args[1] if len(flat.args) > 1 else None, \
            flat.args[3] if len(flat.args) > 3 else None
        names = flags.text.split("|") if isinstance(flags, Sym) else []
        share = [x for x in names if x != "MAP_FIXED"]
        if "MAP_FIXED" not in names or len(share) != 1:
            raise self.refuse(named, "mmap at an address inside a mapping is modelled with "
                              "MAP_FIXED and MAP_SHARED or MAP_PRIVATE alone (without "
                              "MAP_FIXED the address is a hint the kernel may not take; "
                              "MAP_FIXED_NOREPLACE is EEXIST over a mapping)")
        assert isinstance(ref, Ref)
        if self.scale is None or not isinstance(n, Int) or n.value <= 0 \
                or ref.plus % self.scale(self.st) or n.value % self.scale(self.st):
            raise self.refuse(named, "mmap(MAP_FIXED) of whole pages of the file at a "
                              "page-aligned address is modelled (else EINVAL, or the kernel "
                              "rounds the length up)")
        parts = self.cover(named, ref, n.value)
        was = format_step(replace(named, comment=None, note=None))
        before = set(self.h.live["map"])
        self.judge(p, replace(flat, args=(Sym("NULL"), n, flat.args[2], Sym(share[0]),
                                          *flat.args[4:])), named, was)
        if set(self.h.live["map"]) <= before:
            return  # it failed: the old VMAs stay
        for i, (a, b) in enumerate(parts):
            self.synth(p, Step("munmap", (Ref(ref.name, a), Int(b - a)), Any_(), pos=named.pos),
                       f"{was}: it replaces {format_arg(Ref(ref.name, a))}"
                       + (f" (piece {i + 1} of {len(parts)})" if len(parts) > 1 else ""), "map")

    def by_piece(self, p: _Proc, named: Step, flat: Step, parts: list[tuple[int, int]]) -> None:
        """A munmap or mprotect over several pieces, lowered to one per piece, in address
        order: the kernel's loop over the range's VMAs (do_vmi_munmap(): each is unmapped;
        do_mprotect_pkey(): each is changed until the first it refuses, EACCES, which is the
        call's result, the ones before it staying changed). The line's outcome is the last
        lowered step's; the ones before it are the model's (0)."""
        ref = flat.args[0]
        assert isinstance(ref, Ref)
        was = format_step(replace(named, comment=None, note=None))
        for i, (a, b) in enumerate(parts):
            sub = replace(flat, args=(Ref(ref.name, a), Int(b - a), *flat.args[2:]),
                          outcome=Any_(), comment=None, note=None, proc=None)
            self.judge(p, sub, None, f"{was}: its part in piece {i + 1} of {len(parts)}")
            got = self.out[-1].outcome
            if i == len(parts) - 1 or not (isinstance(got, Ret) and got.value == 0):
                want = named.outcome
                if not isinstance(want, Any_):
                    self.diverged |= want != got
                    self.out[-1] = replace(self.out[-1], outcome=want)
                return

    def wait(self, p: _Proc, step: Step) -> None:
        """wait4() reaps an exited child (and returns its pid); one still running would make
        the trace block, so it is refused."""
        o = step.outcome
        name = o.name if isinstance(o, New) else str(o.value) if isinstance(o, Ret) else None
        child = self.procs.get(name) if name is not None else None
        who = step.args[0] if step.args else None
        asked = who.name if isinstance(who, Ref) else str(who.value) if isinstance(who, Int) \
            else None
        if asked not in ("-1", name):
            raise self.refuse(step, "wait4()'s first argument is the child it returns (c1, or "
                              "its pid) or -1 (any child)")
        if child is None or child.parent != p.name:
            raise self.refuse(step, f"wait4() must return a child of {p.name} (= c1, or its "
                              "pid)")
        if not child.exited or child.reaped:
            raise self.refuse(step, f"wait4() would block: {name} has not exited"
                              if not child.exited else f"{name} was reaped already")
        child.reaped = True

    def run(self) -> Trace:
        comments = self.trace.comments
        for step in self.trace.steps:
            try:
                self.one(step)
            except TraceInputError as e:
                if not self.diverged:
                    raise
                # the replay reports the divergence this follows from; say where it stopped
                comments += (f"lowering stopped at line {step.pos.line}, after a divergence: "
                             + str(e).split(": ", 1)[-1],)
                break
        return replace(self.trace, steps=self.out, comments=comments)

    def one(self, step: Step) -> None:
        p = self.procs.get(step.proc)
        if p is None:
            raise TraceInputError(self.path, step, f"no process {step.proc}: a process is "
                                  "named by the fork() that makes it (fork() = c1)")
        if p.exited:
            raise self.refuse(step, f"{p.name} has exited (line {p.exited})")
        if step.call == "fork" and step.call in self.lowered:
            self.fork(p, step)
        elif step.call == "exit_group" and step.call in self.lowered:
            self.exit(p, step)
        elif step.call == "wait4" and step.call in self.lowered:
            self.wait(p, step)
        else:
            try:
                flat = self.rename(p, step)
            except ResolveError as e:
                raise TraceInputError(self.path, step, e.msg) from None
            if flat.call == "mmap" and flat.args and isinstance(flat.args[0], Ref):
                self.fixed(p, step, flat)
                return
            parts = self.parts(flat)
            if parts is not None:
                self.by_piece(p, step, flat, parts)
                return
            if flat.call == "unpin" and flat.args and isinstance(flat.args[0], Ref):
                x = flat.args[0].name
                others = self.holders.get(x, set()) - {p.name}
                if self.pin_call.get(x) == "udmabuf" and others:
                    raise self.refuse(step, f"unpin() closes {p.name}'s dmabuf descriptor, and "
                                      f"{', '.join(sorted(others))} still hold(s) it: the pin "
                                      "stays until the last one closes it (not lowered)")
            comment = step.comment
            if step.proc is not None or flat.args != step.args:
                was = format_step(replace(step, comment=None, note=None))
                comment = was if comment is None else f"{was}: {comment}"
            self.judge(p, flat, step, comment)


def flatten(design: Design, trace: Trace) -> Trace:
    """The trace with its processes lowered (see the module's doc); a trace without any is
    returned as it is. A line the model cannot take is a TraceInputError at its position,
    unless an earlier line diverged (the flat trace then ends there: its replay reports the
    divergence)."""
    if not has_processes(trace, design) and not may_split(design, trace):
        return trace
    return _Flattener(design, trace).run()


__all__ = ["PROC_CALLS", "RANGE_CALLS", "flatten", "has_processes", "lowering", "may_split",
           "proc_calls"]
