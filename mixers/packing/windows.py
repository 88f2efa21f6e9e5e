"""Window-level ratio control: what each window of B sequences draws from the item streams.

Three streams come in mixture order: vision items, short text, long (splittable) text. A window
draws vision items until its vision tokens reach its share of the target ``r`` (with the error of
earlier windows carried forward, so the global ratio stays within half an item of ``r``), then short
text up to ``B*L`` minus a reserve for the long text, then long text to fill the rest (cut by the
packer; the unused remainder goes back). Every window therefore carries the target share, not just
the whole run. When a kind runs out the last window is shrunk to keep the ratio; what remains of the
other kind is surplus (reported, and recorded in the ledger).

Each "draw while" is one cumulative sum over the stream's front (read in growing blocks), not a
loop over items.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fusionforge.mixers.packing.items import ItemBatch, Stream
from fusionforge.mixers.packing.packer import LONG, TEXT, VISION

FIRST_BLOCK = 2048


def take_while(stream: Stream, count: Callable[[ItemBatch], int]) -> ItemBatch:
    """Take the longest prefix that ``count(front)`` accepts (it returns how many leading items to take)."""
    n = FIRST_BLOCK
    while True:
        front = stream.front(n)
        k = count(front)
        if k < len(front) or len(front) < n:
            stream.drop(k)
            return front.slice(0, k) if k < len(front) else front
        n *= 4


def _first_false(ok: np.ndarray) -> int:
    """Index of the first False (the length when all are True)."""
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if len(bad) else len(ok)


@dataclass
class Window:
    index: int
    items: ItemBatch
    full: bool  # True: exactly B sequences; False: the final window, sized to its tokens
    expected: tuple[int, int] = (0, 0)  # (tokens, vision tokens) the drawer counted on


@dataclass
class WindowDrawer:
    """Draws windows from the three streams (see the module docstring)."""

    vision: Stream
    text: Stream
    long: Stream
    seq_len: int
    window: int  # B
    ratio: float
    text_tokens: float  # text tokens (short and long documents, captions excluded) the streams will give
    long_tokens: float  # of which in long documents: the top-off reserve keeps to what is left of both
    drawn_tokens: int = 0
    drawn_vision: int = 0
    count: int = 0
    _slack: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._slack = self.seq_len

    def draw(self, allow_partial: bool) -> Window | None:
        """The next window, or None when only a partial one is possible and ``allow_partial`` is False."""
        capacity = self.window * self.seq_len
        goal = self.ratio * (self.drawn_tokens + capacity) - self.drawn_vision

        def vision_count(front: ItemBatch) -> int:
            before = np.cumsum(front.vision) - front.vision
            return _first_false((before + front.vision / 2 <= goal) & (np.cumsum(front.size) <= capacity))

        vision_items = take_while(self.vision, vision_count)
        total, vision = int(vision_items.size.sum()), int(vision_items.vision.sum())
        vision_short = self.vision.exhausted and goal - vision > 0.001 * capacity  # ran out: keep r, shrink
        reserve = int(self._long_share() * (capacity - total))
        text_items = take_while(self.text, lambda f: _first_false(total + np.cumsum(f.size) <= capacity - reserve))
        total += int(text_items.size.sum())
        need = capacity - total + self._slack
        long_items = take_while(self.long, lambda f: int(np.searchsorted(np.cumsum(f.size) - f.size, need)))
        pool = int(long_items.size.sum())
        more_text = take_while(self.text, lambda f: _first_false(total + pool + np.cumsum(f.size) <= capacity))
        total += int(more_text.size.sum())
        text_short = self.text.exhausted and self.long.exhausted and total + pool < capacity
        parts = [vision_items, text_items, long_items, more_text]
        self.text_tokens -= total - int(vision_items.size.sum()) + pool
        self.long_tokens -= pool
        full = not (vision_short or text_short)
        if not full:
            if not allow_partial:
                self._give_back(ItemBatch.concat(parts))
                return None
            parts = self._balance_final(vision_items, ItemBatch.concat(parts[1:]))
            if not sum(len(p) for p in parts):
                return None
        items = ItemBatch.concat(parts)
        expected = min(capacity, int(items.size.sum())), int(items.vision.sum())
        self.drawn_tokens += expected[0]
        self.drawn_vision += expected[1]
        self.count += 1
        return Window(self.count - 1, items, full, expected)

    def settle(self, window: Window, placed_tokens: int, placed_vision: int) -> None:
        """Replace a window's expected tokens by what was placed (leftovers come back and count again)."""
        self.drawn_tokens += placed_tokens - window.expected[0]
        self.drawn_vision += placed_vision - window.expected[1]

    def give_back(self, items: ItemBatch) -> None:
        """Leftovers of a packed window: first in line for the next windows."""
        self._give_back(items)

    def _long_share(self) -> float:
        """Long text left over all text left: the reserve follows what remains, so long text lasts to the end."""
        return min(1.0, max(0.0, self.long_tokens) / self.text_tokens) if self.text_tokens > 0 else 0.0

    def _give_back(self, items: ItemBatch) -> None:
        if not len(items):
            return
        text = items.kind != VISION
        self.text_tokens += int(items.size[text].sum())
        self.long_tokens += int(items.size[items.kind == LONG].sum())
        kinds = np.unique(items.kind)
        for kind, stream in ((VISION, self.vision), (TEXT, self.text), (LONG, self.long)):
            if kind in kinds:
                stream.push_front(items if len(kinds) == 1 else items.take(np.flatnonzero(items.kind == kind)))

    def _balance_final(self, vision_items: ItemBatch, text_items: ItemBatch) -> list[ItemBatch]:
        """The last window keeps the target ratio: surplus vision or text goes back to its stream."""
        if self.ratio >= 1:
            return [vision_items, text_items]
        vision_cum = np.cumsum(vision_items.vision)
        text = int(text_items.size.sum() + (vision_items.size - vision_items.vision).sum())
        allowed = (self.ratio * (self.drawn_tokens + text) - self.drawn_vision) / (1 - self.ratio)
        # drop vision from the end while what is kept, less half the last item, is over the allowance
        keep = int(np.count_nonzero(vision_cum - vision_items.vision / 2 <= allowed))
        self._give_back(vision_items.slice(keep, len(vision_items)))
        vision_items = vision_items.slice(0, keep)
        vision = int(vision_cum[keep - 1]) if keep else 0
        if self.ratio > 0 and vision < allowed:
            # drop text from the end while what is kept, less half the last item, is over what r needs
            needed = vision * (1 - self.ratio) / self.ratio + self.drawn_vision / self.ratio - self.drawn_tokens
            captions = int((vision_items.size - vision_items.vision).sum())
            text_cum = captions + np.cumsum(text_items.size)
            keep = int(np.count_nonzero(text_cum - text_items.size / 2 <= max(0.0, needed)))
            self._give_back(text_items.slice(keep, len(text_items)))
            text_items = text_items.slice(0, keep)
        return [vision_items, text_items]
