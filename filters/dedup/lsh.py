"""Locality-sensitive hashing of texts: band keys from signatures, and candidate pairs from buckets.

A MinHash signature is cut into ``bands`` bands of ``rows`` values; two documents become a
candidate pair when any band is equal. (Perceptual hashes have their own bands: ``hamming.py``.)

``bucket_pairs`` is the reduce step both the distributed pipeline (per shuffle partition) and the
in-process helpers run: rows are sorted, so its output never depends on arrival order.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fusionforge.filters.dedup.minhash import fmix64

EXACT_BAND = -1  # band number of the rows that carry a record's exact-content key
BAND_COLUMNS = ("space", "band", "key", "item", "exact_hi", "exact_lo", "hash", "probe")
RECALL_WEIGHTS = (0.02, 0.98)  # (false positive, false negative): candidates are verified, so favour recall
_U64 = np.uint64


def lsh_params(threshold: float, num_perm: int, weights: tuple[float, float] = RECALL_WEIGHTS) -> tuple[int, int]:
    """(bands, rows) from datasketch's optimal-parameter search for ``threshold`` and ``num_perm``."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if num_perm < 2:
        raise ValueError(f"num_perm must be at least 2, got {num_perm}")
    from datasketch.lsh import _optimal_param

    bands, rows = _optimal_param(threshold, num_perm, weights[0], weights[1])
    return int(bands), int(rows)


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Chance that a pair of Jaccard ``similarity`` shares at least one of ``bands`` bands of ``rows`` rows."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def band_keys(signatures: np.ndarray, bands: int, rows: int, salt: int = 0) -> np.ndarray:
    """``(n, bands)`` uint64 keys: band ``j`` hashes signature slots ``j*rows .. (j+1)*rows - 1``."""
    if bands * rows > signatures.shape[1]:
        raise ValueError(f"{bands} bands x {rows} rows need {bands * rows} permutations, have {signatures.shape[1]}")
    cube = signatures[:, : bands * rows].reshape(len(signatures), bands, rows).astype(_U64)
    tags = fmix64(np.arange(bands, dtype=_U64) + fmix64(np.array([salt], _U64)) + _U64(1))
    acc = np.broadcast_to(tags, (len(signatures), bands)).copy()
    for r in range(rows):
        acc = fmix64(acc ^ (cube[:, :, r] * _U64(0xC2B2AE3D27D4EB4F) + _U64(r)))
    return acc


def bucket_pairs(
    rows: Mapping[str, np.ndarray], fanout: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact-duplicate edges and candidate pairs from band rows (columns ``BAND_COLUMNS``).

    Rows with ``band == EXACT_BAND`` carry a content key: every member of an exact group gets an
    edge to the group's first item. In the other buckets, copies with the same exact key count
    once (their first item), and the distinct members are paired: all pairs while a bucket has at
    most ``fanout`` members, else its first ``fanout`` members with every other (a huge bucket is
    boilerplate, not a cluster of near-duplicates, and must not cost quadratic time).

    Returns ``(exact_member, exact_first, left, right)``: item arrays for the exact edges, and the
    row positions (into the arrays as given) of each candidate pair, the smaller item on the left.
    """
    space, band, key, item = rows["space"], rows["band"], rows["key"], rows["item"]
    exact_hi, exact_lo = rows["exact_hi"], rows["exact_lo"]
    n = len(item)
    if n == 0:
        empty = np.empty(0, np.int64)
        return empty, empty, empty, empty
    order = np.lexsort((item, exact_lo, exact_hi, key, band, space))
    s_space, s_band, s_key, s_item = space[order], band[order], key[order], item[order]
    s_hi, s_lo = exact_hi[order], exact_lo[order]
    new_bucket = np.ones(n, bool)
    new_bucket[1:] = (s_space[1:] != s_space[:-1]) | (s_band[1:] != s_band[:-1]) | (s_key[1:] != s_key[:-1])
    new_group = new_bucket.copy()
    new_group[1:] |= (s_hi[1:] != s_hi[:-1]) | (s_lo[1:] != s_lo[:-1])
    group_first = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    is_exact_band = s_band == EXACT_BAND
    copies = is_exact_band & ~new_group
    exact_member, exact_first = s_item[copies], s_item[group_first[copies]]

    reps = np.flatnonzero(new_group & ~is_exact_band)  # sorted positions of distinct members of LSH buckets
    bucket_of_rep = np.cumsum(new_bucket)[reps]
    starts = np.flatnonzero(np.r_[True, bucket_of_rep[1:] != bucket_of_rep[:-1]])
    sizes = np.diff(np.r_[starts, len(reps)])
    rank = np.arange(len(reps)) - np.repeat(starts, sizes)
    size_of = np.repeat(sizes, sizes)
    partners = np.where(rank < fanout, size_of - 1 - rank, 0)  # each pairs with every later member
    left_rep = np.repeat(np.arange(len(reps)), partners)
    step = np.arange(len(left_rep)) - np.repeat(np.cumsum(partners) - partners, partners)
    right_rep = left_rep + 1 + step
    left, right = order[reps[left_rep]], order[reps[right_rep]]
    swap = item[left] > item[right]
    left, right = np.where(swap, right, left), np.where(swap, left, right)
    return exact_member, exact_first, left, right


def unique_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each distinct ``(a, b)`` pair, in ``(a, b)`` order."""
    if len(a) == 0:
        return np.empty(0, np.int64)
    order = np.lexsort((b, a))
    first = np.ones(len(order), bool)
    first[1:] = (a[order][1:] != a[order][:-1]) | (b[order][1:] != b[order][:-1])
    return order[first]


def band_rows(
    space: int, items: np.ndarray, exact: np.ndarray, keys: np.ndarray, has_bands: np.ndarray
) -> dict[str, np.ndarray]:
    """The rows ``bucket_pairs`` groups: one exact-key row per item, one row per band of items that have bands.

    ``exact`` is ``(n, 2)`` uint64 (hi, lo); ``keys`` is ``(n, bands)`` uint64; ``has_bands`` marks
    items with something to compare (a text with shingles, a decodable image).
    """
    items = np.asarray(items, dtype=np.int64)
    n, bands = keys.shape
    banded = np.flatnonzero(has_bands)
    rep = np.repeat(banded, bands)
    band = np.concatenate([np.full(n, EXACT_BAND, np.int16), np.tile(np.arange(bands, dtype=np.int16), len(banded))])
    key = np.concatenate([exact[:, 0], keys[banded].ravel()])
    take = np.concatenate([np.arange(n), rep])
    return {
        "space": np.full(len(take), space, np.int8),
        "band": band,
        "key": key.astype(_U64),
        "item": items[take],
        "exact_hi": exact[take, 0],
        "exact_lo": exact[take, 1],
        "hash": np.zeros(len(take), _U64),
        "probe": np.zeros(len(take), bool),
    }
