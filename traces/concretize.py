"""Between engine runs and strace-style traces.

An engine's run names handle *kinds* (an O_RDWR description, a shared writable mapping); a trace
names handles (fd 3, m1, p1). `Handles` is the table of live handles; `render_step` prints a
step with the action's own call spec (model/lang/callspec.py) and `resolve_step` parses a trace
line back into (action, parameters) with the same specs. Which handle of a kind a step created,
retagged or destroyed is read off the design's handle counters (fields with `handle=`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache

from model.lang.action import DESC_DEFAULT, MAP_DEFAULT, Action, Param, outcome_text
from model.lang.callspec import (
    Argv,
    Bytes,
    C,
    Choice,
    CString,
    Fd,
    Fields,
    Flags,
    Harmless,
    IoCnt,
    IoVec,
    MapRef,
    MinFd,
    NewFd,
    Num,
    Out,
    PinRef,
    ProcFd,
    Ptr,
    ShmPath,
    Span,
)
from model.lang.design import Design
from model.vocab import ERRNO_NAME, SIGNAL_NAME, parse_flags, render_enum, render_flags
from traces.handles import Handles
from traces.initstate import init_choices, init_comment, init_line, initial_state
from traces.outputs import OUT, out_text, out_value, record_output
from traces.pieces import map_ref, rebase, reshape
from traces.refusal import Outside, ResolveError
from traces.run import ARun, AStep
from traces.syscalls import FD_LIMIT, TraceError, const, iovec_items, string_bytes
from traces.trace import (
    Any_,
    Arg,
    Err,
    Int,
    Lst,
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

FAMILY_OF = {Fd: "fd", ProcFd: "fd", MapRef: "map", PinRef: "pin"}
#: keys of a resolved step's `used` table beyond its handle parameters: the number a NewFd
#: argument names (dup2/dup3's newfd) and the least number of a MinFd (F_DUPFD's arg)
NEW_FD, MIN_FD = "=newfd", ">=fd"
#: `used` key: the name a ShmPath argument spells (the file's name on /dev/shm)
SHM_NAME = "#shm"


def _family_fields(design: Design, family: str) -> list[str]:
    return [f.name for f in design.schema.handles(family)]


def _handle_param(action: Action) -> dict[str, str]:
    """param name -> handle family, for the params that name a handle (also inside structs)."""
    out: dict[str, str] = {}

    def walk(specs: tuple[object, ...]) -> None:
        for spec in specs:
            if isinstance(spec, Fields):
                walk(tuple(s for _, s in spec.items))
            elif (fam := FAMILY_OF.get(type(spec))) is not None:
                out[spec.param] = fam  # type: ignore[attr-defined]

    for _, args in action.spellings():
        walk(args)
    return out


def _scale(spec: Num | Span, st: Mapping[str, int]) -> int:
    return spec.scale if isinstance(spec.scale, int) else spec.scale(st)


def page_scale(design: Design) -> Callable[[Mapping[str, int]], int] | None:
    """Bytes per model page in a state, from the action specs (a Span's or Num's scale)."""
    fixed: int | None = None
    for a in design.actions:
        for spec in a.args:
            if not isinstance(spec, (Span, Num)):
                continue
            if not isinstance(spec.scale, int):
                return spec.scale
            if isinstance(spec, Span) and fixed is None:
                fixed = spec.scale
    if fixed is None:
        return None
    value = fixed
    return lambda st: value


def size_scale(design: Design) -> Callable[[Mapping[str, int]], int] | None:
    """Bytes per unit of the state's `size` field: 1 when it counts bytes (nat_bytes: memfd's
    since issue 14), else the model page (page_scale); None when nothing says bytes."""
    f = design.schema.by_name.get("size")
    if f is not None and f.sort.unit is not None:
        return lambda st: 1
    return page_scale(design)


@cache
def arg_from_text(text: str) -> Arg:
    """Parse one strace argument fragment (a spec constant) with the trace parser."""
    from traces.textfmt import parse_trace

    t = parse_trace(f"# shmemcheck trace 1\nx({text}) = 0\n", "<spec>")
    return t.steps[0].args[0]


def _render_arg(spec: object, params: Mapping[str, int], st: Mapping[str, int],
                used: Mapping[str, str], after: Mapping[str, int] | None = None) -> Arg:
    if isinstance(spec, Out):
        return arg_from_text(out_text(spec, out_value(spec, st if after is None else after)))
    if isinstance(spec, (Bytes, C)):
        return arg_from_text(spec.text)
    if isinstance(spec, Fd):
        return Int(int(used[spec.param]))
    if isinstance(spec, ProcFd):
        return Str(f"/proc/self/fd/{used[spec.param]}")
    if isinstance(spec, ShmPath):
        return Str(spec.prefix + used.get(SHM_NAME, spec.name))
    if isinstance(spec, (MapRef, PinRef)):
        return Ref(used[spec.param])
    if isinstance(spec, Flags):
        # through the parser, so a flag word with no named bits comes back as the Int it is
        v = params[spec.param]
        return arg_from_text(render_enum(v, dict(spec.family), spec.zero) if spec.enum else
                             render_flags(v, dict(spec.family), spec.zero))
    if isinstance(spec, Num):
        v = params[spec.param] * _scale(spec, st)
        return Int(v, oct(v).replace("0o", "0") if spec.octal else None)
    if isinstance(spec, Span):
        return Int(spec.pages * _scale(spec, st))
    if isinstance(spec, Choice):
        kept = params.get(spec.into, 0) if spec.into else 0
        names = [n for n in spec.keep if kept & const(n) == const(n)]
        return arg_from_text("|".join([spec.table[params[spec.param]], *names]))
    if isinstance(spec, CString):
        return arg_from_text(spec.text[params[spec.param]])
    if isinstance(spec, Harmless):
        return arg_from_text(spec.values[0] if spec.values else "0")
    if isinstance(spec, Argv):
        return arg_from_text(spec.text)
    if isinstance(spec, Fields):
        return Struct(tuple((n, _render_arg(s, params, st, used, after)) for n, s in spec.items
                            if not (isinstance(s, Harmless) and s.optional)),
                      more=bool(spec.others))
    if isinstance(spec, IoVec):
        return Lst((Struct((("iov_base", arg_from_text(spec.data)),
                            ("iov_len", Int(params[spec.param])))),))
    if isinstance(spec, IoCnt):
        return Int(1)
    if isinstance(spec, Ptr):
        return Lst((_render_arg(spec.inner(), params, st, used),))
    raise TypeError(spec)


def _outcome(action: Action, used: Mapping[str, str], code: int,
             created: tuple[str, str] | None) -> Outcome:
    """A step's outcome in trace form: an errno or signal, the handle it created, the mapping
    it kept (Action.resizes: mremap returns the mapping it resized or moved), or a number."""
    if code < 0:
        text = outcome_text(code)
        return Sig(text) if text in SIGNAL_NAME.values() else Err(text)
    if created is not None:
        fam, hid = created
        return Ret(int(hid)) if fam == "fd" else New(hid)
    if action.resizes is not None:
        return New(used[_map_param(action)])
    return Ret(code)


def apply_handles(design: Design, h: Handles, used: Mapping[str, str],
                  hparams: Mapping[str, str], params: Mapping[str, int],
                  before: Mapping[str, int], after: Mapping[str, int],
                  want: int | None = None, *, action: Action | None = None,
                  out: int = 0) -> tuple[str, str] | None:
    """Update the handle table from the counter changes of one step; return a created handle.
    A created descriptor gets the number `used` fixes (NEW_FD), else the trace's `want` when
    free and at least MIN_FD (see Handles.new)."""
    created: tuple[str, str] | None = None
    reshaped = reshape(h, action, out, used, params, before, after,
                       _family_fields(design, "map"))
    for fam in ("fd", "map", "pin"):
        fields = _family_fields(design, fam)
        if not fields or (fam == "map" and reshaped):
            continue
        ups = [i for i, f in enumerate(fields) for _ in range(max(0, after[f] - before[f]))]
        downs = [i for i, f in enumerate(fields) for _ in range(max(0, before[f] - after[f]))]
        mine = [hid for p, hid in used.items() if hparams.get(p) == fam]
        for k in downs:
            victim = next((x for x in mine if h.live[fam].get(x) == k), None)
            if victim is None:
                victim = h.pick(fam, k)
            if ups:
                h.live[fam][victim] = ups.pop(0)  # retagged (mprotect)
            else:
                del h.live[fam][victim]
                if fam == "map":
                    h.drop_map(victim)
        for k in ups:
            if fam == "fd" and NEW_FD in used:
                created = (fam, h.new(fam, k, int(used[NEW_FD]), int(used[NEW_FD])))
            else:
                created = (fam, h.new(fam, k, want, int(used.get(MIN_FD, 0))))
    return created


def render_step(design: Design, h: Handles, step: AStep, before: Mapping[str, int]) -> Step:
    action = design.action(step.action)
    hparams = _handle_param(action)
    used = {p: h.pick(fam, step.params[p]) for p, fam in hparams.items()}
    if h.shm is not None:
        used[SHM_NAME] = h.shm
    args = tuple(_render_arg(s, step.params, before, used, step.after) for s in action.args
                 if not (isinstance(s, Harmless) and s.optional))
    created = apply_handles(design, h, used, hparams, step.params, before, step.after,
                            action=action, out=step.out)
    after_step(action, h, used, step.params, step.out, created, step.after)
    out = _outcome(action, used, step.out, created)
    note = action.note(step.out) if action.note and step.out >= 0 else None
    return Step(action.call, args, out, note)


def run_to_trace(design: Design, run: ARun, *, expect: str = "conforms",
                 scope: str | None = None, title: str | None = None) -> Trace:
    h = Handles()
    steps = []
    st = run.init
    for s in run.steps:
        steps.append(render_step(design, h, s, st))
        st = s.after
    init_note = init_comment(design, run.init)
    comments = (init_note,) if init_note else ()
    return Trace(steps, design=design.name, scope=scope, expect=expect, title=title,
                 comments=comments)


# ---- parsing a trace line into an action instance -----------------------------------------
#: Byte values (offsets, lengths) from this bound up are refused: near loff_t's limit
#: (LLONG_MAX, which is also shmem's and hugetlbfs's s_maxbytes) the kernel's overflow checks
#: answer EINVAL or EFBIG (rw_verify_area(), generic_write_checks(), vfs_fallocate(),
#: inode_newsize_ok()), and the model does not represent them.
BYTE_LIMIT = 1 << 62


def same_constant(arg: Arg, text: str) -> bool:
    """The trace's argument is the spec's constant: as written, or by the value the kernel
    sees (9 is MADV_REMOVE, 0 is NULL, O_CREAT|O_RDWR is O_RDWR|O_CREAT), evaluated as the
    executor evaluates it (traces/syscalls.py const)."""
    want = arg_from_text(text)
    if arg == want:
        return True

    def value(a: Arg) -> int | None:
        if isinstance(a, Int):
            return a.value
        if isinstance(a, Sym) and "PAGE" not in (w.strip() for w in a.text.split("|")):
            try:  # PAGE is the executor's page, 2 MiB on hugetlbfs: never a constant here
                return const(a.text)
            except TraceError:
                return None
        return None

    v = value(arg)
    return v is not None and v == value(want)


def _text(arg: Arg) -> str:
    from traces.textfmt import format_arg

    t = format_arg(arg)
    return t if len(t) <= 40 else t[:37] + "..."


def _num_range(p: Param, sc: int) -> str:
    """The byte values a scaled natural takes in the model, for a message."""
    top = p.sort.bound({}) if p.sort.kind != "nat" or p.sort.fixed is not None else None
    if top is None:
        return f"a whole number of {sc}-byte pages"
    if top == 1:
        return f"0 or {sc} bytes" if sc > 1 else "0 or 1"
    return f"0..{top * sc}" + (f" bytes in steps of {sc}" if sc > 1 else "")


#: A parameter the trace does not determine: param -> (the other values it may have, why).
#: Replay judges the step only if every value gives the same outcome and state.
Alternatives = dict[str, tuple[tuple[int, ...], str]]


def _fd_number(arg: Arg) -> int | None:
    """A descriptor argument's number: a number, or a name such as AT_FDCWD."""
    if isinstance(arg, Int):
        return arg.value
    if isinstance(arg, Sym):
        try:
            return const(arg.text)
        except TraceError:
            return None
    return None


