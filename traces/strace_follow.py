"""Following memfds through a strace log: which calls are about which memfd (issue 16).

Each memfd (each memfd_create, each KVM_CREATE_GUEST_MEMFD: one inode) becomes its own history
of project-format steps (traces/trace.py), since the model has one file per trace. Followed:
per-process descriptor tables (fork/vfork/clone copy them, CLONE_FILES shares one), dup, dup2,
dup3, F_DUPFD[_CLOEXEC], `/proc/self/fd/N` (and `/proc/PID/fd/N`, `/dev/fd/N`) reopens,
close, execve (close-on-exec descriptors close, mappings go), process exit; address spaces
(CLONE_VM shares one): mmap results become the model's handles m1, m2, ... per memfd, munmap,
mprotect, madvise, mremap and MAP_FIXED replacements find their mapping by address;
`vm.memfd_noexec` writes per pid namespace (unshare/clone CLONE_NEWPID). A fault (SIGBUS,
SIGSEGV) at an address inside a memfd mapping is a store or a load there.

What the kernel does without a call of its own (fork's copy of a descriptor, exit's close) is a
synthetic step (`Event.counted` False): judged like the others, not counted as a call. Calls
that do not touch a memfd are not events. No model here: checker/strace_judge.py judges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import pairwise

from model import designs, vocab
from model.designs.memfd_data import SEEK_DATA, SEEK_HOLE
from model.designs.memfd_fpos import SEEK_WHENCE
from traces.strace_log import LogCall, LogExit, LogSignal, StraceLog
from traces.strace_records import Event, Mapping, Memfd
from traces.syscalls import TraceError, const
from traces.textfmt import TraceSyntaxError
from traces.trace import Arg, Err, Int, New, Outcome, Ref, Ret, Sig, Step, Str, Sym

__all__ = ["Event", "Memfd", "follow"]

PAGE = 4096
CLONE = {"CLONE_VM": 0x100, "CLONE_FS": 0x200, "CLONE_FILES": 0x400, "CLONE_VFORK": 0x4000,
         "CLONE_THREAD": 0x10000, "CLONE_NEWPID": 0x20000000}
#: calls whose descriptor argument is at this index (others: the first argument)
FD_AT = {"mmap": 4, "mmap2": 4}
#: calls with a second descriptor, at this index: a call whose first one is another file is
#: still about the memfd its second names (splice or copy_file_range into it)
SECOND_FD = {"copy_file_range": 2, "splice": 2, "tee": 1, "sendfile": 1}
#: calls that take a descriptor first (besides the model's own calls)
FD_FIRST = frozenset({
    "read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2",
    "pwritev2", "lseek", "fstat", "newfstatat", "statx", "fstatfs", "fcntl", "ioctl",
    "ftruncate", "fallocate", "fchmod", "fchown", "close", "dup", "dup2", "dup3", "fsync",
    "fdatasync", "fadvise64", "flock", "fgetxattr", "fsetxattr", "flistxattr", "fremovexattr",
    "sync_file_range", "readahead", "sendfile", "splice", "tee", "copy_file_range", "fchdir",
    "fstatfs64", "fexecve", "execveat", "getdents64", "linkat", "fchmodat", "fchmodat2",
    "fchownat", "name_to_handle_at", "mmap", "file_setattr", "file_getattr",
    # file_getattr/file_setattr (468, 469) as a strace older than 6.17 prints them
    "syscall_0x1d4", "syscall_0x1d5"})
#: calls that change nothing the model represents (its state): refused as outside the model,
#: they do not stop the judging of the memfd's later calls
OBSERVERS = frozenset({"fstat", "newfstatat", "statx", "fstatfs", "fstatfs64", "fgetxattr",
                       "flistxattr", "readlink", "readlinkat", "fadvise64", "flock",
                       "fsync", "fdatasync", "readahead", "syscall_0x1d4", "file_getattr",
                       "access", "faccessat", "faccessat2", "stat", "lstat", "getxattr",
                       "lgetxattr", "listxattr", "llistxattr"})
#: calls other than open and execve that may name a memfd by a path, /proc/self/fd/N, at this
#: argument: not judged (the model judges its calls on the descriptor itself)
PATH_ARG = {"file_setattr": 1, "file_getattr": 1, "newfstatat": 1, "statx": 1,
            "fchmodat": 1, "fchmodat2": 1, "fchownat": 1, "utimensat": 1, "faccessat": 1,
            "faccessat2": 1, "truncate": 0, "chmod": 0, "chown": 0, "lchown": 0, "stat": 0,
            "lstat": 0, "access": 0, "setxattr": 0, "lsetxattr": 0, "getxattr": 0,
            "lgetxattr": 0, "listxattr": 0, "llistxattr": 0, "removexattr": 0,
            "lremovexattr": 0, "utime": 0, "utimes": 0}
#: lseek's whence values that read which pages hold data, and why they are not judged once
#: the memfd was mapped (NOTES.md "Pages that hold data")
SEEKS = frozenset({n for n, v in SEEK_WHENCE.items() if v in (SEEK_DATA, SEEK_HOLE)}
                  | {str(SEEK_DATA), str(SEEK_HOLE)})
SEEK_UNSHOWN = ("SEEK_DATA/SEEK_HOLE after the memfd was mapped: a load or store through a "
                "mapping, which strace does not show, may have put data in a page")
#: calls that take an address range first
ADDR_CALLS = frozenset({"munmap", "mprotect", "madvise", "mremap", "msync", "mlock", "mlock2",
                        "munlock", "mbind", "pkey_mprotect", "remap_file_pages"})
#: the calls the memfd design spells (model/designs/memfd.py): others are outside the model
#: without reading their arguments
MODEL_CALLS = frozenset(c for a in designs.get("memfd").actions for c, _ in a.spellings())
_CMSG_FDS = re.compile(r"cmsg_type=SCM_RIGHTS, cmsg_data=\[([0-9, ]*)\]")
FORKS = frozenset({"fork", "vfork", "clone", "clone2", "clone3"})
#: /dev/udmabuf's requests, by name and as strace prints an unknown one
UDMABUF_IOCTLS = frozenset({"UDMABUF_CREATE", hex(vocab.UDMABUF_CREATE), "UDMABUF_CREATE_LIST",
                            hex(vocab.UDMABUF_CREATE_LIST)})


@dataclass
class _Table:
    serial: int
    fds: dict[int, Memfd] = field(default_factory=dict)
    cloexec: set[int] = field(default_factory=set)
    sysctl: set[int] = field(default_factory=set)  # descriptors of /proc/sys/vm/memfd_noexec
    users: set[int | None] = field(default_factory=set)


@dataclass
class _Mm:
    maps: list[Mapping] = field(default_factory=list)
    users: set[int | None] = field(default_factory=set)


@dataclass
class _Ns:
    """A pid namespace's vm.memfd_noexec: its own value (copied from its parent's effective
    one when created) and its parent; what memfd_create reads is the largest value along the
    chain (kernel/pid_sysctl.h pidns_memfd_noexec_scope())."""

    noexec: int
    parent: _Ns | None = None

    def effective(self) -> int:
        ns: _Ns | None = self
        v = 0
        while ns is not None:
            v = max(v, ns.noexec)
            ns = ns.parent
        return v


@dataclass
class _Proc:
    pid: int | None
    table: _Table
    mm: _Mm
    ns: _Ns
    child_ns: _Ns | None = None


def _outcome(c: LogCall) -> Outcome | str:
    if c.ret is None:
        return "the call did not return (strace shows '?')"
    if c.errno is not None:
        if c.errno not in vocab.ERRNO:
            return f"errno {c.errno} is not one the model names"
        return Err(c.errno)
    if c.ret < 0:
        return f"result {c.ret}"
    return Ret(c.ret)


def _flags(text: str, table: dict[str, int] | None = None) -> int:
    v = 0
    for w in text.split("|"):
        w = w.strip()
        if table and w in table:
            v |= table[w]
            continue
        try:
            v |= int(w, 0)
        except ValueError:
            try:
                v |= const(w)
            except TraceError:
                pass
    return v


def _clone_flags(c: LogCall) -> int:
    if c.name in ("fork",):
        return 0
    if c.name == "vfork":
        return CLONE["CLONE_VM"] | CLONE["CLONE_VFORK"]
    for a in c.args:
        for part in a.strip("{}").split(", "):
            if part.startswith("flags="):
                return _flags(part[6:], CLONE)
    return _flags(c.args[2], CLONE) if c.name == "clone" and len(c.args) > 2 else 0


class _Follower:
    def __init__(self, log: StraceLog, noexec: int) -> None:
        self.log = log
        self.memfds: list[Memfd] = []
        self.procs: dict[int | None, _Proc] = {}
        self.tables = 0
        self.root_ns = _Ns(noexec)
        #: children made at their clone under a stand-in pid (-line), not yet seen: (stand-in,
        #: clone result). A child in another pid namespace has a pid in the log that is not
        #: the clone's result (its pid in the parent's namespace), so a child is matched when
        #: an unknown pid first appears: by result when it is the log's pid, else in order.
        self.pending: list[tuple[int, int]] = []
        #: memfd references in flight in SCM_RIGHTS messages, in the order they were sent
        self.flight: list[tuple[Memfd, tuple[int, int]]] = []
        #: receives that completed before the matching send in log order (a recvmsg left
        #: <unfinished ...> before the sendmsg started sits at its first half's line)
        self.waiting: list[tuple[_Proc, LogCall]] = []

    # -- processes ---------------------------------------------------------------------------
    def proc(self, pid: int | None) -> _Proc:
        p = self.procs.get(pid)
        if p is None and pid is not None and self.pending:
            k = next((i for i, e in enumerate(self.pending) if e[1] == pid), 0)
            stand_in, _ = self.pending.pop(k)
            p = self.procs.pop(stand_in)
            for users in (p.table.users, p.mm.users):
                users.discard(stand_in)
                users.add(pid)
            p.pid = pid
            self.procs[pid] = p
        if p is None:
            self.tables += 1
            p = _Proc(pid, _Table(self.tables, users={pid}), _Mm(users={pid}), self.root_ns)
            self.procs[pid] = p
        return p

    def key(self, p: _Proc, fd: int) -> tuple[int, int]:
        return (p.table.serial, fd)

    def add(self, mf: Memfd, line: int, text: str, step: Step | None, *, counted: bool = True,
            why: str | None = None, alts: tuple[Step, ...] = (), observer: bool = False) -> None:
        mf.events.append(Event(line, text, step, counted, why, alts, observer))

    def synth(self, mf: Memfd, line: int, what: str, call: str, args: tuple[Arg, ...]) -> None:
        self.add(mf, line, what, Step(call, args, Ret(0), comment=what), counted=False)

    def close_fd(self, p: _Proc, fd: int, line: int, what: str | None) -> None:
        mf = p.table.fds.pop(fd, None)
        p.table.cloexec.discard(fd)
        if mf is None:
            return
        t = mf.tfd.pop(self.key(p, fd), None)
        if what is not None and t is not None:
            self.synth(mf, line, what, "close", (Int(t),))

    def drop_maps(self, mm: _Mm, line: int, what: str) -> None:
        for m in mm.maps:
            self.synth(m.memfd, line, what, "munmap", (m.ref(), Int(m.end - m.start)))
        mm.maps.clear()

    def fork(self, parent: _Proc, child: int, flags: int, line: int, ns: _Ns) -> None:
        who = f"pid {child}" if child >= 0 else f"the child cloned at line {line}"
        if flags & CLONE["CLONE_FILES"]:
            table = parent.table
        else:
            self.tables += 1
            table = _Table(self.tables, dict(parent.table.fds), set(parent.table.cloexec),
                           set(parent.table.sysctl))
            for fd, mf in table.fds.items():  # the child's copy: another descriptor, same file
                t = mf.tfd.get(self.key(parent, fd))
                if t is None:
                    continue
                key = (table.serial, fd)
                n = mf.new_tfd(key, fd)
                self.add(mf, line, f"fork: {who} inherits fd {fd}",
                         Step("dup", (Int(t),), Ret(n), comment=f"{who}: fd {fd} (fork)"),
                         counted=False)
        table.users.add(child)
        if flags & CLONE["CLONE_VM"]:
            mm = parent.mm
        else:
            mm = _Mm()
            copies: dict[str, str] = {}  # a mapping's records (its pieces) are one copy
            for m in parent.mm.maps:  # dup_mmap(): the child's copy, a mapping of its own
                if m.handle not in copies:
                    m.memfd.maps += 1
                    copies[m.handle] = f"m{m.memfd.maps}"
                    self.add(m.memfd, line, f"fork: {who} inherits {m.handle}",
                             Step("fork_vma", (Ref(m.handle),), New(copies[m.handle]),
                                  comment=f"{who}: {m.handle} (fork)"), counted=False)
                mm.maps.append(Mapping(m.start, m.end, m.memfd, copies[m.handle], m.base))
        mm.users.add(child)
        self.procs[child] = _Proc(child, table, mm, ns)

    def exit(self, p: _Proc, line: int) -> None:
        p.table.users.discard(p.pid)
        p.mm.users.discard(p.pid)
        if not p.table.users:
            for fd in list(p.table.fds):
                self.close_fd(p, fd, line, f"exit of pid {p.pid} closes fd {fd}")
        if not p.mm.users:
            self.drop_maps(p.mm, line, f"exit of pid {p.pid} unmaps")
        del self.procs[p.pid]

    # -- events ------------------------------------------------------------------------------
    def run(self) -> list[Memfd]:
        for ev in self.log.events:
            if isinstance(ev, LogExit):
                self.exit(self.proc(ev.pid), ev.line)
            elif isinstance(ev, LogSignal):
                self.signal(ev)
            else:
                self.call(ev)
        return self.memfds

    def signal(self, ev: LogSignal) -> None:
        if ev.addr is None or ev.signal not in vocab.SIGNALS:
            return
        p = self.proc(ev.pid)
        for m in p.mm.maps:
            if m.start <= ev.addr < m.end:
                off = Int(ev.addr - m.base)
                sig = Sig(ev.signal)
                self.add(m.memfd, ev.line, f"{ev.signal} at {ev.addr:#x}",
                         Step("store", (Ref(m.handle), off), sig),
                         alts=(Step("load", (Ref(m.handle), off), sig),))
                return

    def call(self, c: LogCall) -> None:
        p = self.proc(c.pid)
        name = c.name
        if not c.done:
            mf = self.about(p, c)
            if mf is not None:
                self.add(mf, c.line, c.text, None, why="the call did not return (its process "
                         "ended first)")
            return
        if name in FORKS:
            if c.ret is not None and c.ret > 0:
                flags = _clone_flags(c)
                ns = p.child_ns or p.ns
                if flags & CLONE["CLONE_NEWPID"]:
                    ns = _Ns(ns.effective(), ns)  # starts from its parent's value
                self.fork(p, -c.line, flags, c.line, ns)
                self.pending.append((-c.line, c.ret))
            return
        if name == "unshare" and c.ret == 0 and _flags(c.args[0], CLONE) & CLONE["CLONE_NEWPID"]:
            base = p.child_ns or p.ns
            p.child_ns = _Ns(base.effective(), base)
            return
        if name in ("execve", "execveat"):
            if name == "execve":  # of a memfd's /proc/self/fd/N: that memfd's exec
                self.exec_path(p, c)
            elif c.ret == 0 and (mf := self.about(p, c)) is not None:
                self.fd_call(p, c, mf)  # fexecve of a memfd that ran: its own event
            if c.ret == 0:
                self.execve(p, c)
            if name == "execve" or c.ret == 0:
                return
        if name == "memfd_create":
            self.memfd_create(p, c)
            return
        if name in ("open", "openat"):
            self.open(p, c)
            return
        if name == "write" and c.int_arg(0) in p.table.sysctl and c.ret is not None \
                and c.ret > 0 and c.args[1].startswith('"'):
            digits = c.args[1].strip('"').split("\\")[0]
            if digits.isdigit():
                p.ns.noexec = int(digits)
            return
        if name == "close" and c.int_arg(0) in p.table.sysctl:
            p.table.sysctl.discard(c.int_arg(0) or 0)
            return
        if name in ADDR_CALLS:
            self.addr_call(p, c)
            return
        if name in ("sendmsg", "recvmsg") and any("SCM_RIGHTS" in a for a in c.args):
            self.scm_rights(p, c)
            return
        if name == "mmap" and (fd := c.int_arg(4)) is not None and fd not in p.table.fds:
            self.fixed_over(p, c)  # not a memfd mapping: may replace one (MAP_FIXED)
            return
        if name == "ioctl" and len(c.args) > 1 and c.args[1] in (
                "KVM_CREATE_GUEST_MEMFD", hex(vocab.KVM_CREATE_GUEST_MEMFD)):
            self.guest_memfd(p, c)
            return
        if name == "ioctl" and len(c.args) > 1 and c.args[1] in UDMABUF_IOCTLS:
            self.udmabuf(p, c)
            return
        if (i := PATH_ARG.get(name)) is not None and len(c.args) > i \
                and c.args[i].startswith('"') and self.path_named(p, c, i):
            return
        mf = self.about(p, c)
        if mf is None:
            return
        self.fd_call(p, c, mf)

    def path_named(self, p: _Proc, c: LogCall, i: int) -> bool:
        """A call naming a followed memfd by a path (`truncate("/proc/self/fd/3", 0)`,
        `file_setattr(AT_FDCWD, "/proc/self/fd/3", ...)`): outside the model, which judges
        calls on the descriptor; one that changes nothing (OBSERVERS) does not stop the
        judging of the memfd's later calls. False when the path names no followed memfd."""
        found = self.proc_fd(p, c.args[i].strip('"'))
        if found is None:
            return False
        owner, num = found
        observer = c.name in OBSERVERS
        self.add(owner.table.fds[num], c.line, c.text, None, observer=observer,
                 why=f"{c.name} of the memfd by a path (/proc/self/fd/N): the model judges "
                     "the call on a descriptor" + ("; it changes nothing the model "
                                                   "represents, so later calls are still "
                                                   "judged" if observer else ""))
        return True

    def about(self, p: _Proc, c: LogCall) -> Memfd | None:
        """The memfd a descriptor call is about, if any."""
        if c.name not in FD_FIRST and c.name not in FD_AT:
            return None
        for at in (FD_AT.get(c.name, 0), SECOND_FD.get(c.name)):
            fd = c.int_arg(at) if at is not None else None
            if fd is not None and fd in p.table.fds:
                return p.table.fds[fd]
        return None

    def parsed(self, c: LogCall, skip: set[int],
               updated: list[tuple[int, Arg]] | None = None) -> list[Arg] | str:
        """The arguments in the trace grammar (those in `skip`: 0, set by the caller); the
        values strace shows written back go to `updated` (an error where none is asked)."""
        out: list[Arg] = []
        for i in range(len(c.args)):
            if i in skip:
                out.append(Int(0))
                continue
            try:
                arg, after = c.arg_result(i)
                if after is not None:
                    if updated is None:
                        raise TraceSyntaxError(c.path, c.line, c.cols[i],
                                               "a value written back ('=>') is not read here")
                    updated.append((i, after))
                out.append(arg)
            except TraceSyntaxError as e:
                return f"{c.name} argument {i + 1} is not in the trace grammar ({e.msg})"
        return out

    def memfd_create(self, p: _Proc, c: LogCall) -> None:
        name = c.args[0] if c.args else ""
        mf = Memfd(len(self.memfds) + 1, "memfd", name, c.line, p.ns.effective())
        self.memfds.append(mf)
        args = self.parsed(c, set())
        out = _outcome(c)
        if isinstance(args, str) or isinstance(out, str):
            self.add(mf, c.line, c.text, None, why=args if isinstance(args, str) else str(out))
            return
        if isinstance(out, Ret):
            fd = out.value
            self.close_fd(p, fd, c.line, None)
            p.table.fds[fd] = mf
            if len(c.args) > 1 and _flags(c.args[1]) & vocab.MFD_CLOEXEC:
                p.table.cloexec.add(fd)
            out = Ret(mf.new_tfd(self.key(p, fd), fd))
        self.add(mf, c.line, c.text, Step("memfd_create", tuple(args), out))

    def open(self, p: _Proc, c: LogCall) -> None:
        i = 1 if c.name == "openat" else 0
        if len(c.args) <= i or not c.args[i].startswith('"'):
            return
        path = c.args[i].strip('"')
        if path == "/proc/sys/vm/memfd_noexec":
            if c.ret is not None and c.ret >= 0 and c.errno is None:
                p.table.sysctl.add(c.ret)
            return
        got = self.path_call(p, c, i)
        if got is None:
            return
        mf, args, out = got
        if c.name == "openat":
            args[0] = Sym("AT_FDCWD")
        if isinstance(out, Ret):
            fd = out.value
            self.displace(p, fd, c.line)
            p.table.fds[fd] = mf
            if len(c.args) > i + 1 and _flags(c.args[i + 1]) & vocab.O_CLOEXEC:
                p.table.cloexec.add(fd)
            out = Ret(mf.new_tfd(self.key(p, fd), fd))
        self.add(mf, c.line, c.text, Step(c.name, tuple(args), out))

    def displace(self, p: _Proc, fd: int, line: int) -> None:
        """A new descriptor at `fd`: a memfd there before is closed (dup2 onto it)."""
        if fd in p.table.fds:
            self.close_fd(p, fd, line, f"fd {fd} replaced at line {line}")

    def proc_fd(self, p: _Proc, path: str) -> tuple[_Proc, int] | None:
        """The process and descriptor number a path /proc/self/fd/N (/proc/PID/fd/N,
        /dev/fd/N, /proc/thread-self/fd/N) names, if that descriptor is a followed memfd's."""
        owner, num = p, None
        for prefix in ("/proc/self/fd/", "/dev/fd/", "/proc/thread-self/fd/"):
            if path.startswith(prefix) and path[len(prefix):].isdigit():
                num = int(path[len(prefix):])
        parts = path.split("/")
        if len(parts) == 5 and parts[1] == "proc" and parts[3] == "fd" and \
                parts[2].isdigit() and parts[4].isdigit():
            owner = self.procs.get(int(parts[2]), p)
            num = int(parts[4])
        return None if num is None or num not in owner.table.fds else (owner, num)

    def path_call(self, p: _Proc, c: LogCall, i: int
                  ) -> tuple[Memfd, list[Arg], Outcome] | None:
        """A call whose argument i is a /proc/self/fd/N path of a followed memfd (open, execve):
        the memfd, the arguments with the path in the memfd's trace numbering, the outcome;
        None when the path names no followed memfd (a call that cannot be judged is added
        to the memfd's history as outside, and None is returned too)."""
        found = self.proc_fd(p, c.args[i].strip('"'))
        if found is None:
            return None
        owner, num = found
        mf = owner.table.fds[num]
        t = mf.tfd.get(self.key(owner, num))
        args = self.parsed(c, {i})
        out = _outcome(c)
        if isinstance(args, str) or isinstance(out, str) or t is None:
            self.add(mf, c.line, c.text, None, why=args if isinstance(args, str) else str(out))
            return None
        args[i] = Str(f"/proc/self/fd/{t}")
        return mf, args, out

    def exec_path(self, p: _Proc, c: LogCall) -> None:
        """execve("/proc/self/fd/N", ...) of a followed memfd: that memfd's exec."""
        if not c.args or not c.args[0].startswith('"'):
            return
        got = self.path_call(p, c, 0)
        if got is not None:
            mf, args, out = got
            self.add(mf, c.line, c.text, Step("execve", tuple(args), out))

    def execve(self, p: _Proc, c: LogCall) -> None:
        if len(p.table.users) > 1:
            for mf in set(p.table.fds.values()):
                self.add(mf, c.line, c.text, None, counted=False, why="execve in a process "
                         "that shares its descriptor table (CLONE_FILES); not followed")
        else:
            for fd in sorted(p.table.cloexec & set(p.table.fds)):
                self.close_fd(p, fd, c.line, f"execve closes fd {fd} (close-on-exec)")
        p.table.sysctl.clear()
        p.mm.users.discard(p.pid)
        if not p.mm.users:
            self.drop_maps(p.mm, c.line, "execve unmaps")
        p.mm = _Mm(users={p.pid})

    def fixed_over(self, p: _Proc, c: LogCall) -> None:
        """A mapping placed over memfd mappings (MAP_FIXED) replaces them."""
        if c.ret is None or c.errno is not None or c.ret < 0:
            return
        length = c.int_arg(1) or 0
        self.unmap(p, c.ret, c.ret + -(-length // PAGE) * PAGE, c, "replaced by the mapping")

    def unmap(self, p: _Proc, lo: int, hi: int, c: LogCall, what: str) -> None:
        keep = []
        for m in p.mm.maps:
            if m.end <= lo or m.start >= hi:
                keep.append(m)
                continue
            a, b = max(lo, m.start), min(hi, m.end)  # its part the new mapping replaces
            self.synth(m.memfd, c.line, f"{m.handle} {what} at line {c.line}", "munmap",
                       (m.ref(a), Int(b - a)))
            if m.start < lo:
                keep.append(m.part(m.start, lo))
            if m.end > hi:
                keep.append(m.part(hi, m.end))
        p.mm.maps = keep

    def addr_call(self, p: _Proc, c: LogCall) -> None:
        lo = c.int_arg(0)
        length = c.int_arg(1)
        if lo is None or length is None:
            return
        hi = lo + -(-length // PAGE) * PAGE
        # mremap's old_len 0 names the mapping at addr (a duplicate of it)
        hit = [m for m in p.mm.maps if (m.start < hi or m.start == lo == hi) and lo < m.end]
        ok = c.errno is None and c.ret is not None and c.ret >= 0
        # mremap returns a mapping: the one it names (resized or moved), or a new one (a
        # duplicate, old_len 0, or a MREMAP_DONTUNMAP copy: the source stays)
        copy = c.name == "mremap" and (length == 0 or bool(
            len(c.args) > 3 and _flags(c.args[3]) & vocab.MREMAP_DONTUNMAP))
        made: dict[str, str] = {}  # mapping -> the mapping an mremap returned
        for mf in dict.fromkeys(m.memfd for m in hit):
            mine = [m for m in hit if m.memfd is mf]
            # munmap and mprotect of a part of one record name its address (m1+8192)
            part = c.name in ("munmap", "mprotect") and len(mine) == 1 \
                and mine[0].start <= lo and hi <= mine[0].end
            if part or (len(mine) == 1 and mine[0].start == lo == mine[0].base):
                args = self.parsed(c, {0})
                out = _outcome(c)
                if isinstance(args, str) or isinstance(out, str):
                    self.add(mf, c.line, c.text, None,
                             why=args if isinstance(args, str) else str(out))
                    continue
                args[0] = mine[0].ref(lo)
                if c.name == "mremap" and ok:
                    if copy:
                        mf.maps += 1
                    made[mine[0].handle] = f"m{mf.maps}" if copy else mine[0].handle
                    out = New(made[mine[0].handle])
                self.add(mf, c.line, c.text, Step(c.name, tuple(args), out))
            elif c.name == "munmap" and ok:  # each record's part: do_vmi_munmap()'s loop
                for i, m in enumerate(sorted(mine, key=lambda m: m.start)):
                    a, b = max(lo, m.start), min(hi, m.end)
                    self.add(mf, c.line, c.text, Step("munmap", (m.ref(a), Int(b - a)), Ret(0)),
                             counted=i == 0)
            else:
                names = ", ".join(m.handle for m in mine)
                self.add(mf, c.line, c.text, None, why=f"{c.name} [{lo:#x}, +{length:#x}) "
                         f"covers {names} in part or more than one piece of it; the model's "
                         "calls take a range within one piece of one mapping")
        if not ok:
            return
        if c.name == "munmap":
            p.mm.maps = [m for m in p.mm.maps if m.end <= lo or m.start >= hi]
            for m in hit:  # what is left of a partly unmapped mapping
                if m.start < lo:
                    p.mm.maps.append(m.part(m.start, lo))
                if m.end > hi:
                    p.mm.maps.append(m.part(hi, m.end))
        elif c.name == "mprotect":  # a part reprotected is a piece of its own (a VMA split)
            for m in hit:
                p.mm.maps.remove(m)
                cuts = (m.start, max(lo, m.start), min(hi, m.end), m.end)
                p.mm.maps += [m.part(a, b) for a, b in pairwise(cuts) if a < b]
        elif c.name == "mremap" and c.ret is not None:
            new_len = c.int_arg(2) or 0
            if not copy:
                for m in hit:
                    p.mm.maps.remove(m)
            self.unmap(p, c.ret, c.ret + -(-new_len // PAGE) * PAGE, c, "replaced by mremap")
            for m in hit[:1]:
                p.mm.maps.append(Mapping(c.ret, c.ret + -(-new_len // PAGE) * PAGE, m.memfd,
                                         made.get(m.handle, m.handle), c.ret))

    def fd_call(self, p: _Proc, c: LogCall, mf: Memfd) -> None:
        at = FD_AT.get(c.name, 0)
        fd = c.int_arg(at)
        assert fd is not None
        second = SECOND_FD.get(c.name)
        if p.table.fds.get(fd) is not mf and second is not None:  # about its second fd
            at, fd = second, c.int_arg(second) or 0
        t = mf.tfd.get(self.key(p, fd))
        if second is not None and c.name in MODEL_CALLS:
            other = c.int_arg(second if at != second else 0)
            if other is None or mf.tfd.get(self.key(p, other)) is None \
                    or p.table.fds.get(other) is not mf:
                self.add(mf, c.line, c.text, None, why=f"{c.name} between this memfd and "
                         "another file: the model holds one file")
                return
        name = c.name
        cmd = c.args[1] if len(c.args) > 1 else ""
        fcntl_cmd = _flags(cmd) if name == "fcntl" else None
        observer = name in OBSERVERS or (name == "fcntl" and fcntl_cmd in (1, 3))
        if name not in MODEL_CALLS:
            self.add(mf, c.line, c.text, None, why=f"the model has no call {name}"
                     + ("; it changes nothing the model represents, so later calls are "
                        "still judged" if observer else ""), observer=observer)
            if name == "close":
                self.close_fd(p, fd, c.line, None)
            return
        if name == "lseek" and mf.maps and len(c.args) > 2 and c.args[2].strip() in SEEKS:
            self.add(mf, c.line, c.text, None, why=SEEK_UNSHOWN)
            return
        updated: list[tuple[int, Arg]] = []
        args = self.parsed(c, {at}, updated)
        out = _outcome(c)
        if t is None or isinstance(args, str) or isinstance(out, str):
            why = args if isinstance(args, str) else out if isinstance(out, str) else \
                "descriptor not followed"
            self.add(mf, c.line, c.text, None, why=str(why), observer=observer)
            if c.name == "close":
                self.close_fd(p, fd, c.line, None)
            return
        args[at] = Int(t)
        if second is not None:  # both descriptors name this memfd (checked above)
            other_at = second if at != second else 0
            args[other_at] = Int(mf.tfd[self.key(p, c.int_arg(other_at) or 0)])
        new_fd = isinstance(out, Ret) and (name in ("dup", "dup2", "dup3") or (
            name == "fcntl" and fcntl_cmd in (0, 1030)))
        fixed = args[3] if name == "mmap" and len(args) > 3 else None
        if isinstance(fixed, Sym) and "MAP_FIXED" in fixed.text.split("|"):
            # over a part of a mapping: its munmap (unmap() below) and a mapping of its own
            args[0] = Sym("NULL")
            args[3] = Sym("|".join(x for x in fixed.text.split("|") if x != "MAP_FIXED"))
        if name == "mmap" and isinstance(out, Ret):
            mf.maps += 1
            handle = f"m{mf.maps}"
            length = c.int_arg(1) or 0
            self.unmap(p, out.value, out.value + -(-length // PAGE) * PAGE, c,
                       "replaced by the mapping")
            p.mm.maps.append(Mapping(out.value, out.value + -(-length // PAGE) * PAGE, mf,
                                     handle, out.value))
            out = New(handle)
        if new_fd and isinstance(out, Ret):
            nfd = out.value
            same = nfd == fd
            least = c.int_arg(2) or 0 if name == "fcntl" else 0
            if not same:
                old = p.table.fds.get(nfd)
                if old is mf:  # dup2 onto a descriptor of the same file: the model closes it
                    n = mf.tfd.pop(self.key(p, nfd))
                    mf.tfd[self.key(p, nfd)] = n
                else:
                    self.displace(p, nfd, c.line)
                    n = mf.new_tfd(self.key(p, nfd), nfd, least)
                p.table.fds[nfd] = mf
                p.table.cloexec.discard(nfd)
                if (name == "dup3" and len(c.args) > 2
                        and _flags(c.args[2]) & vocab.O_CLOEXEC) or fcntl_cmd == 1030:
                    p.table.cloexec.add(nfd)
            else:
                n = t
            if name in ("dup2", "dup3"):
                args[1] = Int(n)
            out = Ret(n)
        if name == "fcntl" and fcntl_cmd == 2 and isinstance(out, Ret):
            if len(c.args) > 2 and _flags(c.args[2]) & 1:
                p.table.cloexec.add(fd)
            else:
                p.table.cloexec.discard(fd)
        if name == "close":
            self.close_fd(p, fd, c.line, None)
        note = c.note if c.note is not None and c.note.startswith("seals") else None
        self.add(mf, c.line, c.text, Step(name, tuple(args), out, note,
                                          updated=tuple(updated)), observer=observer)

    def scm_rights(self, p: _Proc, c: LogCall) -> None:
        """SCM_RIGHTS: a sent memfd descriptor is a reference in flight (judged as a `dup` of
        the sender's descriptor: the same open file description) until a receiver installs
        it; messages are matched in the order they were sent (strace does not show which
        socket pair carried them). A receive that strace split around the send (its first
        half earlier in the log) waits for it."""
        if c.errno is not None or c.ret is None or c.ret < 0 or len(c.args) < 2:
            return
        m = _CMSG_FDS.search(c.args[1])
        if m is None:
            return
        fds = [int(x) for x in m.group(1).split(",") if x.strip().isdigit()]
        if c.name == "sendmsg":
            for fd in fds:
                mf = p.table.fds.get(fd)
                t = mf.tfd.get(self.key(p, fd)) if mf is not None else None
                if mf is None or t is None:
                    continue
                key = (-1, len(self.flight) + 1000 * mf.serial)
                n = mf.new_tfd(key, fd)
                self.add(mf, c.line, f"SCM_RIGHTS: fd {fd} in flight", Step(
                    "dup", (Int(t),), Ret(n), comment="in flight (SCM_RIGHTS)"), counted=False)
                self.flight.append((mf, key))
            while self.waiting and self.flight:
                self.scm_rights(*self.waiting.pop(0))
            return
        if not self.flight:
            self.waiting.append((p, c))
            return
        for fd in fds:
            if not self.flight:
                return
            mf, key = self.flight.pop(0)
            self.displace(p, fd, c.line)
            p.table.fds[fd] = mf
            if "MSG_CMSG_CLOEXEC" in c.args[-1]:
                p.table.cloexec.add(fd)
            mf.tfd[self.key(p, fd)] = mf.tfd.pop(key)

    def udmabuf(self, p: _Proc, c: LogCall) -> None:
        """ioctl(dev, UDMABUF_CREATE[_LIST], ...) = dmabuf: the dmabuf pins pages of the memfd
        its struct names until its last reference goes. strace does not decode that struct,
        so every memfd the process holds may be pinned from here on: their later calls are not
        judged (a F_SEAL_WRITE would be EBUSY where the model, blind to the pin, says 0)."""
        if c.ret is None or c.ret < 0:
            return  # nothing was pinned
        for mf in dict.fromkeys(p.table.fds.values()):
            self.add(mf, c.line, c.text, None,
                     why=f"a udmabuf made at line {c.line} may pin this memfd's pages (strace "
                         "does not show which memfd; the model's udmabuf is the trace call "
                         "`udmabuf(fd, offset, size)`)")

    def guest_memfd(self, p: _Proc, c: LogCall) -> None:
        """ioctl(vm, KVM_CREATE_GUEST_MEMFD, {...}) = fd: a guest_memfd inode."""
        mf = Memfd(len(self.memfds) + 1, "guest_memfd", "guest_memfd", c.line, p.ns.effective())
        self.memfds.append(mf)
        self.add(mf, c.line, c.text, None, why="guest_memfd: followed, but its trace would "
                 "need the VM that created it (open /dev/kvm, KVM_CREATE_VM), which the judge "
                 "does not build yet")
        if c.errno is None and c.ret is not None and c.ret >= 0:
            self.displace(p, c.ret, c.line)
            p.table.fds[c.ret] = mf
            mf.new_tfd(self.key(p, c.ret), c.ret)


def follow(log: StraceLog, noexec: int = 0) -> list[Memfd]:
    """Every memfd of the log with its history, in creation order. `noexec` is the
    vm.memfd_noexec of the log's first pid namespace (the log does not show it)."""
    f = _Follower(log, noexec)
    f.run()
    return f.memfds
