"""`fork_vma` on the kernel (traces/kernel.py): fork()'s copy of one mapping, held by a child.

`fork_vma(m1) = m2` forks the executor. The child (the holder) keeps its copy of m1 and drops
everything else the trace made: the other mappings, the io_uring rings, every descriptor but
its two command pipes. So it holds exactly the one VMA the model's fork_vma adds
(model/designs/memfd_fork.py). It then runs the steps that name m2 (or a mapping or pin made
through m2) with its own copy of the executor, and probes its mappings for the observation.
It exits when the executor does (its command pipe reaches EOF), which unmaps its copy.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, replace
from typing import Any, cast

from traces.memaccess import Map as _Map
from traces.memaccess import Pin as _Pin
from traces.memaccess import map_ref
from traces.rawsys import syscall as _sys
from traces.syscalls import Op, TraceError
from traces.trace import New, Outcome

SYS_MUNMAP = 11


@dataclass(frozen=True)
class Holder:
    """A child holding mappings: its pid and the executor's ends of its command pipes."""

    pid: int
    cmd: int  # the executor writes requests here
    res: int  # and reads the replies here


def _send(fd: int, obj: Any) -> None:
    data = pickle.dumps(obj)
    data = len(data).to_bytes(8, "little") + data
    while data:
        data = data[os.write(fd, data):]


def _recv_exact(fd: int, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = os.read(fd, n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return out


def _recv(fd: int) -> Any:
    n = int.from_bytes(_recv_exact(fd, 8), "little")
    return pickle.loads(_recv_exact(fd, n))


class ForkCalls:
    """fork_vma, and the steps a holder runs; the executor provides maps, pins, filled,
    map_of(), run() and map_probes()."""

    maps: dict[str, _Map]
    pins: dict[str, _Pin]
    filled: dict[str, int]
    #: a handle held by a child -> (its holder, the holder's name for it)
    remote: dict[str, tuple[Holder, str]]

    def map_of(self, name: str) -> _Map:
        raise NotImplementedError

    def run(self, op: Op) -> Outcome:
        raise NotImplementedError

    def map_probes(self) -> dict[str, list[str]]:
        raise NotImplementedError

    def do_fork_vma(self, m: str) -> Outcome:
        mp = self.map_of(m)
        name = f"m{len(self.maps) + 1}"
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            self._hold(name, mp, cmd_r, res_w)
        os.close(cmd_r)
        os.close(res_w)
        holder = Holder(pid, cmd_w, res_r)
        self.ask(holder, ("ready",))  # the child has dropped what it must not hold
        # the parent's record only numbers the handles: the mapping lives in the holder
        self.maps[name] = _Map(mp.addr, mp.length, live=False)
        self.remote[name] = (holder, name)
        return New(name)

    def _hold(self, name: str, mp: _Map, cmd: int, res: int) -> None:
        """The holder's body; never returns."""
        try:
            for other in self.maps.values():
                if other.addr != mp.addr:
                    for lo, hi in other.parts():
                        _sys(SYS_MUNMAP, lo, hi - lo)
            for pin in self.pins.values():
                for addr, length in pin.ring.regions if pin.ring is not None else ():
                    _sys(SYS_MUNMAP, addr, length)
            for fd in [int(f) for f in os.listdir("/proc/self/fd")]:
                if fd not in (cmd, res):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            # the holder's own records: names stay unique (the old ones kept, dead)
            self.maps = {k: replace(v, live=False) for k, v in self.maps.items()}
            self.maps[name] = _Map(mp.addr, mp.length, mp.live, list(mp.gone))
            self.pins = {k: replace(v, released=True) for k, v in self.pins.items()}
            self.remote = {}
            while True:
                try:
                    msg = _recv(cmd)
                except EOFError:
                    self.reap_holders()
                    os._exit(0)
                try:
                    if msg[0] == "run":
                        _send(res, ("ok", self.run(msg[1]), self.filled))
                    elif msg[0] == "ready":
                        _send(res, ("ok", None, {}))
                    else:
                        _send(res, ("ok", self.map_probes(), {}))
                except Exception as err:
                    _send(res, ("err", str(err) if isinstance(err, TraceError)
                                else f"executor failed in a fork's child: {err!r}", {}))
        except BaseException:
            os._exit(1)
        os._exit(0)

    def reap_holders(self) -> None:
        """End every child holding a mapping and wait for it (its own children first), so
        that nothing of this trace (a huge page, say) outlives it."""
        for holder in {h for h, _ in self.remote.values()}:
            try:
                os.close(holder.cmd)
                os.waitpid(holder.pid, 0)
            except OSError:
                pass
        self.remote = {}

    def held_by(self, op: Op) -> Holder | None:
        """The holder of a handle the step names (None: the executor's own)."""
        for a in op.args:
            if isinstance(a, str) and map_ref(a)[0] in self.remote:
                return self.remote[map_ref(a)[0]][0]
        return None

    @staticmethod
    def ask(holder: Holder, msg: tuple[Any, ...]) -> tuple[Any, dict[str, int]]:
        """The holder's reply: a value and the step's outputs."""
        _send(holder.cmd, msg)
        try:
            kind, value, filled = _recv(holder.res)
        except EOFError:
            raise TraceError(f"the fork's child (pid {holder.pid}) died") from None
        if kind != "ok":
            raise TraceError(value)
        return value, filled

    def forward(self, op: Op, holder: Holder) -> Outcome:
        """Run `op` in the holder, its handle names as the holder knows them; a handle it
        makes gets the executor's next name."""
        there = {k: n for k, (h, n) in self.remote.items() if h == holder}
        args = tuple(_there(there, a) if isinstance(a, str) else a for a in op.args)
        out, self.filled = self.ask(holder, ("run", replace(op, args=args)))
        if not isinstance(out, New):
            return cast(Outcome, out)  # the holder's run()
        back = {n: k for k, n in there.items()}
        if out.name in back:  # the same mapping (mremap resized or moved it)
            return New(back[out.name])
        if out.name.startswith("p"):
            name = f"p{len(self.pins) + 1}"
            self.pins[name] = _Pin(released=True)
        else:
            name = f"m{len(self.maps) + 1}"
            self.maps[name] = _Map(0, 0, live=False)
        self.remote[name] = (holder, out.name)
        return New(name)

    def remote_probes(self) -> dict[str, list[str]]:
        """The observation probes of the mappings the holders hold, by the executor's names."""
        out: dict[str, list[str]] = {}
        for holder in {h for h, _ in self.remote.values()}:
            back = {n: k for k, (h, n) in self.remote.items() if h == holder}
            for n, probe in self.ask(holder, ("obs",))[0].items():
                if n in back:
                    out[back[n]] = probe
        return out


__all__ = ["ForkCalls", "Holder"]


def _there(there: dict[str, str], a: str) -> str:
    """A handle operand by the holder's name for it (a mapping's `+bytes` kept)."""
    name, plus = map_ref(a)
    if name not in there:
        return a
    return f"{there[name]}+{plus}" if plus else there[name]
