"""The strace-style trace text format: parser, printer, round trips and error positions."""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model import vocab
from traces.textfmt import (
    TraceSyntaxError,
    format_arg,
    format_step,
    format_trace,
    load_trace,
    parse_step,
    parse_trace,
)
from traces.trace import (
    Any_,
    Arg,
    Err,
    Int,
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

EXAMPLE = """\
# shmemcheck trace 1
# design: memfd
# scope: pages=2,maps=1
# expect: conforms
memfd_create("t", MFD_ALLOW_SEALING) = 3
ftruncate(3, 8192) = 0
mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1
fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = -1 EBUSY (Device or resource busy)
munmap(m1, 8192) = 0
fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0   # a trailing comment
pwrite64(3, "x"..., 4096, 0) = -1 EPERM (Operation not permitted)
fcntl(3, F_GET_SEALS) = 0x9 (seals F_SEAL_SEAL|F_SEAL_WRITE)
store(m1, 0) = SIGSEGV
pin(m1) = p1
unpin(p1) = 0
fchmod(3, 0755) = 0
ioctl(4, KVM_CREATE_GUEST_MEMFD, {size=16384, flags=GUEST_MEMFD_FLAG_MMAP}) = 5
ioctl(4, KVM_SET_USER_MEMORY_REGION2, {slot=0, flags=KVM_MEM_GUEST_MEMFD, \
guest_phys_addr=0, memory_size=16384, userspace_addr=0, guest_memfd_offset=0, guest_memfd=5}) = 0
close(3) = ?
"""


def i(v: int, text: str | None = None) -> Int:
    return Int(v, text)


EXAMPLE_STEPS = [
    Step("memfd_create", (Str("t"), Sym("MFD_ALLOW_SEALING")), Ret(3)),
    Step("ftruncate", (i(3), i(8192)), Ret(0)),
    Step("mmap", (Sym("NULL"), i(8192), Sym("PROT_READ|PROT_WRITE"), Sym("MAP_SHARED"), i(3),
                  i(0)), New("m1")),
    Step("fcntl", (i(3), Sym("F_ADD_SEALS"), Sym("F_SEAL_WRITE")), Err("EBUSY")),
    Step("munmap", (Ref("m1"), i(8192)), Ret(0)),
    Step("fcntl", (i(3), Sym("F_ADD_SEALS"), Sym("F_SEAL_WRITE")), Ret(0),
         comment="a trailing comment"),
    Step("pwrite64", (i(3), Str("x", truncated=True), i(4096), i(0)), Err("EPERM")),
    Step("fcntl", (i(3), Sym("F_GET_SEALS")), Ret(9), note="seals F_SEAL_SEAL|F_SEAL_WRITE"),
    Step("store", (Ref("m1"), i(0)), Sig("SIGSEGV")),
    Step("pin", (Ref("m1"),), New("p1")),
    Step("unpin", (Ref("p1"),), Ret(0)),
    Step("fchmod", (i(3), i(0o755, "0755")), Ret(0)),
    Step("ioctl", (i(4), Sym("KVM_CREATE_GUEST_MEMFD"),
                   Struct((("size", i(16384)), ("flags", Sym("GUEST_MEMFD_FLAG_MMAP"))))), Ret(5)),
    Step("ioctl", (i(4), Sym("KVM_SET_USER_MEMORY_REGION2"),
                   Struct((("slot", i(0)), ("flags", Sym("KVM_MEM_GUEST_MEMFD")),
                           ("guest_phys_addr", i(0)), ("memory_size", i(16384)),
                           ("userspace_addr", i(0)), ("guest_memfd_offset", i(0)),
                           ("guest_memfd", i(5))))), Ret(0)),
    Step("close", (i(3),), Any_()),
]


# ---- the example ---------------------------------------------------------------------------------
def test_example_parses_to_expected_structure() -> None:
    t = parse_trace(EXAMPLE)
    assert t == Trace(steps=EXAMPLE_STEPS, design="memfd", scope="pages=2,maps=1",
                      expect="conforms", title=None, comments=(), path=None)
    assert [s.pos for s in t.steps] == [Pos(n, 1) for n in range(5, 20)]


def test_example_prints_canonically() -> None:
    # The only non-canonical spelling in the example is the three spaces before '#'.
    expected = EXAMPLE.replace("= 0   # a trailing", "= 0  # a trailing")
    assert format_trace(parse_trace(EXAMPLE)) == expected
    assert format_trace(parse_trace(expected)) == expected


def test_path_and_pos() -> None:
    t = parse_trace(EXAMPLE, "t.trace")
    assert t.path == "t.trace"
    assert parse_trace(EXAMPLE).path is None
    s = parse_step("  \tclose(3) = 0", lineno=7)
    assert s.pos == Pos(7, 4)
    assert s == Step("close", (i(3),), Ret(0))  # equality ignores pos


# ---- canonical texts round-trip byte for byte ----------------------------------------------------
CANONICAL = [
    "# shmemcheck trace 1\n# design: memfd\n# expect: conforms\n",
    EXAMPLE.replace("   #", "  #"),
    """\
# shmemcheck trace 1: seal write races a long-term pin
# design: memfd
# scope: pages=1,maps=1,pins=1
# expect: violates seal_write_means_immutable
# found by bfs, depth 6
#
#   indented free text
memfd_create("a\\"b\\\\c\\n\\t\\x01\\x7f\\xa0é€", MFD_CLOEXEC|MFD_ALLOW_SEALING) = 3
ftruncate(3, 0x1000) = 0
mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = m1
gup_pin(m1, 0) = p1
fcntl(3, F_ADD_SEALS, F_SEAL_WRITE) = 0 (pinned page stays writable)  # the bug
dma_write(p1, 0) = 0
fcntl(3, F_GET_SEALS) = 0x8 (seals F_SEAL_WRITE)
fcntl(3, F_GET_SEALS) = 0 (seals 0)
write(3, ""..., 8192) = -1 EPERM (Operation not permitted) (sealed (write))
lseek(3, -1, SEEK_SET) = -1 EINVAL (Invalid argument)
open("/proc/self/fd/3", O_RDWR|0x40) = 4
fchmod(4, 00) = 0
fcntl(4, F_ADD_SEALS, 0x0) = -1 EPERM (Operation not permitted)
f(-0, -0x10, 0XaB, 0x0, {}, {a={b={c=""}}}) = ?  #
close(4) = 0
""",
    """\
# shmemcheck trace 1:
# design: guest_memfd
# expect: witnesses gmem_private_unmappable
open("/dev/kvm", O_RDWR|O_CLOEXEC) = 3
ioctl(3, KVM_CREATE_VM, 0) = 4
ioctl(4, KVM_CREATE_GUEST_MEMFD, {size=8192, flags=GUEST_MEMFD_FLAG_MMAP|\
GUEST_MEMFD_FLAG_INIT_SHARED}) = 5
mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, 5, 0) = -1 EINVAL (Invalid argument)
load(m1, 4095) = SIGBUS
""",
]


@pytest.mark.parametrize("text", CANONICAL)
def test_canonical_text_round_trips(text: str) -> None:
    t = parse_trace(text)
    assert format_trace(t) == text
    assert parse_trace(format_trace(t)) == t


def test_canonical_details() -> None:
    t = parse_trace(CANONICAL[2])
    assert t.title == "seal write races a long-term pin"
    assert t.comments == ("found by bfs, depth 6", "", "  indented free text")
    assert t.expect == "violates seal_write_means_immutable"
    s = t.steps
    assert s[0].args[0] == Str('a"b\\c\n\t\x01\x7f\xa0é€')
    assert s[1].args[1] == Int(4096, "0x1000")
    assert s[4] == Step("fcntl", (i(3), Sym("F_ADD_SEALS"), Sym("F_SEAL_WRITE")), Ret(0),
                        note="pinned page stays writable", comment="the bug")
    assert s[7].note == "seals 0" and s[7].outcome == Ret(0)
    assert s[8].outcome == Err("EPERM") and s[8].note == "sealed (write)"
    assert s[9].args[1] == Int(-1)
    assert s[10].args[1] == Sym("O_RDWR|0x40")
    assert s[11].args[1] == Int(0, "00")
    assert s[13].args == (Int(0, "-0"), Int(-16, "-0x10"), Int(171, "0XaB"), Int(0, "0x0"),
                          Struct(()), Struct((("a", Struct((("b", Struct((("c", Str("")),))),))),)))
    assert s[13].comment == ""
    assert parse_trace(CANONICAL[3]).title == ""


# ---- lenient input, canonical output -------------------------------------------------------------
@pytest.mark.parametrize(("line", "canonical"), [
    ("close ( 3 ) =0", "close(3) = 0"),
    ("f(  )=?", "f() = ?"),
    ("f({ a = 1 ,b=2 })   =   m1", "f({a=1, b=2}) = m1"),
    ("close(3) = -1 EBADF", "close(3) = -1 EBADF (Bad file descriptor)"),
    ("close(3) = -1 EBADF (not open)", "close(3) = -1 EBADF (Bad file descriptor) (not open)"),
    ('write(3, "\\0\\1\\377\\r\\v\\f\\a\\b\\\'\\?\\x41", 1) = 1',
     'write(3, "\\x00\\x01ÿ\\x0d\\x0b\\x0c\\x07\\x08\'?A", 1) = 1'),
    ('write(3, "a\tb", 3) = 3', 'write(3, "a\\tb", 3) = 3'),
    ("fcntl(3, F_GET_SEALS) = 9 (seals F_SEAL_SEAL|F_SEAL_WRITE)",
     "fcntl(3, F_GET_SEALS) = 0x9 (seals F_SEAL_SEAL|F_SEAL_WRITE)"),
    ("read(3, NULL, 0) = 0x10", "read(3, NULL, 0) = 16"),
    ("close(3) = 0#x", "close(3) = 0  # x"),
])
def test_lenient_input(line: str, canonical: str) -> None:
    step = parse_step(line)
    assert format_step(step) == canonical
    assert parse_step(canonical) == step


def test_lenient_file_layout() -> None:
    text = ("# shmemcheck trace 1 my title\r\n\r\n# expect:   witnesses   p  \r\n"
            "\n   # a comment\n  close(3) = 0\n# between steps: ignored\n\n# also ignored\n"
            "close(4) = 0")
    t = parse_trace(text)
    assert t.title == "my title"
    assert t.expect == "witnesses p"
    assert t.design == "memfd" and t.scope is None
    assert t.comments == ("a comment",)
    assert t.steps == [Step("close", (i(3),), Ret(0)), Step("close", (i(4),), Ret(0))]
    assert t.steps[0].pos == Pos(6, 3)
    assert t.steps[1].pos == Pos(10, 1)


# ---- errors: exact file:line:col: message --------------------------------------------------------
H = "# shmemcheck trace 1\n"
H3 = "# shmemcheck trace 1\n# design: memfd\n# expect: conforms\n"

ERRORS = [
    ("", 1, 1, "expected header '# shmemcheck trace 1'"),
    ("memfd_create(\"t\", 0) = 3\n", 1, 1, "expected header '# shmemcheck trace 1'"),
    ("# shmemcheck trace 2\n", 1, 20, "unsupported trace format version 2 "
                                      "(this reader knows version 1)"),
    ("# shmemcheck trace x\n", 1, 20, "expected format version number after 'trace', found 'x'"),
    ("# shmemcheck trace 1x\n", 1, 21, "expected ':' and a title or end of line after the "
                                       "format version, found 'x'"),
    (H + "# design: memfd\n# colour: red\n", 3, 3,
     "unknown header key 'colour' (expected 'design', 'scope', 'expect' or 'init')"),
    (H + "# design: memfd\n# design: guest_memfd\n", 3, 3, "duplicate header key 'design'"),
    (H + "# scope:   \n", 2, 12, "missing value after 'scope:'"),
    (H + "# expect: violates\n", 2, 11, "expected 'conforms', 'violates <property>' or "
                                        "'witnesses <property>' after 'expect:', found 'violates'"),
    (H3 + "mmap(NULL, 8192, PROT_READ=PROT_WRITE, MAP_SHARED, 3, 0) = m1\n", 4, 27,
     "expected ',' or ')' after argument, found '='"),
    (H3 + "mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, 3, 0) = m1\n", 4, 28,
     "no spaces allowed around '|' in a flag expression"),
    (H3 + "mmap(NULL, 8192, PROT_READ| PROT_WRITE, MAP_SHARED, 3, 0) = m1\n", 4, 28,
     "expected flag name or number after '|', found ' ' (no spaces inside flag expressions)"),
    (H3 + "mmap(NULL, 8192, PROT_READ|-1, MAP_SHARED, 3, 0) = m1\n", 4, 28,
     "negative number in a flag expression"),
    (H + "close(3) = -1 EFOO (Foo)\n", 2, 15, "unknown errno 'EFOO'"),
    (H + "close(3) = -1 (Foo)\n", 2, 15, "expected errno name after '-1', found '('"),
    (H + "store(m1, 0) = SIGFPE\n", 2, 16, "unknown signal 'SIGFPE' (known: SIGSEGV, SIGBUS)"),
    (H + "memfd_create(\"t, 0) = 3\n", 2, 14, "unterminated string (missing closing '\"')"),
    (H + "memfd_create(\"t\\", 2, 14, "unterminated string (missing closing '\"')"),
    (H + "write(3, \"a\\qb\", 3) = 3\n", 2, 12, "unknown escape '\\q' in string"),
    (H + "write(3, \"a\\x4\", 3) = 3\n", 2, 12, "expected two hex digits after '\\x' in string"),
    (H + "write(3, \"\\400\", 3) = 3\n", 2, 11, "octal escape '\\400' out of range (max \\377)"),
    (H + "write(3, \"a\x01\", 3) = 3\n", 2, 12,
     "control character U+0001 in string; write it as an escape such as \\x01"),
    (H + "close(3)\n", 2, 9, "expected '=' and the outcome after ')', found end of line"),
    (H + "close 3) = 0\n", 2, 7, "expected '(' after call name 'close', found '3'"),
    (H + "close(3,) = 0\n", 2, 9, "expected argument, found ')'"),
    (H + "close(3\n", 2, 8, "expected ',' or ')' after argument, found end of line"),
    (H + "ftruncate(3, 08) = 0\n", 2, 14, "invalid number '08'"),
    (H + "ftruncate(3, 12ab) = 0\n", 2, 14, "invalid number '12ab'"),
    (H + "ftruncate(3, -) = 0\n", 2, 15, "expected number after '-', found ')'"),
    (H + "ftruncate(3, 4096) = -2\n", 2, 22, "negative return value '-2': failures are written "
                                           "'-1 ERRNO (strerror)'"),
    (H + "ftruncate(3, 4096) = 0x10000000000000000\n", 2, 22,
     "return value '0x10000000000000000' out of range (more than 64 bits)"),
    (H + "ftruncate(3, 4096) = ok\n", 2, 22, "expected return value, '-1 ERRNO', signal, "
                                           "new handle or '?' after '=', found 'ok'"),
    (H + "ftruncate(3, 4096) =\n", 2, 21, "expected return value, '-1 ERRNO', signal, "
                                        "new handle or '?' after '=', found end of line"),
    (H + "close(3) = 0 (note\n", 2, 14, "unterminated note: '(' without matching ')'"),
    (H + "close(3) = 0 (a) (b)\n", 2, 18,
     "expected '#' comment or end of line after the outcome, found '('"),
    (H + "close(3) = 0 trailing\n", 2, 14,
     "expected '(' note, '#' comment or end of line after the outcome, found 't'"),
    (H + "ioctl(4, X, {size 16384}) = 5\n", 2, 19,
     "expected '=' after struct field name 'size', found '1'"),
    (H + "ioctl(4, X, {size=1 flags=0}) = 5\n", 2, 21,
     "expected ',' or '}' after struct field, found 'f'"),
    (H + "ioctl(4, X, {size=1, }) = 5\n", 2, 22,
     "expected field name after ',' in struct, found '}'"),
    (H + "ioctl(4, X, {=1}) = 5\n", 2, 14, "expected field name in struct, found '='"),
    (H + "f(" + "{a=" * 40 + "1" + "}" * 40 + ") = 0\n", 2, 99,
     "structs nested more than 32 deep"),
    (H + "close(3) = 0\n= 0\n", 3, 1,
     "expected system call name, '#' comment or blank line, found '='"),
    (H + "  \x0b\n", 2, 3, "expected system call name, '#' comment or blank line, found U+000B"),
    (H + "f('x') = 0\n", 2, 3, "expected argument, found \"'\""),
]


@pytest.mark.parametrize(("text", "line", "col", "msg"), ERRORS)
def test_error_position_and_message(text: str, line: int, col: int, msg: str) -> None:
    with pytest.raises(TraceSyntaxError) as info:
        parse_trace(text, "t.trace")
    e = info.value
    assert (e.path, e.line, e.col, e.msg) == ("t.trace", line, col, msg)
    assert str(e) == f"t.trace:{line}:{col}: {msg}"


def test_error_pickles() -> None:
    e = TraceSyntaxError("t.trace", 4, 27, "boom")
    e2 = pickle.loads(pickle.dumps(e))
    assert str(e2) == "t.trace:4:27: boom" and (e2.line, e2.col) == (4, 27)


def test_columns_count_characters() -> None:
    with pytest.raises(TraceSyntaxError) as info:
        parse_trace(H + 'write(3, "ééé", 3) = x\n')
    assert info.value.col == 22


def test_load_trace(tmp_path: Path) -> None:
    p = tmp_path / "t.trace"
    p.write_text(EXAMPLE, encoding="utf-8")
    t = load_trace(str(p))
    assert t.path == str(p)
    assert t.steps == EXAMPLE_STEPS


def test_load_trace_bad_utf8(tmp_path: Path) -> None:
    p = tmp_path / "bad.trace"
    p.write_bytes(H.encode() + b"# ok\nclose(\xc3\xa9\xff) = 0\n")
    with pytest.raises(TraceSyntaxError) as info:
        load_trace(str(p))
    e = info.value
    assert (e.line, e.col) == (3, 8)
    assert str(e) == f"{p}:3:8: invalid UTF-8 (byte 0xff)"


# ---- hypothesis: the printable domain ------------------------------------------------------------
HANDLE = re.compile(r"[mpc][0-9]+")  # textfmt._HANDLE: mappings, pins, processes
HEADER_KEY = re.compile(r"[a-z][a-z0-9_-]*:(?=[ \t]|$)")

IDENT_START = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
idents = st.builds(lambda a, b: a + b, st.sampled_from(IDENT_START),
                   st.text(IDENT_START + "0123456789", max_size=10))
handles = st.builds(lambda a, b: a + str(b), st.sampled_from("mpc"), st.integers(0, 9999))
#: an address inside a mapping: m1+8192
addresses = st.builds(lambda n, plus: Ref(f"m{n}", plus), st.integers(0, 9999),
                      st.integers(1, 2**64))
line_text = st.text(st.characters(exclude_characters="\n\r"), max_size=20)


@st.composite
def number_spellings(draw: st.DrawFn, signed: bool = True) -> Int:
    """An Int and a spelling of it: decimal, hex (either case, padded) or leading-0 octal."""
    kind = draw(st.sampled_from(["dec", "hex", "oct"]))
    v = draw(st.integers(0, 2**70))
    neg = signed and draw(st.booleans())
    sign = "-" if neg else ""
    value = -v if neg else v
    if kind == "dec":
        return Int(value, "-0" if neg and v == 0 else None)
    pad = "0" * draw(st.integers(0, 2))
    if kind == "hex":
        digits = format(v, "X" if draw(st.booleans()) else "x")
        return Int(value, sign + draw(st.sampled_from(["0x", "0X"])) + pad + digits)
    spelling = sign + "0" + pad + format(v, "o")
    return Int(value, spelling)


def flag_term() -> st.SearchStrategy[str]:
    return st.one_of(idents, number_spellings(signed=False).map(format_arg))


syms = st.one_of(
    idents.filter(lambda s: not HANDLE.fullmatch(s)),
    st.lists(flag_term(), min_size=2, max_size=4).map("|".join),
).map(Sym)
strs = st.builds(Str, st.text(max_size=12), st.booleans())
leaf_args: st.SearchStrategy[Arg] = st.one_of(number_spellings(), syms, strs, handles.map(Ref),
                                              addresses)
args: st.SearchStrategy[Arg] = st.recursive(
    leaf_args,
    lambda inner: st.lists(st.tuples(idents, inner), max_size=4).map(
        lambda fields: Struct(tuple(fields))),
    max_leaves=8,
)

paren_free = st.text(st.characters(exclude_characters="()\n\r"), max_size=10)
balanced = st.recursive(
    paren_free,
    lambda inner: st.tuples(inner, inner, inner).map(lambda t: f"{t[0]}({t[1]}){t[2]}"),
    max_leaves=4,
)
notes = st.one_of(st.none(), balanced, balanced.map(lambda s: "seals" + s))
outcomes: st.SearchStrategy[Outcome] = st.one_of(
    st.integers(0, 2**64 - 1).map(Ret),
    st.sampled_from(sorted(vocab.ERRNO)).map(Err),
    st.sampled_from(sorted(vocab.SIGNALS)).map(Sig),
    handles.map(New),
    st.just(Any_()),
)
steps = st.builds(Step, idents, st.lists(args, max_size=6).map(tuple), outcomes, notes,
                  st.one_of(st.none(), line_text))

header_value = line_text.filter(lambda s: s.strip(" \t") == s and s != "")
prop_name = st.text(st.characters(exclude_characters="\n\r"), min_size=1, max_size=12).filter(
    lambda s: not any(c.isspace() for c in s))
expects = st.one_of(
    st.just("conforms"),
    st.tuples(st.sampled_from(["violates", "witnesses"]), prop_name).map(" ".join),
)
scope_item = st.tuples(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True),
                       st.integers(0, 10**6)).map(lambda kv: f"{kv[0]}={kv[1]}")
