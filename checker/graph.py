"""The reachable state graph as a networkx DiGraph, on demand (it costs ~10× a plain search),
and its DOT rendering for small scopes."""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numpy as np

from checker.explicit import Explorer
from model.lang.action import outcome_text
from model.lang.design import Design
from model.lang.schema import render_state


class TooLarge(Exception):
    pass


def state_graph(design: Design, scope: Mapping[str, int], *, max_states: int = 20000,
                max_memory: int | None = None) -> nx.DiGraph:
    """Nodes: packed state keys (attribute `state`: field values); edges: state-changing
    transitions (attributes `action`, `params`, `out`). Error outcomes are self-loops: left out."""
    ex = Explorer(design, scope, [], keep_layers=True, max_memory=max_memory,
                  max_states=max_states)
    r = ex.run()  # stops at the first layer past max_states, not after the whole space
    if r.stopped:
        raise TooLarge(r.stopped)
    keys = np.concatenate([layer[0] for layer in r.layers])
    pk = ex.packer
    g = nx.DiGraph()
    init = set(int(k) for k in r.layers[0][0])
    for k in keys:
        g.add_node(int(k), state=pk.unpack(int(k)), initial=int(k) in init)
    S = pk.fields(keys)
    for ca in ex.actions:
        res = ca.fn(S, ex.pgrids[ca.index])
        nk, ok = ex.next_keys(ca, res, keys, S)
        ok &= nk != keys.reshape(-1, 1)
        for row, col in zip(*np.nonzero(ok), strict=True):
            g.add_edge(int(keys[row]), int(nk[row, col]), action=ca.action.name,
                       params=ca.params_at(int(col)), out=int(res["out"][row, col]))
    return g


def to_dot(design: Design, g: nx.DiGraph) -> str:
    ids = {n: i for i, n in enumerate(g.nodes)}
    out = [f'digraph "{design.name}" {{', "  rankdir=LR;", "  node [shape=box, fontsize=9];"]
    for n, data in g.nodes(data=True):
        st = data["state"]
        # a node is a packed state: the replayed fields are not in it (Packer.omitted)
        label = render_state(design.schema, st, only=[f.name for f in design.schema.fields
                                                      if st.get(f.name) and not f.ghost])
        style = ", style=bold" if data.get("initial") else ""
        out.append(f'  s{ids[n]} [label="{label or "initial"}"{style}];')
    for a, b, data in g.edges(data=True):
        ps = ",".join(f"{k}={v}" for k, v in data["params"].items())
        out.append(f'  s{ids[a]} -> s{ids[b]} [label="{data["action"]}({ps}) = '
                   f'{outcome_text(data["out"])}", fontsize=8];')
    out.append("}")
    return "\n".join(out) + "\n"
