"""Packing one window of items into sequences: the pure core (numpy arrays in, arrays out; no Ray, no I/O).

A window is B sequences of L tokens (a training global batch). Its items come in three kinds:

- vision items (an image with its caption, a video chunk group, an interleaved document or a piece
  of one): atomic, never split. Placed first, heaviest vision first, by rounds of longest-processing-
  time balancing: each round hands the next B items, heaviest first, to the B sequences ordered by
  the vision they hold so far (lightest first), so the window's vision is spread over its sequences
  instead of stacked on a few. An item that does not fit its sequence is placed afterwards on the
  least vision-loaded sequence with room;
- text documents up to L tokens: atomic (Fewer-Truncations: a document that fits is never cut),
  placed by rounds of best fit: in each round every sequence with room takes the largest remaining
  document that fits it. The documents' sizes, sorted, are the capacity index: one ``searchsorted``
  finds every sequence's best document (O(log N) each), and a suffix minimum settles two sequences
  that want the same one (the larger room keeps it, the next gets the next smaller), so a round
  places up to B documents in a few array operations, largest documents first;
- documents longer than L: splittable; they top off whatever room is left, in order (an overlay of
  the rooms' and the documents' cumulative sums), so padding goes to zero without cutting any short
  document or any image.

With ``seq_vision_cap`` a sequence never holds more than that many vision tokens (2-D packing).
Items that find no room are returned as leftovers (the caller re-queues them). With
``n_sequences=None`` (the final window) the window is sized to its tokens: floor(tokens / L) full
sequences are packed as above, and what did not fit goes into a next, smaller set, until nothing is
left, so only the last sequence or two are partly empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VISION, TEXT, LONG = 0, 1, 2


@dataclass
class Packed:
    """Segments in placement order (per sequence: vision, then text, then long text) and what did not fit."""

    n_sequences: int
    seq: np.ndarray  # sequence of each segment
    ref: np.ndarray  # item index of each segment
    start: np.ndarray  # tokens of the item before the segment (long text; 0 for atomic items)
    length: np.ndarray
    leftovers: np.ndarray  # item indices of atomic items that found no room
    rest_ref: np.ndarray  # long text not used: item index, tokens already used, tokens remaining
    rest_start: np.ndarray
    rest_size: np.ndarray


def sort_by(refs: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """``refs`` (ascending) ordered by the keys, then by ref: one sort of a packed integer key, not a lexsort."""
    if not len(refs):
        return refs
    spans = [int(k.max()) - int(k.min()) + 1 for k in keys]
    total = len(refs)
    for span in spans:
        total *= span
    if total >= 2**62:
        return refs[np.lexsort((refs, *reversed(keys)))]
    packed = np.zeros(len(refs), np.int64)
    for key, span in zip(keys, spans):
        packed = packed * span + (key - key.min())
    order = np.sort(packed * len(refs) + np.arange(len(refs))) % len(refs)
    return refs[order]


class _Bins:
    """Free room and vision load of a set of sequences, and the segments placed so far."""

    def __init__(self, n: int, seq_len: int) -> None:
        self.free = np.full(n, seq_len, np.int64)
        self.load = np.zeros(n, np.int64)
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def place(self, bins: np.ndarray, refs: np.ndarray, sizes: np.ndarray, start: np.ndarray | None = None) -> None:
        self.parts.append((bins, refs, np.zeros(len(refs), np.int64) if start is None else start, sizes))


def _place_large_text(bins: _Bins, refs: np.ndarray, size: np.ndarray, vision_size: int) -> tuple[int, np.ndarray]:
    """Documents too long to sit beside a sequence's share of the vision items each get a sequence of their own
    first, at the end (so they are not left over once vision has taken every sequence's room); return how many
    sequences remain for vision and the other documents."""
    n, seq_len = len(bins.free), int(bins.free.max(initial=0))
    large = refs[size[refs] > seq_len - vision_size / max(1, n)]
    spare = n - int(np.ceil(1.25 * vision_size / max(1, seq_len)))  # vision keeps room to spare
    if not len(large) or spare <= 0:
        return n, refs
    large = sort_by(large, -size[large])[:spare]
    targets = np.arange(n - len(large), n)
    bins.free[targets] -= size[large]
    bins.place(targets, large, size[large])
    return n - len(large), np.setdiff1d(refs, large, assume_unique=True)


def _place_vision(bins: _Bins, refs: np.ndarray, size: np.ndarray, vision: np.ndarray, cap: int | None,
                  eligible: int) -> np.ndarray:
    """LPT by rounds over the first ``eligible`` sequences (see the module docstring), then any sequence with room
    for what did not fit; returns the refs that found no room."""
    n = max(1, eligible)
    refs = sort_by(refs, -vision[refs], -size[refs])
    deferred = []
    for first in range(0, len(refs), n):
        chunk = refs[first:first + n]
        targets = np.argsort(bins.load[:n], kind="stable")[:len(chunk)]
        fits = bins.free[targets] >= size[chunk]
        if cap is not None:
            fits &= bins.load[targets] + vision[chunk] <= cap
        chunk_in, targets = chunk[fits], targets[fits]
        bins.free[targets] -= size[chunk_in]
        bins.load[targets] += vision[chunk_in]
        bins.place(targets, chunk_in, size[chunk_in])
        deferred.append(chunk[~fits])
    left = []
    for ref in np.concatenate(deferred) if deferred else ():
        room = bins.free >= size[ref]
        if cap is not None:
            room &= bins.load + vision[ref] <= cap
        if not room.any():
            left.append(ref)
            continue
        target = int(np.argmin(np.where(room, bins.load, np.iinfo(np.int64).max)))
        bins.free[target] -= size[ref]
        bins.load[target] += vision[ref]
        bins.place(np.array([target]), np.array([ref]), size[ref:ref + 1])
    return np.asarray(left, np.int64)


def _place_text(bins: _Bins, refs: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Best fit by rounds (see the module docstring); returns the refs that found no room."""
    refs = sort_by(refs, size[refs])
    sizes = size[refs]
    while len(refs):
        active = np.flatnonzero(bins.free >= sizes[0])
        if not len(active):
            break
        rooms = bins.free[active]
        by_room = np.argsort(rooms, kind="stable")
        targets, rooms = active[by_room], rooms[by_room]
        best = np.searchsorted(sizes, rooms, side="right") - 1
        rank = np.arange(len(targets))
        chosen = rank + np.minimum.accumulate((best - rank)[::-1])[::-1]  # distinct, largest room first
        ok = chosen >= 0
        targets, chosen = targets[ok], chosen[ok]
        bins.free[targets] -= sizes[chosen]
        bins.place(targets, refs[chosen], sizes[chosen])
        keep = np.ones(len(refs), bool)
        keep[chosen] = False
        refs, sizes = refs[keep], sizes[keep]
    return refs


def _top_off(bins: _Bins, refs: np.ndarray, size: np.ndarray,
             used: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill every gap, sequence by sequence, with the long documents in order; return what is unused."""
    remaining = size[refs] - used
    rooms = np.cumsum(bins.free)
    queue = np.cumsum(remaining)
    total = min(int(rooms[-1]) if len(rooms) else 0, int(queue[-1]) if len(queue) else 0)
    if total > 0:
        cuts = np.unique(np.concatenate([[0, total], rooms[rooms < total], queue[queue < total]]))
        begin, end = cuts[:-1], cuts[1:]
        target = np.searchsorted(rooms, begin, side="right")
        doc = np.searchsorted(queue, begin, side="right")
        within = begin - (queue[doc] - remaining[doc])
        bins.place(target, refs[doc], end - begin, used[doc] + within)
        bins.free -= np.minimum(bins.free, np.clip(total - (rooms - bins.free), 0, None))
    taken = np.clip(total - (queue - remaining), 0, remaining)
    rest = taken < remaining
    return refs[rest], used[rest] + taken[rest], remaining[rest] - taken[rest]


def _pack_fixed(n: int, kind: np.ndarray, size: np.ndarray, vision: np.ndarray, atomic: np.ndarray,
                long_refs: np.ndarray, long_used: np.ndarray, seq_len: int,
                cap: int | None) -> tuple[_Bins, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    bins = _Bins(n, seq_len)
    is_vision = kind[atomic] == VISION
    vision_refs = atomic[is_vision]
    eligible, text_refs = _place_large_text(bins, atomic[~is_vision], size, int(size[vision_refs].sum()))
    left_vision = _place_vision(bins, vision_refs, size, vision, cap, eligible)
    left_text = _place_text(bins, text_refs, size)
    rest = _top_off(bins, long_refs, size, long_used)
    return bins, np.concatenate([left_vision, left_text]), rest


def pack_window(kind: np.ndarray, size: np.ndarray, vision: np.ndarray, seq_len: int, n_sequences: int | None,
                seq_vision_cap: int | None = None) -> Packed:
    """Pack one window's items (index = position in these arrays; long text in the order given).

    Args:
        kind: VISION, TEXT or LONG per item.
        size: tokens per item (atomic items: <= seq_len).
        vision: vision tokens per item.
        seq_len: L.
        n_sequences: B, or None for the final window (sized to its tokens, nothing left over).
        seq_vision_cap: the most vision tokens one sequence may hold (None: no bound).
    """
    kind, size, vision = np.asarray(kind), np.asarray(size, np.int64), np.asarray(vision, np.int64)
    refs = np.arange(len(size))
    atomic, long_refs = refs[kind != LONG], refs[kind == LONG]
    long_used = np.zeros(len(long_refs), np.int64)
    sets: list[_Bins] = []
    while True:
        if n_sequences is not None:
            n = n_sequences
        else:
            tokens = int(size[atomic].sum() + (size[long_refs] - long_used).sum())
            if tokens == 0:
                break
            n = max(1, tokens // seq_len)
        bins, left, (long_refs, long_used, _) = _pack_fixed(n, kind, size, vision, atomic, long_refs, long_used,
                                                            seq_len, seq_vision_cap)
        if n_sequences is None and len(left) == len(atomic) and not bins.parts:
            bins = _Bins(1, seq_len)  # nothing fits (an item over the vision cap): it goes alone
            bins.place(np.zeros(1, np.int64), left[:1], size[left[:1]])
            left = left[1:]
        sets.append(bins)
        atomic = left
        if n_sequences is not None:
            break
    parts, base = [], 0
    for bins in sets:
        parts += [(b + base, r, s, x) for b, r, s, x in bins.parts]
        base += len(bins.free)
    columns = [np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, np.int64) for i in range(4)]
    seq, ref, start, length = (np.asarray(c, np.int64) for c in columns)
    rest_size = size[long_refs] - long_used
    return Packed(base, seq, ref, start, length, np.asarray(atomic, np.int64), long_refs, long_used, rest_size)