def _cstring(spec: CString, arg: Arg, call: str, params: dict[str, int],
             alts: Alternatives) -> str | None:
    """memfd_create's name: NULL, or a string judged by its length as the kernel reads it
    (the bytes before the first NUL, encoded as the executor passes them)."""
    if arg == Sym("NULL") or (isinstance(arg, Int) and arg.value == 0):
        params[spec.param] = spec.null
        return None
    if isinstance(arg, Int):
        return Outside(f"{call} {spec.param} {_text(arg)}: an address; the model knows a "
                       "string or NULL (EFAULT)")
    if not isinstance(arg, Str):
        return "expected a string or NULL"
    raw = string_bytes(arg.text)
    shown = raw.find(b"\0")
    if shown >= 0 or not arg.truncated:  # the kernel stops at the first NUL
        n = shown if shown >= 0 else len(raw)
        params[spec.param] = spec.long if n > spec.max_len else spec.short
        return None
    # strace prints "..." when the string goes on past the bytes shown: at least one more
    least = len(raw) + 1
    if least > spec.max_len:
        params[spec.param] = spec.long
        return None
    params[spec.param] = spec.short
    alts[spec.param] = ((spec.long,), (
        f"{call} {spec.param} {_text(arg)}: strace shows only its first {len(raw)} bytes; "
        f"a name of {least}..{spec.max_len} bytes and a longer one (over {spec.max_len}, "
        "EINVAL) give different outcomes here, so the model cannot judge it (record the "
        f"trace with strace -s {spec.max_len + 1} or more)"))
    return None


