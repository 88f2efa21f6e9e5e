"""In-process duplicate finding over small lists of texts (SFT sets, RFT samples, eval decontamination).

Same normalisation, shingling, MinHash, banding, verification and union-find as ``fusionforge
dedupe``, without Ray or files: call it on a few thousand texts at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fusionforge.filters.dedup.lsh import band_keys, band_rows, bucket_pairs, lsh_params, unique_pairs
from fusionforge.filters.dedup.minhash import TextSketcher, exact_jaccard
from fusionforge.filters.dedup.text_normalize import exact_keys, normalize_exact
from fusionforge.filters.dedup.union_find import connected_components
from fusionforge.filters.dedup.verify import DEFAULT_RECHECK_MARGIN, verify_text_pairs
from fusionforge.pipelines.core.config import DEFAULT_SEED


def exact_duplicates(
    texts: Sequence[str], *, casefold: bool = True, collapse_whitespace: bool = True
) -> list[int | None]:
    """Per text: None when it is the first of its content, else the index of that first text.

    Texts are compared after Unicode NFC and, by default, case folding and whitespace collapsing.
    """
    if len(texts) == 0:
        return []
    keys = exact_keys(normalize_exact(texts, casefold=casefold, collapse_whitespace=collapse_whitespace))
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    firsts = first[inverse.ravel()]
    return [None if int(f) == i else int(f) for i, f in enumerate(firsts)]


def near_duplicates(
    texts: Sequence[str], *, threshold: float = 0.8, num_perm: int = 128, ngram: int = 5, seed: int = DEFAULT_SEED
) -> list[int | None]:
    """Per text: None when it is kept (the first of its cluster, in input order), else the index of the kept text.

    Clusters join texts whose word ``ngram`` shingle sets have Jaccard >= ``threshold`` (MinHash LSH
    candidates, verified by the signature estimate and, near the threshold, by the exact Jaccard),
    and exact duplicates. Clustering is transitive: a text joins its cluster through any member.
    """
    n = len(texts)
    if n == 0:
        return []
    sketcher = TextSketcher(num_perm=num_perm, ngram=ngram, seed=seed)
    sketch = sketcher.sketch(texts)
    bands, rows = lsh_params(threshold, num_perm)
    items = np.arange(n, dtype=np.int64)
    table = band_rows(0, items, sketch.exact, band_keys(sketch.signatures, bands, rows), sketch.shingle_counts > 0)
    exact_member, exact_first, left, right = bucket_pairs(table)
    a, b = table["item"][left], table["item"][right]
    keep = unique_pairs(a, b)
    a, b = a[keep], b[keep]

    def exact(positions: np.ndarray) -> np.ndarray:
        return np.array([exact_jaccard(sketch.shingle_set(a[p]), sketch.shingle_set(b[p])) for p in positions])

    _, accepted = verify_text_pairs(
        sketch.signatures[a], sketch.signatures[b], threshold, DEFAULT_RECHECK_MARGIN, exact
    )
    nodes, roots = connected_components(
        np.concatenate([exact_member, a[accepted]]), np.concatenate([exact_first, b[accepted]])
    )
    result: list[int | None] = [None] * n
    for node, root in zip(nodes.tolist(), roots.tolist()):
        if node != root:
            result[node] = root
    return result
