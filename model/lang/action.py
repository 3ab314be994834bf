"""Actions: a syscall (or user-caused event) as an ordered list of rules, in the kernel's order.

`body(s, **params)` returns the rules. The first rule whose condition holds decides the outcome:
`fail(errno)`, `signal(SIGx)` or `ok(value)`, with its state updates and effects. A `requires`
rule is not a kernel outcome but a modelling precondition (the transition is outside the model
unless it holds, or an earlier rule already decided). A rule carries a `label` so that a delta
(a kernel version, a bug, a proposed patch) can replace, drop or insert exactly one rule.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from model.lang.callspec import ArgSpec
from model.lang.errors import DesignError
from model.lang.expr import BOOL, INT, E, Not, Or, const, lift, mk_and, substitute, var
from model.lang.schema import Schema, Sort, StateView
from model.vocab import ERRNO, SIGNALS

#: Outcome encoding shared by all engines: ret >= 0; -errno; -(1000 + signo).
SIG_BASE = 1000
#: the attributes of an open file description no action describes (memfd_create()'s: O_RDWR,
#: so FMODE_READ; no O_APPEND; and, as alloc_file_pseudo() calls no ->open and takes no
#: i_writecount, no FMODE_CAN_ODIRECT and no write count; no status flags): Action.describes
DESC_DEFAULT: Mapping[str, int] = {"read": 1, "append": 0, "odirect": 0, "writecount": 0,
                                   "status": 0}
#: a mapping's attributes that the state does not hold, kept with its name in a trace's
#: handle table (Action.maps_as, Action.from_map): "pages", its length in pages of the file;
#: "off", the file offset it maps from, in bytes (vm_pgoff << PAGE_SHIFT); "dontcopy",
#: MADV_DONTFORK was applied to it (VM_DONTCOPY: a fork does not copy it)
MAP_DEFAULT: Mapping[str, int] = {"pages": 1, "off": 0, "dontcopy": 0}


def errno_code(name: str) -> int:
    return -ERRNO[name]


def signal_code(name: str) -> int:
    return -(SIG_BASE + SIGNALS[name])


def outcome_text(code: int) -> str:
    """Human form of an encoded outcome: `0`, `EBUSY`, `SIGBUS`."""
    from model.vocab import ERRNO_NAME, SIGNAL_NAME

    if code >= 0:
        return str(code)
    if -code >= SIG_BASE:
        return SIGNAL_NAME.get(-code - SIG_BASE, f"signal {-code - SIG_BASE}")
    return ERRNO_NAME.get(-code, f"errno {-code}")


@dataclass(frozen=True)
class Param:
    """An action parameter: its sort, and the finite domain the explicit engine enumerates.

    The symbolic engines range over the whole sort unless `symbolic_domain` is set, so a proof
    covers every argument value, not only the explored ones. A trace may use any value that
    `outside()` accepts: the rule body judges it exactly, explored or not."""

    name: str
    sort: Sort
    domain: tuple[int, ...]
    doc: str = ""
    #: True: the symbolic engines take the explored domain only; a tuple: those values
    symbolic_domain: bool | tuple[int, ...] = False
    #: Why a value of the sort is still outside what the rule body judges exactly (None:
    #: judged exactly). Unset: every value of the sort is judged exactly.
    exact: Callable[[int], str | None] | None = None
    #: Which domain values a scope explores (None: all): a byte value is explored only on the
    #: grid of the scope's grain (issue 14: grain 1 explores whole pages, as before bytes).
    at_scope: Callable[[int, Mapping[str, int]], bool] | None = None

    def symbolic_values(self) -> tuple[int, ...] | None:
        """The values the symbolic engines take (None: every value of the sort)."""
        if isinstance(self.symbolic_domain, tuple):
            return self.symbolic_domain
        return self.domain if self.symbolic_domain else None

    def outside(self, v: int) -> str | None:
        """Why the value `v` is outside the model (None: the rule body judges it exactly).

        Replay (traces/concretize.py) refuses such a value instead of mapping it into the
        domain: the sort's range first, then the parameter's own limit."""
        return self.sort.outside(v) or (self.exact(v) if self.exact is not None else None)


@dataclass(frozen=True)
class Rule:
    kind: str  # "requires" | "fail" | "signal" | "ok"
    cond: E  # fires when this holds (for "requires": what must hold)
    value: E  # encoded outcome
    updates: Mapping[str, E] = field(default_factory=dict)
    effects: E | int = 0
    label: str = ""
    why: str = ""
    origin: tuple[str, int] | None = field(default=None, compare=False)  # (file, line)


_LANG_DIR = os.path.dirname(os.path.abspath(__file__))


def source_site() -> tuple[str, int] | None:
    """The innermost caller outside the modelling language (a design module or a what-if
    file) as (file, line): where a rule or a delta was written."""
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if os.path.dirname(os.path.abspath(fn)) != _LANG_DIR:
            return fn, f.f_lineno
        f = f.f_back  # type: ignore[assignment]
    return None


def _cond(when: E | bool | None, unless: E | bool | None) -> E:
    c = lift(True if when is None else when, BOOL)
    if unless is not None:
        c = mk_and(c, Not(unless))
    return c


def fail(errno: str, when: E | bool | None = None, unless: E | bool | None = None, *,
         label: str = "", why: str = "", effects: E | int = 0, **updates: E | int) -> Rule:
    """The call returns -1 with errno when `when` holds (and `unless` does not)."""
    if errno not in ERRNO:
        raise ValueError(f"unknown errno {errno}")
    return Rule("fail", _cond(when, unless), const(errno_code(errno), INT), _upd(updates),
                effects, label or errno.lower(), why, source_site())


def signal(name: str, when: E | bool | None = None, unless: E | bool | None = None, *,
           label: str = "", why: str = "") -> Rule:
    """The access raises signal `name` (SIGSEGV, SIGBUS); nothing changes."""
    return Rule("signal", _cond(when, unless), const(signal_code(name), INT), {}, 0,
                label or name.lower(), why, source_site())


def ok(value: E | int = 0, when: E | bool | None = None, *, label: str = "ok", why: str = "",
       effects: E | int = 0, **updates: E | int) -> Rule:
    """The call succeeds with `value`, applying `updates` (field=expression)."""
    return Rule("ok", _cond(when, None), lift(value, INT), _upd(updates), effects, label, why,
                source_site())


def requires(cond: E | bool, *, label: str = "", why: str = "") -> Rule:
    """A modelling precondition: outside it, this transition is not part of the model."""
    c = lift(cond, BOOL)
    return Rule("requires", c, const(0, INT), {}, 0, label or "requires", why, source_site())


def as_updates(updates: Mapping[str, E | int]) -> dict[str, Any]:
    """A mapping of state updates to pass on as keywords: `ok(0, **as_updates(m))`.

    Only for the type checker, which checks a `**mapping` against every keyword parameter of
    ok()/fail() (label and why are str) and not only against `**updates`."""
    return dict(updates)


def _upd(updates: Mapping[str, E | int]) -> dict[str, E]:
    return {k: (v if isinstance(v, E) else const(v, INT)) for k, v in updates.items()}


@dataclass(frozen=True)
class Branch:
    """A decided outcome of an action, with the exact condition under which it fires."""

    index: int
    rule: Rule
    fires: E  # rule.cond ∧ no earlier rule fired


@dataclass(frozen=True)
class Semantics:
    """An action's rules, resolved for one state/parameter environment."""

    enabled: E
    branches: tuple[Branch, ...]


