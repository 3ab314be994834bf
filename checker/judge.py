"""One trace line judged on the model: the step that replay (checker/replay.py) and the
lowering of a trace's processes (checker/processes.py) both take. The line is resolved to an
action instance (traces/concretize.py), applied with the explicit engine's compiled
interpreter, and its outcome given in trace form; a line the model does not judge is a
TraceInputError at its position."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from checker.interpreter import Interpreter, interpreter_for
from model.lang.action import Action
from model.lang.callspec import Fd, NewFd
from model.lang.design import Design
from model.lang.expr import E, const, substitute
from properties.catalogue import Property
from traces.concretize import (
    NEW_FD,
    Alternatives,
    Handles,
    ResolveError,
    expected_outcome,
    resolve_step,
)
from traces.run import AStep
from traces.trace import Err, New, Outcome, Pos, Ret, Step

REPLAY_SCOPE_VALUE = 1  # bounds do not apply when replaying (nothing is packed)


class TraceInputError(Exception):
    """A trace that cannot be replayed at all (unknown call, handle never created, ...)."""

    def __init__(self, path: str, step: Step | None, msg: str, at: Pos | None = None) -> None:
        pos = step.pos if step else at
        line = pos.line if pos and pos.line else 1
        col = pos.col if pos and pos.col else 1
        super().__init__(f"{path}:{line}:{col}: {msg}")


def replay_interpreter(design: Design, props: Sequence[Property] = ()) -> Interpreter:
    """The design's shared model interpreter for replay (checker/interpreter.py's cache)."""
    return interpreter_for(design, {k: REPLAY_SCOPE_VALUE for k in design.default_scope}, props)


def judge_step(design: Design, ex: Interpreter, h: Handles, st: Mapping[str, int], step: Step,
               path: str) -> tuple[Action, dict[str, str], AStep, AStep, Outcome]:
    """One trace line on the model from state `st`: its action, the handles it names, its
    transition (and the whole step's, with a displaced descriptor's close) and its outcome in
    trace form; the handle table `h` is updated. A line the model does not judge is a
    TraceInputError at its position."""
    alts: Alternatives = {}
    try:
        action, params, used = resolve_step(design, h, step, st, alts)
    except ResolveError as e:
        raise TraceInputError(path, step, e.msg) from None
    beyond = _unjudged(action, step)
    if beyond is not None:
        raise TraceInputError(path, step, f"outside the model: {beyond}")
    ca = ex.by_name[action.name]
    if not ex.enabled(ca, st, params):
        raise TraceInputError(path, step, "outside the model: "
                              + failed_preconditions(design, action, st, params))
    a = ex.apply(ca, st, params)
    for pname, (others, why) in alts.items():  # a parameter the line leaves open
        for v in others:
            other = {**params, pname: v}
            b = ex.apply(ca, st, other) if ex.enabled(ca, st, other) else None
            if b is None or (b.out, b.eff, b.after) != (a.out, a.eff, a.after):
                raise TraceInputError(path, step, f"outside the model: {why}")
    displaced = used.get(NEW_FD)
    whole = a  # the step's transition, with a displaced descriptor's close
    if displaced is not None and displaced in h.live["fd"] and a.out >= 0:
        whole = _close_displaced(design, ex, h, action, step, a, displaced, path)
    want = step.outcome.value if isinstance(step.outcome, Ret) else None
    got = expected_outcome(design, h, action, used, params, a, st, want)
    if isinstance(step.outcome, Ret) and isinstance(got, New):
        raise TraceInputError(path, step, f"outside the model: {step.call} returns "
                              f"{step.outcome.value:#x}, an address; the model names "
                              "mappings and pins (m1, m2, ... in the order they are made; "
                              "p1, ...): write the name instead")
    return action, used, a, whole, got


def _close_displaced(design: Design, ex: Interpreter, h: Handles, action: Action, step: Step,
                     a: AStep, hid: str, path: str) -> AStep:
    """dup2/dup3 onto an open descriptor: the kernel installs the new one, then closes the one
    it displaced (fs/file.c do_dup2() -> filp_close()). That is the spelling's `closes` action
    (close) on the displaced descriptor after the step's own: one step with both updates. The
    handle table forgets the displaced number (the new descriptor takes it)."""
    closes = next(s.closes for c, specs in action.spellings() if c == step.call
                  for s in specs if isinstance(s, NewFd))
    close = design.action(closes)
    fd_param = next(s.param for s in close.args if isinstance(s, Fd))
    cparams = {fd_param: h.live["fd"][hid]}
    cc = ex.by_name[close.name]
    if not ex.enabled(cc, a.after, cparams):
        raise TraceInputError(path, step, "outside the model: closing the displaced "
                              f"descriptor {hid}: "
                              + failed_preconditions(design, close, a.after, cparams))
    b = ex.apply(cc, a.after, cparams)
    if b.out < 0:
        raise TraceInputError(path, step, f"outside the model: closing the displaced "
                              f"descriptor {hid} fails in the model ({b.out})")
    del h.live["fd"][hid]
    return AStep(a.action, a.params, a.out, a.eff | b.eff, b.after, a.rule)


def failed_preconditions(design: Design, action: Action, st: Mapping[str, int],
                         params: Mapping[str, int]) -> str:
    """The modelling preconditions (`requires` rules) that fail for this step, with why."""
    env: dict[tuple[str, str], E] = {("s", f.name): const(st[f.name], f.sort.expr_sort)
                                     for f in design.schema.fields}
    env.update({("p", p.name): const(params[p.name], p.sort.expr_sort) for p in action.params})
    bad = []
    for r in action.rules(design.schema.state_vars("s"), action.param_vars()):
        c = substitute(r.cond, env)
        if r.kind == "requires" and c.is_const and not c.val:
            bad.append(f"{r.why or 'a modelling precondition fails'} (requires {r.label})")
        elif r.kind != "requires" and c.is_const and c.val:
            break  # an earlier rule decided; later preconditions do not apply
    text = "; ".join(bad) or "a modelling precondition fails"
    if "NOTES.md" not in text:
        text += "; see NOTES.md LIMITATIONS"
    return f"{action.call}: {text}"


def _unjudged(action: Action, step: Step) -> str | None:
    """Why the trace's outcome of this step is one the model does not judge
    (Action.unjudged: exec's success runs content the model does not hold), or None."""
    if action.unjudged is None:
        return None
    outs, why = action.unjudged
    o = step.outcome
    if (isinstance(o, Ret) and "ok" in outs) or (isinstance(o, Err) and o.errno in outs):
        shown = o.value if isinstance(o, Ret) else f"-1 {o.errno}"
        return f"{step.call} returns {shown}: {why}"
    return None


__all__ = ["REPLAY_SCOPE_VALUE", "TraceInputError", "failed_preconditions", "judge_step",
           "replay_interpreter"]
