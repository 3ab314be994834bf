"""Exporters: one trace, many audiences.

`EXPORTERS` maps a format name to (file extension, fn(design, trace) -> str):

* ``text``    mail-ready: ASCII, at most 72 columns, one step per line with the model state
              fields it changed, and the expectation (with the property's rationale) at the end;
* ``itf``     the Apalache/Quint Informal Trace Format (JSON); `trace_from_itf` reads it back;
* ``dot``     a Graphviz picture: states (the fields that changed) joined by the steps;
* ``mermaid`` the same picture as a Mermaid flowchart;
* ``c``       a kselftest-style C reproducer in the dialect of memfd_test.c (raw system calls,
              every outcome checked, exit 0/1/4 = KSFT_PASS/KSFT_FAIL/KSFT_SKIP);
* ``python``  the same reproducer as a standalone Python script (stdlib + ctypes);
* ``syz``     a syzkaller program with each call's expected errno as a trailing comment.

The reproducers speak both designs' calls: the memfd ones (memfd_create, fcntl seals, pins...)
and guest_memfd's (open("/dev/kvm"), the KVM_CREATE_VM, KVM_CREATE_GUEST_MEMFD and
KVM_SET_USER_MEMORY_REGION2 ioctls with their structs, read/write/pread64/lseek).  The ioctl
structs are declared with <linux/kvm.h>'s layout (struct kvm_create_guest_memfd: 64 bytes,
struct kvm_userspace_memory_region2: 160), as traces/kernel.py packs them; a machine without
a usable /dev/kvm, or without a guest_memfd creation flag the trace needs, is a KSFT_SKIP.

Every exporter replays the trace on the model first (checker/replay.py): outcomes written `?`
take the model's value, and the model states give the "fields that changed".  A trace that the
model cannot replay (a call outside the design) is still exported by the reproducer formats;
the pictures and the text then show no state.
"""

from __future__ import annotations

import json
import re
import textwrap
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from checker.explicit import Explorer
from checker.replay import REPLAY_SCOPE_VALUE, TraceInputError, model_outcomes
from model import vocab
from model.lang.design import Design
from model.lang.schema import render_state
from properties.catalogue import load as load_properties
from traces.textfmt import FORMAT_VERSION, format_step, parse_step
from traces.trace import (
    Any_,
    Arg,
    Err,
    Int,
    New,
    Outcome,
    Ref,
    Ret,
    Sig,
    Step,
    Str,
    Struct,
    Sym,
    Trace,
)

__all__ = ["EXPORTERS", "ExportError", "export_c", "export_dot", "export_itf",
           "export_mermaid", "export_python", "export_syz", "export_text", "trace_from_itf"]

WIDTH = 72  # columns of the mail-ready text
CONT = "    "  # continuation indent of a wrapped line


class ExportError(Exception):
    """The trace cannot be expressed in the requested format."""


# ---- the replayed trace: concrete outcomes and model states ---------------------------------
@dataclass
class _Replayed:
    trace: Trace
    steps: list[Step]  # the trace's steps, `?` outcomes replaced by the model's
    states: list[dict[str, int]] | None  # model state before step 1, after each step
    model: list[Outcome] | None  # the model's outcome of each step
    actions: list[str] | None  # the model action of each step

    def changed(self, i: int) -> list[str]:
        """Names of the fields step i (0-based) changed, in schema order."""
        if self.states is None:
            return []
        before, after = self.states[i], self.states[i + 1]
        return [n for n in after if before.get(n) != after[n]]

    def differs(self, i: int) -> Outcome | None:
        """The model's outcome of step i when the trace says otherwise."""
        if self.model is None or isinstance(self.trace.steps[i].outcome, Any_):
            return None
        got = self.model[i]
        return got if got != self.trace.steps[i].outcome else None


#: the model interpreter of each design replays go through, compiled once per design object
#: (compiling every action costs far more than a replay): id -> (design, interpreter)
_INTERPRETERS: dict[int, tuple[Design, Explorer]] = {}
_MAX_INTERPRETERS = 8


def _interpreter(design: Design) -> Explorer:
    hit = _INTERPRETERS.get(id(design))
    if hit is None or hit[0] is not design:
        if len(_INTERPRETERS) >= _MAX_INTERPRETERS:
            del _INTERPRETERS[next(iter(_INTERPRETERS))]
        scope = {k: REPLAY_SCOPE_VALUE for k in design.default_scope}
        hit = (design, Explorer(design, scope, []))
        _INTERPRETERS[id(design)] = hit
    return hit[1]


def _replay(design: Design, trace: Trace) -> _Replayed:
    try:
        rep = model_outcomes(design, trace, stop_at_divergence=False, ex=_interpreter(design))
    except TraceInputError:
        return _Replayed(trace, list(trace.steps), None, None, None)
    assert rep.run is not None
    actions = [a.action for a in rep.run.steps]
    steps = []
    for s, o, name in zip(trace.steps, rep.outcomes, actions, strict=True):
        if isinstance(s.outcome, Any_):
            note_of = design.action(name).note
            note = s.note
            if note is None and note_of is not None and isinstance(o, Ret):
                note = note_of(o.value)
            s = Step(s.call, s.args, o, note, s.comment, s.pos)
        steps.append(s)
    return _Replayed(trace, steps, rep.run.states(), list(rep.outcomes), actions)


def _init_choices(design: Design, trace: Trace, states: list[dict[str, int]] | None
                  ) -> dict[str, int]:
    """The initial-state choices (fields with more than one possible initial value)."""
    ch = design.init.choices(design.schema)
    names = [n for n, vals in ch.items() if len(vals) > 1]
    if states is not None:
        return {n: states[0][n] for n in names}
    out = {n: ch[n][0] for n in names}
    for c in trace.comments:
        c = c.strip()
        if c.startswith("init:"):
            for word in c[5:].split():
                k, _, v = word.partition("=")
                if k in out and v.isdigit():
                    out[k] = int(v)
    return out


def _expect(trace: Trace) -> tuple[str, str]:
    kind, _, prop = trace.expect.partition(" ")
    return kind, prop


def _outcome_text(o: Outcome) -> str:
    if isinstance(o, Ret):
        return str(o.value)
    if isinstance(o, Err):
        return f"-1 {o.errno}"
    if isinstance(o, (Sig, New)):
        return o.name
    return "?"


# ---- text ------------------------------------------------------------------------------------
_ASCII = {
    "∅": "{}", "—": "--", "–": "-", "→": "->", "←": "<-", "⇒": "=>", "≤": "<=", "≥": ">=",
    "≠": "!=", "×": "x", "…": "...", "‘": "'", "’": "'", "“": '"', "”": '"', "∈": " in ",
    "·": ".", "§": "S", "µ": "u", "\u00a0": " ", "\t": " ",
}


def _ascii(s: str) -> str:
    """ASCII text: known symbols spelled out, accents dropped, anything else as \\xNN bytes."""
    out: list[str] = []
    for c in s:
        if " " <= c <= "~":
            out.append(c)
        elif c in _ASCII:
            out.append(_ASCII[c])
        else:
            base = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
            out.append(base if base.isprintable() and base else
                       "".join(f"\\x{b:02x}" for b in c.encode("utf-8", "surrogatepass")))
    return "".join(out)


def _break_at(line: str, width: int, lo: int) -> int:
    """Where to cut `line` (longer than width): before the ` = ` of the outcome, else after
    the last ', ' or '|', else after the last space that fits; a hard cut if none does."""
    tests: tuple[Callable[[int], bool], ...] = (
        lambda p: line[p - 1] == " " and line[p:p + 2] == "= ",
        lambda p: line[p - 2:p] == ", " or line[p - 1] == "|",
        lambda p: line[p - 1] == " ")
    for good in tests:
        for p in range(width, lo, -1):
            if good(p):
                return p
    return width


def _wrap(text: str, first: str = "", width: int = WIDTH) -> list[str]:
    """One logical line as physical lines of at most `width` columns: the first starts with
    `first`, the others are indented four spaces more than the text of the first."""
    line = first + text
    lo = len(first) + 1
    cont = " " * len(first) + CONT
    out: list[str] = []
    while len(line) > width:
        p = _break_at(line, width, lo)
        out.append(line[:p].rstrip())
        line = cont + line[p:].lstrip(" ")
        lo = len(cont) + 1
    out.append(line.rstrip())
    return out


