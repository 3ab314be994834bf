"""Judging a strace log's memfd calls against the model (issue 16).

traces/strace_follow.py turns the log into one history of project-format steps per memfd; each
step is judged by replaying the memfd's judged prefix plus the step on the model with
checker/replay.py `model_outcomes` (the model's one definition): **agrees**, **disagrees** (the
model's outcome beside the kernel's, with a minimal trace reproducing it), or **outside** the
model (the replay's reason). After a call outside the model (or a disagreement) the memfd's
state is no longer the model's, so its later calls are outside too ("after an unjudged call at
LINE"), except after a call that changes nothing the model represents (fstatfs, fsync, ...).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace

from checker.replay import TraceInputError, model_outcomes
from model import designs
from model.lang.design import Design
from traces.concretize import outcome_str
from traces.strace_follow import Event, Memfd, follow
from traces.strace_log import StraceLog
from traces.trace import Any_, Pos, Step, Trace

__all__ = ["Judged", "Report", "Verdict", "judge_log", "memfd_trace"]

_WHERE = re.compile(r"^.*?:[0-9]+:[0-9]+: ")


@dataclass
class Verdict:
    line: int
    memfd: int
    verdict: str  # "agrees" | "disagrees" | "outside"
    text: str
    reason: str | None = None
    model: str | None = None
    kernel: str | None = None


@dataclass
class Judged:
    memfd: Memfd
    steps: list[Step] = field(default_factory=list)  # the judged prefix that agrees
    repro: Trace | None = None  # a minimal trace of a disagreement


@dataclass
class Report:
    log: StraceLog
    verdicts: list[Verdict]
    judged: list[Judged]
    notes: list[Verdict] = field(default_factory=list)  # synthetic steps that stopped judging

    def count(self, what: str) -> int:
        return sum(v.verdict == what for v in self.verdicts)

    def reasons(self) -> list[tuple[str, int]]:
        c = Counter(_reason_key(v.reason or "") for v in self.verdicts if v.verdict == "outside")
        return c.most_common()


def _reason_key(r: str) -> str:
    """A reason without its line numbers and values, for the summary's top reasons."""
    r = re.sub(r"at line [0-9]+", "at line N", r)
    r = re.sub(r"after an unjudged call at [0-9]+", "after an unjudged call", r)
    r = re.sub(r"after the disagreement at [0-9]+", "after a disagreement", r)
    return r


def memfd_trace(mf: Memfd, steps: list[Step]) -> Trace:
    comments = (f"init: noexec_scope={mf.noexec}",) if mf.design == "memfd" else ()
    return Trace(list(steps), design=mf.design, comments=comments, path="<strace>",
                 title=f"memfd {mf.serial} of a strace log (created at line {mf.line})")


def _try(design: Design, mf: Memfd, steps: list[Step], step: Step) -> tuple[str, str | None]:
    """(verdict, reason or model outcome) of `step` after the judged `steps`."""
    try:
        rep = model_outcomes(design, memfd_trace(mf, [*steps, step]), stop_at_divergence=False)
    except TraceInputError as e:
        return "outside", _WHERE.sub("", str(e)).removeprefix("outside the model: ")
    d = rep.divergence
    if d is not None and d.index == len(steps):  # the outcome, or an output (st_size)
        return "disagrees", d.got
    got = rep.outcomes[-1]
    if isinstance(step.outcome, Any_) or step.outcome == got:
        return "agrees", None
    return "disagrees", outcome_str(got)


def _shown(design: Design, mf: Memfd, steps: list[Step], step: Step) -> str:
    """What the log shows for a step the model disagrees with: its outcome, and the outputs
    that differ (st_size=8192)."""
    rep = model_outcomes(design, memfd_trace(mf, [*steps, step]), stop_at_divergence=False)
    d = rep.divergence
    return d.expected if d is not None and d.index == len(steps) else outcome_str(step.outcome)


def _minimal(design: Design, mf: Memfd, steps: list[Step], bad: Step, got: str) -> Trace:
    """Drop earlier steps one at a time while the last step still diverges the same way."""
    keep = list(steps)
    i = len(keep) - 1
    while i >= 0:
        trial = keep[:i] + keep[i + 1:]
        if _try(design, mf, trial, bad) == ("disagrees", got) and _replays(design, mf, trial):
            keep = trial
        i -= 1
    return memfd_trace(mf, [*keep, bad])


def _replays(design: Design, mf: Memfd, steps: list[Step]) -> bool:
    try:
        rep = model_outcomes(design, memfd_trace(mf, steps), stop_at_divergence=True)
    except TraceInputError:
        return False
    return rep.divergence is None


def _judge_memfd(mf: Memfd, out: Report) -> Judged:
    j = Judged(mf)
    try:
        design = designs.get(mf.design)
    except KeyError:
        design = None
    blocked: str | None = None
    for ev in mf.events:
        pos_step = _at(ev)
        if blocked is not None:
            if ev.counted:
                out.verdicts.append(Verdict(ev.line, mf.serial, "outside", ev.text, blocked))
            continue
        if pos_step is None or design is None:
            why = ev.why or f"no design {mf.design!r}"
            _record(out, ev, mf, "outside", why)
            if not ev.observer:
                blocked = f"after an unjudged call at {ev.line}"
            continue
        results = [(s, *_try(design, mf, j.steps, s)) for s in (pos_step, *_alts(ev))]
        agree = next((r for r in results if r[1] == "agrees"), None)
        if agree is not None:
            _record(out, ev, mf, "agrees", None)
            j.steps.append(agree[0])
            continue
        dis = next((r for r in results if r[1] == "disagrees"), None)
        if dis is not None and not ev.counted:  # what the follower assumes the kernel did
            _record(out, ev, mf, "outside", f"the model says {dis[2]} here")
            blocked = f"after an unjudged step at {ev.line}"
            continue
        if dis is not None:
            s, _, got = dis
            assert got is not None
            _record(out, ev, mf, "disagrees", None, got, _shown(design, mf, j.steps, s))
            if j.repro is None:
                j.repro = _minimal(design, mf, j.steps, s, got)
            blocked = f"after the disagreement at {ev.line}"
            continue
        _record(out, ev, mf, "outside", results[0][2])
        if not ev.observer:
            blocked = f"after an unjudged call at {ev.line}"
    return j


def _at(ev: Event) -> Step | None:
    if ev.step is None:
        return None
    return replace(ev.step, pos=Pos(ev.line, 1))


def _alts(ev: Event) -> tuple[Step, ...]:
    return tuple(replace(s, pos=Pos(ev.line, 1)) for s in ev.alts)


def _record(out: Report, ev: Event, mf: Memfd, verdict: str, reason: str | None,
            model: str | None = None, kernel: str | None = None) -> None:
    v = Verdict(ev.line, mf.serial, verdict, ev.text, reason, model, kernel)
    if ev.counted:
        out.verdicts.append(v)
    elif verdict != "agrees":
        v.reason = f"{ev.text}: {reason}" if reason else ev.text
        out.notes.append(v)


def judge_log(log: StraceLog, noexec: int = 0) -> Report:
    """Every memfd call of the log judged (see the module doc)."""
    out = Report(log, [], [])
    for mf in follow(log, noexec):
        out.judged.append(_judge_memfd(mf, out))
    out.verdicts.sort(key=lambda v: v.line)
    return out
