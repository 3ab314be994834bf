"""The state-count manifest: every built-in and corpus design's explicit state space at its
default scope, pinned in tests/manifest.json (as TLA+ Examples' manifest.json records
`distinctStates` per model), so that an unintended model change shows up as a count change.

    python -m tests.manifest            # recompute and print the differences (exit 1 if any)
    python -m tests.manifest --update   # recompute and rewrite tests/manifest.json

Regenerate only after a deliberate model change, and say in the commit why the counts moved.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from checker.explicit import ExploreResult

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "manifest.json")


def entry(r: ExploreResult) -> dict[str, Any]:
    """What the manifest pins of one complete explicit search."""
    return {"scope": dict(r.scope), "states": r.states, "transitions": r.transitions,
            "depth": r.depth, "pruned": r.pruned,
            "never_fired": [f"{a}.{rule}" for a, rule in r.uncovered()]}


def compute(name: str) -> dict[str, Any]:
    from checker.explicit import Explorer
    from model import designs

    d = designs.get(name)
    r = Explorer(d, d.scope(), []).run()
    assert r.complete, name
    return entry(r)


def load() -> dict[str, dict[str, Any]]:
    with open(PATH, encoding="utf-8") as f:
        data: dict[str, dict[str, Any]] = json.load(f)["designs"]
    return data


def dumps(table: dict[str, dict[str, Any]]) -> str:
    """One design a line, so a count change is a one-line diff."""
    rows = ",\n".join(f"  {json.dumps(n)}: {json.dumps(e)}" for n, e in table.items())
    return ('{\n "about": "explicit state space of every built-in and corpus design at its '
            'default scope; regenerate with `python -m tests.manifest --update`",\n'
            f' "designs": {{\n{rows}\n }}\n}}\n')


def main(argv: list[str] | None = None) -> int:
    from model import designs

    ap = argparse.ArgumentParser(prog="python -m tests.manifest", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--update", action="store_true", help="rewrite tests/manifest.json")
    args = ap.parse_args(argv)
    old = load() if os.path.exists(PATH) else {}
    new: dict[str, dict[str, Any]] = {}
    for name in designs.names(include_corpus=True):
        new[name] = compute(name)
        if old.get(name) != new[name]:
            print(f"{name}: {old.get(name)} -> {new[name]}", flush=True)
    changed = new != old
    if args.update:
        tmp = PATH + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(dumps(new))
        os.replace(tmp, PATH)
        print(f"wrote {PATH}")
        return 0
    print("manifest: " + ("differs (see above)" if changed else "matches"))
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