def _prose(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(_ascii(text), WIDTH, initial_indent=indent,
                         subsequent_indent=indent + CONT, break_on_hyphens=False,
                         break_long_words=True) or [indent.rstrip()]


def _render(design: Design, values: Mapping[str, int], names: Sequence[str]) -> list[str]:
    """`field=value` for each name, as render_state prints them."""
    return [_ascii(render_state(design.schema, values, only=[n])) for n in names]


def export_text(design: Design, trace: Trace) -> str:
    """Mail-ready text: ASCII, <= 72 columns, one step per line, the changed fields under it."""
    r = _replay(design, trace)
    out: list[str] = []
    title = trace.title or f"{len(trace.steps)}-step trace"
    out += _prose(f"shmemcheck trace: {title}")
    out += _prose(f"design {design.name} ({design.doc})")
    if trace.scope:
        out += _prose(f"scope {trace.scope}")
    init = _init_choices(design, trace, r.states)
    if init:
        out += _prose("initial state: " + ", ".join(f"{k}={v}" for k, v in init.items())
                      + ("" if r.states is None else "; every other field 0"))
    out.append("")
    w = len(str(len(r.steps)))
    for i, step in enumerate(r.steps):
        out += _wrap(_ascii(format_step(step)), f"{i + 1:>{w}}. ")
        pad = " " * (w + 4)
        other = r.differs(i)
        if other is not None:
            out += _wrap(f"(the model says {_outcome_text(other)})", pad)
        changed = r.changed(i)
        if changed and r.states is not None:
            out += _wrap(", ".join(_render(design, r.states[i + 1], changed)), pad)
    out.append("")
    kind, pname = _expect(trace)
    out.append(_ascii(trace.expect))
    if kind in ("violates", "witnesses"):
        prop = load_properties().get(pname)
        if prop is not None:
            out += _prose(f"{prop.name}: {prop.rationale}")
            out += _prose(f"enforced by: {prop.enforced_by}")
    return "\n".join(line.rstrip() for line in out) + "\n"


# ---- ITF -------------------------------------------------------------------------------------
ITF_DESCRIPTION = "https://apalache-mc.org/docs/adr/015adr-trace.html"
ITF_STEP, ITF_OUTCOME, ITF_ACTION = "step", "outcome", "mbt::actionTaken"


def _itf_value(design: Design, name: str, v: int) -> object:
    sort = design.schema.by_name[name].sort
    if sort.kind == "bool":
        return bool(v)
    if sort.kind == "enum":
        return sort.render(v)
    return {"#bigint": str(v)}


def export_itf(design: Design, trace: Trace) -> str:
    """ITF JSON: one state per step (the initial state first) with the model's fields, the
    step's strace text and outcome, and the model action taken."""
    r = _replay(design, trace)
    fields = list(r.states[0]) if r.states is not None else []
    meta: dict[str, object] = {
        "format": "ITF",
        "format-description": ITF_DESCRIPTION,
        "description": f"shmemcheck trace: {trace.title or trace.expect}",
        "source": trace.path or "",
        "shmemcheck": {"version": FORMAT_VERSION, "design": design.name, "scope": trace.scope,
                       "expect": trace.expect, "title": trace.title,
                       "comments": list(trace.comments)},
    }
    states: list[dict[str, object]] = []
    for i in range(len(r.steps) + 1):
        st: dict[str, object] = {"#meta": {"index": i}}
        if r.states is not None:
            st.update({n: _itf_value(design, n, r.states[i][n]) for n in fields})
        if i == 0:
            st[ITF_ACTION], st[ITF_STEP], st[ITF_OUTCOME] = "init", "", ""
        else:
            step = r.steps[i - 1]
            st[ITF_ACTION] = r.actions[i - 1] if r.actions is not None else step.call
            st[ITF_STEP] = format_step(step)
            st[ITF_OUTCOME] = _outcome_text(step.outcome)
        states.append(st)
    doc = {"#meta": meta, "vars": [*fields, ITF_ACTION, ITF_STEP, ITF_OUTCOME],
           "states": states}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def trace_from_itf(text: str) -> Trace:
    """Read a trace back from ITF written by `export_itf` (or any ITF whose states carry a
    `step` string); raises ValueError on anything else."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("states"), list):
        raise ValueError("not an ITF trace: no 'states' list")
    meta = doc.get("#meta", {})
    info = meta.get("shmemcheck", {}) if isinstance(meta, dict) else {}
    if not isinstance(info, dict):
        raise ValueError("'#meta.shmemcheck' is not an object")
    steps: list[Step] = []
    for i, st in enumerate(doc["states"]):
        if not isinstance(st, dict):
            raise ValueError(f"state {i} is not an object")
        line = st.get(ITF_STEP, "")
        if not isinstance(line, str):
            raise ValueError(f"state {i}: '{ITF_STEP}' is not a string")
        if i == 0 and not line:
            continue
        if not line:
            raise ValueError(f"state {i} has no '{ITF_STEP}'")
        try:
            steps.append(parse_step(line, "<itf>", i))
        except Exception as e:  # TraceSyntaxError
            raise ValueError(f"state {i}: {e}") from None
    comments = info.get("comments") or []
    return Trace(steps=steps, design=str(info.get("design") or "memfd"),
                 scope=info.get("scope"), expect=str(info.get("expect") or "conforms"),
                 title=info.get("title"), comments=tuple(str(c) for c in comments))


# ---- pictures --------------------------------------------------------------------------------
def _picture(design: Design, trace: Trace) -> tuple[_Replayed, list[list[str]], list[str]]:
    """Node lines (one list per state) and edge labels (one per step)."""
    r = _replay(design, trace)
    init = _init_choices(design, trace, r.states)
    nodes = [["initial state", *(f"{k}={v}" for k, v in init.items())]]
    edges = []
    for i, step in enumerate(r.steps):
        changed = r.changed(i)
        if r.states is None:
            nodes.append([f"s{i + 1}"])
        else:
            nodes.append([f"s{i + 1}", *(_render(design, r.states[i + 1], changed)
                                         if changed else ["(unchanged)"])])
        label = f"{i + 1}: {format_step(Step(step.call, step.args, step.outcome, step.note))}"
        other = r.differs(i)
        if other is not None:
            label += f" (model: {_outcome_text(other)})"
        edges.append(label)
    return r, nodes, edges


def _dot_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def export_dot(design: Design, trace: Trace) -> str:
    """Graphviz: a chain of states labelled with the fields each step changed."""
    r, nodes, edges = _picture(design, trace)
    kind, _ = _expect(trace)
    out = ["digraph trace {",
           f"  label={_dot_quote((trace.title or 'shmemcheck trace') + ' -- ' + trace.expect)};",
           "  labelloc=t;",
           '  node [shape=box, style=rounded, fontname="monospace", fontsize=10];',
           '  edge [fontname="monospace", fontsize=9];']
    for i, lines in enumerate(nodes):
        attrs = ""
        if i == len(nodes) - 1 and kind == "violates":
            attrs = ", color=red, peripheries=2"
        elif i == len(nodes) - 1 and kind == "witnesses":
            attrs = ", color=darkgreen, peripheries=2"
        out.append(f"  s{i} [label={_dot_quote(chr(10).join(lines))}{attrs}];")
    for i, label in enumerate(edges):
        attrs = ", color=red, fontcolor=red" if r.differs(i) is not None else ""
        out.append(f"  s{i} -> s{i + 1} [label={_dot_quote(label)}{attrs}];")
    out.append("}")
    return "\n".join(out) + "\n"


_MERMAID_ESC = {"#": "#35;", '"': "#quot;", "|": "#124;", "<": "#lt;", ">": "#gt;",
                "{": "#123;", "}": "#125;", "`": "#96;", "\\": "#92;"}


def _mermaid_text(s: str) -> str:
    return "".join(_MERMAID_ESC.get(c, c) for c in s)


def export_mermaid(design: Design, trace: Trace) -> str:
    """Mermaid flowchart: the same picture as export_dot."""
    r, nodes, edges = _picture(design, trace)
    kind, _ = _expect(trace)
    out = ["---", f"title: {_mermaid_text(trace.title or 'shmemcheck trace')}", "---",
           "flowchart TD"]
    for i, lines in enumerate(nodes):
        out.append(f'  s{i}["{"<br/>".join(_mermaid_text(x) for x in lines)}"]')
    for i, label in enumerate(edges):
        out.append(f'  s{i} -->|"{_mermaid_text(label)}"| s{i + 1}')
    last = len(nodes) - 1
    if kind in ("violates", "witnesses"):
        color = "#c00" if kind == "violates" else "#080"
        out.append(f"  style s{last} stroke:{color},stroke-width:3px")
    for i in range(len(edges)):
        if r.differs(i) is not None:
            out.append(f"  linkStyle {i} stroke:#c00")
    out.append(f"  %% {_mermaid_text(trace.expect)}")
    return "\n".join(out) + "\n"


# ---- reproducers: a common lowering of the steps ----------------------------------------------
#: names a reproducer may use, beyond model.vocab.CONSTANTS (values as on x86_64)
_EXTRA_NAMES: dict[str, int] = {"NULL": 0, "O_EXCL": 0o200, "O_APPEND": 0o2000,
                                "O_NONBLOCK": 0o4000, "MAP_FIXED": 0x10,
                                "MAP_ANONYMOUS": 0x20, "MAP_SHARED_VALIDATE": 0x03,
                                "SEEK_SET": 0, "SEEK_CUR": 1, "SEEK_END": 2, "SEEK_DATA": 3,
                                "SEEK_HOLE": 4, "KVM_GET_API_VERSION": 0xAE00,
                                "KVM_CHECK_EXTENSION": vocab.KVM_CHECK_EXTENSION,
                                "KVM_CAP_GUEST_MEMFD": vocab.KVM_CAP_GUEST_MEMFD,
                                "KVM_CAP_GUEST_MEMFD_FLAGS": vocab.KVM_CAP_GUEST_MEMFD_FLAGS}

#: ioctl requests that take a struct: request -> (C struct name, (field, bits) in layout order)
#: (include/uapi/linux/kvm.h; the padding and reserved words are zero)
_IOCTL_STRUCTS: dict[int, tuple[str, tuple[tuple[str, int], ...]]] = {
    vocab.KVM_CREATE_GUEST_MEMFD: ("kvm_create_guest_memfd", (("size", 64), ("flags", 64))),
    vocab.KVM_SET_USER_MEMORY_REGION2: ("kvm_userspace_memory_region2", (
        ("slot", 32), ("flags", 32), ("guest_phys_addr", 64), ("memory_size", 64),
        ("userspace_addr", 64), ("guest_memfd_offset", 64), ("guest_memfd", 32))),
}
_FD_FIELDS = frozenset({"guest_memfd"})  # struct fields that hold a descriptor of the trace
#: ioctl requests that take a number (or nothing)
_IOCTL_NUMBERS = frozenset({vocab.KVM_CREATE_VM, vocab.KVM_CHECK_EXTENSION, 0xAE00})
#: ioctl requests that return a new descriptor
_IOCTL_FD_CREATORS = frozenset({vocab.KVM_CREATE_VM, vocab.KVM_CREATE_GUEST_MEMFD})
KVM_PATH = "/dev/kvm"


def _const_value(word: str) -> int:
    if word in vocab.CONSTANTS:
        return vocab.CONSTANTS[word]
    if word in _EXTRA_NAMES:
        return _EXTRA_NAMES[word]
    try:
        return int(word, 0)
    except ValueError:
        raise ExportError(f"unknown constant {word}") from None


def _words(arg: Arg) -> list[str]:
    """The names in a flag argument or a struct's fields (for the constant definitions a
    reproducer needs)."""
    if isinstance(arg, Sym):
        return [w for w in arg.text.split("|") if not w[:1].isdigit() and w != "NULL"]
    if isinstance(arg, Struct):
        return [w for _, v in arg.fields for w in _words(v)]
    return []


def _int(arg: Arg, what: str) -> int:
    if isinstance(arg, Int):
        return arg.value
    if isinstance(arg, Sym):
        v = 0
        for w in arg.text.split("|"):
            v |= _const_value(w)
        return v
    raise ExportError(f"{what}: expected a number, got {arg!r}")


def _handle(arg: Arg, prefix: str, what: str) -> int:
    if isinstance(arg, Ref) and arg.name.startswith(prefix) and arg.name[1:].isdigit():
        return int(arg.name[1:])
    raise ExportError(f"{what}: expected a handle {prefix}N, got {arg!r}")


def _fd(arg: Arg, what: str) -> int:
    if isinstance(arg, Int):
        return arg.value
    raise ExportError(f"{what}: expected a file descriptor, got {arg!r}")


_PROC_FD = re.compile(r"/proc/self/fd/([0-9]+)")

#: a lowered ioctl struct: (field, value) in layout order, every field present; a value is
#: a number or flags (Int, Sym), a trace fd (Int, in _FD_FIELDS) or a mapping (Ref mN)
StructOps = tuple[tuple[str, Arg], ...]


def _lower_struct(req: int, arg: Arg, where: str) -> StructOps:
    name, layout = _IOCTL_STRUCTS[req]
    if not isinstance(arg, Struct):
        raise ExportError(f"{where}: struct {name} expected, got {arg!r}")
    given = dict(arg.fields)
    known = {f for f, _ in layout}
    unknown = [f for f, _ in arg.fields if f not in known]
    if unknown:
        raise ExportError(f"{where}: struct {name} has no field {', '.join(unknown)}")
    if len(given) != len(arg.fields):
        raise ExportError(f"{where}: a field of struct {name} is given twice")
    out: list[tuple[str, Arg]] = []
    for f, _ in layout:
        v = given.get(f, Int(0))
        if f in _FD_FIELDS:
            _fd(v, f"{where}: {f}")
        elif isinstance(v, Ref):
            _handle(v, "m", f"{where}: {f}")
        elif not isinstance(v, (Int, Sym)):
            raise ExportError(f"{where}: {f}: expected a number, got {v!r}")
        else:
            _int(v, f"{where}: {f}")  # every name known
        out.append((f, v))
    return tuple(out)


def _lower_ioctl(a: tuple[Arg, ...], where: str) -> tuple[Any, ...]:
    """(fd, request as written, request value, argument): the argument is StructOps for the
    struct requests, else an Int or Sym."""
    fd = _fd(a[0], where)
    req = _int(a[1], f"{where}: request")
    arg = a[2] if len(a) > 2 else Int(0)
    if req in _IOCTL_STRUCTS:
        return (fd, a[1], req, _lower_struct(req, arg, where))
    if req not in _IOCTL_NUMBERS:
        raise ExportError(f"{where}: no reproducer for ioctl request {req:#x}")
    if not isinstance(arg, (Int, Sym)):
        raise ExportError(f"{where}: ioctl {req:#x} takes a number, got {arg!r}")
    _int(arg, where)
    return (fd, a[1], req, arg)


@dataclass(frozen=True)
class _Op:
    """One step lowered for the reproducers: the call and its operands, the expectation."""

    n: int
    text: str  # the step as the trace prints it (without comment)
    call: str
    ops: tuple[Any, ...]
    names: tuple[str, ...]  # symbolic constants used
    expect: Outcome


_ARITY = {"memfd_create": (2, 2), "fcntl": (2, 3), "pwrite64": (4, 4), "ftruncate": (2, 2),
          "fallocate": (4, 4), "mmap": (6, 6), "mprotect": (3, 3), "munmap": (2, 2),
          "store": (1, 2), "load": (1, 2), "pin": (1, 2), "gup_pin": (1, 2), "unpin": (1, 1),
          "dma_write": (1, 1), "open": (2, 3), "dup": (1, 1), "fchmod": (2, 2), "close": (1, 1),
          "ioctl": (2, 3), "read": (2, 3), "write": (3, 3), "pread64": (3, 4), "lseek": (3, 3)}


def _lower(r: _Replayed) -> list[_Op]:
    ops: list[_Op] = []
    for n, step in enumerate(r.steps, 1):
        c, a = step.call, step.args
        if c not in _ARITY:
            raise ExportError(f"step {n}: no reproducer for call {c!r} "
                              f"(calls: {', '.join(sorted(_ARITY))})")
        lo, hi = _ARITY[c]
        if not lo <= len(a) <= hi:
            raise ExportError(f"step {n}: {c} takes {lo}..{hi} arguments, got {len(a)}")
        where = f"step {n}: {c}"
        names: list[str] = []
        for x in a:
            names += _words(x)
        o: tuple[Any, ...]
        if c in ("read", "pread64") and len(a) == hi:
            if not isinstance(a[1], Str):  # strace's read(fd, "data", count): output only
                raise ExportError(f"{where}: the buffer must be a string")
            a = (a[0], *a[2:])
        if c == "memfd_create":
            if isinstance(a[0], Str):
                name: str | None = a[0].text
            elif a[0] in (Sym("NULL"), Int(0)):
                name = None
            else:
                raise ExportError(f"{where}: the name must be a string or NULL")
            o = (name, a[1])
        elif c == "fcntl":
            o = (_fd(a[0], where), a[1], a[2] if len(a) > 2 else Int(0))
        elif c == "pwrite64":
            if not isinstance(a[1], Str):
                raise ExportError(f"{where}: the buffer must be a string")
            o = (_fd(a[0], where), a[1].text, _int(a[2], where), _int(a[3], where))
        elif c == "write":
            if not isinstance(a[1], Str):
                raise ExportError(f"{where}: the buffer must be a string")
            o = (_fd(a[0], where), a[1].text, _int(a[2], where))
        elif c == "read":
            o = (_fd(a[0], where), _int(a[1], where))
        elif c == "pread64":
            o = (_fd(a[0], where), _int(a[1], where), _int(a[2], where))
        elif c == "lseek":
            o = (_fd(a[0], where), _int(a[1], where), a[2])
            _int(a[2], where)
        elif c == "ioctl":
            o = _lower_ioctl(a, where)
        elif c in ("ftruncate", "fchmod"):
            o = (_fd(a[0], where), a[1])
        elif c == "fallocate":
            o = (_fd(a[0], where), a[1], _int(a[2], where), _int(a[3], where))
        elif c == "mmap":
            if _int(a[0], where) != 0:
                raise ExportError(f"{where}: only NULL addresses are supported")
            if _int(a[5], where) != 0:
                raise ExportError(f"{where}: only offset 0 is supported")
            slot = _handle(Ref(step.outcome.name), "m", where) if isinstance(
                step.outcome, New) else 0
            o = (slot, _int(a[1], where), a[2], a[3], _fd(a[4], where))
        elif c == "mprotect":
            o = (_handle(a[0], "m", where), _int(a[1], where), a[2])
        elif c == "munmap":
            o = (_handle(a[0], "m", where), _int(a[1], where))
        elif c in ("store", "load"):
            o = (_handle(a[0], "m", where), _int(a[1], where) if len(a) > 1 else 0)
        elif c in ("pin", "gup_pin"):
            slot = _handle(Ref(step.outcome.name), "p", where) if isinstance(
                step.outcome, New) else 0
            o = (_handle(a[0], "m", where), _int(a[1], where) if len(a) > 1 else 0, slot)
        elif c in ("unpin", "dma_write"):
            o = (_handle(a[0], "p", where),)
        elif c == "open":
            if not isinstance(a[0], Str):
                raise ExportError(f"{where}: the path must be a string")
            m = _PROC_FD.fullmatch(a[0].text)
            o = (int(m.group(1)) if m else None, a[0].text, a[1],
                 a[2] if len(a) > 2 else Int(0))
        else:  # dup, close
            o = (_fd(a[0], where),)
        text = format_step(Step(step.call, step.args, step.outcome, step.note))
        ops.append(_Op(n, text, c, o, tuple(dict.fromkeys(names)), step.outcome))
    return ops


_FD_CREATORS = ("memfd_create", "open", "dup")


def _creates_fd(op: _Op) -> bool:
    """The step returns a new descriptor of the trace."""
    return op.call in _FD_CREATORS or (op.call == "ioctl" and op.ops[2] in _IOCTL_FD_CREATORS)


def _is_kvm_open(op: _Op) -> bool:
    """open("/dev/kvm") that the trace expects to succeed (a machine without KVM skips)."""
    return op.call == "open" and op.ops[0] is None and op.ops[1] == KVM_PATH \
        and isinstance(op.expect, Ret)


def _uses_gmem(ops: Sequence[_Op]) -> bool:
    return any(op.call == "ioctl" and op.ops[2] == vocab.KVM_CREATE_GUEST_MEMFD for op in ops)


def _noexec_want(design: Design, r: _Replayed) -> int | None:
    """vm.memfd_noexec the trace starts from: None when it does not say (the default, 0)."""
    if not any(c.strip().startswith("init:") for c in r.trace.comments):
        return None
    return _init_choices(design, r.trace, r.states).get("noexec_scope")


def _uses_hugetlb(ops: Sequence[_Op]) -> bool:
    return any(op.call == "memfd_create" and isinstance(op.ops[1], (Sym, Int))
               and _int(op.ops[1], "flags") & vocab.MFD_HUGETLB for op in ops)


# ---- C ---------------------------------------------------------------------------------------
def _c_string(s: str) -> str:
    out = []
    for b in s.encode("latin-1", "backslashreplace") if all(ord(c) < 256 for c in s) \
            else s.encode("utf-8", "surrogatepass"):
        ch = chr(b)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "?":
            out.append("\\?")  # no trigraphs
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def _c_long_string(s: str, indent: str) -> str:
    """A C string literal split into pieces of at most 60 characters."""
    if len(s) <= 60:
        return _c_string(s)
    parts = [_c_string(s[i:i + 60]) for i in range(0, len(s), 60)]
    return ("\n" + indent).join(parts)


def _c_flags(arg: object) -> str:
    if isinstance(arg, Sym):
        return " | ".join(arg.text.split("|"))
    if isinstance(arg, Int):
        return arg.text if arg.text is not None else str(arg.value)
    raise ExportError(f"expected flags, got {arg!r}")


def _c_comment(s: str) -> str:
    return _ascii(s).replace("*/", "* /").replace("/*", "/ *")


C_HEAD = r"""#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4

