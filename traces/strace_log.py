"""Reading raw strace logs as strace writes them (issue 16).

One `LogCall`, `LogSignal` or `LogExit` per event, in log order. Understood: `-f` pid columns
(`[pid  123] ` and `123 `), `-t`/`-tt`/`-ttt`/`-r` timestamps, `-T` durations, `<unfinished ...>`
and `<... NAME resumed>` halves (joined into one call at the line of the first half), `-y`/`-yy`
descriptor decorations (`3</memfd:t (deleted)>`, kept as `LogCall.paths`), `-X raw|abbrev|verbose`
(`/* ... */` comments dropped), `-s` truncated strings, signals (`--- SIGBUS {...} ---`), exits
(`+++ exited with 0 +++`, `+++ killed by SIGBUS +++`) and strace's own notes (`strace: ...`).

This module splits a call into its name, argument texts and result; the argument grammar is the
trace format's (traces/textfmt.py `parse_arg`), applied by `LogCall.arg`. Every line it cannot
read is a `TraceSyntaxError` at path:line:col, and nothing else is raised for any input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from model import vocab
from traces.textfmt import TraceSyntaxError, parse_value_result
from traces.trace import Arg

__all__ = ["LogCall", "LogExit", "LogSignal", "StraceLog", "TraceSyntaxError", "load_log",
           "parse_log"]

_PID = re.compile(r"\[pid +([0-9]+)\] |([0-9]+) +(?=[0-9:.]*[ ]*[A-Za-z_<+-])")
_TIME = re.compile(r"(?:[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?|[0-9]+\.[0-9]+) +")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESUMED = re.compile(r"<\.\.\. ([A-Za-z_][A-Za-z0-9_]*) resumed>")
_UNFINISHED = " <unfinished ...>"
_RET = re.compile(r"(0x[0-9a-fA-F]+|-?[0-9]+|\?)")
_ERRNO = re.compile(r"[A-Z][A-Z0-9_]*")
_DURATION = re.compile(r" *<[0-9]+\.[0-9]+>$")
_SIGNAL = re.compile(r"--- (SIG[A-Z0-9]+|stopped by SIG[A-Z0-9]+) ?(.*?) ?---$")
_EXIT = re.compile(r"\+\+\+ (?:exited with (-?[0-9]+)|killed by (SIG[A-Z0-9]+)(?: \(core dumped\))?"
                   r"|superseded by execve in pid ([0-9]+)) \+\+\+$")
_SI_ADDR = re.compile(r"si_addr=(0x[0-9a-fA-F]+|NULL)")


@dataclass(frozen=True)
class LogCall:
    """One system call: `args` are the argument texts (decorations and comments removed),
    `cols` their 1-based columns; `ret` the result (None: `?`, the call did not return),
    `errno` its error name. `paths` maps an argument index (-1: the result) to its -y
    decoration. `done` is False for an `<unfinished ...>` call that never resumed."""

    path: str
    line: int
    pid: int | None
    name: str
    args: tuple[str, ...]
    cols: tuple[int, ...]
    ret: int | None
    errno: str | None
    note: str | None
    text: str
    paths: dict[int, str] = field(default_factory=dict)
    done: bool = True

    def arg(self, i: int) -> Arg:
        """Argument i in the trace grammar (TraceSyntaxError at its column); strace's
        `N<<MFD_HUGE_SHIFT` is read as the number it is."""
        return self.arg_result(i)[0]

    def arg_result(self, i: int) -> tuple[Arg, Arg | None]:
        """arg(), and the value written back (strace's `[0] => [4096]`), if shown."""
        text = self.args[i]
        if "<<" in text and '"' not in text:
            text = _SHIFT.sub(_shift, text)
        if '"' not in text and ("/*" in text or "makedev(" in text):
            # -v's struct stat: `/* 2026-12-04T22:41:29+0000 */` after a time, and
            # `makedev(0xfe, 0)` for st_dev; blanked / made one word of the same length (the
            # columns stay), in fields the model does not judge
            text = _COMMENT.sub(lambda m: " " * len(m.group()), text)
            text = _MAKEDEV.sub(lambda m: re.sub(r"[^A-Za-z0-9_]", "_", m.group()), text)
        return parse_value_result(text, self.path, self.line, self.cols[i])

    def int_arg(self, i: int) -> int | None:
        """Argument i as a plain number, or None."""
        if i >= len(self.args):
            return None
        t = self.args[i].strip()
        try:
            return int(t, 0) if not t.startswith("0") or t == "0" or t[:2] in ("0x", "0X") \
                else int(t, 8)
        except ValueError:
            return None


@dataclass(frozen=True)
class LogSignal:
    """`--- SIGBUS {si_signo=SIGBUS, si_code=BUS_ADRERR, si_addr=0x7f...} ---`."""

    line: int
    pid: int | None
    signal: str
    addr: int | None


@dataclass(frozen=True)
class LogExit:
    """`+++ exited with 0 +++` / `+++ killed by SIGKILL +++`: the process is gone."""

    line: int
    pid: int | None
    status: int | None
    signal: str | None


Event = LogCall | LogSignal | LogExit


@dataclass
class StraceLog:
    path: str
    events: list[Event]
    lines: list[str]


_DECORATED = re.compile(r"(?:^|[^0-9A-Za-z_])(?:[0-9]+|AT_FDCWD)$")
#: strace's shifts in flag words (`63<<MFD_HUGE_SHIFT`): the shift widths of include/uapi
_SHIFTS = {"MFD_HUGE_SHIFT": 26, "MAP_HUGE_SHIFT": 26, "SHM_HUGE_SHIFT": 26}
_COMMENT = re.compile(r"/\*.*?\*/")
_MAKEDEV = re.compile(r"makedev\([^()]*\)")
_SHIFT = re.compile(r"\b([0-9]+)<<([A-Z_]+)\b")


def _decorated(before: str) -> bool:
    """A -y decoration follows a descriptor: a decimal number or AT_FDCWD."""
    return _DECORATED.search(before) is not None


def _shift(m: re.Match[str]) -> str:
    width = _SHIFTS.get(m.group(2))
    return m.group() if width is None else hex(int(m.group(1)) << width)


def _strip(text: str, start: int, path: str, lineno: int) -> tuple[str, list[int], dict[int, str]]:
    """Remove `/* comments */` and -y decorations (`3<...>`) outside strings: the text, each
    kept character's 1-based column, and decorations by the position (in the new text) of the
    character they followed."""
    out: list[str] = []
    cols: list[int] = []
    decos: dict[int, str] = {}
    i, n = start, len(text)
    in_str = False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            cols.append(i + 1)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                cols.append(i + 2)
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
            continue
        if c == '"':
            in_str = True
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise TraceSyntaxError(path, lineno, i + 1, "unterminated comment '/*'")
            i = end + 2
            while out and out[-1] == " " and i < n and text[i] in ",) ":
                out.pop()
                cols.pop()
            continue
        elif c == "<" and _decorated("".join(out[-12:])) and not text.startswith("<<", i) \
                and not text.startswith("<unfinished", i) and not text.startswith("<...", i):
            j = i + 1
            depth = 1
            while j < n and depth:
                if text[j] == "<":
                    depth += 1
                elif text[j] == ">":
                    depth -= 1
                j += 1
            if depth:
                raise TraceSyntaxError(path, lineno, i + 1, "unterminated descriptor "
                                       "decoration '<' (strace -y)")
            decos[len(out) - 1] = text[i + 1:j - 1]
            i = j
            continue
        out.append(c)
        cols.append(i + 1)
        i += 1
    if in_str:
        raise TraceSyntaxError(path, lineno, n + 1, "unterminated string (missing '\"')")
    return "".join(out), cols, decos


def _split_args(s: str, i: int, cols: list[int], path: str, lineno: int, partial: bool = False
                ) -> tuple[list[tuple[int, int]], int]:
    """From after '(': the top-level argument spans up to the matching ')'; its index
    (`partial`: the first half of an unfinished call, cut anywhere)."""
    spans: list[tuple[int, int]] = []
    depth = 0
    in_str = False
    start = i
    n = len(s)
    closers = {"(": ")", "[": "]", "{": "}"}
    stack: list[str] = []
    while i < n:
        c = s[i]
        if in_str:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in closers:
            stack.append(closers[c])
            depth += 1
        elif c in ")]}":
            if not stack:
                if c != ")":
                    raise TraceSyntaxError(path, lineno, cols[i], f"unmatched '{c}'")
                if s[start:i].strip():
                    spans.append((start, i))
                return spans, i
            if stack.pop() != c:
                raise TraceSyntaxError(path, lineno, cols[i], f"mismatched '{c}'")
            depth -= 1
        elif c == "," and not stack:
            spans.append((start, i))
            start = i + 1
        i += 1
    if partial:
        if s[start:].strip():
            spans.append((start, n))
        return spans, n
    at = cols[-1] + 1 if cols else 1
    raise TraceSyntaxError(path, lineno, at, "expected ')' closing the argument list, found "
                           "end of line")


def _call(path: str, lineno: int, pid: int | None, text: str, start: int,
          done: bool = True) -> LogCall:
    s, cols, decos = _strip(text, start, path, lineno)
    cols.append((cols[-1] + 1) if cols else start + 1)
    m = _NAME.match(s)
    if m is None:
        raise TraceSyntaxError(path, lineno, cols[0], "expected a system call name, signal "
                               "('---') or exit ('+++')")
    name = m.group()
    if m.end() >= len(s) or s[m.end()] != "(":
        raise TraceSyntaxError(path, lineno, cols[m.end()], f"expected '(' after '{name}'")
    spans, close = _split_args(s, m.end() + 1, cols, path, lineno, partial=not done)
    args: list[str] = []
    acols: list[int] = []
    paths: dict[int, str] = {}
    for k, (a, b) in enumerate(spans):
        lead = len(s[a:b]) - len(s[a:b].lstrip())
        args.append(s[a:b].strip())
        acols.append(cols[a + lead])
        for pos, d in decos.items():
            if a <= pos < b:
                paths[k] = d
    rest = s[close + 1:]
    rest = _DURATION.sub("", rest)
    ret: int | None = None
    errno = note = None
    if not done:
        return LogCall(path, lineno, pid, name, tuple(args), tuple(acols), None, None, None,
                       text[start:], paths, done=False)
    r = re.match(r" *= *", rest)
    if r is None:
        raise TraceSyntaxError(path, lineno, cols[close + 1], "expected '= RESULT' after ')'")
    at = close + 1 + r.end()
    rest = rest[r.end():]
    rm = _RET.match(rest)
    if rm is None:
        raise TraceSyntaxError(path, lineno, cols[min(at, len(cols) - 1)],
                               "expected a result (number or '?') after '='")
    word = rm.group()
    for pos, d in decos.items():
        if pos >= close:
            paths[-1] = d
    tail = rest[rm.end():].strip()
    if word != "?":
        if re.fullmatch(r"-?0[0-9]+", word):  # strace prints results in decimal or 0x hex
            raise TraceSyntaxError(path, lineno, cols[min(at, len(cols) - 1)],
                                   f"invalid result '{word}' (a leading zero)")
        ret = int(word, 0) if not word.startswith("-") else int(word)
    if tail:
        em = _ERRNO.match(tail)
        if em is not None and ((ret is not None and ret < 0) or word == "?"):
            errno = em.group()
            tail = tail[em.end():].strip()
        if tail.startswith("(") and tail.endswith(")"):
            note = tail[1:-1]
        elif tail and errno is None:
            note = tail
    if ret is not None and ret < 0 and errno is None and ret == -1:
        errno = "E?"  # `-1 (errno 523)`: an error strace has no name for
    return LogCall(path, lineno, pid, name, tuple(args), tuple(acols), ret, errno, note,
                   text[start:], paths)


def parse_log(text: str, path: str = "<log>") -> StraceLog:
    """Read a whole log (see the module doc); TraceSyntaxError for an unreadable line."""
    events: list[Event] = []
    lines = text.split("\n")
    pending: dict[int | None, tuple[int, str, int, str]] = {}  # pid -> (line, text, start, name)
    order: list[tuple[int, int | None]] = []  # where each pending call belongs in `events`
    slots: dict[int, int] = {}
    for lineno, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.strip() or line.startswith("strace: "):
            continue
        i = 0
        pid: int | None = None
        m = _PID.match(line)
        if m is not None:
            pid = int(m.group(1) or m.group(2))
            i = m.end()
        while i < len(line) and line[i] == " ":
            i += 1
        t = _TIME.match(line, i)
        if t is not None:
            i = t.end()
        body = line[i:]
        if body.startswith("---"):
            sm = _SIGNAL.match(body)
            if sm is None:
                raise TraceSyntaxError(path, lineno, i + 1, "expected '--- SIGNAL {...} ---'")
            a = _SI_ADDR.search(sm.group(2))
            addr = None if a is None or a.group(1) == "NULL" else int(a.group(1), 16)
            events.append(LogSignal(lineno, pid, sm.group(1).split()[-1], addr))
            continue
        if body.startswith("+++"):
            em = _EXIT.match(body)
            if em is None:
                raise TraceSyntaxError(path, lineno, i + 1, "expected '+++ exited with N +++' "
                                       "or '+++ killed by SIGNAL +++'")
            status = int(em.group(1)) if em.group(1) is not None else None
            events.append(LogExit(lineno, pid, status, em.group(2)))
            continue
        if body.startswith("<..."):
            rm = _RESUMED.match(body)
            if rm is None:
                raise TraceSyntaxError(path, lineno, i + 1, "expected '<... NAME resumed>'")
            half = pending.pop(pid, None)
            if half is None:
                continue  # the first half was filtered out or before the log: nothing known
            first, ftext, fstart, fname = half
            if fname != rm.group(1):
                raise TraceSyntaxError(path, lineno, i + 6, f"'{rm.group(1)}' resumed, but "
                                       f"pid {pid} left '{fname}' unfinished at line {first}")
            rest = body[rm.end():]
            if rest.endswith(_UNFINISHED):
                pending[pid] = (first, ftext + rest[:-len(_UNFINISHED)], fstart, fname)
                continue
            joined = ftext + rest
            events[slots.pop(first)] = _call(path, first, pid, joined, fstart)
            continue
        if body.endswith(_UNFINISHED):
            nm = _NAME.match(body)
            if nm is None:
                raise TraceSyntaxError(path, lineno, i + 1, "expected a system call name")
            half_text = line[:len(line) - len(_UNFINISHED)]
            pending[pid] = (lineno, half_text, i, nm.group())
            slots[lineno] = len(events)
            order.append((lineno, pid))
            events.append(_call(path, lineno, pid, half_text, i, done=False))
            continue
        events.append(_call(path, lineno, pid, line, i))
    return StraceLog(path, events, lines)


def load_log(path: str) -> StraceLog:
    """Read a log file; bad UTF-8 is read as latin-1 (strace escapes non-ASCII bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_log(text, path)


def errno_known(name: str | None) -> bool:
    """An errno the trace format names (model/vocab.py)."""
    return name is not None and name in vocab.ERRNO
