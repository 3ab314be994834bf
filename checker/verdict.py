"""Verdicts, results and exit codes (documented in README: 0 as expected, 1 unexpected,
2 usage/input error, 3 inconclusive)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from properties.catalogue import HOLDS, NOT_WITNESSED, VIOLATED, WITNESSED
from traces.run import ARun

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3


class Verdict(Enum):
    PROVED = "PROVED"  # unbounded proof, certificate re-checked
    EXHAUSTED = "EXHAUSTED"  # holds in every reachable state within the scope
    BOUNDED = "BOUNDED"  # no violation up to depth k
    CTI = "CTI"  # induction step failed on a state not known reachable: inconclusive
    VIOLATED = "VIOLATED"  # replayed counterexample
    WITNESSED = "WITNESSED"
    NOT_WITNESSED = "NOT WITNESSED"  # within scope/bound, or proved unreachable (method says)
    UNKNOWN = "UNKNOWN"  # timeout or solver `unknown`


#: Which verdicts agree with each expectation, and which are inconclusive.
AGREES = {
    HOLDS: {Verdict.PROVED, Verdict.EXHAUSTED, Verdict.BOUNDED},
    VIOLATED: {Verdict.VIOLATED},
    WITNESSED: {Verdict.WITNESSED},
    NOT_WITNESSED: {Verdict.NOT_WITNESSED},
}
INCONCLUSIVE = {Verdict.UNKNOWN, Verdict.CTI}


@dataclass
class Result:
    design: str
    prop: str
    engine: str  # explicit | bmc | kind | pdr
    verdict: Verdict
    expected: str
    method: str  # "explicit, scope pages=1,..." / "pdr (Spacer), certificate re-checked" ...
    seconds: float = 0.0
    run: ARun | None = None
    certificate: str | None = None  # readable inductive invariant
    certificate_smt2: str | None = None
    note: str = ""
    stats: dict[str, int | float | str] = field(default_factory=dict)

    @property
    def as_expected(self) -> bool:
        return self.verdict in AGREES[self.expected]

    @property
    def inconclusive(self) -> bool:
        return self.verdict in INCONCLUSIVE


def exit_code(results: list[Result]) -> int:
    if any(not r.as_expected and not r.inconclusive for r in results):
        return EXIT_UNEXPECTED
    if any(r.inconclusive for r in results):
        return EXIT_INCONCLUSIVE
    return EXIT_OK