#ifndef __maybe_unused
#define __maybe_unused __attribute__((__unused__))
#endif
"""

C_BASE = r"""
#define MAX_FDS 64
#define BAD_FD (1 << 30)	/* a descriptor the trace does not hold: EBADF */

/* the trace's descriptor numbers -> this process's descriptors */
static int fds[MAX_FDS];
static int cur_step, passed, failed;
/* why the current step's failure may be this machine's (a missing feature), or NULL */
static const char *lacking;

struct res {
	long ret;	/* the return value; -1 on failure or signal */
	int err;	/* errno when ret == -1 */
	int sig;	/* the signal that stopped the step, or 0 */
};

static struct res res_of(long ret)
{
	struct res r = { ret, ret == -1 ? errno : 0, 0 };

	return r;
}

static int FD(int tfd)
{
	return tfd >= 0 && tfd < MAX_FDS && fds[tfd] >= 0 ? fds[tfd] : BAD_FD;
}

static const char *errname(int e)
{
	switch (e) {
@ERRNO_CASES@	default: return "E?";
	}
}

static void describe(char *buf, size_t len, struct res r)
{
	if (r.sig == SIGSEGV)
		snprintf(buf, len, "SIGSEGV");
	else if (r.sig == SIGBUS)
		snprintf(buf, len, "SIGBUS");
	else if (r.sig)
		snprintf(buf, len, "signal %d", r.sig);
	else if (r.ret == -1)
		snprintf(buf, len, "-1 %s (errno %d)", errname(r.err), r.err);
	else
		snprintf(buf, len, "%ld", r.ret);
}

static void finish(int code, const char *why)
{
	int n;

	for (n = cur_step + 1; n <= NSTEPS; n++)
		printf("ok %d %s # SKIP %s\n", n, step_text[n], why);
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0\n",
		passed, failed, NSTEPS - passed - failed);
	exit(code);
}

/* A capability this machine lacks: the rest is skipped (KSFT_SKIP). */
static void skip(const char *why)
{
	printf("ok %d %s # SKIP %s\n", cur_step, step_text[cur_step], why);
	finish(KSFT_SKIP, why);
}

/*
 * The file's state a property reads, as the model says it is (-1: not checked): i_size and
 * the mode by fstat(), the seals by F_GET_SEALS, through the trace's descriptor tfd.
 */
struct observe {
	int tfd;
	long long size;
	long seals;
	long mode;
};

/* checked when the current step's outcome is as the trace says (want_after.tfd >= 0) */
static struct observe want_after = { -1, -1, -1, -1 };

static int observed(const struct observe *w, char *why, size_t len)
{
	struct stat st;
	long seals;

	if (fstat(FD(w->tfd), &st) != 0) {
		snprintf(why, len, "fstat(%d) failed: %s", w->tfd, errname(errno));
		return 0;
	}
	if (w->size >= 0 && (long long)st.st_size != w->size) {
		snprintf(why, len, "i_size is %lld, the trace's model says %lld",
			(long long)st.st_size, w->size);
		return 0;
	}
	if (w->mode >= 0 && (long)(st.st_mode & 0777) != w->mode) {
		snprintf(why, len, "the mode is 0%lo, the trace's model says 0%lo",
			(long)(st.st_mode & 0777), w->mode);
		return 0;
	}
	seals = w->seals >= 0 ? fcntl(FD(w->tfd), F_GET_SEALS) : -1;
	if (w->seals >= 0 && seals != w->seals) {
		snprintf(why, len, "F_GET_SEALS gives %#lx, the trace's model says %#lx",
			seals, w->seals);
		return 0;
	}
	return 1;
}

static void observe_failed(const char *when, const char *why)
{
	printf("# step %d: %s: %s\n", cur_step, when, why);
	printf("not ok %d %s\n", cur_step, step_text[cur_step]);
	failed++;
	finish(KSFT_FAIL, "the file's state is not as the trace says");
}

/* Before the current step: the file's state is w (else the step fails). */
static void check_before(struct observe w)
{
	char why[128];

	if (!observed(&w, why, sizeof(why)))
		observe_failed("before the step", why);
}

static void result(int ok, struct res r, const char *want)
{
	const char *why = lacking;
	char got[64], state[128];

	lacking = NULL;
	if (ok && want_after.tfd >= 0) {
		struct observe w = want_after;

		want_after.tfd = -1;
		if (!observed(&w, state, sizeof(state)))
			observe_failed("after the step", state);
	}
	if (ok) {
		printf("ok %d %s\n", cur_step, step_text[cur_step]);
		passed++;
		return;
	}
	describe(got, sizeof(got), r);
	if (r.ret == -1 && !r.sig && strncmp(want, "-1 ", 3) &&
		USES_HUGETLB && (r.err == ENOMEM || r.err == ENOSPC))
		skip("hugetlbfs: no free huge pages (raise /proc/sys/vm/nr_hugepages)");
	if (r.ret == -1 && !r.sig && strncmp(want, "-1 ", 3) && why)
		skip(why);
	printf("# step %d: the trace says %s, the kernel gave %s\n", cur_step, want, got);
	printf("not ok %d %s\n", cur_step, step_text[cur_step]);
	failed++;
	finish(KSFT_FAIL, "an earlier step failed");
}

/* The step returned `want`. */
static void mfd_assert_ret(struct res r, long want)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", want);
	result(!r.sig && r.ret == want, r, buf);
}

/* The step succeeded (it made a mapping or a pin). */
static void mfd_assert_ok(struct res r)
{
	result(!r.sig && r.ret != -1, r, "success");
}

/* The step returned a new descriptor, which the trace calls tfd. */
static void mfd_assert_fd(struct res r, int tfd)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%d (a new fd)", tfd);
	result(!r.sig && r.ret >= 0 && tfd < MAX_FDS, r, buf);
	fds[tfd] = (int)r.ret;
}

/* The step failed with errno `want`. */
static void mfd_fail_errno(struct res r, int want)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "-1 %s", errname(want));
	result(!r.sig && r.ret == -1 && r.err == want, r, buf);
}
"""

C_SIGNAL = r"""
/* The step was stopped by signal `want`. */
static void mfd_fail_signal(struct res r, int want)
{
	result(r.sig == want, r, want == SIGSEGV ? "SIGSEGV" : "SIGBUS");
}
"""

C_CREATE = r"""
static struct res sys_memfd_create(const char *name, unsigned int flags)
{
	struct res r = res_of(syscall(SYS_memfd_create, name, flags));

	if (r.ret == -1 && (flags & MFD_HUGETLB) &&
		(r.err == ENOENT || r.err == ENODEV || r.err == ENOSYS))
		skip("hugetlbfs: memfd_create(MFD_HUGETLB) is not supported here");
	return r;
}
"""

C_PAYLOAD = r"""
/* n bytes of `unit` repeated (strace's "x"... buffer) */
static const char *payload(const char *unit, size_t unit_len, size_t n)
{
	static char *buf;
	size_t i;

	free(buf);
	buf = malloc(n + 1);
	if (!buf) {
		perror("malloc");
		exit(KSFT_FAIL);
	}
	for (i = 0; i < n; i++)
		buf[i] = unit_len ? unit[i % unit_len] : 0;
	return buf;
}
"""

C_BUFFER = r"""
/* a scratch buffer of n bytes for read() and pread() */
static char *buffer(size_t n)
{
	static char *buf;

	free(buf);
	buf = calloc(n ? n : 1, 1);
	if (!buf) {
		perror("calloc");
		exit(KSFT_FAIL);
	}
	return buf;
}
"""

C_KVM = r"""
/* /dev/kvm and guest_memfd: the structures of <linux/kvm.h> (Linux 6.18),
 * declared here to need libc only */
@KVM_CONSTANTS@
struct kvm_create_guest_memfd {
	uint64_t size;
	uint64_t flags;
	uint64_t reserved[6];
};

struct kvm_userspace_memory_region2 {
	uint32_t slot;
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;	/* bytes */
	uint64_t userspace_addr;	/* start of the userspace allocated memory */
	uint64_t guest_memfd_offset;
	uint32_t guest_memfd;
	uint32_t pad1;
	uint64_t pad2[14];
};

_Static_assert(sizeof(struct kvm_create_guest_memfd) == 64, "64 bytes");
_Static_assert(sizeof(struct kvm_userspace_memory_region2) == 160, "160 bytes");

/* open("/dev/kvm"), as open_kvm_dev_path_or_exit(): no KVM here is a skip */
static struct res sys_open_kvm(int flags, int need_gmem)
{
	static char why[96];
	struct res r = res_of(open("/dev/kvm", flags));

	if (r.ret == -1) {
		snprintf(why, sizeof(why), "kvm: cannot open /dev/kvm: %s", strerror(r.err));
		lacking = why;
		return r;
	}
	if (need_gmem &&
		ioctl((int)r.ret, KVM_CHECK_EXTENSION, (unsigned long)KVM_CAP_GUEST_MEMFD) <= 0)
		skip("kvm: no KVM_CAP_GUEST_MEMFD");
	return r;
}

