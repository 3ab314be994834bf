"""The strace-style text format of traces: a hand-written parser and its printer.

One system call per line, as strace prints it, with the outcome after `=`::

    # shmemcheck trace 1: optional title
    # design: memfd
    # scope: pages=2,maps=1
    # expect: violates seal_write_exclusive
    memfd_create("t", MFD_ALLOW_SEALING) = 3
    mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1
    fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = -1 EBUSY (Device or resource busy)
    fcntl(3, F_GET_SEALS) = 0x9 (seals F_SEAL_SEAL|F_SEAL_WRITE)  # a comment

docs/trace-format.md has the grammar (EBNF), the header keys and the call vocabulary.  This module
is syntax only: it checks that errno and signal names exist (model/vocab.py) but not that a call
or a constant means anything; the model and the kernel executor do that.

Public API:

* `parse_trace(text, path)` -> Trace; raises `TraceSyntaxError` (and nothing else) for any str.
* `load_trace(path)` -> Trace; a file that is not UTF-8 is a `TraceSyntaxError` too.
* `parse_step(line)` -> Step, for one step line on its own.
* `format_trace(trace)`, `format_step(step)`, `format_arg(arg)` -> str; canonical text.

Round trip: `parse_trace(format_trace(t)) == t` for every Trace in the printable domain (see
docs/trace-format.md, "Printable domain"), and `format_trace(parse_trace(s)) == s` for canonical
text (what `format_trace` prints).
"""

from __future__ import annotations

import re

from model import vocab
from traces.trace import (
    Any_,
    Arg,
    Err,
    Int,
    Lst,
    New,
    Outcome,
    Pos,
    Ref,
    Ret,
    Sig,
    Step,
    Str,
    Struct,
    Sym,
    Trace,
)

__all__ = [
    "FORMAT_VERSION",
    "HEADER_KEYS",
    "TraceSyntaxError",
    "format_arg",
    "format_step",
    "format_trace",
    "load_trace",
    "parse_arg",
    "parse_step",
    "parse_trace",
    "parse_value_result",
]

FORMAT_VERSION = 1
HEADER_KEYS = ("design", "scope", "expect")
EXPECT_VERBS = ("violates", "witnesses")
MAX_STRUCT_DEPTH = 32  # deeper `{a={a={...` is an error, not a RecursionError
DEFAULT_PATH = "<string>"


class TraceSyntaxError(Exception):
    """A syntax error at a 1-based line and column (columns count characters, not bytes)."""

    def __init__(self, path: str, line: int, col: int, msg: str) -> None:
        super().__init__(path, line, col, msg)  # all four in args, so it pickles
        self.path = path
        self.line = line
        self.col = col
        self.msg = msg

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.msg}"


# ---- lexical classes (each regex matches one token, at a given position) ------------------------
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TERM = re.compile(r"-?[A-Za-z0-9_]+")  # one word of an atom: name, number or handle
_NUMBER = re.compile(r"(-?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))")  # fullmatch
_HANDLE = re.compile(r"[mpc][0-9]+")  # fullmatch
_PROC = re.compile(r"\[[ \t]*(?:pid[ \t]+)?(c[0-9]+|[1-9][0-9]*)[ \t]*\][ \t]*")
_DIGITS = re.compile(r"[0-9]+")
_STR_RUN = re.compile(r'[^"\\\x00-\x08\x0a-\x1f\x7f]*')  # plain characters inside "..."
_OCTAL_ESC = re.compile(r"[0-7]{1,3}")
_HEX2 = re.compile(r"[0-9a-fA-F]{2}")
_HEADER_KEY = re.compile(r"([a-z][a-z0-9_-]*):(?=[ \t]|$)")
_VERSION = re.compile(r"#[ \t]*shmemcheck[ \t]+trace[ \t]+")