scopes = st.lists(scope_item, min_size=1, max_size=4).map(",".join)
traces = st.builds(
    Trace,
    steps=st.lists(steps, max_size=6),
    design=header_value,
    scope=st.one_of(st.none(), scopes),
    expect=expects,
    title=st.one_of(st.none(), line_text),
    comments=st.lists(line_text.filter(lambda s: not HEADER_KEY.match(s)), max_size=3).map(
        tuple),
)


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(traces)
def test_print_then_parse_is_identity(t: Trace) -> None:
    text = format_trace(t)
    back = parse_trace(text)
    assert back == t
    assert format_trace(back) == text


@settings(max_examples=400)
@given(st.lists(args, max_size=6).map(tuple))
def test_args_round_trip(a: tuple[Arg, ...]) -> None:
    step = Step("f", a, Ret(0))
    assert parse_step(format_step(step)) == step


# ---- hypothesis: nothing but TraceSyntaxError, for any input -------------------------------------
def parses_or_syntax_error(text: str) -> None:
    try:
        parse_trace(text, "fuzz.trace")
    except TraceSyntaxError as e:
        assert e.line >= 1 and e.col >= 1
        assert str(e).startswith(f"fuzz.trace:{e.line}:{e.col}: ")


@settings(max_examples=500)
@given(st.text())
def test_any_text_raises_only_syntax_errors(text: str) -> None:
    parses_or_syntax_error(text)


