"""A trace replayed on the model: what the exporters (traces/export/) receive.

The replay itself runs the design's rule bodies, so it lives above, in checker/replay.py
(`replay_for_export`); this module only holds its result, so that traces/ never imports
checker/.
"""

from __future__ import annotations

from dataclasses import dataclass

from traces.trace import Any_, Outcome, Step, Trace


@dataclass
class Replayed:
    """A trace with the model's view of it; `states`, `model` and `actions` are None when the
    model cannot replay the trace (a call outside the design): the reproducers still export
    it, the pictures and the text then show no state."""

    trace: Trace
    steps: list[Step]  # the trace's steps, `?` outcomes replaced by the model's
    states: list[dict[str, int]] | None  # model state before step 1, after each step
    model: list[Outcome] | None  # the model's outcome of each step
    actions: list[str] | None  # the model action of each step

    def changed(self, i: int) -> list[str]:
        """Names of the fields step i (0-based) changed, in schema order."""
        if self.states is None:
            return []
        before, after = self.states[i], self.states[i + 1]
        return [n for n in after if before.get(n) != after[n]]

    def differs(self, i: int) -> Outcome | None:
        """The model's outcome of step i when the trace says otherwise."""
        if self.model is None or isinstance(self.trace.steps[i].outcome, Any_):
            return None
        got = self.model[i]
        return got if got != self.trace.steps[i].outcome else None


__all__ = ["Replayed"]
