"""The explicit search's visited set (checker/explicit.py _KeySet)."""

from __future__ import annotations

import numpy as np


def test_visited_set_membership() -> None:
    """The visited set against np.isin, through several doublings, on keys that
    differ only in high bits (the packed counters) as well as random ones."""
    from checker.visited import KeySet

    rng = np.random.default_rng(7)
    pool = np.unique(np.concatenate([
        rng.integers(0, 1 << 62, 40_000),
        (np.arange(20_000, dtype=np.int64) << 40),  # one field, high in the key
        np.arange(20_000, dtype=np.int64) * 4096,
    ]))
    rng.shuffle(pool)
    ks = KeySet(pool[:3])
    added = pool[:3]
    for lo, hi in ((3, 1000), (1000, 1001), (1001, 30_000), (30_000, pool.size - 500)):
        q = np.concatenate([pool, rng.integers(0, 1 << 62, 5000)])
        assert np.array_equal(ks.missing(q), ~np.isin(q, added))
        ks.add(pool[lo:hi])
        added = pool[:hi]
    assert ks.n == added.size and 2 * ks.n <= ks.keys.size
    assert not ks.missing(added).any() and ks.missing(pool[-500:]).all()


def test_runs_do_not_need_the_keys_of_expanded_layers() -> None:
    """Without keep_layers the search drops an expanded layer's keys (the visited set has
    them): the same counts and the same counterexamples and witnesses as with them."""
    from checker.explicit import Explorer
    from model import designs
    from properties.catalogue import for_design

    d = designs.get("memfd@5.17")
    props = for_design(d)

    def runs(keep: bool) -> tuple[int, int, dict[str, object]]:
        r = Explorer(d, d.scope(), props, keep_layers=keep).run()
        return r.states, r.transitions, {n: o.run and [(s.action, s.params, s.after)
                                                       for s in o.run.steps]
                                         for n, o in r.props.items()}

    kept, dropped = runs(True), runs(False)
    assert kept == dropped
    assert any(v for v in kept[2].values())
