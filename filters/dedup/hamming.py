"""Perceptual hashes within a Hamming distance, found through bit-sampling LSH instead of all pairs.

Each band keeps ``width`` of the 64 bits (a fixed random mask); two hashes land in the same bucket
of a band when they agree on those bits. A pair ``d`` bits apart agrees on a band with probability
``C(64 - d, width) / C(64, width)``, so ``bands`` independent masks find it with probability
``1 - (1 - p) ** bands``; ``hamming_band_params`` picks bands of at least 16 bits (unrelated hashes
rarely meet) and enough of them for ``HAMMING_RECALL`` at the threshold (8 bits: 44 bands of 16).

An image *stores* one hash (its own) and *probes* with its crops' hashes: stored rows of a bucket
are compared with each other, probe rows only with stored rows. Rows with one exact key count
once per bucket (exact copies already meet through their exact-key rows). A bucket with more than
``fanout`` distinct stored hashes (a flat colour, a frequent pattern) compares every row with its
first ``fanout`` stored hashes only; the comparisons skipped are counted and reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import ceil, comb, log1p

import numpy as np

from fusionforge.filters.dedup.lsh import EXACT_BAND
from fusionforge.filters.dedup.minhash import fmix64

BITS = 64
HAMMING_RECALL = 0.98  # chance that a pair exactly at the threshold shares a band (closer pairs: higher)
MAX_HAMMING_BANDS = 48
MIN_BAND_BITS = 16
HAMMING_FANOUT = 512  # stored hashes a row is compared with, at most, in one bucket
MASK_SEED = 0x5EED
_U64 = np.uint64


def band_recall(distance: int, width: int, bands: int, bits: int = BITS) -> float:
    """Chance that two hashes ``distance`` bits apart agree on all ``width`` bits of at least one of ``bands`` masks.

    Masks that fit in one permutation are disjoint: more of them than flipped bits always find
    the pair (pigeonhole); otherwise the bands count as independent.
    """
    if bands * width <= bits and bands > distance:
        return 1.0
    agree = comb(bits - distance, width) / comb(bits, width) if distance <= bits - width else 0.0
    return 1.0 - (1.0 - agree) ** bands


def hamming_band_params(
    max_distance: int, recall: float = HAMMING_RECALL, max_bands: int = MAX_HAMMING_BANDS, bits: int = BITS
) -> tuple[int, int]:
    """(bits per band, bands) that reach ``recall`` at ``max_distance`` bits.

    Up to 3 bits, ``d + 1`` disjoint bands of at least ``MIN_BAND_BITS`` bits find every pair
    (pigeonhole). Beyond, the fewest bands with at least ``MIN_BAND_BITS`` bits per band (65,536
    buckets: unrelated hashes rarely meet), the widest of those; when that needs more than
    ``max_bands``, the widest band that ``max_bands`` bands allow.
    """
    if not 0 <= max_distance < bits:
        raise ValueError(f"max_distance must be in [0, {bits}), got {max_distance}")
    if bits // (max_distance + 1) >= MIN_BAND_BITS:
        return bits // (max_distance + 1), max_distance + 1

    def needed(width: int) -> int:
        agree = comb(bits - max_distance, width) / comb(bits, width)
        return 1 if agree >= 1.0 else ceil(log1p(-recall) / log1p(-agree))

    options = [(width, needed(width)) for width in range(1, bits - max_distance + 1)]
    wide = [(bands, -width) for width, bands in options if width >= MIN_BAND_BITS and bands <= max_bands]
    if wide:
        bands, negative_width = min(wide)
        return -negative_width, bands
    fitting = [width for width, bands in options if bands <= max_bands]
    width = max(fitting) if fitting else 1
    return width, min(needed(width), max_bands)


def band_masks(width: int, bands: int, bits: int = BITS, seed: int = MASK_SEED) -> np.ndarray:
    """``bands`` uint64 masks of ``width`` bits: disjoint groups of successive random permutations of the bits."""
    rng = np.random.default_rng(seed)
    per_permutation = max(1, bits // width)
    masks = []
    while len(masks) < bands:
        order = rng.permutation(bits)
        for group in range(min(per_permutation, bands - len(masks))):
            chosen = order[group * width : (group + 1) * width]
            masks.append(np.bitwise_or.reduce(np.left_shift(_U64(1), chosen.astype(_U64))))
    return np.array(masks, _U64)


def hamming_keys(hashes: np.ndarray, masks: np.ndarray, salt: int = 0) -> np.ndarray:
    """``(n, bands)`` bucket keys: the masked bits of each hash, mixed with the band number and ``salt``."""
    hashes = np.asarray(hashes, _U64)
    tags = fmix64(np.arange(len(masks), dtype=_U64) + fmix64(np.array([salt], _U64)) + _U64(1))
    return fmix64((hashes[:, None] & masks[None, :]) ^ tags[None, :])


def hamming64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit differences between uint64 hashes (element-wise)."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, _U64), np.asarray(b, _U64))).astype(np.int64)


def hash_band_rows(
    space: int,
    items: np.ndarray,
    exact: np.ndarray,
    hashes: np.ndarray,
    masks: np.ndarray,
    usable: np.ndarray,
    per_column: bool = False,
) -> dict[str, np.ndarray]:
    """Rows for ``hamming_matches``: an exact-key row per item, and one row per band of each hash of usable items.

    ``hashes`` is ``(n, k)`` uint64. Images (``per_column=False``): column 0 is the stored hash, the
    others probe (a probe equal to the item's own hash or to an earlier probe is left out). Videos
    (``per_column=True``): every column is stored, in bands of its own (frame ``i`` meets frame ``i``).
    """
    items = np.asarray(items, dtype=np.int64)
    hashes = np.asarray(hashes, _U64)
    n, k = hashes.shape
    bands = len(masks)
    rows = np.flatnonzero(usable)
    take, band, key = [np.arange(n)], [np.full(n, EXACT_BAND, np.int16)], [exact[:, 0]]  # the exact-key rows
    value, probe = [np.zeros(n, _U64)], [np.zeros(n, bool)]
    for c in range(k):
        column = hashes[rows, c]
        keep = np.ones(len(rows), bool) if per_column or c == 0 else ~(hashes[rows, :c] == column[:, None]).any(axis=1)
        owners = rows[keep]
        take.append(np.repeat(owners, bands))
        offset = c * bands if per_column else 0
        band.append(np.tile(np.arange(bands, dtype=np.int16) + offset, len(owners)))
        key.append(hamming_keys(column[keep], masks, salt=space).ravel())
        value.append(np.repeat(column[keep], bands))
        probe.append(np.full(len(owners) * bands, c > 0 and not per_column))
    take_all = np.concatenate(take)
    return {
        "space": np.full(len(take_all), space, np.int8),
        "band": np.concatenate(band),
        "key": np.concatenate(key).astype(_U64),
        "item": items[take_all],
        "exact_hi": exact[take_all, 0],
        "exact_lo": exact[take_all, 1],
        "hash": np.concatenate(value),
        "probe": np.concatenate(probe),
    }


@dataclass(frozen=True)
class HammingMatches:
    """Pairs within the distance (``a < b``, smallest distance per pair) and what finding them cost."""

    a: np.ndarray
    b: np.ndarray
    distance: np.ndarray
    comparisons: int  # hash pairs whose distance was computed
    skipped: int  # hash pairs of over-full buckets left uncompared (the fanout cap)
    capped_buckets: int  # buckets with more than ``fanout`` distinct stored hashes


def hamming_matches(
    rows: Mapping[str, np.ndarray], max_distance: int, fanout: int = HAMMING_FANOUT, block: int = 1 << 20
) -> HammingMatches:
    """Pairs of items whose hashes are within ``max_distance`` bits, compared inside each band bucket.

    Vectorised over all buckets: every row gets runs of partners (a stored row: the later stored
    rows of its bucket; a probe row: the bucket's stored rows but its own picture's), cut at
    ``fanout`` (stored rows in the order of their content key, so the cut does not depend on the
    input order); the runs are expanded ``block`` comparisons at a time, so memory follows the
    block, not the comparisons, which grow with how densely the hashes cluster (9.6M in one shuffle
    partition of the 1M-record soak against 1.8M at 200k).
    """
    runs = _partner_runs(rows, fanout)
    a, b, d = _expand(runs.item, runs.hashes, runs.left, runs.starts, runs.counts, max_distance, block)
    if len(a):
        by_distance = np.lexsort((d, b, a))
        a, b, d = a[by_distance], b[by_distance], d[by_distance]
        keep = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])]
        a, b, d = a[keep], b[keep], d[keep]
    return HammingMatches(a, b, d, runs.compared, runs.possible - runs.compared, runs.capped_buckets)


@dataclass(frozen=True)
class _PartnerRuns:
    """Row ``left[i]`` (of the bucket-sorted rows) is compared with rows ``starts[i] .. starts[i] + counts[i] - 1``."""

    item: np.ndarray
    hashes: np.ndarray
    left: np.ndarray
    starts: np.ndarray
    counts: np.ndarray  # all > 0
    compared: int
    possible: int  # comparisons without the fanout cap
    capped_buckets: int


def _partner_runs(rows: Mapping[str, np.ndarray], fanout: int) -> _PartnerRuns:
    """The runs of partners of every row, in a function of their own so that the sorted columns and
    the per-row counts that build them are freed before the comparisons are expanded."""
    s = _bucket_rows(rows)
    n = len(s["item"])
    new_bucket = np.ones(n, bool)
    new_bucket[1:] = (s["group"][1:] != s["group"][:-1]) | (s["key"][1:] != s["key"][:-1])
    bucket = np.cumsum(new_bucket) - 1
    first = np.flatnonzero(new_bucket)  # a bucket's stored rows come first
    size = np.bincount(bucket, weights=~s["probe"], minlength=len(first)).astype(np.int64)
    # stored row at rank r: the later stored rows (all of them while r < fanout, else none)
    st = np.flatnonzero(~s["probe"])
    rank = st - first[bucket[st]]
    st_count = np.where(rank < fanout, size[bucket[st]] - 1 - rank, 0)
    # probe row: the stored rows before and after its own picture's stored row (if there), fanout in all
    pr = np.flatnonzero(s["probe"])
    own, at = _own_stored_row(bucket, s["exact_hi"], st, pr)
    begin, total = first[bucket[pr]], size[bucket[pr]]
    before = np.where(own, at - begin, total)
    count_1 = np.minimum(before, fanout)
    count_2 = np.where(own, np.minimum(total - before - 1, fanout - count_1), 0)
    counts = np.concatenate([st_count, count_1, count_2])
    live = np.flatnonzero(counts > 0)
    return _PartnerRuns(
        item=s["item"],
        hashes=s["hash"],
        left=np.concatenate([st, pr, pr])[live],
        starts=np.concatenate([st + 1, begin, begin + before + 1])[live],
        counts=counts[live],
        compared=int(counts.sum()),
        possible=int((size * (size - 1) // 2).sum() + (total - own).sum()),
        capped_buckets=int((size > fanout).sum()),
    )


def _bucket_rows(rows: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The LSH rows sorted by bucket, stored rows first, then by content key and hash.

    Rows equal in bucket, kind, content key (64 bits of it) and hash count once, as their
    smallest item: exact copies of a picture meet through their exact-key rows already.
    """
    band = np.asarray(rows["band"])
    lsh = np.flatnonzero(band != EXACT_BAND)
    group = (np.asarray(rows["space"])[lsh].astype(np.int32) << 16) | band[lsh].astype(np.int32)
    cols = {"group": group, **{c: np.asarray(rows[c])[lsh] for c in ("key", "probe", "exact_hi", "hash", "item")}}
    cols["hash"] = cols["hash"].astype(_U64)
    by_key = np.argsort(cols["key"])  # first drop rows alone with their key, or with probes only: cheaper to sort
    keys = cols["key"][by_key]
    run = np.cumsum(np.r_[True, keys[1:] != keys[:-1]]) - 1 if len(keys) else np.empty(0, np.int64)
    useful = np.zeros(len(keys), bool)
    useful[by_key] = (np.bincount(run)[run] > 1) & (np.bincount(run, weights=~cols["probe"][by_key])[run] > 0)
    cols = {c: v[useful] for c, v in cols.items()}
    order = np.lexsort((cols["hash"], cols["exact_hi"], cols["probe"], cols["key"], cols["group"]))
    cols = {c: v[order] for c, v in cols.items()}
    new = np.ones(len(order), bool)
    if len(order):
        new[1:] = False
        for c in ("group", "key", "probe", "exact_hi", "hash"):
            new[1:] |= cols[c][1:] != cols[c][:-1]
    starts = np.flatnonzero(new)
    out = {c: v[starts] for c, v in cols.items() if c != "item"}
    out["item"] = np.minimum.reduceat(cols["item"], starts) if len(starts) else cols["item"]
    return out


def _own_stored_row(
    bucket: np.ndarray, content: np.ndarray, stored: np.ndarray, probes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each probe row: is its picture's stored row in its bucket, and where (rows sorted by bucket, content)."""
    if len(stored) == 0 or len(probes) == 0:
        return np.zeros(len(probes), bool), np.zeros(len(probes), np.int64)
    values = np.unique(content[stored])
    rank = np.minimum(np.searchsorted(values, content[probes]), len(values) - 1)
    known = values[rank] == content[probes]
    stored_key = bucket[stored].astype(np.int64) * len(values) + np.searchsorted(values, content[stored])
    probe_key = bucket[probes].astype(np.int64) * len(values) + rank
    position = np.minimum(np.searchsorted(stored_key, probe_key), len(stored) - 1)
    own = known & (stored_key[position] == probe_key)
    return own, stored[position]


def _expand(
    item: np.ndarray,
    hashes: np.ndarray,
    left: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    max_distance: int,
    block: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compare row ``left[i]`` with rows ``starts[i] .. starts[i] + counts[i] - 1``, about ``block`` pairs at a time."""
    ends = np.cumsum(counts)
    found_a, found_b, found_d = [], [], []
    lo = 0
    while lo < len(counts):
        base = int(ends[lo - 1]) if lo else 0
        hi = max(lo + 1, int(np.searchsorted(ends, base + block, side="right")))
        run = counts[lo:hi]
        a_rows = np.repeat(left[lo:hi], run)
        b_rows = np.repeat(starts[lo:hi], run) + (np.arange(len(a_rows)) - np.repeat(np.cumsum(run) - run, run))
        distance = np.bitwise_count(hashes[a_rows] ^ hashes[b_rows]).astype(np.int64)
        hit = (distance <= max_distance) & (item[a_rows] != item[b_rows])
        a, b = item[a_rows[hit]], item[b_rows[hit]]
        found_a.append(np.minimum(a, b))
        found_b.append(np.maximum(a, b))
        found_d.append(distance[hit])
        lo = hi
    if not found_a:
        empty = np.empty(0, np.int64)
        return empty, empty, empty
    return np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_d)
