"""The modelling language's own error: a design that is not well formed."""

from __future__ import annotations


class DesignError(ValueError):
    """A design that cannot be judged as written: a rule that cannot decide, an action that can
    never be taken, an update that does not fit its field. `where` is the source line (file,
    line) of the rule or delta at fault, when known; `sites` are candidate source lines, most
    specific first (the rule, then the deltas that edited its action, newest first)."""

    def __init__(self, msg: str, where: tuple[str, int] | None = None,
                 sites: tuple[tuple[str, int], ...] = ()) -> None:
        super().__init__(msg)
        self.where = where
        self.sites = ((where,) if where else ()) + tuple(x for x in sites if x != where)
