import numpy as np
import pytest

from fusionforge.filters.dedup.union_find import connected_components


def _reference(edges):
    """Breadth-first search: node -> smallest node of its component."""
    neighbours = {}
    for a, b in edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    root = {}
    for start in sorted(neighbours):
        if start in root:
            continue
        queue, seen = [start], {start}
        while queue:
            node = queue.pop()
            for nxt in neighbours[node]:
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        for node in seen:
            root[node] = min(seen)
    return root


@pytest.mark.parametrize("seed", range(5))
def test_components_match_breadth_first_search(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 10**12, 2000)
    pool = np.unique(a)
    b = rng.choice(pool, 2000)
    chain = np.sort(rng.choice(pool, 50, replace=False))
    a = np.concatenate([a, chain[:-1]])
    b = np.concatenate([b, chain[1:]])
    nodes, roots = connected_components(a, b)
    expected = _reference(zip(a.tolist(), b.tolist()))
    assert dict(zip(nodes.tolist(), roots.tolist())) == expected


def test_edge_order_does_not_matter_and_empty_input_works():
    a, b = np.array([5, 3, 9, 1]), np.array([3, 9, 7, 2])
    nodes, roots = connected_components(a, b)
    nodes2, roots2 = connected_components(b[::-1], a[::-1])
    assert nodes.tolist() == nodes2.tolist() == [1, 2, 3, 5, 7, 9]
    assert roots.tolist() == roots2.tolist() == [1, 1, 3, 3, 3, 3]
    assert [len(x) for x in connected_components(np.array([]), np.array([]))] == [0, 0]
