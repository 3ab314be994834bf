"""A strengthening the tool finds for k-induction: nothing happens before the inode exists.

For a design with an `exists` field: ¬exists ⇒ every field whose initial value is fixed still
has it. It is derived from Init, not written by hand, and check_symbolic proves it together with
the property, so it can only turn a counterexample to induction from an unreachable state (open
descriptors before memfd_create) into a proof, never hide a reachable violation.
"""

from __future__ import annotations

from collections.abc import Callable

from model.lang.design import Design
from model.lang.expr import E, Implies, conj
from model.lang.schema import StateView


def fresh_state_lemma(design: Design) -> Callable[[StateView], E] | None:
    if "exists" not in design.schema.by_name:
        return None
    choices = design.init.choices(design.schema)
    fixed = {n: v[0] for n, v in choices.items() if len(v) == 1 and n != "exists"}
    if choices["exists"] != (0,):
        return None

    def lemma(s: StateView) -> E:
        return Implies(~s.exists, conj(s[n] == v for n, v in fixed.items()))

    return lemma
