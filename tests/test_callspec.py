"""model/lang/callspec.py: how each action prints as an strace line. Every argument spec of
every action of every design (built-in and corpus) names a parameter the action has, so the
printer and the parser (traces/concretize.py) can never meet a dangling name."""

from __future__ import annotations

import pytest

from model import designs
from model.lang.callspec import Fields


def _params_named(spec: object) -> list[str]:
    if isinstance(spec, Fields):
        return [n for _, sub in spec.items for n in _params_named(sub)]
    p = getattr(spec, "param", None)
    return [p] if isinstance(p, str) else []


@pytest.mark.parametrize("name", designs.names(include_corpus=True))
def test_every_arg_spec_names_a_parameter(name: str) -> None:
    d = designs.get(name)
    for a in d.actions:
        have = {p.name for p in a.params}
        named = [n for spec in a.args for n in _params_named(spec)]
        assert set(named) <= have, (name, a.name, set(named) - have)
        assert a.call and a.call.isidentifier(), (name, a.name, a.call)