/* an ioctl whose argument is a number */
static struct res sys_ioctl(int fd, unsigned long req, unsigned long arg)
{
	return res_of(ioctl(fd, req, arg));
}

/* KVM_CREATE_GUEST_MEMFD, as __vm_create_guest_memfd(); a creation flag this
 * kernel does not offer (KVM_CAP_GUEST_MEMFD_FLAGS) makes EINVAL a skip */
static struct res sys_create_guest_memfd(int vm, uint64_t size, uint64_t flags)
{
	struct kvm_create_guest_memfd gmem;
	struct res r;
	long offered;

	memset(&gmem, 0, sizeof(gmem));
	gmem.size = size;
	gmem.flags = flags;
	r = res_of(ioctl(vm, KVM_CREATE_GUEST_MEMFD, &gmem));
	if (r.ret == -1 && r.err == EINVAL) {
		offered = ioctl(vm, KVM_CHECK_EXTENSION,
				(unsigned long)KVM_CAP_GUEST_MEMFD_FLAGS);
		if (offered >= 0 && (flags & GMEM_KNOWN_FLAGS & ~(uint64_t)offered))
			lacking = "kvm: a guest_memfd flag of the trace is not in "
				"KVM_CAP_GUEST_MEMFD_FLAGS here";
	}
	return r;
}

/* KVM_SET_USER_MEMORY_REGION2, as __vm_set_user_memory_region2() */
static struct res sys_set_memory_region2(int vm, uint32_t slot, uint32_t flags,
	uint64_t guest_phys_addr, uint64_t memory_size, uint64_t userspace_addr,
	uint64_t guest_memfd_offset, uint32_t guest_memfd)
{
	struct kvm_userspace_memory_region2 region;

	memset(&region, 0, sizeof(region));
	region.slot = slot;
	region.flags = flags;
	region.guest_phys_addr = guest_phys_addr;
	region.memory_size = memory_size;
	region.userspace_addr = userspace_addr;
	region.guest_memfd_offset = guest_memfd_offset;
	region.guest_memfd = guest_memfd;
	return res_of(ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &region));
}
"""

C_OPEN = r"""
/* open("/proc/self/fd/N"): a new open file description of the trace's fd N */
static struct res sys_reopen(int tfd, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", FD(tfd));
	return res_of(open(path, flags));
}
"""

C_CLOSE = r"""
static struct res sys_close(int tfd)
{
	struct res r = res_of(close(FD(tfd)));

	if (r.ret == 0)
		fds[tfd] = -1;
	return r;
}
"""

C_MAPS = r"""
#define MAX_MAPS 64

/* the trace's mappings m1, m2, ... -> addresses */
static char *maps[MAX_MAPS];

static struct res sys_mmap(int m, size_t len, int prot, int flags, int fd)
{
	void *p = mmap(NULL, len, prot, flags, fd, 0);
	struct res r = res_of(p == MAP_FAILED ? -1 : 0);

	if (p != MAP_FAILED && m > 0 && m < MAX_MAPS)
		maps[m] = p;
	return r;
}
"""

C_MUNMAP = r"""
static struct res sys_munmap(int m, size_t len)
{
	struct res r = res_of(munmap(maps[m], len));

	/* keep the range reserved, so a later access through m faults as unmapped */
	if (r.ret == 0)
		mmap(maps[m], len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	return r;
}
"""

C_ACCESS = r"""
/* A one-byte store or load through mapping m, first in a child so that a
 * SIGSEGV or SIGBUS is observed rather than suffered. */
static struct res sys_access(int m, long off, int store)
{
	volatile char *p = (volatile char *)maps[m] + off;
	struct res r = { 0, 0, 0 };
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(KSFT_FAIL);
	}
	if (pid == 0) {
		struct rlimit no_core = { 0, 0 };

		setrlimit(RLIMIT_CORE, &no_core);
		if (store)
			*p = 0x5a;
		else
			(void)*p;
		_exit(0);
	}
	if (waitpid(pid, &status, 0) < 0) {
		perror("waitpid");
		exit(KSFT_FAIL);
	}
	if (WIFSIGNALED(status)) {
		r.ret = -1;
		r.sig = WTERMSIG(status);
		return r;
	}
	if (store)	/* now known not to fault: the same access here */
		*p = 0x5a;
	else
		(void)*p;
	return r;
}
"""

C_PINS = r"""
#define MAX_PINS 64
#define PIN_PAGE 4096

/* the trace's pins p1, p2, ...: a pipe holding the page, or an io_uring ring */
static struct pin {
	int pipe[2];
	int ring;	/* io_uring fd, or 0 for a pipe */
	void *sq, *cq, *sqes;
	size_t sq_len, cq_len, sqes_len;
	char *addr;
} pins[MAX_PINS];

static char *page_of(int m, long off)
{
	return (char *)(((uintptr_t)maps[m] + off) & ~(uintptr_t)(PIN_PAGE - 1));
}
"""

C_PIN = r"""
/* pin: vmsplice() the mapped page into a pipe, which then holds a page reference */
static struct res sys_pin(int m, long off, int p)
{
	struct iovec iov = { page_of(m, off), PIN_PAGE };
	struct res r;
	int fd[2];

	if (pipe(fd)) {
		perror("pipe");
		exit(KSFT_FAIL);
	}
	r = res_of(syscall(SYS_vmsplice, fd[1], &iov, 1, 0));
	if (r.ret == -1) {
		close(fd[0]);
		close(fd[1]);
		return r;
	}
	pins[p].pipe[0] = fd[0];
	pins[p].pipe[1] = fd[1];
	pins[p].ring = 0;
	r.ret = 0;
	return r;
}
"""

C_URING = r"""
/* gup_pin: a long-term FOLL_WRITE pin = an io_uring fixed buffer (the
 * structures of <linux/io_uring.h>, declared here to need libc only). */
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif
#define IORING_OFF_SQ_RING 0ULL
#define IORING_OFF_CQ_RING 0x8000000ULL
#define IORING_OFF_SQES 0x10000000ULL
#define IORING_ENTER_GETEVENTS 1
#define IORING_REGISTER_BUFFERS 0
#define IORING_UNREGISTER_BUFFERS 1
#define IORING_OP_READ_FIXED 4

struct uring_sq_off {
	uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array, resv1;
	uint64_t user_addr;
};

struct uring_cq_off {
	uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1;
	uint64_t user_addr;
};

struct uring_params {
	uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle;
	uint32_t features, wq_fd, resv[3];
	struct uring_sq_off sq_off;
	struct uring_cq_off cq_off;
};

static struct uring_params uring_par[MAX_PINS];

static void *ring_map(int ring, size_t len, unsigned long long off)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, off);

	if (p == MAP_FAILED)
		skip("io_uring: cannot map the rings");
	return p;
}

static void ring_release(struct pin *pn)
{
	syscall(__NR_io_uring_register, pn->ring, IORING_UNREGISTER_BUFFERS, NULL, 0);
	munmap(pn->sq, pn->sq_len);
	munmap(pn->cq, pn->cq_len);
	munmap(pn->sqes, pn->sqes_len);
	close(pn->ring);
	pn->ring = 0;
}

static struct res sys_gup_pin(int m, long off, int p)
{
	struct uring_params *par = &uring_par[p];
	struct pin *pn = &pins[p];
	struct iovec iov;
	struct res r;

	memset(par, 0, sizeof(*par));
	pn->ring = syscall(__NR_io_uring_setup, 4, par);
	if (pn->ring < 0)
		skip("io_uring: io_uring_setup() failed (kernel.io_uring_disabled?)");
	pn->sq_len = par->sq_off.array + par->sq_entries * sizeof(uint32_t);
	pn->cq_len = par->cq_off.cqes + par->cq_entries * 16;
	pn->sqes_len = par->sq_entries * 64;
	pn->sq = ring_map(pn->ring, pn->sq_len, IORING_OFF_SQ_RING);
	pn->cq = ring_map(pn->ring, pn->cq_len, IORING_OFF_CQ_RING);
	pn->sqes = ring_map(pn->ring, pn->sqes_len, IORING_OFF_SQES);
	pn->addr = page_of(m, off);
	iov.iov_base = pn->addr;
	iov.iov_len = PIN_PAGE;
	r = res_of(syscall(__NR_io_uring_register, pn->ring, IORING_REGISTER_BUFFERS, &iov, 1));
	if (r.ret == -1) {
		ring_release(pn);
		return r;
	}
	r.ret = 0;
	return r;
}

static volatile uint32_t *ring_u32(void *base, uint32_t off)
{
	return (volatile uint32_t *)((char *)base + off);
}

/* dma_write: the "device" (an IORING_OP_READ_FIXED from a pipe) writes one
 * byte through the pinned page; no seal is consulted on this path */
static struct res sys_dma_write(int p)
{
	struct uring_params *par = &uring_par[p];
	struct pin *pn = &pins[p];
	unsigned char sqe[64];
	uint32_t tail, idx, head;
	uint64_t u64;
	uint32_t u32;
	int32_t i32, res;
	char byte = 0x5a;
	struct res r = { 0, 0, 0 };
	int fd[2];

	if (pipe(fd) || write(fd[1], &byte, 1) != 1) {
		perror("pipe");
		exit(KSFT_FAIL);
	}
	memset(sqe, 0, sizeof(sqe));
	sqe[0] = IORING_OP_READ_FIXED;
	i32 = fd[0];
	memcpy(sqe + 4, &i32, 4);
	u64 = (uintptr_t)pn->addr;
	memcpy(sqe + 16, &u64, 8);
	u32 = 1;
	memcpy(sqe + 24, &u32, 4);
	u64 = 1;
	memcpy(sqe + 32, &u64, 8);
	tail = *ring_u32(pn->sq, par->sq_off.tail);
	idx = tail & *ring_u32(pn->sq, par->sq_off.ring_mask);
	memcpy((char *)pn->sqes + idx * 64, sqe, 64);
	*ring_u32(pn->sq, par->sq_off.array + idx * 4) = idx;
	__atomic_store_n(ring_u32(pn->sq, par->sq_off.tail), tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, pn->ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
		perror("io_uring_enter");
		exit(KSFT_FAIL);
	}
	head = *ring_u32(pn->cq, par->cq_off.head);
	if (head == __atomic_load_n(ring_u32(pn->cq, par->cq_off.tail), __ATOMIC_ACQUIRE)) {
		printf("# io_uring: no completion\n");
		exit(KSFT_FAIL);
	}
	idx = head & *ring_u32(pn->cq, par->cq_off.ring_mask);
	memcpy(&res, (char *)pn->cq + par->cq_off.cqes + idx * 16 + 8, 4);
	*ring_u32(pn->cq, par->cq_off.head) = head + 1;
	close(fd[0]);
	close(fd[1]);
	if (res < 0) {
		r.ret = -1;
		r.err = -res;
	}
	return r;
}
"""

C_UNPIN = r"""
/* unpin: drain and close the pipe (or unregister the io_uring buffer) */
static struct res sys_unpin(int p)
{
	struct res r = { 0, 0, 0 };
	struct pin *pn = &pins[p];
	char buf[4096];

@RING_RELEASE@
	fcntl(pn->pipe[0], F_SETFL, O_NONBLOCK);
	while (read(pn->pipe[0], buf, sizeof(buf)) > 0)
		;
	close(pn->pipe[0]);
	close(pn->pipe[1]);
	return r;
}
"""

C_NOEXEC = r"""
#define NOEXEC_SYSCTL "/proc/sys/vm/memfd_noexec"

/* Run the trace with vm.memfd_noexec = want: in a new pid namespace of its
 * own when this one has another value (the sysctl is per pid namespace). */
static void setup_noexec(int want)
{
	int cur = 0, status;
	FILE *f;
	pid_t pid;

	f = fopen(NOEXEC_SYSCTL, "r");
	if (f) {
		if (fscanf(f, "%d", &cur) != 1)
			cur = 0;
		fclose(f);
	} else if (want > 0) {
		skip("no " NOEXEC_SYSCTL " (kernel older than 6.3)");
	}
	if (cur == want)
		return;
	if (unshare(CLONE_NEWPID))
		skip("unshare(CLONE_NEWPID) failed: vm.memfd_noexec cannot be set here");
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(KSFT_FAIL);
	}
	if (pid > 0) {
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
			exit(KSFT_FAIL);
		exit(WEXITSTATUS(status));
	}
	f = fopen(NOEXEC_SYSCTL, "w");
	if (!f || fprintf(f, "%d\n", want) < 0 || fclose(f))
		skip("cannot set vm.memfd_noexec in a child pid namespace");
}
"""


#: runtime functions are __maybe_unused: a trace uses only some of each section's helpers
_MAYBE_UNUSED = re.compile(r"^static (?=[^;]*\()(?![^\n]*;$)", re.MULTILINE)


def _c_constants(names: Sequence[str]) -> str:
    out = []
    for name in names:
        v = _const_value(name)
        out.append(f"#ifndef {name}\n#define {name} {v:#x}\n#endif")
    return "\n".join(out) + "\n" if out else ""


def _c_field(f: str, v: Arg, bits: int, need: set[str]) -> str:
    """A struct field's value as a C argument of a uint{bits}_t parameter."""
    if f in _FD_FIELDS:
        return f"FD({_fd(v, f)})"
    if isinstance(v, Ref):
        need.add("maps")
        return f"(uintptr_t)maps[{_handle(v, 'm', f)}]"
    value = _int(v, f)
    if 0 <= value < 1 << bits:
        return _c_flags(v)
    # the kernel reads the field truncated: so does the cast (gcc warns of no explicit one)
    if isinstance(v, Sym):
        return f"(uint{bits}_t)({_c_flags(v)})"
    if -(1 << 63) <= value < 0:
        return f"(uint{bits}_t)-{-value:#x}LL"
    return f"(uint{bits}_t){value % (1 << 64):#x}ULL"


