"""Position ids that restart with every document of a packed sequence.

A document (a plan segment) is positioned as if it were alone: 1-D positions ``0..n-1``, or for
the Qwen2-VL family the three M-RoPE axes exactly as ``Qwen2VLModel.get_rope_index`` computes them
for that document (text advances all three axes by one per token; an image or video run takes
``(t, h / merge, w / merge)`` grid positions from the current start and advances it by
``max(h, w) / merge``). Row 0 of the Qwen ids holds the 1-D text positions, which transformers uses
to find the document boundaries of a packed row (``position_ids`` of shape ``(4, batch, length)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import numpy as np

from fusionforge.mixers.packing.materialize import Role

IMAGE, VIDEO = int(Role.IMAGE), int(Role.VIDEO)  # plain ints: an enum member lookup is slow per call


def text_positions(lengths: list[int]) -> np.ndarray:
    """``0..n-1`` for each document, end to end."""
    starts = np.cumsum([0, *lengths])[:-1]
    return np.arange(sum(lengths), dtype=np.int64) - np.repeat(starts, lengths)


def mrope_positions(roles: np.ndarray, grids: Iterator[tuple[int, int, int]], merge_size: int) -> np.ndarray:
    """The (3, n) M-RoPE positions of one document; ``grids`` gives one (t, h, w) per image or video run, in order."""
    out = np.zeros((3, len(roles)), np.int64)
    kind = np.where(roles == IMAGE, 1, np.where(roles == VIDEO, 2, 0))
    if not kind.any():
        out[:] = np.arange(len(roles))
        return out
    cuts = np.flatnonzero(np.diff(kind)) + 1
    current = 0
    for start, stop in zip(np.r_[0, cuts], np.r_[cuts, len(roles)]):
        if kind[start] == 0:
            out[:, start:stop] = np.arange(stop - start) + current
            current += stop - start
            continue
        t, h, w = next(grids)
        gh, gw = h // merge_size, w // merge_size
        if t * gh * gw != stop - start:
            raise ValueError(f"a vision run of {stop - start} tokens does not match its grid {(t, h, w)}")
        out[:, start:stop] = grid_positions(t, gh, gw) + current
        current += max(h, w) // merge_size
    return out


@lru_cache(maxsize=256)
def grid_positions(t: int, height: int, width: int) -> np.ndarray:
    """The (3, t * height * width) (temporal, row, column) positions of a vision run, read-only (media sizes repeat)."""
    out = np.stack(np.meshgrid(np.arange(t), np.arange(height), np.arange(width), indexing="ij")).reshape(3, -1)
    out.flags.writeable = False
    return out
