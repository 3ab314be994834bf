"""What every shmemcheck subcommand shares: usage errors, --scope, --design, --max-memory."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from model.lang.design import Design


ENGINES = ("explicit", "bmc", "kind", "pdr")


#: explore's default scope (see cmd_explore)
EXPLORE_SCOPE = {"pages": 1, "maps": 0, "pins": 0, "fds": 1}


class UsageError(Exception):
    pass


def parse_scope(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    if not text:
        return out
    for part in text.split(","):
        k, eq, v = part.partition("=")
        k, v = k.strip(), v.strip()
        # ASCII digits only: str.isdigit() also takes '²' (which int() refuses) and int()
        # reads '٣' as 3
        if not eq or not k or not re.fullmatch(r"[0-9]+", v):
            raise UsageError(f"bad --scope item {part!r}: want NAME=NUMBER[,NAME=NUMBER...] "
                             "(NUMBER in ASCII digits)")
        if k in out:
            raise UsageError(f"bad --scope: {k} given twice")
        out[k] = int(v)
    return out


def conform_scopes(d: Design, scope: str | None, walk_scope: str | None
                   ) -> tuple[dict[str, int], int | None, dict[str, int]]:
    """`conform`'s scope, depth and random-walk scope for design d: `--scope` and
    `--walk-scope` over the defaults (a design claiming another kernel, memfd@6.1, takes
    its base's)."""
    from checker.conform import DEFAULT_SCOPES, DEFAULT_WALK_SCOPES

    def split(text: str | None, default: str | None) -> tuple[dict[str, int], int | None]:
        sc = parse_scope(default)
        sc.update(parse_scope(text))
        depth = sc.pop("depth", None)
        try:
            return d.scope(sc), depth
        except KeyError as e:
            raise UsageError(f"design {d.name} has no scope parameter {e.args[0]!r} (has: "
                             f"{', '.join([*d.default_scope, 'depth'])})") from None

    dflt = d.name if d.name in DEFAULT_SCOPES or d.base is None else d.base
    sc, depth = split(scope, DEFAULT_SCOPES.get(dflt, "depth=3"))
    walk, _ = split(walk_scope, DEFAULT_WALK_SCOPES.get(dflt))
    return sc, depth, walk


def load_designs(names: Sequence[str]) -> list[Design]:
    """The named designs (built-in, or what-if files), each checked to be well formed
    (checker/wellformed.py): a design that is not is a usage error, never judged."""
    from checker.wellformed import validate
    from model.lang.errors import DesignError

    out = _load_designs(names)
    for d in out:
        try:
            validate(d)
        except DesignError as e:
            raise UsageError(str(e)) from None
    return out


def _load_designs(names: Sequence[str]) -> list[Design]:
    from model import designs

    if not names:
        return [designs.get(n) for n in designs.names()]
    out: list[Design] = []
    for n in names:
        if n.endswith(".py") or os.sep in n:
            from checker.wellformed import validate
            from model.whatif import WhatIfError, load_whatif
            from properties.catalogue import check_expectations

            def checks(d: Design) -> None:
                check_expectations(d)  # the expectations first: they name the catalogue
                validate(d)

            try:
                out.append(load_whatif(n, checks))
            except WhatIfError as e:
                raise UsageError(str(e)) from None
            except UnicodeDecodeError as e:  # the file, not its name: a what-if is UTF-8 text
                raise UsageError(f"{n}: not UTF-8 text (byte {e.start}: "
                                 f"{e.object[e.start:e.start + 1]!r})") from None
            continue
        try:
            out.append(designs.get(n))
        except KeyError:
            raise UsageError(f"unknown design {n!r} (designs: "
                             f"{', '.join(designs.names(include_corpus=True))})") from None
    return out


def max_memory_arg(args: argparse.Namespace) -> int | None:
    """--max-memory in bytes (default: half of MemAvailable now)."""
    from checker.memory import default_limit, parse_size

    if args.max_memory is None:
        return default_limit()
    try:
        return parse_size(args.max_memory)
    except ValueError as e:
        raise UsageError(f"--max-memory: {e}") from None


def explicit_preflight(designs: Sequence[Design], user_scope: dict[str, int]) -> None:
    """Refuse a design whose state does not fit the explicit engine's key at this scope."""
    from checker.packer import Packer, ScopeTooWide

    for d in designs:
        try:
            Packer(d, d.scope(user_scope))
        except KeyError:
            continue  # reported with the design's scope parameters below
        except ScopeTooWide as e:
            raise UsageError(str(e)) from None