def _c_ioctl(op: _Op, need: set[str]) -> str:
    fd, req, code, arg = op.ops
    need.add("kvm")
    if code == vocab.KVM_CREATE_GUEST_MEMFD:
        size, flags = (_c_field(f, v, b, need) for (f, v), (_, b) in
                       zip(arg, _IOCTL_STRUCTS[code][1], strict=True))
        return f"sys_create_guest_memfd(FD({fd}), {size}, {flags})"
    if code == vocab.KVM_SET_USER_MEMORY_REGION2:
        vals = [_c_field(f, v, b, need) for (f, v), (_, b) in
                zip(arg, _IOCTL_STRUCTS[code][1], strict=True)]
        return f"sys_set_memory_region2(FD({fd}), {', '.join(vals)})"
    return f"sys_ioctl(FD({fd}), {_c_flags(req)}, {_c_flags(arg)})"


def _c_expect(op: _Op, call: str) -> str:
    e = op.expect
    if isinstance(e, Err):
        return f"mfd_fail_errno({call}, {e.errno});"
    if isinstance(e, Sig):
        return f"mfd_fail_signal({call}, {e.name});"
    if isinstance(e, New):
        return f"mfd_assert_ok({call});"
    if isinstance(e, Ret):
        if _creates_fd(op):
            return f"mfd_assert_fd({call}, {e.value});"
        return f"mfd_assert_ret({call}, {e.value});"
    raise ExportError(f"step {op.n}: no outcome (the model could not fill `?`)")


def _c_call(op: _Op, need: set[str]) -> str:
    c, o = op.call, op.ops
    if c == "memfd_create":
        need.add("create")
        name = "NULL" if o[0] is None else _c_long_string(str(o[0]), "\t\t\t\t\t")
        return f"sys_memfd_create({name}, {_c_flags(o[1])})"
    if c == "fcntl":
        return f"res_of(fcntl(FD({o[0]}), {_c_flags(o[1])}, {_c_flags(o[2])}))"
    if c == "pwrite64":
        need.add("payload")
        data = str(o[1])
        return (f"res_of(pwrite(FD({o[0]}), payload({_c_string(data)}, {len(data)}, {o[2]}), "
                f"{o[2]}, {o[3]}))")
    if c == "ftruncate":
        return f"res_of(ftruncate(FD({o[0]}), {_c_flags(o[1])}))"
    if c == "fchmod":
        return f"res_of(fchmod(FD({o[0]}), {_c_flags(o[1])}))"
    if c == "fallocate":
        return f"res_of(fallocate(FD({o[0]}), {_c_flags(o[1])}, {o[2]}, {o[3]}))"
    if c == "mmap":
        need.add("maps")
        return f"sys_mmap({o[0]}, {o[1]}, {_c_flags(o[2])}, {_c_flags(o[3])}, FD({o[4]}))"
    if c == "mprotect":
        need.add("maps")
        return f"res_of(mprotect(maps[{o[0]}], {o[1]}, {_c_flags(o[2])}))"
    if c == "munmap":
        need |= {"maps", "munmap"}
        return f"sys_munmap({o[0]}, {o[1]})"
    if c in ("store", "load"):
        need |= {"maps", "access", "signal"}
        return f"sys_access({o[0]}, {o[1]}, {1 if c == 'store' else 0})"
    if c == "pin":
        need |= {"maps", "pins", "pin"}
        return f"sys_pin({o[0]}, {o[1]}, {o[2]})"
    if c == "gup_pin":
        need |= {"maps", "pins", "uring"}
        return f"sys_gup_pin({o[0]}, {o[1]}, {o[2]})"
    if c == "unpin":
        need |= {"pins", "unpin"}
        return f"sys_unpin({o[0]})"
    if c == "dma_write":
        need |= {"pins", "uring"}
        return f"sys_dma_write({o[0]})"
    if c == "open":
        if o[0] is not None:
            need.add("open")
            return f"sys_reopen({o[0]}, {_c_flags(o[2])})"
        if _is_kvm_open(op):
            need.add("kvm")
            return f"sys_open_kvm({_c_flags(o[2])}, NEEDS_GUEST_MEMFD)"
        return f"res_of(open({_c_string(str(o[1]))}, {_c_flags(o[2])}, {_c_flags(o[3])}))"
    if c == "ioctl":
        return _c_ioctl(op, need)
    if c == "read":
        need.add("buffer")
        return f"res_of(read(FD({o[0]}), buffer({o[1]}), {o[1]}))"
    if c == "pread64":
        need.add("buffer")
        return f"res_of(pread(FD({o[0]}), buffer({o[1]}), {o[1]}, {o[2]}))"
    if c == "write":
        need.add("payload")
        data = str(o[1])
        return (f"res_of(write(FD({o[0]}), payload({_c_string(data)}, {len(data)}, {o[2]}), "
                f"{o[2]}))")
    if c == "lseek":
        return f"res_of(lseek(FD({o[0]}), {o[1]}, {_c_flags(o[2])}))"
    if c == "dup":
        return f"res_of(dup(FD({o[0]})))"
    if c == "close":
        need.add("close")
        return f"sys_close({o[0]})"
    raise ExportError(f"step {op.n}: no C for {c}")


_OBSERVABLE = ("size", "seals", "mode")  # what a system call reads back (fstat, F_GET_SEALS)


def _property_reads(design: Design, prop: str, action: str | None) -> set[str] | None:
    """The state fields property `prop` reads (for an action property: at `action`), or None
    if the catalogue does not know it."""
    from model.lang.expr import variables
    from properties.catalogue import load
    from properties.views import TransitionView

    p = load().get(prop)
    if p is None:
        return None
    if p.kind in ("always", "sometimes"):
        e = p.state_pred(design.schema)
    else:
        if action is None:
            return None
        a = design.action(action)
        e = p.pred(TransitionView(design.schema, a, a.semantics(design.schema)))
    vs = variables(e)
    return {n for sc, n in vs if sc in ("s", "n")} | ({"(effects)"} if any(
        sc == "x" for sc, _ in vs) else set())


def _file_fd(ops: Sequence[_Op], upto: int) -> int | None:
    """A trace descriptor of the file open before op `upto` (0-based): made by memfd_create,
    dup, a /proc/self/fd reopen or KVM_CREATE_GUEST_MEMFD, and not closed since."""
    live: list[int] = []
    for op in ops[:upto]:
        if not isinstance(op.expect, Ret):
            continue
        if op.call == "close" and op.ops[0] in live:
            live.remove(op.ops[0])
        elif (op.call in ("memfd_create", "dup") or (op.call == "open" and op.ops[0] is not None)
              or (op.call == "ioctl" and op.ops[2] == vocab.KVM_CREATE_GUEST_MEMFD)):
            live.append(op.expect.value)
    return live[0] if live else None


def _observe_last(design: Design, r: _Replayed, ops: Sequence[_Op], prop: str
                  ) -> tuple[dict[str, tuple[int, int, int, int]], str]:
    """What the reproducer of a violation/witness checks beyond the outcomes: the observable
    state (i_size, seals, mode) the property reads, before and after the last step, as the
    model has it; and the header's sentence saying so."""
    from checker.conform import _page_scale

    fields = design.schema.by_name
    reads = _property_reads(design, prop, r.actions[-1] if r.actions else None)
    if reads is None or r.states is None or not ops:
        return {}, "every outcome is as the trace says."
    scale = _page_scale(design)
    look = [a for a in _OBSERVABLE if a in reads and a in fields
            and (a != "size" or scale is not None)]
    hidden = sorted(n for n in reads if n in fields and n not in _OBSERVABLE
                    and not fields[n].ghost)
    out: dict[str, tuple[int, int, int, int]] = {}
    for when, upto, st in (("before", len(ops) - 1, r.states[-2]),
                           ("after", len(ops), r.states[-1])):
        tfd = _file_fd(ops, upto)
        if tfd is None or not look or not st.get("exists", 1):
            continue
        size = st["size"] * scale(st) if "size" in look and scale else -1
        out[when] = (tfd, size, st["seals"] if "seals" in look else -1,
                     st["mode"] if "mode" in look else -1)
    names = {"size": "i_size (fstat)", "seals": "the seals (F_GET_SEALS)",
             "mode": "the mode (fstat)"}
    text = "every outcome is as the trace says"
    if out:
        text += (", and " + " and ".join(names[a] for a in look) + " "
                 + " and ".join(out) + " the last step match the model")
    if "(effects)" in reads:
        hidden.append("the call's effect on the file's data")
    if hidden:
        text += (f"; the property also reads {', '.join(hidden)}, which no system call "
                 "reads back here: the outcomes stand for it")
    return out, text + "."


def export_c(design: Design, trace: Trace) -> str:
    """A kselftest-style C reproducer (gcc -Wall -Werror, libc and raw system calls only)."""
    r = _replay(design, trace)
    ops = _lower(r)
    need: set[str] = set()
    body: list[str] = []
    kind, pname = _expect(trace)
    checks, claim = _observe_last(design, r, ops, pname) if kind in (
        "violates", "witnesses") else ({}, "")
    for op in ops:
        call = _c_call(op, need)
        body.append(f"\t/* {_c_comment(op.text)} */")
        body.append(f"\tcur_step = {op.n};")
        for when, (tfd, size, seals, mode) in checks.items() if op is ops[-1] else ():
            w = f"{{ {tfd}, {size}, {seals}, {mode} }}"
            body.append(f"\tcheck_before((struct observe){w});" if when == "before" else
                        f"\twant_after = (struct observe){w};")
        body.append("\t" + _c_expect(op, call))
    names = list(dict.fromkeys(["MFD_HUGETLB", *(n for op in ops for n in op.names)]))
    want_noexec = _noexec_want(design, r)
    hugetlb = _uses_hugetlb(ops)

    title = _c_comment(trace.title or "a shmemcheck trace")
    head = ["// SPDX-License-Identifier: GPL-2.0", "/*"]
    head += [" * " + x if x else " *" for x in textwrap.wrap(title, 72)]
    head += [" *", f" * Generated by shmemcheck (export --to c) from "
             f"{_c_comment(trace.path or 'a trace')};",
             f" * design {design.name}, expect {_c_comment(trace.expect)}."]
    if kind in ("violates", "witnesses"):
        what = "shows the violation of" if kind == "violates" else "witnesses"
        head += [" * " + x for x in textwrap.wrap(
            f"Exit 0 means this kernel {what} {_c_comment(pname)}: {claim}", 72)]
    if want_noexec is not None:
        head += [f" * Runs with vm.memfd_noexec = {want_noexec} (in a new pid namespace if "
                 "needed)."]
    head += [" *",
             " * Each step is one system call whose outcome is checked against the",
             " * trace. Exit status: 0 (KSFT_PASS) the kernel behaves as the trace",
             " * says, 1 (KSFT_FAIL) it does not, 4 (KSFT_SKIP) something this machine",
             " * lacks (huge pages, io_uring, pid namespaces, /dev/kvm) is needed.",
             " *",
             " * Build: gcc -Wall -Werror -o repro repro.c",
             " */"]
    errno_cases = "".join(f"\tcase {e}: return \"{e}\";\n" for e in vocab.ERRNO)
    texts = ",\n".join("\t" + _c_string(op.text) for op in ops)
    parts = ["\n".join(head), "\n", C_HEAD, "\n", _c_constants(names),
             f"\n#define NSTEPS {len(ops)}\n#define USES_HUGETLB {int(hugetlb)}\n",
             "\n/* the steps as the trace prints them (step_text[1] is step 1) */\n",
             f"static const char *const step_text[NSTEPS + 1] = {{\n\tNULL,\n{texts}\n}};\n",
             C_BASE.replace("@ERRNO_CASES@", errno_cases)]
    if "signal" in need:
        parts.append(C_SIGNAL)
    if "create" in need:
        parts.append(C_CREATE)
    if "payload" in need:
        parts.append(C_PAYLOAD)
    if "buffer" in need:
        parts.append(C_BUFFER)
    if "kvm" in need:
        kvm_names = ["KVM_CHECK_EXTENSION", "KVM_CAP_GUEST_MEMFD", "KVM_CAP_GUEST_MEMFD_FLAGS",
                     "KVM_CREATE_GUEST_MEMFD", "KVM_SET_USER_MEMORY_REGION2"]
        known = vocab.GUEST_MEMFD_FLAG_MMAP | vocab.GUEST_MEMFD_FLAG_INIT_SHARED
        parts.append(C_KVM.replace("@KVM_CONSTANTS@\n", _c_constants(kvm_names)
                                   + f"#define GMEM_KNOWN_FLAGS {known:#x}ULL\n"
                                   + f"#define NEEDS_GUEST_MEMFD {int(_uses_gmem(ops))}\n"))
    if "open" in need:
        parts.append(C_OPEN)
    if "close" in need:
        parts.append(C_CLOSE)
    if "maps" in need:
        parts.append(C_MAPS)
    if "munmap" in need:
        parts.append(C_MUNMAP)
    if "access" in need:
        parts.append(C_ACCESS)
    if "pins" in need:
        parts.append(C_PINS)
    if "pin" in need:
        parts.append(C_PIN)
    if "uring" in need:
        parts.append(C_URING)
    if "unpin" in need:
        release = ("\tif (pn->ring > 0) {\n\t\tring_release(pn);\n\t\treturn r;\n\t}\n"
                   if "uring" in need else "")
        parts.append(C_UNPIN.replace("@RING_RELEASE@\n", release))
    if want_noexec is not None or any(op.call == "memfd_create" for op in ops):
        parts.append(C_NOEXEC)
    main = ["", "int main(void)", "{", "\tint i;", "",
            "\tfor (i = 0; i < MAX_FDS; i++)", "\t\tfds[i] = i < 3 ? i : -1;"]
    main += ["\tsetvbuf(stdout, NULL, _IOLBF, 0);", '\tprintf("TAP version 13\\n");',
             '\tprintf("1..%d\\n", NSTEPS);']
    if want_noexec is not None or any(op.call == "memfd_create" for op in ops):
        main += ["\tcur_step = 1;", f"\tsetup_noexec({want_noexec or 0});"]
    main += ["", *body, "", "\tfinish(KSFT_PASS, \"\");", "\treturn KSFT_PASS;", "}"]
    runtime = _MAYBE_UNUSED.sub(r"static __maybe_unused ", "".join(parts[8:]))
    return "".join(parts[:8]) + runtime + "\n".join(main) + "\n"