def _shm_path(spec: ShmPath, arg: Arg, h: Handles, used: dict[str, str]) -> str | None:
    """A /dev/shm path: the trace's one tmpfs name (the first a successful call spelled)."""
    if not isinstance(arg, Str):
        return f'expected "{spec.prefix}NAME"'
    if not arg.text.startswith(spec.prefix):
        return Outside(f"path {_text(arg)}: the model opens {spec.prefix}NAME here")
    name = arg.text[len(spec.prefix):]
    raw = string_bytes(name)
    if arg.truncated or not raw or b"/" in raw or b"\0" in raw or raw in (b".", b".."):
        return Outside(f"path {_text(arg)}: the model knows a file directly on /dev/shm, by "
                       "its whole name")
    if h.shm is not None and name != h.shm:
        return Outside(f"path {_text(arg)}: the trace's /dev/shm file is {h.shm!r}; another "
                       "name is another file, and the model holds one inode")
    used[SHM_NAME] = name
    return None


#: `used` key: the number of iovecs an IoVec argument listed (its IoCnt must say the same)
IOV_COUNT = "#iovcnt"
#: UIO_MAXIOV (include/uapi/linux/uio.h UIO_MAXIOV = 1024): import_iovec()'s EINVAL past it
UIO_MAXIOV = 1024


