"""The edge of the model: every action of every design gets argument values just outside each
parameter's explored domain and just outside its sort's range (issue 12 §1).

Each value is either *judged* (replay binds exactly that value, never a rounded or clipped one,
and the model answers) or *refused* with "outside the model: <reason>" (exit 2 on the command
line). Values the model cannot hold are always refused: for page-valued parameters negative
counts, byte values of 2^62 and more (except where a parameter states its C type's range, as
guest_memfd's byte arguments do: those are judged up to it) and byte counts that are not whole
model pages; words wider than their field; naturals above their fixed bound; for byte-valued
parameters (loff_t, size_t) values outside the C type (and a write count past the executor's
buffer). Every other byte value, negative, unaligned or near LLONG_MAX, is judged. Judged
values of a design with a live kernel are run on the kernel too (marker `kernel`), so "judged"
means "judged as the kernel does".
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import pytest

from checker.explicit import Explorer
from checker.interpreter import interpreter_for
from checker.replay import TraceInputError, model_outcomes
from model import designs
from model.lang.action import Action, Param
from model.lang.callspec import Choice, Fields, Flags, Num
from model.lang.design import Design
from traces.concretize import BYTE_LIMIT, arg_from_text, run_to_trace
from traces.run import ARun
from traces.textfmt import format_trace, parse_trace
from traces.trace import Any_, Arg, Int, Step, Str, Struct, Sym, Trace

DESIGNS = designs.names(include_corpus=False)
MFD_HUGETLB = 0x4


@dataclass(frozen=True)
class Probe:
    design: str
    action: str
    param: str
    value: int | None  # in parameter units; None when the argument is replaced by `arg`
    arg: Arg
    must_refuse: str | None  # why it cannot be judged whatever the model says, or None
    prefix: ARun

    @property
    def id(self) -> str:
        v = self.value if self.value is not None else _show(self.arg)
        return f"{self.design}:{self.action}.{self.param}={v}"


def _show(a: Arg) -> str:
    from traces.textfmt import format_arg

    return format_arg(a)[:30]


@cache
def witnesses(name: str) -> dict[str, ARun]:
    """For each action, a short run whose last step is that action, enabled (a breadth-first
    search over succeeding steps, all parameter rows of a state evaluated at once; no hugetlbfs
    memfd, so the kernel check needs no huge pages)."""
    d = designs.get(name)
    ex = Explorer(d, {k: 1 for k in d.default_scope}, [])
    init = next(iter(d.init.states(d.schema)))
    found: dict[str, ARun] = {}
    frontier = [ARun(dict(init))]
    seen = {tuple(sorted(init.items()))}
    for _depth in range(6):
        nxt: list[ARun] = []
        for run in frontier:
            st = run.steps[-1].after if run.steps else run.init
            S = {n: np.array([[int(st[n])]], dtype=np.int64) for n in st}
            S["__shape__"] = np.zeros((1, 1), dtype=np.int8)
            for ca in ex.actions:
                P = ex.pgrids[ca.index]
                r = ca.fn(S, P)
                en = np.broadcast_to(np.asarray(r["en"]), (1, ca.k)).reshape(-1)
                out = np.broadcast_to(np.asarray(r["out"]), (1, ca.k)).reshape(-1)
                rows = np.flatnonzero(en)
                if not rows.size:
                    continue
                # successors only while the frontier may still grow (the first row of an
                # action not yet found is its witness either way)
                good = [i for i in rows if out[i] >= 0] if len(seen) < 400 else []
                for i in ([rows[0]] if ca.action.name not in found else []) + good:
                    params = {n: int(ca.pgrid[i, j]) for j, n in enumerate(ca.pnames)}
                    if ca.action.name == "memfd_create" and params["flags"] & MFD_HUGETLB:
                        continue
                    step = ex.apply(ca, st, params)
                    r2 = ARun(run.init, [*run.steps, step])
                    found.setdefault(ca.action.name, r2)
                    key = tuple(sorted(step.after.items()))
                    if step.out >= 0 and key not in seen and len(seen) < 400:
                        seen.add(key)
                        nxt.append(r2)
        frontier = nxt
        if len(found) == len(d.actions) or not frontier:
            break
    # an action the search does not take (write/read/lseek: f_pos is the trace's): after
    # memfd_create's witness, with the first value of each parameter (f_pos 0)
    base = found.get("memfd_create")
    for a in d.actions:
        if a.explored or a.name in found or base is None:
            continue
        st = base.steps[-1].after
        params = {p.name: p.domain[0] if p.domain else 0 for p in a.params}
        interp = interpreter_for(d)
        found[a.name] = ARun(base.init, [*base.steps,
                                         interp.apply(interp.by_name[a.name], st, params)])
    return found


def _specs(action: Action, param: str) -> Iterator[tuple[tuple[int, str | None], object]]:
    """(argument index, struct field or None), spec: the arguments that print `param`."""
    for i, spec in enumerate(action.args):
        if isinstance(spec, Fields):
            for n, s in spec.items:
                if getattr(s, "param", None) == param:
                    yield (i, n), s
        elif getattr(spec, "param", None) == param:
            yield (i, None), spec


def _scale(spec: Num, st: dict[str, int]) -> int:
    return spec.scale if isinstance(spec.scale, int) else spec.scale(st)


def _values(p: Param) -> list[int]:
    """Just outside the explored domain, and just outside the sort's range; for a machine
    integer in bytes also an unaligned value, a huge one and both ends of its type."""
    s = p.sort
    out = {-1, max(p.domain, default=0) + 1, 1 << 63}
    if s.kind == "int":
        out |= {s.lo, s.lo - 1, s.hi, s.hi + 1, 4097, (1 << 63) - 1, 1 << 40}
    if s.kind == "word":
        out |= {1 << s.width, 1 << (s.width - 1),
                next(v for v in itertools.count() if v not in p.domain)}
    elif s.kind == "nat" and s.fixed is not None:
        out.add(s.fixed + 1)
    return sorted(out)


def probes(name: str) -> Iterator[Probe]:
    d = designs.get(name)
    for a in d.actions:
        run = witnesses(name).get(a.name)
        if run is None:
            continue
        before = run.steps[-2].after if len(run.steps) > 1 else run.init
        for p in a.params:
            specs = list(_specs(a, p.name))
            kinds = {type(s) for _, s in specs}
            if not specs or not kinds <= {Num, Flags, Choice}:
                continue  # a handle (fd, m1, p1): its kind is not written in the trace
            if kinds == {Choice}:
                (_, spec), = specs[:1]
                assert isinstance(spec, Choice)
                texts = [arg_from_text(t) for t in spec.table.values()]
                ints = [t.value for t in texts if isinstance(t, Int)]
                probe: Arg = (Int(max(ints) + 4096) if ints else
                              Str("u") if any(isinstance(t, Str) for t in texts) else
                              Sym("PROT_EXEC"))  # alone: no table has it (PKU)
                yield Probe(name, a.name, p.name, None, probe, "not in the model's table", run)
                continue
            for v in _values(p):
                why = _must_refuse(p, v, [s for _, s in specs], before)
                yield Probe(name, a.name, p.name, v, Int(v), why, run)
            for _, spec in specs:
                if isinstance(spec, Num) and _scale(spec, before) > 1:
                    sc = _scale(spec, before)
                    yield Probe(name, a.name, p.name, None, Int(sc + 1), "misaligned", run)
                    yield Probe(name, a.name, p.name, None, Int(BYTE_LIMIT), "2^62 bytes", run)
                    break


def _must_refuse(p: Param, v: int, specs: list[object], st: dict[str, int]) -> str | None:
    """An independent statement of what the model cannot hold (not Param.outside())."""
    nums = [_scale(s, st) for s in specs if isinstance(s, Num)]
    if p.sort.kind == "int":  # a loff_t or size_t in bytes: any value of the type is judged
        if p.sort.lo == 0 and -(1 << 63) <= v < 0:
            v += 1 << 64  # a size_t written signed
        if not p.sort.lo <= v <= p.sort.hi:
            return "not a value of the argument's C type"
        if p.exact is not None and v > 64 << 20:
            return "a write count past the executor's 64 MiB buffer"
        return None
    if v < 0:
        return "negative"
    if nums and v * max(nums) >= BYTE_LIMIT and p.exact is None:
        return "2^62 bytes or more"  # unless the parameter states its C type's range
    if p.sort.kind == "word" and v >= 1 << p.sort.width:
        return "wider than the field"
    if p.sort.kind == "nat" and p.sort.fixed is not None and v > p.sort.fixed:
        return "above the fixed bound"
    return None


def probe_trace(pr: Probe) -> Trace:
    """The witness run printed as a trace, its last step's argument replaced by the probe."""
    d = designs.get(pr.design)
    a = d.action(pr.action)
    t = run_to_trace(d, pr.prefix)
    last = t.steps[-1]
    before = pr.prefix.steps[-2].after if len(pr.prefix.steps) > 1 else pr.prefix.init
    args = list(last.args)
    for (i, fld), spec in _specs(a, pr.param):
        if pr.value is None:
            new: Arg = pr.arg
        elif isinstance(spec, Num):
            new = Int(pr.value * _scale(spec, before))
        else:
            new = Int(pr.value)
        if fld is None:
            args[i] = new
        else:
            cur = args[i]
            assert isinstance(cur, Struct)
            args[i] = Struct(tuple((n, new if n == fld else x) for n, x in cur.fields))
    t.steps[-1] = Step(last.call, tuple(args), Any_())
    # through the text format, as a user's file would be
    return parse_trace(format_trace(replace(t, expect="conforms")), "<probe>")