# ---- Python ----------------------------------------------------------------------------------
PY_RUNTIME = r'''
import ctypes
import os
import platform
import resource
import struct
import sys

KSFT_PASS, KSFT_FAIL, KSFT_SKIP = 0, 1, 4
SIGSEGV, SIGBUS = 11, 7
SIGNAL_NAMES = {SIGSEGV: "SIGSEGV", SIGBUS: "SIGBUS"}
BAD_FD = 1 << 30
PIN_PAGE = 4096
NR = {"read": 0, "write": 1, "open": 2, "close": 3, "lseek": 8, "mmap": 9, "mprotect": 10,
      "munmap": 11, "ioctl": 16, "pread64": 17, "pwrite64": 18, "pipe": 22, "dup": 32,
      "fcntl": 72, "ftruncate": 77, "fchmod": 91,
      "unshare": 272, "vmsplice": 278, "fallocate": 285, "memfd_create": 319,
      "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427}
PROT_NONE, PROT_RW, MAP_SHARED, MAP_PRIVATE = 0, 3, 1, 2
MAP_FIXED, MAP_ANONYMOUS, MAP_POPULATE = 0x10, 0x20, 0x8000
CLONE_NEWPID, F_SETFL, O_NONBLOCK = 0x20000000, 4, 0o4000

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

fds = {0: 0, 1: 1, 2: 2}  # the trace's descriptor numbers -> this process's
maps = {}  # m1, m2, ... (by number) -> address
pins = {}  # p1, p2, ... (by number) -> ("pipe", r, w) or ("ring", ...)
cur_step = 0
passed = failed = 0
lacking = None  # why the current step's failure may be this machine's (a missing feature)


def _arg(v):
    if isinstance(v, (bytes, ctypes.Array)):
        return v
    v = int(v)
    return ctypes.c_long(v) if -(1 << 63) <= v < (1 << 63) else ctypes.c_ulong(v % (1 << 64))


def sysc(name, *args):
    """A raw system call: (return value, errno, signal)."""
    ctypes.set_errno(0)
    r = int(libc.syscall(ctypes.c_long(NR[name]), *(_arg(a) for a in args)))
    return (r, ctypes.get_errno() if r == -1 else 0, 0)


def FD(tfd):  # noqa: N802
    return fds.get(tfd, BAD_FD)


def describe(r):
    ret, err, sig = r
    if sig:
        return SIGNAL_NAMES.get(sig, f"signal {sig}")
    if ret == -1:
        return f"-1 {ERRNO_NAME.get(err, 'E?')} (errno {err})"
    return str(ret)


def finish(code, why):
    for n in range(cur_step + 1, len(STEPS)):
        print(f"ok {n} {STEPS[n]} # SKIP {why}")
    skipped = len(STEPS) - 1 - passed - failed
    print(f"# Totals: pass:{passed} fail:{failed} xfail:0 xpass:0 skip:{skipped} error:0")
    sys.stdout.flush()
    os._exit(code)


def skip(why):
    print(f"ok {cur_step} {STEPS[cur_step]} # SKIP {why}")
    finish(KSFT_SKIP, why)


def result(ok, r, want):
    global passed, failed, lacking
    why, lacking = lacking, None
    if ok:
        print(f"ok {cur_step} {STEPS[cur_step]}")
        passed += 1
        return
    if r[0] == -1 and not r[2] and not want.startswith("-1 ") and USES_HUGETLB and \
            r[1] in (ERRNO["ENOMEM"], ERRNO["ENOSPC"]):
        skip("hugetlbfs: no free huge pages (raise /proc/sys/vm/nr_hugepages)")
    if r[0] == -1 and not r[2] and not want.startswith("-1 ") and why:
        skip(why)
    print(f"# step {cur_step}: the trace says {want}, the kernel gave {describe(r)}")
    print(f"not ok {cur_step} {STEPS[cur_step]}")
    failed += 1
    finish(KSFT_FAIL, "an earlier step failed")


def step(n):
    global cur_step
    cur_step = n


def mfd_assert_ret(r, want):
    result(not r[2] and r[0] == want, r, str(want))


def mfd_assert_ok(r):
    result(not r[2] and r[0] != -1, r, "success")


def mfd_assert_fd(r, tfd):
    result(not r[2] and r[0] >= 0, r, f"{tfd} (a new fd)")
    fds[tfd] = r[0]


def mfd_fail_errno(r, name):
    result(not r[2] and r[0] == -1 and r[1] == ERRNO[name], r, f"-1 {name}")


def mfd_fail_signal(r, name):
    result(SIGNAL_NAMES.get(r[2]) == name, r, name)


def c_str(data):
    return None if data is None else ctypes.create_string_buffer(data)


def sys_memfd_create(name, flags):
    buf = c_str(name)
    r = sysc("memfd_create", ctypes.addressof(buf) if buf is not None else 0, flags)
    if r[0] == -1 and flags & MFD_HUGETLB_BIT and \
            r[1] in (ERRNO["ENOENT"], ERRNO["ENODEV"], ERRNO["ENOSYS"]):
        skip("hugetlbfs: memfd_create(MFD_HUGETLB) is not supported here")
    return r


def payload(unit, count):
    """count bytes of unit repeated (strace's "x"... buffer)."""
    data = (unit * (count // max(len(unit), 1) + 1))[:count] if unit else bytes(count)
    return ctypes.create_string_buffer(data, max(count, 1))


def sys_pwrite64(tfd, unit, count, off):
    buf = payload(unit, count)
    return sysc("pwrite64", FD(tfd), ctypes.addressof(buf), count, off)


def sys_write(tfd, unit, count):
    buf = payload(unit, count)
    return sysc("write", FD(tfd), ctypes.addressof(buf), count)


def sys_read(tfd, count):
    buf = ctypes.create_string_buffer(max(count, 1))
    return sysc("read", FD(tfd), ctypes.addressof(buf), count)


def sys_pread64(tfd, count, off):
    buf = ctypes.create_string_buffer(max(count, 1))
    return sysc("pread64", FD(tfd), ctypes.addressof(buf), count, off)


def sys_reopen(tfd, flags):
    buf = c_str(f"/proc/self/fd/{FD(tfd)}".encode())
    return sysc("open", ctypes.addressof(buf), flags, 0)


def sys_open(path, flags, mode):
    buf = c_str(path)
    return sysc("open", ctypes.addressof(buf), flags, mode)


def sys_close(tfd):
    r = sysc("close", FD(tfd))
    if r[0] == 0:
        del fds[tfd]
    return r


def sys_mmap(m, length, prot, flags, tfd):
    r = sysc("mmap", 0, length, prot, flags, FD(tfd), 0)
    if r[0] != -1:
        maps[m] = r[0]
        return (0, 0, 0)
    return r


def sys_munmap(m, length):
    r = sysc("munmap", maps[m], length)
    if r[0] == 0:  # keep the range reserved, so a later access through m faults
        sysc("mmap", maps[m], length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
    return r


def sys_access(m, off, store):
    """A one-byte store or load, first in a child so a SIGSEGV/SIGBUS is observed."""
    addr = maps[m] + off

    def touch():
        if store:
            ctypes.memmove(addr, b"\x5a", 1)
        else:
            ctypes.string_at(addr, 1)

    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            touch()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return (-1, 0, os.WTERMSIG(status))
    touch()
    return (0, 0, 0)


def page_of(m, off):
    return (maps[m] + off) & ~(PIN_PAGE - 1)


class Iovec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


def sys_pin(m, off, p):
    """vmsplice() the mapped page into a pipe, which then holds a page reference."""
    rfd, wfd = os.pipe()
    iov = Iovec(page_of(m, off), PIN_PAGE)
    r = sysc("vmsplice", wfd, ctypes.addressof(iov), 1, 0)
    if r[0] == -1:
        os.close(rfd)
        os.close(wfd)
        return r
    pins[p] = ("pipe", rfd, wfd)
    return (0, 0, 0)


U32 = ctypes.c_uint32


class SqOff(ctypes.Structure):
    _fields_ = (("head", U32), ("tail", U32), ("ring_mask", U32), ("ring_entries", U32),
                ("flags", U32), ("dropped", U32), ("array", U32), ("resv1", U32),
                ("user_addr", ctypes.c_uint64))


class CqOff(ctypes.Structure):
    _fields_ = (("head", U32), ("tail", U32), ("ring_mask", U32), ("ring_entries", U32),
                ("overflow", U32), ("cqes", U32), ("flags", U32), ("resv1", U32),
                ("user_addr", ctypes.c_uint64))


class UringParams(ctypes.Structure):
    _fields_ = (("sq_entries", U32), ("cq_entries", U32), ("flags", U32),
                ("sq_thread_cpu", U32), ("sq_thread_idle", U32), ("features", U32),
                ("wq_fd", U32), ("resv", U32 * 3), ("sq_off", SqOff), ("cq_off", CqOff))


def u32(addr):
    return U32.from_address(addr)


def ring_release(pin):
    _, ring, regions, _, _ = pin
    sysc("io_uring_register", ring, 1, 0, 0)
    for addr, length in regions:
        sysc("munmap", addr, length)
    os.close(ring)


def sys_gup_pin(m, off, p):
    """A long-term FOLL_WRITE pin: the page registered as an io_uring fixed buffer."""
    par = UringParams()
    ring, err, _ = sysc("io_uring_setup", 4, ctypes.addressof(par))
    if ring == -1:
        skip(f"io_uring: io_uring_setup() failed with {ERRNO_NAME.get(err, err)}")
    regions = []
    for offset, length in ((0, par.sq_off.array + par.sq_entries * 4),
                           (0x8000000, par.cq_off.cqes + par.cq_entries * 16),
                           (0x10000000, par.sq_entries * 64)):
        a = sysc("mmap", 0, length, PROT_RW, MAP_SHARED | MAP_POPULATE, ring, offset)[0]
        if a == -1:
            skip("io_uring: cannot map the rings")
        regions.append((a, length))
    addr = page_of(m, off)
    iov = Iovec(addr, PIN_PAGE)
    r = sysc("io_uring_register", ring, 0, ctypes.addressof(iov), 1)
    pin = ("ring", ring, regions, par, addr)
    if r[0] == -1:
        ring_release(pin)
        return r
    pins[p] = pin
    return (0, 0, 0)


def sys_dma_write(p):
    """The "device" (IORING_OP_READ_FIXED from a pipe) writes one byte through the pin."""
    _, ring, regions, par, addr = pins[p]
    (sq, _), (cq, _), (sqes, _) = regions
    so, co = par.sq_off, par.cq_off
    rfd, wfd = os.pipe()
    try:
        os.write(wfd, b"\x5a")
        tail = u32(sq + so.tail).value
        idx = tail & u32(sq + so.ring_mask).value
        sqe = struct.pack("<BBHiQQIIQHHiQQ", 4, 0, 0, rfd, 0, addr, 1, 0, 1, 0, 0, 0, 0, 0)
        ctypes.memmove(sqes + idx * 64, sqe, 64)
        u32(sq + so.array + idx * 4).value = idx
        u32(sq + so.tail).value = tail + 1
        if sysc("io_uring_enter", ring, 1, 1, 1, 0, 0)[0] == -1:
            print("# io_uring_enter failed")
            finish(KSFT_FAIL, "io_uring_enter failed")
        head = u32(cq + co.head).value
        if head == u32(cq + co.tail).value:
            print("# io_uring: no completion")
            finish(KSFT_FAIL, "io_uring: no completion")
        cqe = cq + co.cqes + (head & u32(cq + co.ring_mask).value) * 16
        res = ctypes.c_int32.from_address(cqe + 8).value
        u32(cq + co.head).value = head + 1
    finally:
        os.close(rfd)
        os.close(wfd)
    return (-1, -res, 0) if res < 0 else (0, 0, 0)


def sys_unpin(p):
    pin = pins.pop(p)
    if pin[0] == "ring":
        ring_release(pin)
        return (0, 0, 0)
    _, rfd, wfd = pin
    os.set_blocking(rfd, False)
    try:
        while os.read(rfd, 1 << 16):
            pass
    except BlockingIOError:
        pass
    os.close(rfd)
    os.close(wfd)
    return (0, 0, 0)


def setup_noexec(want):
    """Run with vm.memfd_noexec = want, in a new pid namespace when this one differs."""
    path = "/proc/sys/vm/memfd_noexec"
    try:
        with open(path) as f:
            cur = int(f.read())
    except OSError:
        if want > 0:
            skip(f"no {path} (kernel older than 6.3)")
        return
    if cur == want:
        return
    if libc.unshare(CLONE_NEWPID) != 0:
        skip("unshare(CLONE_NEWPID) failed: vm.memfd_noexec cannot be set here")
    sys.stdout.flush()
    pid = os.fork()
    if pid:
        _, status = os.waitpid(pid, 0)
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else KSFT_FAIL)
    try:
        with open(path, "w") as f:
            f.write(f"{want}\n")
    except OSError:
        skip("cannot set vm.memfd_noexec in a child pid namespace")
'''


