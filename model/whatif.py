"""What-if designs from a file: a user's delta on a built-in design.

The file is Python that assigns `design`, usually `design = base("memfd").derive(...)`;
`base`, the rule helpers (fail, ok, signal, requires) and model.vocab's names are in scope.
It is executed as Python with the caller's privileges (load only files you trust). Errors
(unknown base, unknown action or rule, a rule that does not type-check, a design that is not
well formed, the file exiting) are reported as `file:line: message`, at the line that failed:
the innermost line of the file on the error's traceback, else the line that wrote the rule or
the delta at fault (rules are resolved long after the file ran), else the `derive` call.

A what-if inherits its base's expected verdicts; `derive(..., expect={"property": "holds"})`
states the ones it changes (properties/catalogue.py Property.expected).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable

import model.vocab as vocab
from model import designs
from model.lang import Design, If, fail, ok, requires, signal


class WhatIfError(Exception):
    pass


#: what-if files loaded in this run: real path -> design
_LOADED: dict[str, Design] = {}


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _line_in(path: str, exc: BaseException, fallback: tuple[str, int] | None = None) -> int:
    for fr in reversed(traceback.extract_tb(exc.__traceback__)):
        if fr.filename == path:
            return fr.lineno or 1
    sites = [getattr(exc, "where", None), *getattr(exc, "sites", ()), fallback]
    for w in sites:
        if isinstance(w, tuple) and _same_file(w[0], path):
            return int(w[1])
    return getattr(exc, "lineno", None) or 1


def load_whatif(path: str, validate: Callable[[Design], None] | None = None) -> Design:
    """The design a what-if file assigns, registered under its name. `validate` (the
    caller's checks: the expectations name real properties, the design is well formed — passed
    in, since model/ imports neither properties/ nor checker/) runs before the design is
    registered, and what it raises is reported at the file's line."""
    real = os.path.realpath(path)
    if real in _LOADED:  # the same file named twice: one design
        return _LOADED[real]
    try:
        with open(path, encoding="utf-8") as f:
            src = f.read()
    except OSError as e:
        raise WhatIfError(f"{path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise WhatIfError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None

    def base(name: str) -> Design:
        try:
            return designs.get(name)
        except KeyError:
            raise KeyError(f"unknown base design {name!r} (designs: "
                           f"{', '.join(designs.names(include_corpus=True))})") from None

    env: dict[str, object] = {n: getattr(vocab, n) for n in dir(vocab) if n.isupper()}
    env.update(base=base, fail=fail, ok=ok, signal=signal, requires=requires, If=If)
    d: object = None
    try:
        exec(compile(src, path, "exec"), env)
        d = env.get("design")
        if not isinstance(d, Design):
            raise WhatIfError(f"{path}:1: the file must assign `design = base(...).derive(...)`")
        if validate is not None:
            validate(d)  # every rule type-checks, can fire, fits its fields: now, not mid-search
        designs.add(d, source=path)
    except WhatIfError:
        raise
    except SyntaxError as e:
        raise WhatIfError(f"{path}:{e.lineno or 1}:{e.offset or 1}: {e.msg}") from None
    except SystemExit as e:  # the file ended the run: that is an error, not a verdict
        raise WhatIfError(f"{path}:{_line_in(path, e)}: the file called exit "
                          f"(SystemExit({e.code!r})): a what-if must only assign `design`"
                          ) from None
    except Exception as e:  # noqa: BLE001 - any error in user code becomes file:line
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        origin = d.origin if isinstance(d, Design) else None
        raise WhatIfError(f"{path}:{_line_in(path, e, origin)}: {type(e).__name__}: {msg}"
                          ) from None
    _LOADED[real] = d
    return d
