"""Connected components of duplicate edges: a vectorised union-find (hook to the smaller root, compress).

Memory is proportional to the edges and the items they touch, never to the corpus: items without
an edge are not in any component. Each component's root is its smallest item, so the result does
not depend on the order the edges arrive in.
"""

from __future__ import annotations

import numpy as np


def connected_components(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(nodes, roots)``: every item that appears in an edge, sorted, and the smallest item of its component."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if len(a) != len(b):
        raise ValueError(f"edge ends differ in length: {len(a)} and {len(b)}")
    nodes, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    parent = np.arange(len(nodes))
    u, v = inverse[: len(a)], inverse[len(a) :]
    while len(u):
        ru, rv = parent[u], parent[v]
        low, high = np.minimum(ru, rv), np.maximum(ru, rv)
        joined = low != high
        if not joined.any():
            break
        np.minimum.at(parent, high[joined], low[joined])  # union: hook each larger root under a smaller one
        parent = _compress(parent)
        u, v = u[joined], v[joined]
    return nodes, nodes[parent]


def _compress(parent: np.ndarray) -> np.ndarray:
    """Path compression by pointer jumping until every node points at its root."""
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return parent
        parent = grand