Body = Callable[..., Sequence[Rule]]


@dataclass(frozen=True)
class Action:
    """A syscall or user event. `call`/`args` say how it prints as strace (traces/)."""

    name: str
    params: tuple[Param, ...]
    body: Body
    call: str
    args: tuple[ArgSpec, ...]
    doc: str = ""
    note: Callable[[int], str | None] | None = None  # strace's text after a result
    deltas: tuple[tuple[str, int], ...] = field(default=(), compare=False)  # where edited
    #: other calls that do exactly this action, each (call, args): dup2/dup3/fcntl(F_DUPFD)
    #: share a description as dup does. Traces print `call`/`args`; a trace line may use any.
    also: tuple[tuple[str, tuple[ArgSpec, ...]], ...] = ()
    #: (param, how): the parameter is the file position (f_pos) of the open file description
    #: the action's descriptor names, which is not in the state: a trace's handle table holds
    #: it (traces/concretize.py), starting at 0 for a new description; after a success it
    #: becomes param + the return value (how "advance": read, write) or the return value
    #: ("set": lseek). The explicit engine does not explore such an action (see NOTES.md).
    fpos: tuple[str, str] | None = None
    #: with fpos "advance": whether a write of these parameters lands at i_size (IOCB_APPEND:
    #: an O_APPEND description or RWF_APPEND; generic_write_checks_count()), so that after a
    #: success of n > 0 bytes f_pos is the new i_size, not param + n
    appends: Callable[[Mapping[str, int]], bool] | None = field(default=None, compare=False)
    #: the parameter naming the descriptor whose open file description a descriptor this
    #: action creates shares (dup: the same f_pos); None: a new description
    shares: str | None = None
    #: the attributes of an open file description this action creates (open(): "read",
    #: FMODE_READ; "append", O_APPEND; "odirect", FMODE_CAN_ODIRECT; "writecount", whether it
    #: holds i_writecount, which do_dentry_open() takes for FMODE_WRITE; "status", the other
    #: f_flags bits F_GETFL shows: O_NONBLOCK, O_NOATIME), from the action's
    #: parameters; None: DESC_DEFAULT,
    #: memfd_create()'s O_RDWR. A trace's handle table keeps them with the description
    describes: Callable[[Mapping[str, int]], Mapping[str, int]] | None = field(
        default=None, compare=False)
    #: parameters bound from the handle table, each (param, descriptor param, attribute): the
    #: attribute of the description the descriptor argument names (not printed)
    from_desc: tuple[tuple[str, str, str], ...] = ()
    #: after a success, the attributes of the description the action's descriptor names
    #: (fcntl(F_SETFL): "append"), from the parameters
    redescribes: Callable[[Mapping[str, int]], Mapping[str, int]] | None = field(
        default=None, compare=False)
    #: the attributes (MAP_DEFAULT's names) of the mapping this action creates, each
    #: (attribute, parameter) (mmap: its length and file offset): a trace's handle table
    #: keeps them with the mapping's name
    maps_as: tuple[tuple[str, str], ...] = ()
    #: parameters bound from the handle table, each (parameter, attribute): the attribute of
    #: the mapping the action's mapping argument names (not printed)
    from_map: tuple[tuple[str, str], ...] = ()
    #: after a success, attributes (MAP_DEFAULT's names) of the mapping the action's mapping
    #: argument names, from the parameters (madvise(MADV_DONTFORK): "dontcopy")
    remaps: Callable[[Mapping[str, int]], Mapping[str, int]] | None = field(
        default=None, compare=False)
    #: the length (in pages) the mapping the action's mapping argument names has after a
    #: success that creates no mapping, from the parameters (mremap: resized or moved, it
    #: keeps its name and offset); such a success returns that mapping (`= mN`), not a number
    resizes: Callable[[Mapping[str, int]], int] | None = field(default=None, compare=False)
    #: the parameter bound from the handle table: how many live open file descriptions hold
    #: write access on the inode (their "writecount" attribute, Action.describes; exec's
    #: ETXTBSY; not printed)
    writers: str | None = None
    #: (outcomes, why): trace outcomes of this call the model does not judge ("ok": any
    #: success; errno names) and why (exec runs content the model does not hold): replay
    #: refuses such a line as outside the model
    unjudged: tuple[tuple[str, ...], str] | None = None

    @property
    def explored(self) -> bool:
        """The engines explore the action: every parameter has a value to take (write's
        f_pos has none: replay binds it, Action.fpos)."""
        return all(p.domain for p in self.params)

    def spellings(self) -> tuple[tuple[str, tuple[ArgSpec, ...]], ...]:
        """(call, args) of every way a trace line may spell this action, the printed one
        first."""
        return ((self.call, self.args), *self.also)

    def rules(self, s: StateView, params: Mapping[str, E]) -> list[Rule]:
        rules = list(self.body(s, **params))
        labels = [r.label for r in rules]
        dup = {x for x in labels if labels.count(x) > 1}
        if dup:
            raise ValueError(f"{self.name}: duplicate rule labels {sorted(dup)}")
        return rules

    def param_vars(self) -> dict[str, E]:
        return {p.name: var("p", p.name, p.sort.expr_sort) for p in self.params}

    def semantics(self, schema: Schema, params: Mapping[str, E] | None = None) -> Semantics:
        """Resolve the ordered rules into (enabled, exclusive branches)."""
        s = schema.state_vars("s")
        rules = self.rules(s, params if params is not None else self.param_vars())
        earlier: list[E] = []
        enabled: list[E] = []
        branches: list[Branch] = []
        for r in rules:
            decided = Or(*earlier)
            if r.kind == "requires":
                enabled.append(Or(decided, r.cond))
                continue
            fires = mk_and(r.cond, Not(decided))
            branches.append(Branch(len(branches), r, fires))
            earlier.append(r.cond)
        decides = Or(*earlier)
        if not branches or not (decides.is_const and decides.val):
            # a constant-false condition is constant too: it must not pass for "always"
            raise DesignError(f"{self.name}: the last rule must always decide (an "
                              "unconditional ok/fail), so every call has an outcome",
                              rules[-1].origin if rules else None)
        return Semantics(mk_and(*enabled), tuple(branches))

    # ---- deltas --------------------------------------------------------------------------
    def _edit(self, fn: Callable[[list[Rule], StateView, dict[str, E]], list[Rule]]) -> Action:
        old = self.body
        where = source_site()

        def body(s: StateView, **p: E) -> list[Rule]:
            rs = list(old(s, **p))
            try:
                return fn(rs, s, p)
            except Exception as e:
                # the edit runs when the rules are resolved, long after the delta was
                # written: remember where it was written (a what-if reports that line)
                if where is not None and getattr(e, "where", None) is None:
                    e.where = where  # type: ignore[attr-defined]
                raise

        return replace(self, body=body, deltas=self.deltas + ((where,) if where else ()))

    def replace_rule(self, label: str, make: Callable[..., Rule]) -> Action:
        """A delta: rule `label` becomes make(s, **params)."""
        def edit(rs: list[Rule], s: StateView, p: dict[str, E]) -> list[Rule]:
            _need(self, rs, label)
            return [(_call(make, s, p) if r.label == label else r) for r in rs]
        return self._edit(edit)

    def edit_rule(self, label: str, fn: Callable[[Rule], Rule]) -> Action:
        """A delta: rule `label` becomes fn(rule), the rule as the body resolved it (a
        mutation operator: the same rule with its condition negated, made true, ...)."""
        def edit(rs: list[Rule], s: StateView, p: dict[str, E]) -> list[Rule]:
            _need(self, rs, label)
            return [(fn(r) if r.label == label else r) for r in rs]
        return self._edit(edit)

    def drop_rule(self, label: str) -> Action:
        def edit(rs: list[Rule], s: StateView, p: dict[str, E]) -> list[Rule]:
            _need(self, rs, label)
            return [r for r in rs if r.label != label]
        return self._edit(edit)

    def insert_rule(self, make: Callable[..., Rule], *, before: str | None = None,
                    after: str | None = None) -> Action:
        """A delta: a new rule placed before or after rule `before`/`after`."""
        def edit(rs: list[Rule], s: StateView, p: dict[str, E]) -> list[Rule]:
            anchor = before or after
            assert anchor is not None
            _need(self, rs, anchor)
            out: list[Rule] = []
            for r in rs:
                if r.label == before:
                    out.append(_call(make, s, p))
                out.append(r)
                if r.label == after:
                    out.append(_call(make, s, p))
            return out
        return self._edit(edit)

    def amend_rule(self, label: str, make: Callable[..., Mapping[str, E | int]]) -> Action:
        """A delta: rule `label` also performs the updates make(s, **params) returns."""
        def edit(rs: list[Rule], s: StateView, p: dict[str, E]) -> list[Rule]:
            _need(self, rs, label)
            out = []
            for r in rs:
                if r.label == label:
                    # sequential composition: the amendment reads the rule's new values
                    after = {("s", f): e for f, e in r.updates.items()}
                    extra = {f: substitute(e, after)
                             for f, e in _upd(_call_any(make, s, p)).items()}
                    r = replace(r, updates={**r.updates, **extra})
                out.append(r)
            return out
        return self._edit(edit)

    def with_params(self, **domains: Sequence[int]) -> Action:
        """The same action exploring other parameter values."""
        ps = tuple(replace(p, domain=tuple(domains[p.name])) if p.name in domains else p
                   for p in self.params)
        return replace(self, params=ps)


def _need(a: Action, rs: list[Rule], label: str) -> None:
    if not any(r.label == label for r in rs):
        raise KeyError(f"action {a.name} has no rule labelled {label!r} "
                       f"(labels: {', '.join(r.label for r in rs)})")


def _call(make: Callable[..., Rule], s: StateView, p: Mapping[str, E]) -> Rule:
    return _call_any(make, s, p)  # type: ignore[no-any-return]


def _call_any(make: Callable[..., Any], s: StateView, p: Mapping[str, E]) -> Any:
    """Call a delta's function with the state and the parameters it names (all of them when
    it takes **params: a delta for several actions whose parameters differ)."""
    sig = inspect.signature(make)
    if any(x.kind is inspect.Parameter.VAR_KEYWORD for x in sig.parameters.values()):
        return make(s, **p)
    kw: dict[str, Any] = {k: v for k, v in p.items() if k in sig.parameters}
    return make(s, **kw)

