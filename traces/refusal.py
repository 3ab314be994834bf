"""How a trace line is refused: `ResolveError` (it names no action of the design, or a handle
that does not exist) and `Outside` (well formed, but not a value the model judges exactly)."""

from __future__ import annotations

from traces.trace import Step


class ResolveError(Exception):
    """A trace line that names no action of the design, or a handle that does not exist."""

    def __init__(self, msg: str, step: Step | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.step = step


class Outside(str):
    """An argument the model cannot judge exactly: replay refuses it, "outside the model"."""