def _iovec(spec: IoVec, arg: Arg, call: str, params: dict[str, int], used: dict[str, str],
           p: Param) -> str | None:
    """An iovec array: every element {iov_base=..., iov_len=N}; the parameter is the total."""
    try:
        items = iovec_items(arg, call)
    except TraceError as e:
        return str(e).removeprefix(f"{call}: ")
    for k, (_, n) in enumerate(items):
        if n < 0:
            return Outside(f"{call} iovec {k + 1}: a negative iov_len ({_text(arg)}) is "
                           "import_iovec()'s EINVAL, which the model does not hold")
    total = sum(n for _, n in items)
    if len(items) > UIO_MAXIOV:
        return Outside(f"{call}: {len(items)} iovecs, more than UIO_MAXIOV "
                       f"({UIO_MAXIOV}): import_iovec()'s EINVAL is not modelled")
    why = p.outside(total)
    if why:
        return Outside(f"{call} {spec.param} {total} (the iovecs' total): {why}")
    params[spec.param] = total
    used[IOV_COUNT] = str(len(items))
    return None


def _choice(spec: Choice, arg: Arg) -> tuple[int, int] | None:
    """The choice value the argument spells and the `keep` flags it adds (Choice.into): as
    written, or (with `extra` or `keep` flags) by its value with those flags taken out."""
    for v, text in spec.table.items():
        if arg == arg_from_text(text):
            return v, 0
    if not (spec.extra or spec.keep) or not isinstance(arg, (Sym, Int)):
        return None
    try:
        keep = const("|".join(spec.keep)) if spec.keep else 0
        mask = (const("|".join(spec.extra)) if spec.extra else 0) | keep
        got = arg.value if isinstance(arg, Int) else const(arg.text)
        for v, text in spec.table.items():
            if got & ~mask == const(text) & ~mask:
                # a kept name whose bits are all there (O_SYNC holds O_DSYNC's)
                return v, got & keep
    except TraceError:
        return None
    return None


