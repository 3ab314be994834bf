"""Outputs a call fills in (fstat's st_size and st_mode; callspec `Out`): how a trace shows
them, the model's value after the call, and the differences replay reports as divergences
(checker/replay.py) and the kernel judge prints (checker/kernel_replay.py)."""

from __future__ import annotations

from collections.abc import Mapping

from model.lang.action import Action
from model.lang.callspec import Fields, Out
from model.lang.design import Design
from model.vocab import parse_flags
from traces.syscalls import OUT_IOCTLS, OUT_STRUCTS, SYSCALLS, Cell, TraceError, lower
from traces.trace import Arg, Int, Lst, Step, Sym

#: prefix of a `used` key holding an output value the trace shows (OUT + "st_size" -> "8192")
OUT = "out:"


def out_value(spec: Out, after: Mapping[str, int]) -> int:
    """The model's value of an output: the state field after the call, ORed with its base
    (or the OR of the bits whose field is set, for an output made of flags; or its fixed
    value)."""
    if spec.fixed is not None:
        return spec.fixed
    if spec.bits:
        return spec.base | sum(bit for f, bit in spec.bits if after[f])
    return spec.base | after[spec.source]


def out_text(spec: Out, value: int) -> str:
    """An output value as strace prints it: S_IFREG|0600, 8192."""
    names = [n for n, bit in spec.family.items() if bit and value & bit == bit]
    rest = value
    for n in names:
        rest &= ~spec.family[n]
    num = ("0" + format(rest, "o") if rest else "0") if spec.octal else str(rest)
    text = "|".join([*names, num] if rest or not names else names)
    return f"[{text}]" if spec.cell else text


def record_output(spec: Out, label: str, arg: Arg, used: dict[str, str]) -> str | None:
    """Record the value a trace shows for an output (compared by output_diffs). A cell's
    `[N]`; an address instead (what strace prints when the call failed) shows no value."""
    if spec.cell:
        if not (isinstance(arg, Lst) and len(arg.items) == 1):
            return None if isinstance(arg, Int) else "expected [N] or an address"
        arg = arg.items[0]
    if isinstance(arg, Int):
        v = arg.value
    elif isinstance(arg, Sym):
        try:
            v = parse_flags(arg.text, dict(spec.family))
        except KeyError as e:
            return f"{label}: unknown name {e.args[0]}"
    else:
        return f"{label}: expected a number"
    used[OUT + label] = str(v)
    return None


def _outs(specs: tuple[object, ...]) -> dict[str, Out]:
    """label -> Out spec, for the outputs of one spelling (also inside structs)."""
    out: dict[str, Out] = {}
    for spec in specs:
        if isinstance(spec, Out):
            out[spec.source] = spec
        elif isinstance(spec, Fields):
            out.update({n: s for n, s in spec.items if isinstance(s, Out)})
    return out


def output_diffs(action: Action, call: str, used: Mapping[str, str],
                 after: Mapping[str, int]) -> list[tuple[str, str, str]]:
    """(label, the trace's value, the model's value) of every output the trace shows that
    differs from the model's after the call (strace text, e.g. st_size 8192 / 4096)."""
    specs = next((a for c, a in action.spellings() if c == call), action.args)
    diffs = []
    for label, spec in _outs(specs).items():
        shown = used.get(OUT + label)
        if shown is not None and int(shown) != out_value(spec, after):
            diffs.append((label, out_text(spec, int(shown)),
                          out_text(spec, out_value(spec, after))))
    return diffs


def model_outputs(action: Action, call: str, after: Mapping[str, int]) -> dict[str, int]:
    """label -> the model's value of every output of the call's spelling, after it."""
    specs = next((a for c, a in action.spellings() if c == call), action.args)
    return {label: out_value(spec, after) for label, spec in _outs(specs).items()}


def output_text(design: Design, label: str, value: int) -> str:
    """An output value (by its label: st_mode) printed as the design's specs print it."""
    for a in design.actions:
        for _, specs in a.spellings():
            spec = _outs(specs).get(label)
            if spec is not None:
                return out_text(spec, value)
    return str(value)


def shown_outputs(step: Step) -> dict[str, int]:
    """The outputs a trace line shows (a `stat` argument's st_mode, st_size, FS_IOC_GETFLAGS's
    `[N]`, FS_IOC_FSGETXATTR's and file_getattr's struct fields), read by the registry
    (traces.syscalls.lower)."""
    try:
        op = lower(step)
    except TraceError:
        return {}
    if op.call == "ioctl" and op.args[1] in OUT_IOCTLS and isinstance(op.args[2], Cell):
        return {OUT_IOCTLS[op.args[1]]: op.args[2].value}  # FS_IOC_GETFLAGS's [N]
    if op.call == "ioctl" and op.args[1] in OUT_STRUCTS:  # FS_IOC_FSGETXATTR's struct
        a = op.args[2]
        return {k: v for k, v in a.items() if isinstance(v, int)} if isinstance(a, dict) else {}
    return {k: v for p, a in zip(SYSCALLS[op.call].params, op.args, strict=False)
            if p.kind in ("stat", "attr_out") and isinstance(a, dict) for k, v in a.items()
            if isinstance(v, int)}


def outputs_of(used: Mapping[str, str]) -> dict[str, int]:
    """The output values a resolved trace line shows: label -> value."""
    return {k[len(OUT):]: int(v) for k, v in used.items() if k.startswith(OUT)}


__all__ = ["OUT", "model_outputs", "out_text", "out_value", "output_diffs", "output_text",
           "outputs_of", "record_output", "shown_outputs"]