PY_KVM = r'''

# /dev/kvm and guest_memfd: the structures of <linux/kvm.h> (Linux 6.18)
U64 = ctypes.c_uint64
KVM_CHECK_EXTENSION_NR = @KVM_CHECK_EXTENSION@
KVM_CAP_GUEST_MEMFD_NR = @KVM_CAP_GUEST_MEMFD@
KVM_CAP_GUEST_MEMFD_FLAGS_NR = @KVM_CAP_GUEST_MEMFD_FLAGS@
KVM_CREATE_GUEST_MEMFD_NR = @KVM_CREATE_GUEST_MEMFD@
KVM_SET_USER_MEMORY_REGION2_NR = @KVM_SET_USER_MEMORY_REGION2@
GMEM_KNOWN_FLAGS = @GMEM_KNOWN_FLAGS@


class KvmCreateGuestMemfd(ctypes.Structure):
    _fields_ = (("size", U64), ("flags", U64), ("reserved", U64 * 6))


class KvmUserspaceMemoryRegion2(ctypes.Structure):
    _fields_ = (("slot", U32), ("flags", U32), ("guest_phys_addr", U64),
                ("memory_size", U64), ("userspace_addr", U64), ("guest_memfd_offset", U64),
                ("guest_memfd", U32), ("pad1", U32), ("pad2", U64 * 14))


assert ctypes.sizeof(KvmCreateGuestMemfd) == 64
assert ctypes.sizeof(KvmUserspaceMemoryRegion2) == 160


def sys_open_kvm(flags, need_gmem):
    """open("/dev/kvm"), as open_kvm_dev_path_or_exit(): no KVM here is a skip."""
    global lacking
    buf = c_str(b"/dev/kvm")
    r = sysc("open", ctypes.addressof(buf), flags, 0)
    if r[0] == -1:
        lacking = f"kvm: cannot open /dev/kvm: {os.strerror(r[1])}"
    elif need_gmem and sysc("ioctl", r[0], KVM_CHECK_EXTENSION_NR,
                            KVM_CAP_GUEST_MEMFD_NR)[0] <= 0:
        skip("kvm: no KVM_CAP_GUEST_MEMFD")
    return r


def sys_create_guest_memfd(vm, size, flags):
    """KVM_CREATE_GUEST_MEMFD; a creation flag this kernel does not offer
    (KVM_CAP_GUEST_MEMFD_FLAGS) makes EINVAL a skip."""
    global lacking
    arg = KvmCreateGuestMemfd(size=size % (1 << 64), flags=flags % (1 << 64))
    r = sysc("ioctl", vm, KVM_CREATE_GUEST_MEMFD_NR, ctypes.addressof(arg))
    if r[0] == -1 and r[1] == ERRNO["EINVAL"]:
        offered = sysc("ioctl", vm, KVM_CHECK_EXTENSION_NR, KVM_CAP_GUEST_MEMFD_FLAGS_NR)[0]
        if offered >= 0 and flags & GMEM_KNOWN_FLAGS & ~offered:
            lacking = ("kvm: a guest_memfd flag of the trace is not in "
                       "KVM_CAP_GUEST_MEMFD_FLAGS here")
    return r


def sys_set_memory_region2(vm, slot, flags, guest_phys_addr, memory_size, userspace_addr,
                           guest_memfd_offset, guest_memfd):
    """KVM_SET_USER_MEMORY_REGION2 (fields as in the struct, the padding zero)."""
    arg = KvmUserspaceMemoryRegion2(
        slot=slot % (1 << 32), flags=flags % (1 << 32),
        guest_phys_addr=guest_phys_addr % (1 << 64), memory_size=memory_size % (1 << 64),
        userspace_addr=userspace_addr % (1 << 64),
        guest_memfd_offset=guest_memfd_offset % (1 << 64), guest_memfd=guest_memfd % (1 << 32))
    return sysc("ioctl", vm, KVM_SET_USER_MEMORY_REGION2_NR, ctypes.addressof(arg))
'''


def _py_kvm_runtime() -> str:
    values = {"KVM_CHECK_EXTENSION": vocab.KVM_CHECK_EXTENSION,
              "KVM_CAP_GUEST_MEMFD": vocab.KVM_CAP_GUEST_MEMFD,
              "KVM_CAP_GUEST_MEMFD_FLAGS": vocab.KVM_CAP_GUEST_MEMFD_FLAGS,
              "KVM_CREATE_GUEST_MEMFD": vocab.KVM_CREATE_GUEST_MEMFD,
              "KVM_SET_USER_MEMORY_REGION2": vocab.KVM_SET_USER_MEMORY_REGION2,
              "GMEM_KNOWN_FLAGS": vocab.GUEST_MEMFD_FLAG_MMAP | vocab.GUEST_MEMFD_FLAG_INIT_SHARED}
    out = PY_KVM
    for k, v in values.items():
        out = out.replace(f"@{k}@", f"{v:#x}")
    return out


def _py_field(f: str, v: Arg) -> str:
    """A struct field's value as a Python expression."""
    if f in _FD_FIELDS:
        return f"FD({_fd(v, f)})"
    if isinstance(v, Ref):
        return f"maps[{_handle(v, 'm', f)}]"
    return _py_value(v)


def _py_value(arg: object) -> str:
    if isinstance(arg, Sym):
        return " | ".join(arg.text.split("|"))
    if isinstance(arg, Int):
        return str(arg.value)
    raise ExportError(f"expected a number or flags, got {arg!r}")


def _py_call(op: _Op) -> str:
    c, o = op.call, op.ops
    if c == "memfd_create":
        name = "None" if o[0] is None else repr(str(o[0]).encode("latin-1", "replace"))
        return f"sys_memfd_create({name}, {_py_value(o[1])})"
    if c == "fcntl":
        return f'sysc("fcntl", FD({o[0]}), {_py_value(o[1])}, {_py_value(o[2])})'
    if c == "pwrite64":
        return f"sys_pwrite64({o[0]}, {str(o[1]).encode('latin-1', 'replace')!r}, {o[2]}, {o[3]})"
    if c in ("ftruncate", "fchmod"):
        return f'sysc("{c}", FD({o[0]}), {_py_value(o[1])})'
    if c == "fallocate":
        return f'sysc("fallocate", FD({o[0]}), {_py_value(o[1])}, {o[2]}, {o[3]})'
    if c == "mmap":
        return f"sys_mmap({o[0]}, {o[1]}, {_py_value(o[2])}, {_py_value(o[3])}, {o[4]})"
    if c == "mprotect":
        return f'sysc("mprotect", maps[{o[0]}], {o[1]}, {_py_value(o[2])})'
    if c == "munmap":
        return f"sys_munmap({o[0]}, {o[1]})"
    if c in ("store", "load"):
        return f"sys_access({o[0]}, {o[1]}, {c == 'store'})"
    if c == "pin":
        return f"sys_pin({o[0]}, {o[1]}, {o[2]})"
    if c == "gup_pin":
        return f"sys_gup_pin({o[0]}, {o[1]}, {o[2]})"
    if c == "unpin":
        return f"sys_unpin({o[0]})"
    if c == "dma_write":
        return f"sys_dma_write({o[0]})"
    if c == "open":
        if o[0] is not None:
            return f"sys_reopen({o[0]}, {_py_value(o[2])})"
        if _is_kvm_open(op):
            return f"sys_open_kvm({_py_value(o[2])}, NEEDS_GUEST_MEMFD)"
        return (f"sys_open({str(o[1]).encode('latin-1', 'replace')!r}, {_py_value(o[2])}, "
                f"{_py_value(o[3])})")
    if c == "dup":
        return f'sysc("dup", FD({o[0]}))'
    if c == "close":
        return f"sys_close({o[0]})"
    if c == "ioctl":
        fd, req, code, arg = o
        if code == vocab.KVM_CREATE_GUEST_MEMFD:
            return f"sys_create_guest_memfd(FD({fd}), " \
                f"{', '.join(_py_field(f, v) for f, v in arg)})"
        if code == vocab.KVM_SET_USER_MEMORY_REGION2:
            return f"sys_set_memory_region2(FD({fd}), " \
                f"{', '.join(_py_field(f, v) for f, v in arg)})"
        return f'sysc("ioctl", FD({fd}), {_py_value(req)}, {_py_value(arg)})'
    if c == "read":
        return f"sys_read({o[0]}, {o[1]})"
    if c == "pread64":
        return f"sys_pread64({o[0]}, {o[1]}, {o[2]})"
    if c == "write":
        return f"sys_write({o[0]}, {str(o[1]).encode('latin-1', 'replace')!r}, {o[2]})"
    if c == "lseek":
        return f'sysc("lseek", FD({o[0]}), {o[1]}, {_py_value(o[2])})'
    raise ExportError(f"step {op.n}: no Python for {c}")


def _py_expect(op: _Op, call: str) -> str:
    e = op.expect
    if isinstance(e, Err):
        return f'mfd_fail_errno({call}, "{e.errno}")'
    if isinstance(e, Sig):
        return f'mfd_fail_signal({call}, "{e.name}")'
    if isinstance(e, New):
        return f"mfd_assert_ok({call})"
    if isinstance(e, Ret):
        if _creates_fd(op):
            return f"mfd_assert_fd({call}, {e.value})"
        return f"mfd_assert_ret({call}, {e.value})"
    raise ExportError(f"step {op.n}: no outcome (the model could not fill `?`)")


def export_python(design: Design, trace: Trace) -> str:
    """The reproducer as a standalone Python script (stdlib + ctypes, x86_64)."""
    r = _replay(design, trace)
    ops = _lower(r)
    want_noexec = _noexec_want(design, r)
    names = list(dict.fromkeys(n for op in ops for n in op.names))
    doc = [f"{_ascii(trace.title or 'a shmemcheck trace')}", "",
           f"Generated by shmemcheck (export --to python) from {_ascii(trace.path or 'a trace')};",
           f"design {design.name}, expect {_ascii(trace.expect)}.", "",
           "Each step is one system call whose outcome is checked against the trace.",
           "Exit status: 0 (KSFT_PASS) the kernel behaves as the trace says, 1 (KSFT_FAIL)",
           "it does not, 4 (KSFT_SKIP) something this machine lacks is needed."]
    out = ["#!/usr/bin/env python3", "# SPDX-License-Identifier: GPL-2.0",
           '"""' + "\n".join(doc).replace("\\", "\\\\").replace('"""', "'''") + '\n"""',
           PY_RUNTIME]
    if any(op.call == "ioctl" or _is_kvm_open(op) for op in ops):
        out.append(_py_kvm_runtime())
    out.append(f"USES_HUGETLB = {_uses_hugetlb(ops)}")
    out.append(f"NEEDS_GUEST_MEMFD = {_uses_gmem(ops)}")
    out.append(f"MFD_HUGETLB_BIT = {vocab.MFD_HUGETLB:#x}")
    out.append("ERRNO = {" + ", ".join(f'"{k}": {v}' for k, v in vocab.ERRNO.items()) + "}")
    out.append("ERRNO_NAME = {v: k for k, v in ERRNO.items()}")
    for n in names:
        out.append(f"{n} = {_const_value(n):#x}")
    out.append("STEPS = [None,\n" + "".join(f"         {op.text!r},\n" for op in ops) + "]")
    out.append("")
    out.append("")
    main = ["def main():",
            '    if platform.machine() != "x86_64":',
            "        step(1)",
            '        skip(f"the system call numbers here are x86_64\'s, '
            'not {platform.machine()}\'s")',
            '    print("TAP version 13")',
            '    print(f"1..{len(STEPS) - 1}")']
    if want_noexec is not None or any(op.call == "memfd_create" for op in ops):
        main += ["    step(1)", f"    setup_noexec({want_noexec or 0})"]
    for op in ops:
        main.append(f"    # {_ascii(op.text)}")
        main.append(f"    step({op.n})")
        main.append(f"    {_py_expect(op, _py_call(op))}")
    main += ['    finish(KSFT_PASS, "")', "", "", 'if __name__ == "__main__":', "    main()"]
    out += main
    return "\n".join(out) + "\n"