def _match(spec: object, arg: Arg, st: Mapping[str, int], h: Handles,
           params: dict[str, int], used: dict[str, str], action: Action,
           call: str | None = None, alts: Alternatives | None = None) -> str | None:
    """Bind params from one argument; return an error text (an `Outside` when the argument
    is well formed but not a value the model judges exactly) or None."""
    pinfo = {p.name: p for p in action.params}
    call = call or action.call
    if isinstance(spec, C):
        return None if same_constant(arg, spec.text) else \
            Outside(f"{call} argument {_text(arg)}: the model's is always {spec.text}")
    if isinstance(spec, Harmless):
        if not spec.values:
            return None if _fd_number(arg) is not None else "expected a number"
        return None if any(same_constant(arg, t) for t in spec.values) else \
            Outside(f"{call} argument {_text(arg)}: the model's is one of "
                    + ", ".join(spec.values))
    if isinstance(spec, (Fd, ProcFd)):
        if isinstance(spec, ProcFd):
            if not (isinstance(arg, Str) and arg.text.startswith("/proc/self/fd/")
                    and arg.text[14:].isascii() and arg.text[14:].isdigit()):
                return Outside(f"path {_text(arg)}: the model opens /proc/self/fd/N here") \
                    if isinstance(arg, Str) else 'expected "/proc/self/fd/N"'
            hid = str(int(arg.text[14:]))
            if hid not in h.live["fd"]:
                return Outside(f"{call} {_text(arg)}: fd {hid} is not open at this point of "
                               "the trace; the model has no rule for a descriptor the trace "
                               "did not create (the kernel answers ENOENT for a closed one)")
        else:
            num = _fd_number(arg)
            if num is None:
                return "expected a file descriptor"
            hid = str(num)
            if hid not in h.live["fd"]:
                what = "is negative" if num < 0 else "is not open at this point of the trace"
                return Outside(f"{call} fd {_text(arg)} {what}; the model has no rule for a "
                               "descriptor the trace did not create (the kernel answers "
                               "EBADF for a closed one)")
        params[spec.param] = h.live["fd"][hid]
        used[spec.param] = hid
        return None
    if isinstance(spec, (NewFd, MinFd)):
        num = _fd_number(arg)
        if num is None or not isinstance(arg, Int):
            return "expected a descriptor number"
        if not 0 <= num < FD_LIMIT:
            what = "EBADF" if isinstance(spec, NewFd) else "EINVAL"
            return Outside(f"{call} argument {_text(arg)}: the model knows descriptor numbers "
                           f"0..{FD_LIMIT - 1} (RLIMIT_NOFILE's default soft limit); the "
                           f"kernel's {what} outside RLIMIT_NOFILE is not modelled")
        if isinstance(spec, MinFd):
            used[MIN_FD] = str(num)
            return None
        if str(num) in used.values():
            return Outside(f"{call} onto its own descriptor {num}: the kernel returns it "
                           "unchanged for dup2 (EINVAL for dup3); the model has no rule for it")
        used[NEW_FD] = str(num)
        return None
    if isinstance(spec, CString):
        return _cstring(spec, arg, call, params, alts if alts is not None else {})
    if isinstance(spec, ShmPath):
        return _shm_path(spec, arg, h, used)
    if isinstance(spec, MapRef):
        return map_ref(spec, arg, st, h, params, used, call)
    if isinstance(spec, PinRef):
        if not isinstance(arg, Ref):
            return "expected a pin (p1, ...)"
        if arg.name not in h.live["pin"]:
            return f"{arg.name} does not exist at this point of the trace"
        params[spec.param] = h.live["pin"][arg.name]
        used[spec.param] = arg.name
        return None
    if isinstance(spec, Flags):
        if isinstance(arg, Int):
            v = arg.value
        elif not isinstance(arg, Sym):
            return "expected flags"
        else:
            try:
                v = parse_flags(arg.text, dict(spec.family))
            except KeyError as e:
                return f"unknown flag {e.args[0]}"
        why = pinfo[spec.param].outside(v)
        if why:
            return Outside(f"{call} {spec.param} {_text(arg)}: {why}")
        params[spec.param] = v
        return None
    if isinstance(spec, Ptr):
        if same_constant(arg, "NULL"):
            return Outside(f"{call} {spec.param} NULL: {spec.null}")
        if not (isinstance(arg, Lst) and len(arg.items) == 1):
            return "expected [N] (a pointer to a number, as strace prints it) or NULL"
        return _match(spec.inner(), arg.items[0], st, h, params, used, action, call, alts)
    if isinstance(spec, (Num, Span)):
        if not isinstance(arg, Int):
            return "expected a number"
        sc = _scale(spec, st)
        what = f"{call} {spec.param if isinstance(spec, Num) else 'length'} {_text(arg)}"
        if isinstance(spec, Num) and pinfo[spec.param].sort.kind == "int":
            # a machine integer in bytes (loff_t, size_t): every value of the type is judged
            # by the rule body, exactly (replay evaluates over Python integers)
            v = arg.value * sc
            srt = pinfo[spec.param].sort
            if srt.lo == 0 and srt.hi == (1 << 64) - 1 and -(1 << 63) <= v < 0:
                v += 1 << 64  # a size_t written signed: the register holds the same bits
            why = dict(spec.refuse).get(v) or pinfo[spec.param].outside(v)
            if why:
                return Outside(f"{what}: {why}")
            params[spec.param] = v
            return None
        if arg.value < 0:
            return Outside(f"{what}: negative; the model's offsets, lengths and counts are "
                           ">= 0 (the kernel's EINVAL for a negative value is not modelled)")
        bounded = isinstance(spec, Num) and pinfo[spec.param].exact is not None
        if arg.value >= BYTE_LIMIT and not bounded:  # a parameter with `exact` states its own
            return Outside(f"{what}: 2^62 or more; the model does not represent the kernel's "
                           "checks near the loff_t limit (EINVAL/EFBIG)")
        if isinstance(spec, Span):
            return None if arg.value == spec.pages * sc else \
                Outside(f"{what}: the model's is always {spec.pages * sc} bytes")
        if arg.value % sc:
            return Outside(f"{what}: not a multiple of the model's page ({sc} bytes here)")
        p = pinfo[spec.param]
        v = arg.value // sc
        why = p.outside(v)
        if why:
            if p.sort.kind == "nat" and p.sort.fixed is not None and v > p.sort.fixed:
                why = f"the model's {spec.param} is {_num_range(p, sc)}"
            return Outside(f"{what}: {why}")
        if spec.param in params and params[spec.param] != v:  # two fields, one parameter
            return Outside(f"{what}: the model ties it to the value {params[spec.param] * sc}")
        params[spec.param] = v
        return None
    if isinstance(spec, Choice):
        got = _choice(spec, arg)
        if got is not None:
            params[spec.param] = got[0]
            if spec.into is not None:
                params[spec.into] = got[1]
            return None
        shown = [t if len(t) <= 20 else t[:17] + "..." for t in spec.table.values()]
        if len(shown) > 6:
            shown = [*shown[:5], "..."]
        return Outside(f"{call} {spec.param} {_text(arg)}: the model's {spec.param} is one of "
                       + ", ".join(shown))
    if isinstance(spec, IoVec):
        return _iovec(spec, arg, call, params, used, pinfo[spec.param])
    if isinstance(spec, IoCnt):
        n = used.get(IOV_COUNT)
        if not isinstance(arg, Int):
            return "expected the number of iovecs"
        if n is None or arg.value != int(n):
            return Outside(f"{call} iovcnt {_text(arg)}: the array lists {n} iovecs (strace "
                           "prints them all; a count that differs is not modelled: EINVAL "
                           "past UIO_MAXIOV, EFAULT past the array)")
        return None
    if isinstance(spec, Out):
        if spec.cell and same_constant(arg, "NULL"):
            return Outside(f"{call} {spec.source} to NULL: the kernel's put_user() faults (EFAULT)")
        return record_output(spec, spec.source, arg, used)
    if isinstance(spec, Bytes):
        return None if isinstance(arg, (Str, Int)) else "expected a buffer (a string)"
    if isinstance(spec, Argv):
        ok = (isinstance(arg, Lst) and all(isinstance(x, Str) for x in arg.items)) \
            or isinstance(arg, Int) or (isinstance(arg, Sym) and arg.text == "NULL")
        return None if ok else 'expected a string list ["...", ...] or an address'
    if isinstance(spec, Fields):
        if same_constant(arg, "NULL"):
            return Outside(f"{call} NULL: the kernel's copy of the struct faults (EFAULT)")
        if not isinstance(arg, Struct):  # a struct the call fills: a failed one shows its address
            return None if isinstance(arg, Int) and all(
                isinstance(s, Out) for _, s in spec.items) else "expected a struct {...}"
        given = dict(arg.fields)
        unknown = set(given) - {n for n, _ in spec.items}
        if unknown and not spec.others:
            return f"unknown struct field {sorted(unknown)[0]}"
        if arg.more and not spec.others:
            return "expected every field of the struct, not '...'"
        for n, s in spec.items:
            if n not in given:
                # an output the trace does not show, or a field strace leaves out: not judged
                if isinstance(s, (C, Out)) or (isinstance(s, Harmless) and s.optional):
                    continue
                return f"struct field {n} missing"
            if isinstance(s, Out):
                err = record_output(s, n, given[n], used)
            else:
                err = _match(s, given[n], st, h, params, used, action, call, alts)
            if err:
                return err if isinstance(err, Outside) else f"{n}: {err}"
        return None
    return "unsupported argument"


