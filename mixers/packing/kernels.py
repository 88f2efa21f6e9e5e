"""The packer's inner loops, compiled with numba (imported on first use: ``packer.pack_window``).

One call packs one set of B sequences, item by item, in O(N log B + N log L):

- vision items, heaviest first, each onto the least vision-loaded sequence that has room (and stays
  within the per-sequence cap): longest-processing-time balancing over a binary heap keyed by load;
- text documents, largest first, each into the sequence with the smallest free room that fits
  (best-fit decreasing). The capacity index is a bitmap over free-room values 0..L with summary
  levels (64 bits each): "smallest room >= need" is a walk up and down them, O(log64 L) word
  operations in a few KB that stay in cache; sequences with the same room sit in a stack per value;
- long documents top off every gap, sequence by sequence, in order.

The kernels are compiled once (``cache=True`` keeps the machine code next to this file) and are
deterministic: every tie is broken by sequence or item index.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _heap_push(heap, count, key):
    i = count
    heap[i] = key
    while i > 0:
        parent = (i - 1) >> 1
        if heap[parent] <= heap[i]:
            break
        heap[parent], heap[i] = heap[i], heap[parent]
        i = parent
    return count + 1


@numba.njit(cache=True)
def _heap_pop(heap, count):
    top = heap[0]
    count -= 1
    heap[0] = heap[count]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= count:
            break
        child = left
        if left + 1 < count and heap[left + 1] < heap[left]:
            child = left + 1
        if heap[i] <= heap[child]:
            break
        heap[i], heap[child] = heap[child], heap[i]
        i = child
    return top, count


@numba.njit(cache=True)
def _lowest_bit(word):
    """Index of the lowest set bit of a nonzero uint64 (an exact power of two converts to float exactly)."""
    return int(np.log2(np.float64(word & (~word + np.uint64(1)))))


@numba.njit(cache=True)
def _bitmap(values):
    """Words for a bitmap over 0..values-1 with summary levels, and where each level starts in them."""
    starts = np.zeros(8, np.int64)
    depth, total, words = 0, 0, values
    while True:
        words = (words + 63) >> 6
        starts[depth] = total
        total += words
        depth += 1
        if words == 1:
            break
    starts[depth] = total
    return np.zeros(total, np.uint64), starts[: depth + 1]


@numba.njit(cache=True)
def _mark(bits, starts, value, on):
    """Set or clear ``value`` (a bit above is set iff its word below is nonzero)."""
    for depth in range(len(starts) - 1):
        word = starts[depth] + (value >> 6)
        bit = np.uint64(1) << np.uint64(value & 63)
        was = bits[word] != 0
        bits[word] = bits[word] | bit if on else bits[word] & ~bit
        if (bits[word] != 0) == was:
            return
        value >>= 6


@numba.njit(cache=True)
def _next_marked(bits, starts, need):
    """The smallest marked value >= need, or -1: up the levels until a word has a later bit, then down."""
    value = need
    depth = 0
    levels = len(starts) - 1
    while True:
        word = value >> 6
        if starts[depth] + word >= starts[depth + 1]:
            return -1
        found = bits[starts[depth] + word] & (~np.uint64(0) << np.uint64(value & 63))
        if found != 0:
            value = (word << 6) + _lowest_bit(found)
            break
        depth += 1
        if depth == levels:
            return -1
        value = word + 1
    while depth > 0:
        depth -= 1
        value = (value << 6) + _lowest_bit(bits[starts[depth] + value])
    return value


@numba.njit(cache=True)
def pack_fixed(
    n,
    seq_len,
    cap,
    size,
    vision,
    large,
    vision_order,
    text_order,
    long_refs,
    long_used,
    out_seq,
    out_ref,
    out_start,
    out_length,
    left,
):
    """Pack into ``n`` sequences; segments go to the ``out_*`` arrays, atomic items with no room to ``left``.

    ``large``: documents that get sequences n-len(large).. of their own first; ``vision_order`` and
    ``text_order``: item indices, heaviest / largest first; ``long_refs``/``long_used``: long documents in
    order and the tokens of each already placed. ``cap`` < 0: no per-sequence vision cap. Returns the
    segment count, the leftover count, the index of the first long document not used up, and the tokens
    of it used here.
    """
    free = np.full(n, seq_len, np.int64)
    load = np.zeros(n, np.int64)
    k = 0
    n_left = 0
    for i in range(len(large)):
        b = n - len(large) + i
        ref = large[i]
        free[b] -= size[ref]
        out_seq[k], out_ref[k], out_start[k], out_length[k] = b, ref, 0, size[ref]
        k += 1
    # vision: LPT over a heap keyed by load * n + sequence
    heap = np.empty(n, np.int64)
    count = 0
    for b in range(n):
        count = _heap_push(heap, count, b)
    skipped = np.empty(n, np.int64)
    for ref in vision_order:
        n_skipped = 0
        chosen = -1
        while count > 0:
            key, count = _heap_pop(heap, count)
            b = key % n
            if free[b] >= size[ref] and (cap < 0 or load[b] + vision[ref] <= cap):
                chosen = b
                break
            skipped[n_skipped] = key
            n_skipped += 1
        for j in range(n_skipped):
            count = _heap_push(heap, count, skipped[j])
        if chosen < 0:
            left[n_left] = ref
            n_left += 1
            continue
        free[chosen] -= size[ref]
        load[chosen] += vision[ref]
        count = _heap_push(heap, count, load[chosen] * n + chosen)
        out_seq[k], out_ref[k], out_start[k], out_length[k] = chosen, ref, 0, size[ref]
        k += 1
    # text: best fit decreasing through the capacity index
    bits, starts = _bitmap(seq_len + 1)
    head = np.full(seq_len + 1, -1, np.int32)  # sequences by free room: a stack per value
    below = np.full(n, -1, np.int32)
    for b in range(n - 1, -1, -1):
        if free[b] > 0:
            below[b] = head[free[b]]
            head[free[b]] = b
            _mark(bits, starts, free[b], True)
    for ref in text_order:
        room = _next_marked(bits, starts, size[ref])
        if room < 0:
            left[n_left] = ref
            n_left += 1
            continue
        b = head[room]
        head[room] = below[b]
        if head[room] < 0:
            _mark(bits, starts, room, False)
        free[b] -= size[ref]
        out_seq[k], out_ref[k], out_start[k], out_length[k] = b, ref, 0, size[ref]
        k += 1
        if free[b] > 0:
            if head[free[b]] < 0:
                _mark(bits, starts, free[b], True)
            below[b] = head[free[b]]
            head[free[b]] = b
    # long text tops off every gap, in order
    position = 0
    used = long_used[0] if len(long_used) else 0
    for b in range(n):
        while free[b] > 0 and position < len(long_refs):
            ref = long_refs[position]
            take = min(free[b], size[ref] - used)
            out_seq[k], out_ref[k], out_start[k], out_length[k] = b, ref, used, take
            k += 1
            free[b] -= take
            used += take
            if used == size[ref]:
                position += 1
                used = long_used[position] if position < len(long_refs) else 0
    return k, n_left, position, used


@numba.njit(cache=True)
def _splitmix(state):
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def order_sequences(n, seq, length, seg_vision, seed):
    """Plan order of a window's sequences and of their segments (see ``plan_table``).

    Returns the sequences in plan order (empty ones dropped), their tokens, vision tokens and segment
    counts, the segment permutation (by sequence in plan order, placement order inside) and each
    segment's offset in its sequence.
    """
    tokens = np.zeros(n, np.int64)
    vision = np.zeros(n, np.int64)
    for i in range(len(seq)):
        tokens[seq[i]] += length[i]
        vision[seq[i]] += seg_vision[i]
    used = np.flatnonzero(tokens > 0)
    m = len(used)
    state = np.uint64(seed)
    for i in range(m - 1, 0, -1):  # seeded Fisher-Yates
        state, z = _splitmix(state)
        j = np.int64(z % np.uint64(i + 1))
        used[i], used[j] = used[j], used[i]
    share = vision.sum() / max(1, tokens.sum())
    excess = vision[used] - share * tokens[used]
    key = np.empty(m)
    for rich in (True, False):
        total, members = 0.0, 0
        for i in range(m):
            if (excess[i] > 0) == rich:
                total += abs(excess[i])
                members += 1
        running, rank = 0.0, 0
        for i in range(m):
            if (excess[i] > 0) == rich:
                weight = abs(excess[i])
                running += weight
                rank += 1
                key[i] = (running - weight / 2) / total if total > 0 else (rank - 0.5) / members
    order = used[np.argsort(key, kind="mergesort")]
    place = np.full(n, -1, np.int64)
    for i in range(m):
        place[order[i]] = i
    counts = np.zeros(m, np.int64)
    for i in range(len(seq)):
        counts[place[seq[i]]] += 1
    first = np.zeros(m, np.int64)
    for i in range(1, m):
        first[i] = first[i - 1] + counts[i - 1]
    permutation = np.empty(len(seq), np.int64)
    filled = first.copy()
    for i in range(len(seq)):  # a counting sort: stable, so placement order holds inside a sequence
        p = place[seq[i]]
        permutation[filled[p]] = i
        filled[p] += 1
    position = np.empty(len(seq), np.int64)
    for p in range(m):
        at = 0
        for j in range(first[p], first[p] + counts[p]):
            position[j] = at
            at += length[permutation[j]]
    return order, tokens[order], vision[order], counts, permutation, position