_ATOM_START = frozenset("-_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DEC_START = frozenset("-0123456789")
_SIMPLE_ESCAPES = {
    '"': '"', "\\": "\\", "'": "'", "?": "?",
    "n": "\n", "t": "\t", "r": "\r", "v": "\v", "f": "\f", "a": "\a", "b": "\b",
}


def _describe(c: str) -> str:
    """How an error message names the character it found."""
    if not c:
        return "end of line"
    if c == "'":
        return '"\'"'
    if c.isprintable():
        return f"'{c}'"
    return f"U+{ord(c):04X}"


class _LineParser:
    """Recursive descent over one step line. `i` is the index of the next unread character."""

    __slots__ = ("depth", "i", "lineno", "n", "path", "text", "updated")

    def __init__(self, path: str) -> None:
        self.path = path
        self.updated: list[tuple[int, Arg]] = []
        self.text = ""
        self.n = 0
        self.i = 0
        self.lineno = 0
        self.depth = 0

    # -- helpers ----------------------------------------------------------------------------
    def error(self, msg: str, at: int | None = None) -> TraceSyntaxError:
        index = self.i if at is None else at
        return TraceSyntaxError(self.path, self.lineno, index + 1, msg)

    def peek(self) -> str:
        return self.text[self.i] if self.i < self.n else ""

    def found(self) -> str:
        return "found " + _describe(self.peek())

    def skip_ws(self) -> None:
        text, i, n = self.text, self.i, self.n
        while i < n and text[i] in " \t":
            i += 1
        self.i = i

    # -- a step line -------------------------------------------------------------------------
    def step(self, text: str, lineno: int, start: int) -> Step:
        self.text, self.n, self.i, self.lineno, self.depth = text, len(text), start, lineno, 0
        proc: str | None = None
        if self.peek() == "[":  # the acting process: `[c1]`, `[pid c1]`, strace's `[pid 1234]`
            tag = _PROC.match(text, start)
            if tag is None:
                raise self.error("expected a process after '[': a name fork() returned "
                                 "('[c1]', '[pid c1]') or a pid ('[pid 1234]'), then ']'",
                                 start + 1)
            proc = tag.group(1)
            start = self.i = tag.end()
        m = _IDENT.match(text, start)
        if m is None:
            raise self.error("expected system call name, '#' comment or blank line, "
                             + self.found())
        call = m.group()
        self.i = m.end()
        self.skip_ws()
        if self.peek() != "(":
            raise self.error(f"expected '(' after call name '{call}', {self.found()}")
        self.i += 1
        self.updated = []
        args = self.args()
        self.skip_ws()
        if self.peek() != "=":
            raise self.error(f"expected '=' and the outcome after ')', {self.found()}")
        self.i += 1
        self.skip_ws()
        outcome, note = self.outcome()
        self.skip_ws()
        if self.peek() == "(":
            if note is not None:
                raise self.error(f"expected '#' comment or end of line after note, {self.found()}")
            note = self.paren()
            self.skip_ws()
        comment: str | None = None
        c = self.peek()
        if c == "#":
            comment = text[self.i + 1:]
            if comment.startswith(" "):
                comment = comment[1:]
        elif c:
            what = "'#' comment or end of line" if note is not None else \
                "'(' note, '#' comment or end of line"
            raise self.error(f"expected {what} after the outcome, {self.found()}")
        return Step(call, args, outcome, note, comment, Pos(lineno, start + 1),
                    tuple(self.updated), proc)

    def args(self) -> tuple[Arg, ...]:
        """After '(': arguments up to and including the closing ')'."""
        self.skip_ws()
        if self.peek() == ")":
            self.i += 1
            return ()
        args: list[Arg] = []
        while True:
            args.append(self.arg())
            self.skip_ws()
            if self.text.startswith("=>", self.i):  # strace's value-result: `[0] => [4096]`
                self.i += 2
                self.skip_ws()
                self.updated.append((len(args) - 1, self.arg()))
                self.skip_ws()
            c = self.peek()
            if c == ",":
                self.i += 1
                self.skip_ws()
            elif c == ")":
                self.i += 1
                return tuple(args)
            elif c == "|":
                raise self.error("no spaces allowed around '|' in a flag expression")
            else:
                raise self.error(f"expected ',' or ')' after argument, {self.found()}")

    def arg(self) -> Arg:
        c = self.peek()
        if c == '"':
            return self.string()
        if c == "{":
            return self.struct()
        if c == "[":
            return self.array()
        if c in _ATOM_START and c:
            return self.atom()
        raise self.error(f"expected argument, {self.found()}")

    def atom(self) -> Arg:
        """A number, a handle, a name or a flag expression NAME|NAME|0x40."""
        text = self.text
        start = self.i
        m = _TERM.match(text, start)
        if m is None:  # a lone '-'
            after = _describe(self.peek_at(start + 1))
            raise self.error(f"expected number after '-', found {after}", start + 1)
        self.i = m.end()
        if self.peek() != "|":
            word = m.group()
            if word[0] in _DEC_START:
                value, spelling = self.number(word, start)
                return Int(value, spelling)
            if _HANDLE.fullmatch(word):
                return self.handle_plus(word)
            return Sym(word)
        # flag expression: every term a name or an unsigned number
        term_start = start
        while True:
            word = text[term_start:self.i]
            if word[0] == "-":
                raise self.error("negative number in a flag expression", term_start)
            if word[0] in _DEC_START:
                self.number(word, term_start)
            if self.peek() != "|":
                return Sym(text[start:self.i])
            self.i += 1
            term_start = self.i
            m = _TERM.match(text, term_start)
            if m is None:
                hint = " (no spaces inside flag expressions)" if self.peek() in (" ", "\t") else ""
                raise self.error(f"expected flag name or number after '|', {self.found()}{hint}")
            self.i = m.end()

    def handle_plus(self, word: str) -> Ref:
        """A handle, and for a mapping an address inside it: `m1+8192` (bytes, decimal or
        hex; no spaces)."""
        if self.peek() != "+":
            return Ref(word)
        at = self.i + 1
        if word[0] != "m":
            raise self.error("only a mapping (mN) takes '+bytes' (an address inside it)", at - 1)
        m = _TERM.match(self.text, at)
        if m is None or m.group()[0] not in _DEC_START or m.group()[0] == "-":
            raise self.error(f"expected a number of bytes after '{word}+', found "
                             f"{_describe(self.peek_at(at))}", at)
        self.i = m.end()
        value, _ = self.number(m.group(), at)
        if value <= 0:
            raise self.error(f"'{word}+{m.group()}': the offset must be positive", at)
        return Ref(word, value)

    def peek_at(self, index: int) -> str:
        return self.text[index] if index < self.n else ""

    def number(self, word: str, start: int) -> tuple[int, str | None]:
        """Value of a number word, and its spelling unless that is plain decimal."""
        m = _NUMBER.fullmatch(word)
        if m is None:
            raise self.error(f"invalid number '{word}'", start)
        sign, hexdigits, octal, decimal = m.groups()
        try:
            if hexdigits is not None:
                value = int(hexdigits, 16)
            elif octal is not None:
                value = int(octal, 8)
            else:
                value = int(decimal)
        except ValueError:  # more decimal digits than int() converts (sys.int_info)
            raise self.error(f"number too long ({len(word)} characters)", start) from None
        if sign:
            value = -value
        plain = decimal is not None or octal == "0"
        return value, (None if plain and not (sign and value == 0) else word)

    def string(self) -> Str:
        """A C string literal, optionally followed by strace's `...` (truncated)."""
        text, n = self.text, self.n
        open_at = self.i
        j = open_at + 1
        parts: list[str] = []
        while True:
            m = _STR_RUN.match(text, j)
            assert m is not None  # the pattern matches the empty string
            parts.append(m.group())
            j = m.end()
            if j >= n:
                raise self.error("unterminated string (missing closing '\"')", open_at)
            c = text[j]
            if c == '"':
                j += 1
                break
            if c != "\\":
                raise self.error(f"control character {_describe(c)} in string; "
                                 f"write it as an escape such as \\x{ord(c):02x}", j)
            e = text[j + 1] if j + 1 < n else ""
            simple = _SIMPLE_ESCAPES.get(e)
            if simple is not None:
                parts.append(simple)
                j += 2
            elif e == "x":
                h = _HEX2.match(text, j + 2)
                if h is None:
                    raise self.error("expected two hex digits after '\\x' in string", j)
                parts.append(chr(int(h.group(), 16)))
                j = h.end()
            elif e and e in "01234567":
                o = _OCTAL_ESC.match(text, j + 1)
                assert o is not None
                code = int(o.group(), 8)
                if code > 0xFF:
                    raise self.error(f"octal escape '\\{o.group()}' out of range (max \\377)", j)
                parts.append(chr(code))
                j = o.end()
            elif not e:
                raise self.error("unterminated string (missing closing '\"')", open_at)
            else:
                raise self.error(f"unknown escape '\\{e}' in string" if e.isprintable()
                                 else f"unknown escape: backslash before {_describe(e)}", j)
        truncated = text.startswith("...", j)
        self.i = j + 3 if truncated else j
        return Str("".join(parts), truncated)

    def array(self) -> Lst:
        """`[arg, ...]` (strace's iovec arrays); arrays and structs may nest."""
        self.depth += 1
        if self.depth > MAX_STRUCT_DEPTH:
            raise self.error(f"arrays and structs nested more than {MAX_STRUCT_DEPTH} deep")
        self.i += 1
        self.skip_ws()
        items: list[Arg] = []
        if self.peek() == "]":
            self.i += 1
            self.depth -= 1
            return Lst(())
        while True:
            items.append(self.arg())
            self.skip_ws()
            c = self.peek()
            if c == ",":
                self.i += 1
                self.skip_ws()
            elif c == "]":
                self.i += 1
                self.depth -= 1
                return Lst(tuple(items))
            else:
                raise self.error(f"expected ',' or ']' after array element, {self.found()}")

    def struct(self) -> Struct:
        """`{name=arg, ...}`, fields in order, structs may nest."""
        self.depth += 1
        if self.depth > MAX_STRUCT_DEPTH:
            raise self.error(f"structs nested more than {MAX_STRUCT_DEPTH} deep")
        self.i += 1
        self.skip_ws()
        fields: list[tuple[str, Arg]] = []
        if self.peek() == "}":
            self.i += 1
            self.depth -= 1
            return Struct(())
        while True:
            if self.text.startswith("...", self.i):  # strace's "more fields than shown"
                self.i += 3
                self.skip_ws()
                if self.peek() != "}":
                    raise self.error(f"expected '}}' after '...' in struct, {self.found()}")
                self.i += 1
                self.depth -= 1
                return Struct(tuple(fields), more=True)
            m = _IDENT.match(self.text, self.i)
            if m is None:
                where = "in struct" if not fields else "after ',' in struct"
                raise self.error(f"expected field name {where}, {self.found()}")
            name = m.group()
            self.i = m.end()
            self.skip_ws()
            if self.peek() != "=":
                raise self.error(f"expected '=' after struct field name '{name}', {self.found()}")
            self.i += 1
            self.skip_ws()
            fields.append((name, self.arg()))
            self.skip_ws()
            c = self.peek()
            if c == ",":
                self.i += 1
                self.skip_ws()
            elif c == "}":
                self.i += 1
                self.depth -= 1
                return Struct(tuple(fields))
            else:
                raise self.error(f"expected ',' or '}}' after struct field, {self.found()}")

    def outcome(self) -> tuple[Outcome, str | None]:
        """The outcome after '='; for errors also a note written in place of the strerror."""
        text = self.text
        start = self.i
        c = self.peek()
        if c == "?":
            self.i += 1
            return Any_(), None
        if c and c in _DEC_START:
            m = _TERM.match(text, start)
            if m is None:
                raise self.error(f"expected number after '-', "
                                 f"found {_describe(self.peek_at(start + 1))}", start + 1)
            self.i = m.end()
            word = m.group()
            if word == "-1":
                return self.error_outcome()
            value, _ = self.number(word, start)
            if value < 0:
                raise self.error(f"negative return value '{word}': "
                                 "failures are written '-1 ERRNO (strerror)'", start)
            if value >= 1 << 64:
                raise self.error(f"return value '{word}' out of range (more than 64 bits)", start)
            return Ret(value), None
        m = _IDENT.match(text, start)
        if m is not None:
            word = m.group()
            self.i = m.end()
            if _HANDLE.fullmatch(word):
                return New(word), None
            if word.startswith("SIG"):
                if word not in vocab.SIGNALS:
                    known = ", ".join(vocab.SIGNALS)
                    raise self.error(f"unknown signal '{word}' (known: {known})", start)
                return Sig(word), None
            raise self.error("expected return value, '-1 ERRNO', signal, new handle or '?' "
                             f"after '=', found '{word}'", start)
        raise self.error("expected return value, '-1 ERRNO', signal, new handle or '?' "
                         f"after '=', {self.found()}")

    def error_outcome(self) -> tuple[Outcome, str | None]:
        """After `-1`: ERRNO, then the optional (strerror), which need not be written."""
        self.skip_ws()
        start = self.i
        m = _IDENT.match(self.text, start)
        if m is None:
            raise self.error(f"expected errno name after '-1', {self.found()}")
        name = m.group()
        if name not in vocab.ERRNO:
            raise self.error(f"unknown errno '{name}'", start)
        self.i = m.end()
        save = self.i
        self.skip_ws()
        if self.peek() == "(":
            paren = self.paren()
            if paren == vocab.STRERROR.get(name):
                return Err(name), None
            return Err(name), paren  # not the strerror: it is the note
        self.i = save
        return Err(name), None

    def paren(self) -> str:
        """`(text)` with balanced parentheses inside; returns the text between the outer ones."""
        text, n = self.text, self.n
        open_at = self.i
        depth = 0
        j = open_at
        while j < n:
            c = text[j]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    self.i = j + 1
                    return text[open_at + 1:j]
            j += 1
        raise self.error("unterminated note: '(' without matching ')'", open_at)


def _strip_comment_space(s: str) -> str:
    return s[1:] if s.startswith(" ") else s


def _parse_version_line(line: str, path: str) -> str | None:
    """Check `# shmemcheck trace 1[: title]`; return the title."""
    m = _VERSION.match(line)
    if m is None:
        raise TraceSyntaxError(path, 1, 1,
                               f"expected header '# shmemcheck trace {FORMAT_VERSION}'")
    d = _DIGITS.match(line, m.end())
    if d is None:
        found = _describe(line[m.end():m.end() + 1])
        raise TraceSyntaxError(path, 1, m.end() + 1,
                               f"expected format version number after 'trace', found {found}")
    if d.group() != str(FORMAT_VERSION):
        raise TraceSyntaxError(path, 1, m.end() + 1,
                               f"unsupported trace format version {d.group()} "
                               f"(this reader knows version {FORMAT_VERSION})")
    rest = line[d.end():]
    if not rest:
        return None
    if rest[0] == ":":
        return _strip_comment_space(rest[1:])
    if rest[0] in " \t":
        return rest.lstrip(" \t") or None
    raise TraceSyntaxError(path, 1, d.end() + 1,
                           f"expected ':' and a title or end of line after the format version, "
                           f"found {_describe(rest[0])}")


def _check_expect(value: str, path: str, lineno: int, col: int) -> str:
    words = value.split()
    if words == ["conforms"] or (len(words) == 2 and words[0] in EXPECT_VERBS):
        return " ".join(words)
    raise TraceSyntaxError(path, lineno, col,
                           "expected 'conforms', 'violates <property>' or 'witnesses <property>' "
                           f"after 'expect:', found '{value}'")


_SCOPE_ITEM = re.compile(r"[a-z][a-z0-9_]*=[0-9]+")


def _check_scope(value: str, path: str, lineno: int, col: int) -> None:
    """`# scope: NAME=N[,NAME=N...]` with ASCII digits (the design checks the names)."""
    at = col
    for item in value.split(","):
        lead = len(item) - len(item.lstrip(" \t"))
        if not _SCOPE_ITEM.fullmatch(item.strip(" \t")):
            raise TraceSyntaxError(path, lineno, at + lead,
                                   f"expected NAME=NUMBER (ASCII digits) in 'scope:', found "
                                   f"'{item.strip()}'")
        at += len(item) + 1


def parse_trace(text: str, path: str = DEFAULT_PATH) -> Trace:
    """Parse a trace file's text; errors are `TraceSyntaxError`s at `path:line:col`.

    Trace.path is `path`, or None when `path` is the default "<string>"."""
    lines = text.split("\n")
    first = lines[0][:-1] if lines[0].endswith("\r") else lines[0]
    title = _parse_version_line(first, path)
    header: dict[str, str] = {}
    header_pos: dict[str, Pos] = {}
    comments: list[str] = []
    steps: list[Step] = []
    parser = _LineParser(path)
    in_header = True
    for lineno in range(2, len(lines) + 1):
        line = lines[lineno - 1]
        if line.endswith("\r"):
            line = line[:-1]
        j = 0
        n = len(line)
        while j < n and line[j] in " \t":
            j += 1
        if j == n:
            continue  # blank line
        if line[j] == "#":
            if in_header:
                content_at = j + 1
                content = line[content_at:]
                if content.startswith(" "):
                    content, content_at = content[1:], content_at + 1
                key = _HEADER_KEY.match(content)
                if key is None:
                    comments.append(content)
                    continue
                name = key.group(1)
                raw = content[key.end():]
                value_col = content_at + key.end() + (len(raw) - len(raw.lstrip(" \t"))) + 1
                if name == "init":  # initial-state choices, read by traces/concretize.py
                    comments.append(content)
                    header_pos.setdefault("init", Pos(lineno, value_col))
                    continue
                if name not in HEADER_KEYS:
                    raise TraceSyntaxError(path, lineno, content_at + 1,
                                           f"unknown header key '{name}' "
                                           "(expected 'design', 'scope', 'expect' or 'init')")
                if name in header:
                    raise TraceSyntaxError(path, lineno, content_at + 1,
                                           f"duplicate header key '{name}'")
                value = raw.strip(" \t")
                if not value:
                    raise TraceSyntaxError(path, lineno, value_col,
                                           f"missing value after '{name}:'")
                if name == "expect":
                    value = _check_expect(value, path, lineno, value_col)
                if name == "scope":
                    _check_scope(value, path, lineno, value_col)
                header[name] = value
                header_pos[name] = Pos(lineno, value_col)
            continue  # a comment between steps: ignored
        in_header = False
        steps.append(parser.step(line, lineno, j))
    return Trace(
        steps=steps,
        design=header.get("design", "memfd"),
        scope=header.get("scope"),
        expect=header.get("expect", "conforms"),
        title=title,
        comments=tuple(comments),
        path=None if path == DEFAULT_PATH else path,
        header_pos=header_pos,
    )


def parse_step(line: str, path: str = DEFAULT_PATH, lineno: int = 1) -> Step:
    """Parse one step line (no header); raises `TraceSyntaxError`."""
    if "\n" in line:
        raise TraceSyntaxError(path, lineno, line.index("\n") + 1,
                               "a step is one line: unexpected line break")
    if line.endswith("\r"):
        line = line[:-1]
    j = 0
    while j < len(line) and line[j] in " \t":
        j += 1
    return _LineParser(path).step(line, lineno, j)


def parse_arg(text: str, path: str = DEFAULT_PATH, lineno: int = 1, col: int = 1) -> Arg:
    """Parse exactly one argument (a number, flag expression, string or struct) that starts at
    column `col` of line `lineno`; raises `TraceSyntaxError` at the column of the problem.
    The strace log reader (traces/strace_log.py) reads a call's arguments with it."""
    arg, after = parse_value_result(text, path, lineno, col)
    if after is not None:
        raise TraceSyntaxError(path, lineno, col + text.index("=>"),
                               "expected end of argument, found '=>'")
    return arg


def parse_value_result(text: str, path: str = DEFAULT_PATH, lineno: int = 1,
                       col: int = 1) -> tuple[Arg, Arg | None]:
    """parse_arg(), and the value written back after strace's `=>` (`[0] => [4096]`), if
    any."""
    p = _LineParser(path)
    pad = " " * (col - 1)  # columns in errors count from the start of the log line
    p.text, p.n, p.i, p.lineno, p.depth = pad + text, col - 1 + len(text), col - 1, lineno, 0
    arg = p.arg()
    p.skip_ws()
    after = None
    if p.text.startswith("=>", p.i):
        p.i += 2
        p.skip_ws()
        after = p.arg()
        p.skip_ws()
    if p.i < p.n:
        raise p.error(f"expected end of argument, {p.found()}")
    return arg, after


def load_trace(path: str) -> Trace:
    """Read and parse a trace file. OSError propagates; bad UTF-8 is a TraceSyntaxError."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        lineno = data.count(b"\n", 0, e.start) + 1
        col = len(data[line_start:e.start].decode("utf-8")) + 1  # valid: precedes the error
        raise TraceSyntaxError(path, lineno, col,
                               f"invalid UTF-8 (byte 0x{data[e.start]:02x})") from None
    return parse_trace(text, path)


# ---- printing ----------------------------------------------------------------------------------
def _build_escapes() -> dict[int, str]:
    table: dict[int, str] = {ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n",
                             ord("\t"): "\\t"}
    for code in range(0x100):
        if code not in table and not chr(code).isprintable():
            table[code] = f"\\x{code:02x}"
    return table


_ESCAPES = _build_escapes()


def format_arg(arg: Arg) -> str:
    """One argument as it appears in a step line."""
    if isinstance(arg, Int):
        return arg.text if arg.text is not None else str(arg.value)
    if isinstance(arg, Sym):
        return arg.text
    if isinstance(arg, Str):
        quoted = '"' + arg.text.translate(_ESCAPES) + '"'
        return quoted + "..." if arg.truncated else quoted
    if isinstance(arg, Ref):
        return f"{arg.name}+{arg.plus}" if arg.plus else arg.name
    if isinstance(arg, Lst):
        return "[" + ", ".join(format_arg(a) for a in arg.items) + "]"
    items = [f"{name}={format_arg(value)}" for name, value in arg.fields]
    return "{" + ", ".join([*items, "..."] if arg.more else items) + "}"


def _format_outcome(outcome: Outcome, note: str | None) -> str:
    if isinstance(outcome, Ret):
        if note is not None and note.startswith(("seals", "flags")) and outcome.value != 0:
            return hex(outcome.value)  # like strace's %#x: F_GET_SEALS, F_GETFL in hex
        return str(outcome.value)
    if isinstance(outcome, Err):
        strerror = vocab.STRERROR.get(outcome.errno)
        return f"-1 {outcome.errno} ({strerror})" if strerror else f"-1 {outcome.errno}"
    if isinstance(outcome, (Sig, New)):
        return outcome.name
    return "?"


def format_step(step: Step) -> str:
    """One canonical step line (no trailing newline)."""
    after = dict(step.updated)
    args = ", ".join(format_arg(a) + (f" => {format_arg(after[i])}" if i in after else "")
                     for i, a in enumerate(step.args))
    line = f"{step.call}({args}) = {_format_outcome(step.outcome, step.note)}"
    if step.proc is not None:  # strace's `[pid 1234]`, or the name fork() gave: `[c1]`
        line = f"[{step.proc}] {line}" if step.proc[0] == "c" else f"[pid {step.proc}] {line}"
    if step.note is not None:
        line += f" ({step.note})"
    if step.comment is not None:
        line += f"  # {step.comment}" if step.comment else "  #"
    return line


def _comment_line(text: str) -> str:
    return f"# {text}" if text else "#"


def format_trace(trace: Trace) -> str:
    """The canonical text of a trace: header lines, then one line per step; ends with '\\n'."""
    if trace.title is None:
        first = f"# shmemcheck trace {FORMAT_VERSION}"
    else:
        first = f"# shmemcheck trace {FORMAT_VERSION}:" + (f" {trace.title}" if trace.title else "")
    out = [first, f"# design: {trace.design}"]
    if trace.scope is not None:
        out.append(f"# scope: {trace.scope}")
    out.append(f"# expect: {trace.expect}")
    out.extend(_comment_line(c) for c in trace.comments)
    out.extend(format_step(s) for s in trace.steps)
    return "\n".join(out) + "\n"