def resolve_step(design: Design, h: Handles, step: Step, st: Mapping[str, int],
                 alts: Alternatives | None = None
                 ) -> tuple[Action, dict[str, int], dict[str, str]]:
    """The action instance a trace line denotes (without changing the handle table), by any
    of the action's spellings (Action.spellings: dup2 is dup).

    A well-formed argument whose value the model does not judge exactly is refused with
    "outside the model: <reason>" (never mapped into the explored domain). A parameter the
    line does not determine (a name strace truncated) is bound to one value and its others
    are put in `alts` (see Alternatives)."""
    errors = []
    failed: list[tuple[int, str, str]] = []  # (argument index, action, error)
    for action in design.actions:
        for call, specs in action.spellings():
            if call != step.call:
                continue
            least = sum(not (isinstance(s, Harmless) and s.optional) for s in specs)
            if not least <= len(step.args) <= len(specs):
                n = str(least) if least == len(specs) else f"{least}..{len(specs)}"
                errors.append(f"{action.name}: takes {n} arguments")
                continue
            params: dict[str, int] = {}
            used: dict[str, str] = {}
            mine: Alternatives = {}
            err = None
            for i, (spec, arg) in enumerate(zip(specs, step.args, strict=False)):
                err = _match(spec, arg, st, h, params, used, action, call, mine)
                if err:
                    failed.append((i, action.name, err))
                    break
            if err is None:
                if alts is not None:
                    alts.update(mine)
                if action.fpos is not None:  # the description's f_pos, from the table
                    params[action.fpos[0]] = h.pos(used[_fd_param(action)])
                for pname, fdp, attr in action.from_desc:  # its mode, from the table
                    params[pname] = h.attr(used[fdp], attr)
                rebase(specs, st, h, params, used, step)
                if action.from_map:  # the mapping's length and offset, from the table
                    m = next(s.param for s in specs if isinstance(s, MapRef))
                    for pname, attr in action.from_map:
                        params[pname] = h.map_attr(used[m], attr)
                if action.writers is not None:  # the inode's write count, from the table
                    params[action.writers] = h.writers()
                _written_back(step, specs, params)
                return action, params, used
    if not errors and not failed:
        calls = sorted({c for a in design.actions for c, _ in a.spellings()})
        raise ResolveError(f"design {design.name} has no call {step.call!r} "
                           f"(calls: {', '.join(calls)})", step)
    # the actions that matched the most arguments say what is wrong with the line
    far = max((i for i, _, _ in failed), default=-1)
    best = [(name, e) for i, name, e in failed if i == far]
    if best and all(isinstance(e, Outside) for _, e in best):
        raise ResolveError("outside the model: " + "; ".join(dict.fromkeys(e for _, e in best)),
                           step)
    errors += [f"{name}: argument {far + 1}: {e}" for name, e in best]
    raise ResolveError("; ".join(errors), step)


