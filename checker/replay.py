"""Replay a trace on the model interpreter, on the live kernel, or on both, step by step.

The model side resolves each line to an action instance (traces/concretize.py), applies it
with the explicit engine's compiled interpreter, and compares outcomes. The kernel side runs the
same lines through traces/kernel.py. The first divergence is reported with the model state
before the step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from checker.interpreter import Interpreter
from checker.judge import (
    TraceInputError,
    judge_step,
    replay_interpreter,
)
from model.lang.action import Action
from model.lang.callspec import Fields, Out
from model.lang.design import Design, ScopeError
from model.lang.schema import render_state
from properties.catalogue import Property, load
from traces.concretize import (
    Handles,
    ResolveError,
    arg_from_text,
    initial_state,
    outcome_str,
)
from traces.outputs import model_outputs, out_text, out_value, output_diffs
from traces.replayed import Replayed
from traces.run import ARun
from traces.trace import Any_, Arg, Lst, Outcome, Ret, Step, Struct, Trace


@dataclass
class Divergence:
    index: int
    step: Step
    expected: str  # what the trace (or the kernel) says
    got: str  # what the model says
    state: str  # model state before the step
    who: str = "model"

    def text(self, path: str) -> str:
        return (f"{path}:{self.step.pos.line}:{self.step.pos.col}: step {self.index + 1} "
                f"diverges: {self.who} says {self.got}, trace says {self.expected}\n"
                f"  model state before the step: {self.state}")


@dataclass
class ModelReplay:
    trace: Trace
    outcomes: list[Outcome] = field(default_factory=list)  # the model's, per step
    #: the model's output values per step (label -> value: fstat's st_size, st_mode)
    outputs: list[dict[str, int]] = field(default_factory=list)
    run: ARun | None = None
    divergence: Divergence | None = None
    expectation_met: bool = False
    message: str = ""


def model_outcomes(design: Design, trace: Trace, *, stop_at_divergence: bool = True,
                   props: list[Property] | None = None, ex: Interpreter | None = None
                   ) -> ModelReplay:
    """Run the trace's steps on the model; compare with the trace's outcomes. `ex` is the
    interpreter to use (default: the shared replay interpreter knowing `props`). A trace
    naming processes is judged flattened (checker/processes.py; ModelReplay.trace is the
    flat one)."""
    from checker.processes import flatten

    trace = flatten(design, trace)
    path = trace.path or "<trace>"
    ex = ex or replay_interpreter(design, props or [])
    try:
        st = initial_state(design, trace)
    except ResolveError as e:
        raise TraceInputError(path, None, e.msg, trace.header_pos.get("init")) from None
    h = Handles()
    rep = ModelReplay(trace, run=ARun(dict(st)))
    for i, step in enumerate(trace.steps):
        action, used, a, whole, got = judge_step(design, ex, h, st, step, path)
        rep.outcomes.append(got)
        rep.outputs.append(model_outputs(action, step.call, whole.after) if a.out >= 0 else {})
        assert rep.run is not None
        rep.run.steps.append(whole)
        diffs = output_diffs(action, step.call, used, whole.after) if a.out >= 0 else []
        if rep.divergence is None and ((not isinstance(step.outcome, Any_)
                                        and step.outcome != got) or diffs):
            shown = " ".join(f"{n}={t}" for n, t, _ in diffs)
            model = " ".join(f"{n}={m}" for n, _, m in diffs)
            rep.divergence = Divergence(
                i, step, " ".join(x for x in (outcome_str(step.outcome), shown) if x),
                " ".join(x for x in (outcome_str(got), model) if x),
                render_state(design.schema, st))
            if stop_at_divergence:
                return rep
        st = whole.after
    return rep


def check_scope_header(design: Design, trace: Trace) -> dict[str, int]:
    """The trace's `# scope:` as the design's scope: known names, values it can explore."""
    if trace.scope is None:
        return design.scope()
    at = trace.header_pos.get("scope")
    path = trace.path or "<trace>"
    sc: dict[str, int] = {}
    for item in trace.scope.split(","):
        k, _, v = item.strip().partition("=")
        sc[k] = int(v)  # ASCII digits: checked by the parser
    try:
        return design.scope(sc)
    except KeyError as e:
        raise TraceInputError(path, None, f"scope: design {design.name} has no scope parameter "
                              f"{e.args[0]!r} (has: {', '.join(design.default_scope)})",
                              at) from None
    except ScopeError as e:
        raise TraceInputError(path, None, f"scope: {e}", at) from None


def check_expectation(design: Design, trace: Trace) -> ModelReplay:
    """Replay on the model and judge the trace's `expect:` header."""
    path = trace.path or "<trace>"
    kind, _, pname = trace.expect.partition(" ")
    cat = load()
    props: list[Property] = []
    at = trace.header_pos.get("expect")
    if kind in ("violates", "witnesses"):
        if pname not in cat:
            raise TraceInputError(path, None, f"expect: unknown property {pname!r}", at)
        props = [cat[pname]]
    elif kind != "conforms":
        raise TraceInputError(path, None, f"expect: {trace.expect!r} (want conforms, "
                              "violates PROPERTY or witnesses PROPERTY)", at)
    from checker.processes import lowering

    check_scope_header(design, trace)
    ex = replay_interpreter(design, props)
    rep = model_outcomes(design, trace, props=props, ex=ex)
    if rep.divergence:
        rep.message = rep.divergence.text(path)
        return rep
    if kind == "conforms":
        rep.expectation_met = True
        what = lowering(design, trace, len(rep.trace.steps) != len(trace.steps))
        lowered = f" from {len(trace.steps)} lines, with {what} lowered" if what else ""
        rep.message = f"{path}: conforms ({len(rep.trace.steps)} steps{lowered})"
        return rep
    p = props[0]
    hit = _property_hits(ex, p, rep.run)  # type: ignore[arg-type]
    want_hit = True
    rep.expectation_met = hit == want_hit
    what = "violates" if kind == "violates" else "witnesses"
    rep.message = (f"{path}: {what} {p.name}" if rep.expectation_met else
                   f"{path}: expected the trace to {kind[:-1]} {p.name}, but it does not")
    return rep