def judge(pr: Probe) -> tuple[str | None, dict[str, int] | None]:
    """(the refusal message, None) or (None, the parameters the model bound)."""
    d: Design = designs.get(pr.design)
    t = probe_trace(pr)
    try:
        rep = model_outcomes(d, t)
    except TraceInputError as e:
        return str(e), None
    assert rep.run is not None and len(rep.outcomes) == len(t.steps)
    last = rep.run.steps[-1]
    if last.action != pr.action:  # the value gives the line another action's meaning
        return None, {"(action)": last.action, **last.params}  # type: ignore[dict-item]
    return None, last.params


ALL = [pr for n in DESIGNS for pr in probes(n)]


def test_every_action_with_written_values_has_a_witness() -> None:
    for n in DESIGNS:
        d = designs.get(n)
        written = {a.name for a in d.actions for p in a.params
                   if any(isinstance(s, (Num, Flags, Choice)) for _, s in _specs(a, p.name))}
        missing = written - set(witnesses(n))
        assert not missing, f"{n}: no enabled run found for {sorted(missing)}"


def test_probes_cover_every_numeric_parameter() -> None:
    covered = {(pr.design, pr.action, pr.param) for pr in ALL}
    for n in DESIGNS:
        for a in designs.get(n).actions:
            for p in a.params:
                if any(isinstance(s, (Num, Flags, Choice)) for _, s in _specs(a, p.name)):
                    assert (n, a.name, p.name) in covered