def _written_back(step: Step, specs: tuple[object, ...], params: Mapping[str, int]) -> None:
    """strace's `[N] => [M]`: the offset a call wrote back (copy_file_range(), sendfile():
    the position it reached, N plus the bytes it moved; do_sendfile(), copy_file_range()).
    M is what the outcome implies, so a trace whose M says otherwise contradicts itself."""
    for i, after in step.updated:
        spec = specs[i]
        if not isinstance(spec, Ptr):
            raise ResolveError(f"argument {i + 1}: '=> ...' follows a pointer the call writes "
                               "back ([N] => [M]) only", step)
        if isinstance(step.outcome, Any_):
            raise ResolveError(f"argument {i + 1}: '=> ...' with '= ?': the value written back "
                               "follows the outcome, which the line leaves to the model; write "
                               "the outcome, or the pointer as [N] alone", step)
        moved = step.outcome.value if isinstance(step.outcome, Ret) else 0
        want = params[spec.param] + moved
        if not (isinstance(after, Lst) and len(after.items) == 1
                and isinstance(after.items[0], Int) and after.items[0].value == want):
            raise ResolveError(f"argument {i + 1}: {step.call} writes back [{want}] (the "
                               f"offset plus the {moved} bytes the outcome says it moved), "
                               f"not {_text(after)}", step)