FRAGMENTS = ['"', "\\", "(", ")", "{", "}", "=", ",", "|", "-", "-1", " ", "\t", "#", "\n", "\r",
             "...", "0x", "07", "9", "m1", "p2", "x", "EBUSY", "SIGBUS", "SIGX", "?", "\\x", "é",
             "# design: ", "# expect: ", "close", "f(", ") = ", "0"]


@settings(max_examples=1000)
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3)), max_size=40))
def test_fragment_soup_raises_only_syntax_errors(parts: list[str]) -> None:
    parses_or_syntax_error(H + "".join(parts))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(traces, st.data())
def test_mutated_traces_raise_only_syntax_errors(t: Trace, data: st.DataObject) -> None:
    text = format_trace(t)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        if data.draw(st.booleans()):
            text = text[:at] + text[at + 1:]
        else:
            text = text[:at] + data.draw(st.sampled_from(FRAGMENTS)) + text[at:]
    parses_or_syntax_error(text)


@settings(max_examples=300)
@given(st.binary())
def test_any_bytes_raise_only_syntax_errors(data: bytes) -> None:
    for prefix in (b"", H.encode()):
        fd, name = tempfile.mkstemp(suffix=".trace")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(prefix + data)
            try:
                load_trace(name)
            except TraceSyntaxError as e:
                assert e.path == name and e.line >= 1 and e.col >= 1
        finally:
            os.unlink(name)


# ---- size (timings belong in bench/, never in tests) -----------------------------------
def test_parses_ten_thousand_lines() -> None:
    body = EXAMPLE.split("\n", 4)[4]
    text = H3 + body * (10_000 // body.count("\n") + 1)
    assert text.count("\n") > 10_000
    t = parse_trace(text)
    assert len(t.steps) > 10_000


def test_an_address_inside_a_mapping() -> None:
    """`m1+8192` (decimal or hex bytes, no spaces) is an address inside mapping m1; it prints
    back in decimal. A pin, a zero or a missing offset is a syntax error at its column."""
    s = parse_step("munmap(m1+0x2000, 4096) = 0")
    assert s.args[0] == Ref("m1", 8192) and format_step(s) == "munmap(m1+8192, 4096) = 0"
    for line, col, msg in (("unpin(p1+4096) = 0", 9, "only a mapping"),
                           ("munmap(m1+0, 4096) = 0", 11, "must be positive"),
                           ("munmap(m1+, 4096) = 0", 11, "expected a number of bytes")):
        with pytest.raises(TraceSyntaxError) as e:
            parse_step(line)
        assert (e.value.col, msg in str(e.value)) == (col, True), str(e.value)
