"""Sequential scans of the text heuristics, compiled with numba (imported on first use).

``datatrove_gram_stats`` counts n-grams in a hash table per document and runs datatrove's
``find_all_duplicate`` scan over them: the scan cannot be a vectorised reduction, since where it lands
depends on what it found; a table per document counts every size in one pass each, without sorting the
batch's n-grams.
"""

from __future__ import annotations

import numba
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top bits of hash * golden pick a slot


@numba.njit(cache=True)
def datatrove_gram_stats(
    ids: np.ndarray,
    window: np.ndarray,
    starts: np.ndarray,
    sizes: np.ndarray,
    top_sizes: np.ndarray,
    dup_sizes: np.ndarray,
    base: np.uint64,
) -> tuple[np.ndarray, np.ndarray]:
    """Per document and n-gram size: datatrove's ``find_top_duplicate`` (characters of the most frequent
    n-gram, first seen wins a tie, words joined by one space, times its count; NaN under n words) where
    ``top_sizes`` says so, and ``find_all_duplicate`` (the scan above) where ``dup_sizes`` says so.

    ``ids``: word ids (documents one after another, ``starts[d]`` the first word of d); ``window``:
    cumulative word characters; ``sizes`` ascending. An n-gram is its polynomial hash of ``ids + 1``
    in ``base`` (64 bits), counted in a hash table per document and size: no sort. A document that
    repeats no k-gram repeats no longer one, so its larger sizes skip the table.
    """
    n_docs = len(starts) - 1
    top = np.full((n_docs, len(sizes)), np.nan)
    dup = np.zeros((n_docs, len(sizes)))
    longest = 1
    for d in range(n_docs):
        longest = max(longest, starts[d + 1] - starts[d])
    capacity = 2
    while capacity < 2 * longest:
        capacity *= 2
    keys = np.empty(capacity, np.uint64)
    used = np.zeros(capacity, np.int64)  # generation that filled the slot: no clearing between tables
    counts = np.empty(capacity, np.int64)
    firsts = np.empty(capacity, np.int64)
    seen = np.zeros(capacity, np.int64)
    slots = np.empty(longest, np.int64)
    hashes = np.empty(longest, np.uint64)
    generation = 0
    for d in range(n_docs):
        start, length = starts[d], starts[d + 1] - starts[d]
        for i in range(length):
            hashes[i] = np.uint64(ids[start + i]) + np.uint64(1)
        size = 1
        repeats = True
        for s in range(len(sizes)):
            n = sizes[s]
            while size < n:
                for i in range(length - size):
                    hashes[i] = hashes[i] * base + np.uint64(ids[start + i + size]) + np.uint64(1)
                size += 1
            grams = length - n + 1
            if grams <= 0:
                continue
            if not repeats:  # every n-gram occurs once: the first is the top one, nothing is duplicated
                if top_sizes[s]:
                    top[d, s] = window[start + n] - window[start] + (n - 1)
                continue
            generation += 1
            bits = 1
            while (1 << bits) < 2 * grams:
                bits += 1
            mask = (1 << bits) - 1
            shift = np.uint64(64 - bits)
            best_count, best_first = 0, 0
            repeats = False
            for i in range(grams):
                key = hashes[i]
                slot = np.int64((key * _GOLDEN) >> shift)
                while used[slot] == generation and keys[slot] != key:
                    slot = (slot + 1) & mask
                if used[slot] != generation:
                    used[slot], keys[slot], counts[slot], firsts[slot] = generation, key, 1, i
                else:
                    counts[slot] += 1
                    repeats = True
                slots[i] = slot
                if counts[slot] > best_count or (counts[slot] == best_count and firsts[slot] < best_first):
                    best_count, best_first = counts[slot], firsts[slot]
            if top_sizes[s]:
                first = start + best_first
                top[d, s] = best_count * (window[first + n] - window[first] + (n - 1))
            if dup_sizes[s] and repeats:
                chars, i = 0, 0
                while i < grams:
                    if seen[slots[i]] == generation:
                        chars += window[start + i + n] - window[start + i]
                        i += n
                    else:
                        seen[slots[i]] = generation
                        i += 1
                dup[d, s] = chars
    return top, dup
