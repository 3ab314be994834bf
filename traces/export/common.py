"""What every exporter shares: the error, ASCII spelling, the expectation, the initial-state
choices, the rendering of model fields, and the runtime files shipped as package data."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources

from model.lang.design import Design
from model.lang.schema import render_state
from traces.trace import Err, New, Outcome, Ret, Sig, Trace

#: the registry calls every reproducer (C, Python, syzkaller) renders with code of its own;
#: every other plain call (traces.syscalls.Syscall.plain) is rendered from its entry, and
#: lower.UNSUPPORTED's not at all
OWN_CALLS = frozenset({
    "memfd_create", "fcntl", "pwrite64", "ftruncate", "fchmod", "fallocate", "mmap", "mprotect",
    "munmap", "mremap", "fork_vma", "store", "load", "mem_write", "vm_write",
    "splice_write", "pin", "gup_pin", "udmabuf", "unpin", "dma_write", "open", "ioctl", "read",
    "pread64",
    "write", "lseek", "dup", "close", "pwritev2", "preadv2", "pwritev", "preadv", "writev",
    "readv", "fstat", "newfstatat", "execveat", "execve", "io_uring_write", "io_uring_read",
    "io_uring_fallocate", "file_setattr", "file_getattr"})


class ExportError(Exception):
    """The trace cannot be expressed in the requested format."""


def init_choices(design: Design, trace: Trace, states: list[dict[str, int]] | None
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


def expect_of(trace: Trace) -> tuple[str, str]:
    """The expectation's kind ("conforms", "violates", "witnesses") and property name."""
    kind, _, prop = trace.expect.partition(" ")
    return kind, prop


def outcome_text(o: Outcome) -> str:
    """An outcome as the trace writes it after ` = `."""
    if isinstance(o, Ret):
        return str(o.value)
    if isinstance(o, Err):
        return f"-1 {o.errno}"
    if isinstance(o, (Sig, New)):
        return o.name
    return "?"


_ASCII = {
    "∅": "{}", "—": "--", "–": "-", "→": "->", "←": "<-", "⇒": "=>", "≤": "<=", "≥": ">=",
    "≠": "!=", "×": "x", "…": "...", "‘": "'", "’": "'", "“": '"', "”": '"', "∈": " in ",
    "·": ".", "§": "S", "µ": "u", "\u00a0": " ", "\t": " ",
}


def ascii_text(s: str) -> str:
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


def render_fields(design: Design, values: Mapping[str, int], names: Sequence[str]) -> list[str]:
    """`field=value` for each name, as render_state prints them."""
    return [ascii_text(render_state(design.schema, values, only=[n])) for n in names]


@cache
def runtime_sections(name: str, marker: str) -> dict[str, str]:
    """The sections of runtime file traces/export/runtime/NAME (package data): the text after
    each line `MARKER NAME` up to the next such line; the text before the first is the file's
    own comment, not a section."""
    text = resources.files("traces.export").joinpath("runtime", name).read_text("utf-8")
    parts = re.split(rf"^{re.escape(marker)} (\w+)\n", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))
