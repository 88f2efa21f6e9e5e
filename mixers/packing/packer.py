"""Packing one window of items into sequences: the pure core (numpy arrays in, arrays out; no Ray, no I/O).

A window is B sequences of L tokens (a training global batch). Its items come in three kinds:

- vision items (an image with its caption, a video chunk group, an interleaved document or a piece
  of one): atomic, never split. Placed first, heaviest vision first, each onto the least
  vision-loaded sequence that has room (longest-processing-time balancing), so the window's vision
  is spread over its sequences instead of stacked on a few (best fit would stack them);
- text documents up to L tokens: atomic (Fewer-Truncations: a document that fits is never cut),
  placed by best-fit decreasing through a capacity index (smallest free room that fits: O(log L)
  per document, never a scan of the sequences). Documents too long to sit beside a sequence's
  share of vision get a sequence of their own first;
- documents longer than L: splittable; they top off whatever room is left, in order, so padding
  goes to zero without cutting any short document or any image.

The loops run compiled (``kernels``, numba); this module chooses the orders and the sizes.
With ``seq_vision_cap`` a sequence never holds more than that many vision tokens (2-D packing).
Items that find no room are returned as leftovers (the caller re-queues them). With
``n_sequences=None`` (the final window) the window is sized to its tokens: floor(tokens / L) full
sequences are packed as above, and what did not fit goes into a next, smaller set, until nothing is
left, so only the last sequence is partly empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VISION, TEXT, LONG = 0, 1, 2


@dataclass
class Packed:
    """Segments in placement order (per sequence: large text, vision, text, long text) and what did not fit."""

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


def _large_count(text_sizes: np.ndarray, vision_size: int, n: int, seq_len: int) -> int:
    """How many of the largest documents (sizes given largest first) get a sequence of their own before vision
    is placed: those too long to sit beside a sequence's share of the vision items (else vision takes every
    sequence's room and they are left over), as many as leave vision a quarter more room than it needs."""
    large = int(np.searchsorted(-text_sizes, vision_size / max(1, n) - seq_len))  # sizes > L - share
    return max(0, min(large, n - int(np.ceil(1.25 * vision_size / seq_len))))


def _pack_fixed(
    n: int,
    kind: np.ndarray,
    size: np.ndarray,
    vision: np.ndarray,
    atomic: np.ndarray,
    long_refs: np.ndarray,
    long_used: np.ndarray,
    seq_len: int,
    cap: int | None,
) -> tuple:
    from fusionforge.mixers.packing.kernels import pack_fixed

    is_vision = kind[atomic] == VISION
    vision_refs, text = atomic[is_vision], atomic[~is_vision]
    vision_order = sort_by(vision_refs, -vision[vision_refs], -size[vision_refs])
    text_order = sort_by(text, -size[text])
    large = _large_count(size[text_order], int(size[vision_refs].sum()), n, seq_len)
    room = len(atomic) + n + len(long_refs) + 1
    segments = [np.empty(room, np.int64) for _ in range(4)]
    left = np.empty(len(atomic), np.int64)
    k, n_left, position, used = pack_fixed(
        n,
        seq_len,
        -1 if cap is None else cap,
        size,
        vision,
        text_order[:large],
        vision_order,
        text_order[large:],
        long_refs,
        long_used,
        *segments,
        left,
    )
    rest_used = long_used[position:].copy()
    if len(rest_used):
        rest_used[0] = used
    return [s[:k] for s in segments], left[:n_left], long_refs[position:], rest_used


def pack_window(
    kind: np.ndarray,
    size: np.ndarray,
    vision: np.ndarray,
    seq_len: int,
    n_sequences: int | None,
    seq_vision_cap: int | None = None,
) -> Packed:
    """Pack one window's items (index = position in these arrays; long text in the order given).

    Args:
        kind: VISION, TEXT or LONG per item.
        size: tokens per item (atomic items: <= seq_len).
        vision: vision tokens per item.
        seq_len: L.
        n_sequences: B, or None for the final window (sized to its tokens, nothing left over).
        seq_vision_cap: the most vision tokens one sequence may hold (None: no bound).
    """
    kind, size = np.ascontiguousarray(kind, np.int64), np.ascontiguousarray(size, np.int64)
    vision = np.ascontiguousarray(vision, np.int64)
    refs = np.arange(len(size))
    atomic, long_refs = refs[kind != LONG], refs[kind == LONG]
    long_used = np.zeros(len(long_refs), np.int64)
    parts, base = [], 0
    while True:
        if n_sequences is not None:
            n = n_sequences
        else:
            tokens = int(size[atomic].sum() + (size[long_refs] - long_used).sum())
            if tokens == 0:
                break
            n = max(1, tokens // seq_len)
        segments, left, long_refs, long_used = _pack_fixed(
            n, kind, size, vision, atomic, long_refs, long_used, seq_len, seq_vision_cap
        )
        if n_sequences is None and not len(segments[0]):  # nothing fits (an item over the vision cap): alone
            segments = [np.zeros(1, np.int64), left[:1], np.zeros(1, np.int64), size[left[:1]]]
            left, n = left[1:], 1
        segments[0] = segments[0] + base
        parts.append(segments)
        base += n
        atomic = left
        if n_sequences is not None:
            break
    seq, ref, start, length = (
        np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, np.int64) for i in range(4)
    )
    return Packed(
        base, seq, ref, start, length, np.asarray(atomic, np.int64), long_refs, long_used, size[long_refs] - long_used
    )