@pytest.mark.parametrize("pr", ALL, ids=[pr.id for pr in ALL])
def test_value_is_judged_exactly_or_refused(pr: Probe) -> None:
    refused, params = judge(pr)
    if refused is not None:
        assert ": outside the model: " in refused, refused
        assert refused.startswith("<probe>:")
        return
    assert pr.must_refuse is None, f"judged although {pr.must_refuse}: {params}"
    assert params is not None
    if "(action)" in params:  # pwritev2's pos -1: pwritev2_fpos, at the description's f_pos
        other = designs.get(pr.design).action(str(params["(action)"]))
        assert other.fpos is not None and other.fpos[0] == pr.param, params
        return
    # never rounded, capped or clipped: the rule body saw exactly the trace's value (a
    # negative size_t is the same 64 bits as the unsigned value the kernel sees)
    want = pr.value
    p = designs.get(pr.design).action(pr.action).params
    srt = next(x.sort for x in p if x.name == pr.param)
    if want is not None and srt.kind == "int" and srt.lo == 0 and want < 0:
        want += 1 << 64
    assert params is not None and params[pr.param] == want, (params, want)


# ---- on the live kernel: judged values are judged as the kernel does ------------------------
KERNEL_PROBES = [pr for pr in ALL if designs.get(pr.design).kernel is not None
                 and pr.must_refuse is None]


@pytest.mark.kernel
@pytest.mark.parametrize("pr", KERNEL_PROBES, ids=[pr.id for pr in KERNEL_PROBES])
def test_judged_value_agrees_with_the_kernel(pr: Probe) -> None:
    from checker.kernel_replay import replay_on_kernel
    from traces.kernel import capability

    refused, _ = judge(pr)
    if refused is not None:
        pytest.skip(f"refused as outside the model, nothing to compare: {refused}")
    d = designs.get(pr.design)
    if pr.design.startswith("guest_memfd"):
        reason = capability("kvm")
        if reason is not None:
            pytest.skip(reason)
    t = probe_trace(pr)
    rep = model_outcomes(d, t, stop_at_divergence=False)
    k = replay_on_kernel(d, t, rep, against="both")
    if k.skipped:
        pytest.skip(k.skipped)
    if k.divergence and "larger than the executor supports" in k.divergence:
        # the executor materialises a write's payload; the model judged the value
        pytest.skip(f"the executor cannot run it: {k.divergence}")
    assert k.divergence is None, k.divergence