def expected_outcome(design: Design, h: Handles, action: Action, used: Mapping[str, str],
                     params: Mapping[str, int], step: AStep, before: Mapping[str, int],
                     want: int | None = None) -> Outcome:
    """The model's outcome in trace form; updates the handle table like render_step. A new
    descriptor gets the trace's number `want` if that number is free (Handles.new)."""
    created = apply_handles(design, h, used, _handle_param(action), params, before, step.after,
                            want, action=action, out=step.out)
    after_step(action, h, used, params, step.out, created, step.after)
    return _outcome(action, used, step.out, created)


def after_step(action: Action, h: Handles, used: Mapping[str, str],
               params: Mapping[str, int], out: int, created: tuple[str, str] | None,
               after: Mapping[str, int]) -> None:
    """The handle table's open file descriptions after a step: a new descriptor's (shared
    with the one `Action.shares` names, or new with `Action.describes`' attributes), and the
    f_pos an `Action.fpos` step moves (an appending write's: to the new i_size, `after`'s)."""
    if created is not None and created[0] == "fd":
        h.describe(created[1], used.get(action.shares) if action.shares else None,
                   {**DESC_DEFAULT, **(action.describes(params) if action.describes else {})})
    if created is not None and created[0] == "map" and action.maps_as:
        h.maps[created[1]] = {**MAP_DEFAULT, **{a: params[p] for a, p in action.maps_as}}
    elif action.resizes is not None and out >= 0:
        hid = used[_map_param(action)]
        h.maps[hid] = {**h.maps.get(hid, MAP_DEFAULT), "pages": action.resizes(params)}
    if action.remaps is not None and out >= 0:
        hid = used[_map_param(action)]
        h.maps[hid] = {**h.maps.get(hid, MAP_DEFAULT), **action.remaps(params)}
    if out >= 0 and h.shm is None:
        h.shm = next((used.get(SHM_NAME, s.name) for s in action.args
                      if isinstance(s, ShmPath)), None)
    if action.redescribes is not None and out >= 0:
        h.attrs[h.desc[used[_fd_param(action)]]] = {
            **h.attrs[h.desc[used[_fd_param(action)]]], **action.redescribes(params)}
    if action.fpos is not None and out >= 0:
        pname, how = action.fpos
        hid = used[_fd_param(action)]
        if how != "advance":
            h.fpos[h.desc[hid]] = out
        elif out > 0 and action.appends is not None and action.appends(params):
            h.fpos[h.desc[hid]] = after["size"]
        else:
            h.fpos[h.desc[hid]] = params[pname] + out


def _map_param(action: Action) -> str:
    """The parameter of an action's (first) mapping argument."""
    return next(s.param for s in action.args if isinstance(s, MapRef))


def _fd_param(action: Action) -> str:
    """The parameter of an action's (first) descriptor argument."""
    return next(s.param for s in action.args if isinstance(s, Fd))


def outcome_str(o: Outcome) -> str:
    if isinstance(o, Ret):
        return str(o.value)
    if isinstance(o, Err):
        return f"-1 {o.errno}"
    if isinstance(o, Sig):
        return o.name
    if isinstance(o, New):
        return o.name
    return "?"


__all__ = ["ERRNO_NAME", "MIN_FD", "NEW_FD", "OUT", "Alternatives", "Handles", "ResolveError",
           "after_step", "arg_from_text", "expected_outcome", "init_choices", "init_line",
           "initial_state", "outcome_str", "page_scale", "render_step", "resolve_step",
           "run_to_trace", "size_scale"]
