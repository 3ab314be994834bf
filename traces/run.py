"""Engine-level runs: a path through a design's transition system, before concretisation
(traces/concretize.py turns one into a Trace)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AStep:
    """One transition: action, parameter values, encoded outcome, effects, and the state after."""

    action: str
    params: dict[str, int]
    out: int
    eff: int
    after: dict[str, int]
    rule: str = ""  # label of the rule that decided the outcome


@dataclass
class ARun:
    """A run from an initial state. `violation` says what went wrong at the end, if anything."""

    init: dict[str, int]
    steps: list[AStep] = field(default_factory=list)
    violation: str | None = None

    def __len__(self) -> int:
        return len(self.steps)

    def states(self) -> list[dict[str, int]]:
        return [self.init] + [s.after for s in self.steps]