# ---- syzkaller -------------------------------------------------------------------------------
SYZ_DATA = 0x7F0000000000  # syzkaller's data area
SYZ_MAPS = 0x7F0000200000  # where this program places its mappings (2 MiB apart)


def _syz_hex(v: int) -> str:
    return f"{v % (1 << 64):#x}"


def _syz_str(s: str, nul: bool = True) -> str:
    """A syzkaller string literal: '...' with escapes, NUL-terminated unless nul=False."""
    out = []
    for b in s.encode("latin-1", "replace") + (b"\0" if nul else b""):
        ch = chr(b)
        if ch in "'\\":
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\x{b:02x}")
    return "'" + "".join(out) + "'"


class _Syz:
    def __init__(self) -> None:
        self.next_r = 0
        self.fd: dict[int, str] = {}
        self.pipe: dict[int, tuple[str, str]] = {}
        self.ring: dict[int, str] = {}
        self.kind: dict[int, str] = {}  # trace fd -> "kvm", "vm", "gmem" (KVM descriptors)
        self.maplen: dict[int, int] = {}  # mapping number -> length
        self.data = SYZ_DATA

    def res(self) -> str:
        r = f"r{self.next_r}"
        self.next_r += 1
        return r

    def ptr(self, size: int) -> str:
        p = self.data
        self.data += (size + 0xFF) & ~0xFF
        return f"&({p:#x})"

    def fdarg(self, tfd: int) -> str:
        """The resource of a trace fd; stdin/out/err as numbers, any other fd as -1."""
        if tfd in self.fd:
            return self.fd[tfd]
        return f"{tfd:#x}" if 0 <= tfd < 3 else "0xffffffffffffffff"

    def new_fd(self, e: Outcome, kind: str = "") -> str:
        """The resource a call that returns the trace fd of `e` assigns, or ""."""
        if not isinstance(e, Ret):
            return ""
        r = self.res()
        self.fd[e.value] = r
        self.kind.pop(e.value, None)
        if kind:
            self.kind[e.value] = kind
        return r

    def close(self, tfd: int) -> None:
        self.fd.pop(tfd, None)
        self.kind.pop(tfd, None)


#: ioctl request -> its syzkaller name, for each kind of descriptor it is issued on
_SYZ_IOCTLS: dict[int, dict[str, str]] = {
    vocab.KVM_CREATE_VM: {"": "KVM_CREATE_VM"},
    vocab.KVM_CHECK_EXTENSION: {"": "KVM_CHECK_EXTENSION", "vm": "KVM_CHECK_EXTENSION_VM"},
    0xAE00: {"": "KVM_GET_API_VERSION"},
    vocab.KVM_CREATE_GUEST_MEMFD: {"": "KVM_CREATE_GUEST_MEMFD"},
    vocab.KVM_SET_USER_MEMORY_REGION2: {"": "KVM_SET_USER_MEMORY_REGION2"},
}


def _syz_ioctl(s: _Syz, op: _Op) -> str:
    """One ioctl as syzkaller writes it (sys/linux/dev_kvm.txt): openat$kvm gives fd_kvm,
    KVM_CREATE_VM fd_kvmvm, KVM_CREATE_GUEST_MEMFD fd_kvm_guest_memfd; a struct argument
    is written field by field in layout order, its padding left to the default (zero)."""
    fd, _, code, arg = op.ops
    names = _SYZ_IOCTLS[code]
    name = names.get(s.kind.get(fd, ""), names[""])
    if isinstance(arg, tuple):
        vals = []
        for (f, v), (_, bits) in zip(arg, _IOCTL_STRUCTS[code][1], strict=True):
            if f in _FD_FIELDS:
                vals.append(s.fdarg(_fd(v, f)))
            elif isinstance(v, Ref):
                m = _handle(v, "m", f)
                vals.append(f"&({_syz_map(m):#x}/{s.maplen.get(m, 0x1000):#x})=nil")
            else:
                vals.append(f"{_int(v, f) % (1 << bits):#x}")
        size = 64 if code == vocab.KVM_CREATE_GUEST_MEMFD else 160
        argtext = f"{s.ptr(size)}={{{', '.join(vals)}}}"
    else:
        argtext = _syz_hex(_int(arg, name))
    kind = {vocab.KVM_CREATE_VM: "vm", vocab.KVM_CREATE_GUEST_MEMFD: "gmem"}.get(code, "")
    assign = s.new_fd(op.expect, kind) if code in _IOCTL_FD_CREATORS else ""
    call = f"ioctl${name}({s.fdarg(fd)}, {code:#x}, {argtext})"
    return f"{assign} = {call}" if assign else call


def _syz_map(m: int) -> int:
    return SYZ_MAPS + (m - 1) * 0x200000


def export_syz(design: Design, trace: Trace) -> str:
    """A syzkaller program (docs/program_syntax.md); the expected errno of each call as a
    trailing comment; steps with no system call of their own become comments."""
    r = _replay(design, trace)
    ops = _lower(r)
    s = _Syz()
    out = [f"# {_ascii(trace.title or 'a shmemcheck trace')}",
           f"# generated by shmemcheck (export --to syz); expect {_ascii(trace.expect)}"]
    want_noexec = _noexec_want(design, r)
    if want_noexec is not None:
        out.append(f"# needs vm.memfd_noexec={want_noexec} in the executor's pid namespace")
    for op in ops:
        o, e = op.ops, op.expect
        tail = f"\t# {e.errno}" if isinstance(e, Err) else ""
        out.append(f"# {op.n}: {_ascii(op.text)}")
        lines: list[str] = []
        assign = ""
        c = op.call
        if c == "memfd_create":
            name = "0x0" if o[0] is None else f"{s.ptr(len(str(o[0])) + 1)}={_syz_str(str(o[0]))}"
            flags = _int(o[1], "flags")
            assign = s.new_fd(e)
            lines.append(f"memfd_create({name}, {_syz_hex(flags)})")
        elif c == "fcntl":
            cmd = _int(o[1], "cmd")
            arg = _int(o[2], "arg")
            if cmd == vocab.F_ADD_SEALS:
                lines.append(f"fcntl$addseals({s.fdarg(o[0])}, {cmd:#x}, {arg:#x})")
            else:
                lines.append(f"fcntl$getflags({s.fdarg(o[0])}, {cmd:#x})")
        elif c == "pwrite64":
            data = str(o[1])
            count = o[2]
            unit = data or "\0"
            buf = (unit * (count // len(unit) + 1))[:count]
            lines.append(f"pwrite64({s.fdarg(o[0])}, {s.ptr(count)}="
                         f"{_syz_str(buf, nul=False)}, {count:#x}, {o[3]:#x})")
        elif c in ("ftruncate", "fchmod"):
            v = _int(o[1], c)
            lines.append(f"{c}({s.fdarg(o[0])}, {v:#x})")
        elif c == "fallocate":
            mode = _int(o[1], "mode")
            lines.append(f"fallocate({s.fdarg(o[0])}, {mode:#x}, {o[2]:#x}, "
                         f"{o[3]:#x})")
        elif c == "mmap":
            m, length = o[0], o[1]
            prot = _int(o[2], "prot")
            flags = _int(o[3], "flags")
            where = _syz_map(m) if m else SYZ_MAPS + 0x10000000
            if m:
                s.maplen[m] = length
            lines.append(f"mmap(&({where:#x}/{length:#x})=nil, {length:#x}, {prot:#x}, "
                         f"{flags:#x}, {s.fdarg(o[4])}, 0x0)")
        elif c == "mprotect":
            m, length = o[0], o[1]
            prot = _int(o[2], "prot")
            lines.append(f"mprotect(&({_syz_map(m):#x}/{length:#x})=nil, {length:#x}, {prot:#x})")
        elif c == "munmap":
            m, length = o[0], o[1]
            lines.append(f"munmap(&({_syz_map(m):#x}/{length:#x})=nil, {length:#x})")
        elif c in ("store", "load"):
            m, off = o[0], o[1]
            verb = "a one-byte store to" if c == "store" else "a one-byte load from"
            lines.append(f"# {c}: {verb} {_syz_map(m) + off:#x} (no system call) = "
                         f"{_outcome_text(e)}")
        elif c == "pin":
            m, off, p = o[0], o[1], o[2]
            rd, wr = s.res(), s.res()
            s.pipe[p] = (rd, wr)
            lines.append(f"pipe({s.ptr(8)}={{<{rd}=>0xffffffffffffffff, "
                         f"<{wr}=>0xffffffffffffffff}})")
            addr = (_syz_map(m) + off) & ~0xFFF
            lines.append(f"vmsplice({wr}, {s.ptr(16)}=[{{&({addr:#x}/0x1000)=nil, 0x1000}}], "
                         "0x1, 0x0)" + tail)
            tail = ""
        elif c == "gup_pin":
            m, off, p = o[0], o[1], o[2]
            ring = s.res()
            s.ring[p] = ring
            addr = (_syz_map(m) + off) & ~0xFFF
            lines.append(f"{ring} = io_uring_setup(0x4, {s.ptr(120)})")
            lines.append(f"io_uring_register$IORING_REGISTER_BUFFERS({ring}, 0x0, "
                         f"{s.ptr(16)}=[{{&({addr:#x}/0x1000)=nil, 0x1000}}], 0x1)" + tail)
            tail = ""
        elif c == "unpin":
            p = o[0]
            if p in s.pipe:
                rd, wr = s.pipe.pop(p)
                lines.append(f"read({rd}, {s.ptr(0x1000)}=\"\"/4096, 0x1000)")
                lines += [f"close({rd})", f"close({wr})"]
            elif p in s.ring:
                ring = s.ring.pop(p)
                lines.append(f"io_uring_register$IORING_UNREGISTER_BUFFERS({ring}, 0x1, 0x0, 0x0)")
                lines.append(f"close({ring})")
        elif c == "dma_write":
            lines.append("# dma_write: an IORING_OP_READ_FIXED into the registered buffer "
                         f"(syz_io_uring_submit) = {_outcome_text(e)}")
        elif c == "open":
            path = str(o[1]) if o[0] is None else f"/proc/self/fd/{o[0]}"
            flags = _int(o[2], "flags")
            kvm = o[0] is None and path == KVM_PATH
            assign = s.new_fd(e, "kvm" if kvm else "")
            lines.append(f"openat{'$kvm' if kvm else ''}(0xffffffffffffff9c, "
                         f"{s.ptr(len(path) + 1)}={_syz_str(path)}, {flags:#x}, 0x0)")
        elif c == "dup":
            assign = s.new_fd(e, s.kind.get(o[0], ""))
            lines.append(f"dup({s.fdarg(o[0])})")
        elif c == "close":
            lines.append(f"close({s.fdarg(o[0])})")
            s.close(o[0])
        elif c == "ioctl":
            lines.append(_syz_ioctl(s, op))
        elif c in ("read", "pread64"):
            count = o[1]
            off = f", {o[2]:#x}" if c == "pread64" else ""
            lines.append(f"{c}({s.fdarg(o[0])}, {s.ptr(count)}=\"\"/{count}, {count:#x}{off})")
        elif c == "write":
            data, count = str(o[1]), o[2]
            unit = data or "\0"
            buf = (unit * (count // len(unit) + 1))[:count]
            lines.append(f"write({s.fdarg(o[0])}, {s.ptr(count)}={_syz_str(buf, nul=False)}, "
                         f"{count:#x})")
        elif c == "lseek":
            lines.append(f"lseek({s.fdarg(o[0])}, {_syz_hex(o[1])}, {_int(o[2], 'whence'):#x})")
        if assign:
            lines[-1] = f"{assign} = {lines[-1]}"
        if lines and not lines[-1].startswith("#"):
            lines[-1] += tail
        out += lines
    return "\n".join(out) + "\n"


ExportFn = Callable[[Design, Trace], str]

#: format name -> (file extension, exporter)
EXPORTERS: dict[str, tuple[str, ExportFn]] = {
    "text": ("txt", export_text),
    "itf": ("itf.json", export_itf),
    "dot": ("dot", export_dot),
    "mermaid": ("mmd", export_mermaid),
    "c": ("c", export_c),
    "python": ("py", export_python),
    "syz": ("syz", export_syz),
}
