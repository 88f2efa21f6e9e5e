"""Sequential scans of the text heuristics, compiled with numba (imported on first use).

``scan_duplicate_grams`` is datatrove's ``find_all_duplicate`` over n-gram ids instead of joined
strings: it cannot be a vectorised reduction, since where the scan lands depends on what it found.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def scan_duplicate_grams(
    gram_ids: np.ndarray,
    window: np.ndarray,
    starts: np.ndarray,
    docs: np.ndarray,
    n: int,
    n_grams: int,
) -> np.ndarray:
    """Per listed document: characters of the n-grams the left-to-right scan finds repeated.

    ``gram_ids[i]``: id of the n-gram starting at word i (ids never shared across documents);
    ``window``: cumulative word characters; ``starts[d]``: first word of document d.
    """
    seen = np.zeros(n_grams, dtype=np.bool_)
    out = np.zeros(len(docs), dtype=np.float64)
    for k in range(len(docs)):
        doc = docs[k]
        idx = starts[doc]
        end = starts[doc + 1] - n + 1
        chars = 0
        while idx < end:
            gram = gram_ids[idx]
            if seen[gram]:
                chars += window[idx + n] - window[idx]
                idx += n
            else:
                seen[gram] = True
                idx += 1
        out[k] = chars
    return out
