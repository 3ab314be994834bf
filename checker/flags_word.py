"""`diff --flags-word`: two designs' inode flags words side by side, bit by bit, with the rules
that set, clear and test each flag (a static view of the one definition, no state search).

A flag's rules are found exactly, after every delta: the flag (and each access site with a
place of its own, "writepage:LOCKED") is moved to a private one-bit field of a derived
design, and a rule uses the flag iff its resolved condition, value, effects or updates
mention that field. A rule that names the whole word (`iflags=0`) is listed under the word."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from model.lang.action import Rule
from model.lang.design import Design
from model.lang.expr import E
from model.lang.schema import Field, word


@dataclass
class FlagUse:
    """Where a flag lives and which rules (action.label) write and test it."""

    place: tuple[str, int] | None
    writes: set[str] = field(default_factory=set)
    reads: set[str] = field(default_factory=set)


def _state_vars(e: object) -> set[str]:
    out: set[str] = set()
    stack = [e]
    while stack:
        x = stack.pop()
        if not isinstance(x, E):
            continue
        if x.op == "var" and isinstance(x.val, tuple) and x.val[0] == "s":
            out.add(str(x.val[1]))
        stack.extend(x.args)
    return out


def _private(key: str) -> str:
    return "__flag_" + key.replace(":", "__")


def flag_uses(d: Design) -> dict[str, FlagUse]:
    """Each named inode flag of `d` (site-specific places folded into their flag) and the
    word fields themselves ("word iflags"), with the rules that write and read them."""
    lay = d.schema.flag_layout
    words = sorted({f for f, _ in lay.values()})
    probe = d.derive(d.name, d.doc, kernel=d.kernel,
                     fields=tuple(Field(_private(k), word(1), "probe") for k in lay),
                     layout={k: (_private(k), 1) for k in lay})
    owner = {_private(k): k.split(":")[-1] for k in lay}
    uses: dict[str, FlagUse] = {k: FlagUse(place) for k, place in lay.items() if ":" not in k}
    for w in words:
        uses[f"word {w}"] = FlagUse(None)
    s = probe.schema.state_vars("s")
    for act in probe.actions:
        for r in act.rules(s, act.param_vars()):
            _note(uses, owner, words, f"{act.name}.{r.label}", r)
    return uses


def _note(uses: dict[str, FlagUse], owner: Mapping[str, str], words: Iterable[str],
          where: str, r: Rule) -> None:
    read = _state_vars(r.cond) | _state_vars(r.value)
    if isinstance(r.effects, E):
        read |= _state_vars(r.effects)
    for f, e in r.updates.items():
        read |= _state_vars(e) - {f}  # a flag write reads its own word to keep the other bits
    wrote = set(r.updates)
    for f, flag in owner.items():
        if f in wrote:
            uses[flag].writes.add(where)
        if f in read:
            uses[flag].reads.add(where)
    for w in words:
        if w in wrote:
            uses[f"word {w}"].writes.add(where)
        if w in read:
            uses[f"word {w}"].reads.add(where)


def _place(u: FlagUse | None) -> str:
    if u is None or u.place is None:
        return "(none)"
    return f"{u.place[0]}:{u.place[1]:#x}"


def _rules(xs: set[str]) -> str:
    return ", ".join(sorted(xs)) or "-"


def compare(a: Design, b: Design) -> tuple[list[str], bool]:
    """The report's lines, and whether the two words hold the same flags, written and tested
    by the same rules (at the same bits or not: a layout change alone is no difference)."""
    ua, ub = flag_uses(a), flag_uses(b)
    lines = [f"flags word {a.name} -> {b.name} (static: the rules that write and test each "
             "flag, no state search)", f"flags ({a.name} -> {b.name}):"]
    flags = sorted(k for k in set(ua) | set(ub) if not k.startswith("word "))
    for k in flags:
        lines.append(f"  {k:<16} {_place(ua.get(k))} -> {_place(ub.get(k))}")
    by_place: dict[str, tuple[set[str], set[str]]] = {}
    for side, uses in ((0, ua), (1, ub)):
        for k, u in uses.items():
            if u.place is not None:
                by_place.setdefault(_place(u), (set(), set()))[side].add(k)
    reused = [(pl, x, y) for pl, (x, y) in sorted(by_place.items()) if x and y and x != y]
    if reused:
        lines.append("bits that hold another flag:")
        lines += [f"  {pl}: {', '.join(sorted(x))} in {a.name}, {', '.join(sorted(y))} in "
                  f"{b.name}" for pl, x, y in reused]
    lines.append("rules (write / test):")
    same_rules = True
    for k in sorted(set(ua) | set(ub)):
        x, y = ua.get(k), ub.get(k)
        if x is not None and y is not None and (x.writes, x.reads) == (y.writes, y.reads):
            lines.append(f"  {k}: the same in both: writes {_rules(x.writes)}; "
                         f"tests {_rules(x.reads)}")
            continue
        same_rules = False
        for d, use in ((a, x), (b, y)):
            if use is None:
                lines.append(f"  {k}: {d.name}: not in this design")
            else:
                lines.append(f"  {k}: {d.name}: writes {_rules(use.writes)}; "
                             f"tests {_rules(use.reads)}")
    moved = any(ua[k].place != ub[k].place for k in flags if k in ua and k in ub)
    if not same_rules:
        verdict = "DIFFERENT (flags or the rules that use them)"
    elif moved:
        verdict = "THE SAME FLAGS AND RULES, AT OTHER BITS"
    else:
        verdict = "THE SAME"
    lines.append(f"flags word: {verdict}")
    return lines, same_rules


__all__ = ["FlagUse", "compare", "flag_uses"]
