"""Packing one window of items into sequences: the pure core (no Ray, no I/O).

A window is B sequences of L tokens (a training global batch). Its items come in three kinds:

- vision items (an image with its caption, a video chunk group, an interleaved document or a piece
  of one): atomic, never split. Placed first, heaviest vision first, each on the sequence that holds
  the fewest vision tokens so far and still has room (longest-processing-time balancing), so the
  window's vision share is spread over its sequences instead of stacked on a few;
- text documents up to L tokens: atomic (Fewer-Truncations: a document that fits is never cut),
  placed by best-fit decreasing through a capacity index (smallest free room that fits, found by
  bisection over the distinct free capacities: O(log L) per item, never a scan of the sequences);
- documents longer than L: splittable; they top off whatever room is left, so padding goes to zero
  without cutting any short document or any image.

With ``seq_vision_cap`` a sequence never holds more than that many vision tokens (2-D packing).
Items that find no room are returned as leftovers (the caller re-queues them); in ``open`` mode
(the final window) new sequences are opened instead, so nothing is ever left behind.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from dataclasses import dataclass, field

VISION, TEXT, LONG = 0, 1, 2


class CapacityIndex:
    """Sequences keyed by free room; ``take_best(need)`` pops one with the smallest room >= need."""

    def __init__(self) -> None:
        self._caps: list[int] = []  # distinct free capacities, sorted
        self._bins: dict[int, list[int]] = {}

    def add(self, capacity: int, bin_id: int) -> None:
        if capacity <= 0:
            return
        stack = self._bins.get(capacity)
        if stack is None:
            self._bins[capacity] = [bin_id]
            insort(self._caps, capacity)
        else:
            stack.append(bin_id)

    def take_best(self, need: int) -> tuple[int, int] | None:
        i = bisect_left(self._caps, need)
        if i == len(self._caps):
            return None
        capacity = self._caps[i]
        stack = self._bins[capacity]
        bin_id = stack.pop()
        if not stack:
            del self._bins[capacity]
            del self._caps[i]
        return capacity, bin_id


@dataclass
class WindowResult:
    """Sequences as lists of ``(ref, offset, length)`` segments, plus what did not fit."""

    sequences: list[list[tuple[int, int, int]]]
    vision_per_sequence: list[int]
    leftovers: list[int] = field(default_factory=list)  # refs of atomic items that found no room
    long_rest: list[tuple[int, int, int]] = field(default_factory=list)  # (ref, offset, remaining) unused


def pack_window(vision: list[tuple[int, int, int]], text: list[tuple[int, int]], long: list[tuple[int, int, int]],
                seq_len: int, n_sequences: int | None, seq_vision_cap: int | None = None) -> WindowResult:
    """Pack one window.

    Args:
        vision: ``(size, vision_tokens, ref)`` of each vision item (size <= seq_len).
        text: ``(size, ref)`` of each atomic text item (size <= seq_len).
        long: ``(remaining, ref, offset)`` of each splittable document, in the order to use them.
        seq_len: L.
        n_sequences: B, or None for open mode (as many sequences as needed, nothing left over).
        seq_vision_cap: the most vision tokens one sequence may hold (None: no bound).
    """
    open_mode = n_sequences is None
    if open_mode:
        total = sum(s for s, _, _ in vision) + sum(s for s, _ in text) + sum(r for r, _, _ in long)
        n_sequences = max(1, -(-total // seq_len))
    free = [seq_len] * n_sequences
    vload = [0] * n_sequences
    segments: list[list[tuple[int, int, int]]] = [[] for _ in range(n_sequences)]
    leftovers: list[int] = []

    def open_sequence() -> int:
        free.append(seq_len)
        vload.append(0)
        segments.append([])
        return len(free) - 1

    # 1. vision items, heaviest first, onto the least vision-loaded sequence with room (LPT balancing)
    heap = [(0, b) for b in range(n_sequences)]
    for size, vis, ref in sorted(vision, key=lambda item: (-item[1], -item[0], item[2])):
        skipped, chosen = [], None
        while heap:
            load, b = heapq.heappop(heap)
            if free[b] >= size and (seq_vision_cap is None or load + vis <= seq_vision_cap):
                chosen = b
                break
            skipped.append((load, b))
        for entry in skipped:
            heapq.heappush(heap, entry)
        if chosen is None:
            if not open_mode:
                leftovers.append(ref)
                continue
            chosen = open_sequence()
        free[chosen] -= size
        vload[chosen] += vis
        segments[chosen].append((ref, 0, size))
        heapq.heappush(heap, (vload[chosen], chosen))

    # 2. short documents by best-fit decreasing through the capacity index
    index = CapacityIndex()
    for b, room in enumerate(free):
        index.add(room, b)
    for size, ref in sorted(text, key=lambda item: (-item[0], item[1])):
        found = index.take_best(size)
        if found is None:
            if not open_mode:
                leftovers.append(ref)
                continue
            b = open_sequence()
        else:
            b = found[1]
        free[b] -= size
        segments[b].append((ref, 0, size))
        index.add(free[b], b)

    # 3. top off every remaining gap with splittable text, in order
    queue = list(long)
    position = 0
    for b in range(len(free)):
        while free[b] and position < len(queue):
            remaining, ref, offset = queue[position]
            used = min(free[b], remaining)
            segments[b].append((ref, offset, used))
            free[b] -= used
            if used == remaining:
                position += 1
            else:
                queue[position] = (remaining - used, ref, offset + used)
    rest = queue[position:]
    while open_mode and rest:
        remaining, ref, offset = rest[0]
        b = open_sequence()
        used = min(seq_len, remaining)
        segments[b].append((ref, offset, used))
        free[b] -= used
        rest = rest[1:] if used == remaining else [(remaining - used, ref, offset + used), *rest[1:]]
    keep = [b for b in range(len(segments)) if segments[b]]
    return WindowResult([segments[b] for b in keep], [vload[b] for b in keep], leftovers, rest)
