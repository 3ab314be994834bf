"""What-if designs from a file: a user's delta on a built-in design.

The file is Python that assigns `design`, usually `design = base("memfd").derive(...)`;
`base`, the rule helpers (fail, ok, signal, requires) and model.vocab's names are in scope.
Errors (unknown base, unknown action or rule, a rule that does not type-check) are reported as
`file:line: message`.
"""

from __future__ import annotations

import traceback

import model.vocab as vocab
from model import designs
from model.lang import Design, If, fail, ok, requires, signal


class WhatIfError(Exception):
    pass


def _line_in(path: str, exc: BaseException) -> int:
    for fr in reversed(traceback.extract_tb(exc.__traceback__)):
        if fr.filename == path:
            return fr.lineno or 1
    return getattr(exc, "lineno", None) or 1


def load_whatif(path: str) -> Design:
    try:
        with open(path, encoding="utf-8") as f:
            src = f.read()
    except OSError as e:
        raise WhatIfError(f"{path}: {e.strerror}") from None

    def base(name: str) -> Design:
        try:
            return designs.get(name)
        except KeyError:
            raise KeyError(f"unknown base design {name!r} (designs: "
                           f"{', '.join(designs.names(include_corpus=True))})") from None

    env: dict[str, object] = {n: getattr(vocab, n) for n in dir(vocab) if n.isupper()}
    env.update(base=base, fail=fail, ok=ok, signal=signal, requires=requires, If=If)
    try:
        exec(compile(src, path, "exec"), env)
        d = env.get("design")
        if not isinstance(d, Design):
            raise WhatIfError(f"{path}:1: the file must assign `design = base(...).derive(...)`")
        for a in d.actions:  # type-check every rule now, not in the middle of a search
            a.semantics(d.schema)
        designs.add(d)
    except WhatIfError:
        raise
    except SyntaxError as e:
        raise WhatIfError(f"{path}:{e.lineno or 1}:{e.offset or 1}: {e.msg}") from None
    except Exception as e:  # noqa: BLE001 - any error in user code becomes file:line
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        raise WhatIfError(f"{path}:{_line_in(path, e)}: {type(e).__name__}: {msg}") from None
    return d
