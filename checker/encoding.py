"""Encoding checks: every flag word's named bits are distinct and round-trip through their
printed names; each inode flag of a layout has its own (field, bit), and every access site
that names a flag reads the bit the writers write; two designs composed (the same call in
both) must not give one bit two names -- as v5's MFD_INACCESSIBLE and 6.18's MFD_NOEXEC_SEAL
(both 0x0008) do."""

from __future__ import annotations

from collections.abc import Mapping

from model.lang.callspec import Flags
from model.lang.design import Design
from model.vocab import parse_flags, render_flags


def families(d: Design) -> dict[str, Mapping[str, int]]:
    """Every named bit family of a design: call arguments and flag-word fields."""
    out: dict[str, Mapping[str, int]] = {}
    for a in d.actions:
        for s in a.args:
            if isinstance(s, Flags):
                out[f"{a.name}.{s.param}"] = s.family
    for f in d.schema.fields:
        if f.sort.kind == "word" and f.sort.names:
            out[f"field {f.name}"] = dict(f.sort.names)
    return out


def check_design(d: Design) -> list[str]:
    problems = []
    for where, fam in families(d).items():
        seen: dict[int, str] = {}
        for name, bit in fam.items():
            if bit in seen:
                problems.append(f"{d.name}: {where}: {name} and {seen[bit]} are both "
                                f"{bit:#x}")
            seen[bit] = name
            if not where.startswith("field"):
                txt = render_flags(bit, dict(fam))
                try:
                    if parse_flags(txt, dict(fam)) != bit:
                        problems.append(f"{d.name}: {where}: {name} prints as {txt} which "
                                        f"parses back as {parse_flags(txt, dict(fam)):#x}")
                except KeyError as e:
                    problems.append(f"{d.name}: {where}: {name} prints as {txt}: unknown "
                                    f"word {e.args[0]}")
    lay = d.schema.flag_layout
    canon = {k: v for k, v in lay.items() if ":" not in k}
    inverse: dict[tuple[str, int], str] = {}
    for flag, loc in canon.items():
        if loc in inverse:
            problems.append(f"{d.name}: inode flags {flag} and {inverse[loc]} share "
                            f"{loc[0]} bit {loc[1]:#x}")
        inverse[loc] = flag
    for key, loc in lay.items():
        if ":" in key:
            site, flag = key.split(":", 1)
            if canon.get(flag) != loc:
                problems.append(f"{d.name}: {site} tests {flag} at {loc[0]} bit {loc[1]:#x}, "
                                f"but it is written at {canon.get(flag)}")
    return problems


def check_compose(a: Design, b: Design) -> list[str]:
    """Bits that the same call argument names differently in the two designs."""
    fa, fb = families(a), families(b)
    out = []
    for where in sorted(fa.keys() & fb.keys()):
        if where.startswith("field"):
            continue
        inv_a = {v: k for k, v in fa[where].items()}
        for name, bit in fb[where].items():
            other = inv_a.get(bit)
            if other is not None and other != name:
                out.append(f"{where}: {bit:#06x} is {other} in {a.name} and {name} in "
                           f"{b.name}")
    return out