def _property_hits(ex: Interpreter, p: Property, run: ARun) -> bool:
    """Violation (always/action) at the end, or a witness anywhere (sometimes kinds)."""
    states = run.states()
    if p.kind in ("always", "sometimes"):
        check = states if p.kind == "sometimes" else states[-1:]
        return any(ex.state_holds(p.name, st) == (p.kind == "sometimes") for st in check)
    pairs = list(zip(states, run.steps, strict=False))  # each step with the state before it
    check_pairs = pairs if p.kind == "sometimes-action" else pairs[-1:]
    for st, a in check_pairs:
        _, v = ex.transition_holds(p.name, ex.by_name[a.action], st, a.params)
        if v == (p.kind == "sometimes-action"):
            return True
    return False


def kernel_noexec_scope(design: Design, trace: Trace) -> int | None:
    st = initial_state(design, trace)
    return st.get("noexec_scope") if "noexec_scope" in st else None


def state_text(design: Design, st: Mapping[str, int]) -> str:
    return render_state(design.schema, st)


def predicted_args(action: Action, call: str, args: tuple[Arg, ...],
                   after: Mapping[str, int]) -> tuple[Arg, ...]:
    """A trace line's arguments with every output it shows replaced by the model's value after
    the call (a selftest expecting what a design predicts for its kernel: the outputs as well
    as the outcome); an address a failed call shows stays."""
    def model(spec: Out) -> Arg:
        return arg_from_text(out_text(spec, out_value(spec, after)))

    specs = next((a for c, a in action.spellings() if c == call), action.args)
    out = list(args)
    for i, (spec, arg) in enumerate(zip(specs, args, strict=False)):
        if isinstance(spec, Out) and spec.cell and isinstance(arg, Lst):
            out[i] = model(spec)
        elif isinstance(spec, Fields) and isinstance(arg, Struct):
            outs = {n: s for n, s in spec.items if isinstance(s, Out)}
            out[i] = Struct(tuple((n, model(outs[n]) if n in outs else v)
                                  for n, v in arg.fields), more=arg.more)
    return tuple(out)


def replay_for_export(design: Design, trace: Trace, *, predict: bool = False) -> Replayed:
    """The trace replayed on the model for the exporters (traces/export/): `?` outcomes take
    the model's value (and the action's note), the model states give the fields each step
    changed. A trace the model cannot replay (a call outside the design) comes back with no
    model view; the reproducer formats still export it. With `predict`, *every* outcome and
    every output a line shows is the model's (a selftest expecting what `design` predicts
    for its kernel, whatever the trace recorded) and a trace the model cannot replay raises
    TraceInputError."""
    from checker.processes import has_processes

    try:
        rep = model_outcomes(design, trace, stop_at_divergence=False)
    except TraceInputError:
        if predict or has_processes(trace, design):  # processes are lowered by the model's handles
            raise
        return Replayed(trace, list(trace.steps), None, None, None)
    assert rep.run is not None
    trace = rep.trace  # flattened, if it named processes
    actions = [a.action for a in rep.run.steps]
    steps = []
    states = rep.run.states()
    for i, (s, o, name) in enumerate(zip(trace.steps, rep.outcomes, actions, strict=True)):
        if predict and isinstance(o, Ret):  # the outputs it shows are the model's too
            s = Step(s.call, predicted_args(design.action(name), s.call, s.args, states[i + 1]),
                     s.outcome, s.note, s.comment, s.pos)
        if predict and s.outcome != o:
            s = Step(s.call, s.args, o, None, s.comment, s.pos)
        elif isinstance(s.outcome, Any_):
            note_of = design.action(name).note
            note = s.note
            if note is None and note_of is not None and isinstance(o, Ret):
                note = note_of(o.value)
            s = Step(s.call, s.args, o, note, s.comment, s.pos)
        steps.append(s)
    return Replayed(trace, steps, rep.run.states(), list(rep.outcomes), actions)


__all__ = ["Divergence", "ModelReplay", "TraceInputError",
           "check_expectation", "check_scope_header", "judge_step",
           "kernel_noexec_scope", "model_outcomes", "predicted_args", "replay_for_export",
           "replay_interpreter", "state_text"]
