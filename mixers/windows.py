"""Window-level ratio control: what each window of B sequences draws from the item streams.

Three streams come in mixture order: vision items, short text, long (splittable) text. A window
draws vision items until its vision tokens reach its share of the target ``r`` (with the error of
earlier windows carried forward, so the global ratio stays within half an item of ``r``), then short
text up to ``B*L`` minus a reserve for the long text, then long text to fill the rest (cut by the
packer; the unused remainder goes back). Every window therefore carries the target share, not just
the whole run. When a kind runs out the last window is shrunk to keep the ratio; what remains of the
other kind is surplus (reported, and recorded in the ledger).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fusionforge.mixers.packing import LONG, TEXT, VISION, pack_window


@dataclass(slots=True)
class Item:
    """One packer item: a piece of a record (``info`` says which) and, for long text, how much is used."""

    kind: int
    size: int  # tokens still to place
    vision: int
    info: dict[str, Any]
    offset: int = 0  # long text: tokens of the piece already placed


class Stream:
    """An iterator of items with a push-back front (leftovers and unused long text come back first)."""

    def __init__(self, items: Iterator[Item]) -> None:
        self._items = items
        self._front: deque[Item] = deque()

    def peek(self) -> Item | None:
        if not self._front:
            nxt = next(self._items, None)
            if nxt is None:
                return None
            self._front.append(nxt)
        return self._front[0]

    def pop(self) -> Item:
        return self._front.popleft()

    def push_front(self, items: list[Item]) -> None:
        self._front.extendleft(reversed(items))

    def drain(self) -> Iterator[Item]:
        while self.peek() is not None:
            yield self.pop()


@dataclass
class Window:
    index: int
    items: list[Item]
    full: bool  # True: exactly B sequences; False: the final, open window
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
    long_share: float  # share of text tokens in long documents (sizes the top-off reserve)
    drawn_tokens: int = 0
    drawn_vision: int = 0
    count: int = 0
    _slack: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._slack = self.seq_len

    def draw(self, allow_partial: bool) -> Window | None:
        """The next window, or None when only a partial one is possible and ``allow_partial`` is False."""
        capacity = self.window * self.seq_len
        items: list[Item] = []
        total = vision = 0
        goal = self.ratio * (self.drawn_tokens + capacity) - self.drawn_vision
        while (nxt := self.vision.peek()) is not None and vision + nxt.vision / 2 <= goal \
                and total + nxt.size <= capacity:
            items.append(self.vision.pop())
            total += nxt.size
            vision += nxt.vision
        vision_short = self.vision.peek() is None and goal - vision > 0.001 * capacity  # ran out: keep r, shrink
        reserve = int(self.long_share * (capacity - total))
        while (nxt := self.text.peek()) is not None and total + nxt.size <= capacity - reserve:
            items.append(self.text.pop())
            total += nxt.size
        pool = 0
        while pool < capacity - total + self._slack and (nxt := self.long.peek()) is not None:
            items.append(self.long.pop())
            pool += nxt.size
        while total + pool < capacity and (nxt := self.text.peek()) is not None and total + pool + nxt.size <= capacity:
            items.append(self.text.pop())
            total += nxt.size
        text_short = self.text.peek() is None and self.long.peek() is None and total + pool < capacity
        full = not (vision_short or text_short)
        if not full:
            if not allow_partial:
                self._give_back(items)
                return None
            items = self._balance_final(items)
            if not items:
                return None
        expected = min(capacity, sum(i.size for i in items)), sum(i.vision for i in items)
        self.drawn_tokens += expected[0]
        self.drawn_vision += expected[1]
        self.count += 1
        return Window(self.count - 1, items, full, expected)

    def settle(self, window: Window, placed_tokens: int, placed_vision: int) -> None:
        """Replace a window's expected tokens by what was placed (leftovers come back and count again)."""
        self.drawn_tokens += placed_tokens - window.expected[0]
        self.drawn_vision += placed_vision - window.expected[1]

    def give_back(self, items: list[Item]) -> None:
        """Leftovers of a packed window: first in line for the next windows."""
        self._give_back(items)

    def _give_back(self, items: list[Item]) -> None:
        for kind, stream in ((VISION, self.vision), (TEXT, self.text), (LONG, self.long)):
            stream.push_front([i for i in items if i.kind == kind])

    def _balance_final(self, items: list[Item]) -> list[Item]:
        """The last window keeps the target ratio: surplus vision or text goes back to its stream."""
        vision_items = [i for i in items if i.kind == VISION]
        text_items = [i for i in items if i.kind != VISION]
        text = sum(i.size for i in text_items) + sum(i.size - i.vision for i in vision_items)
        vision = sum(i.vision for i in vision_items)
        if self.ratio >= 1:
            return items
        allowed = (self.ratio * (self.drawn_tokens + text) - self.drawn_vision) / (1 - self.ratio)
        while vision_items and vision - vision_items[-1].vision / 2 > allowed:
            dropped = vision_items.pop()
            vision -= dropped.vision
            text -= dropped.size - dropped.vision
            self.vision.push_front([dropped])
        if self.ratio > 0 and vision < allowed:
            needed_text = vision * (1 - self.ratio) / self.ratio + self.drawn_vision / self.ratio - self.drawn_tokens
            while text_items and text - text_items[-1].size / 2 > max(0.0, needed_text):
                dropped = text_items.pop()
                text -= dropped.size
                (self.long if dropped.kind == LONG else self.text).push_front([dropped])
        return vision_items + text_items


def plan_window(window: Window, seq_len: int, n_sequences: int, seq_vision_cap: int | None,
                seed: int) -> tuple[list[dict[str, Any]], list[Item]]:
    """Pack one window; return its sequences (plan rows, shuffled with the seed) and its leftovers."""
    vision, text, long = [], [], []
    for ref, item in enumerate(window.items):
        if item.kind == VISION:
            vision.append((item.size, item.vision, ref))
        elif item.kind == TEXT:
            text.append((item.size, ref))
        else:
            long.append((item.size, ref, item.offset))
    result = pack_window(vision, text, long, seq_len, n_sequences if window.full else None, seq_vision_cap)
    rows = [_sequence_row(window, segs, seq_len) for segs in result.sequences]
    random.Random(f"{seed}:{window.index}").shuffle(rows)
    leftovers = [window.items[ref] for ref in result.leftovers]
    for remaining, ref, offset in result.long_rest:
        item = window.items[ref]
        leftovers.append(Item(LONG, remaining, 0, item.info, offset))
    return rows, leftovers


def _sequence_row(window: Window, segs: list[tuple[int, int, int]], seq_len: int) -> dict[str, Any]:
    segments, cu, position, vision = [], [0], 0, 0
    for ref, offset, length in segs:
        item = window.items[ref]
        info = item.info
        start = info["start"] + offset  # offset: tokens of the piece before this segment (long text only)
        media = [{**m, "offset": m["offset"] + position} for m in info["media"]] if item.kind != LONG else []
        seg_vision = item.vision if item.kind != LONG else 0
        segments.append({"sample_id": info["id"], "source": info["source"], "modality": info["modality"],
                         "epoch": info["epoch"], "piece": info["piece"], "sample_start": start, "length": length,
                         "offset": position, "vision_tokens": seg_vision,
                         "split": item.kind == LONG or info["n_pieces"] > 1, "partition": info.get("partition"),
                         "row": info.get("row"), "media": media})
        position += length
        vision += seg_vision
        cu.append(position)
    return {"window": window.index, "tokens": position, "vision_tokens": vision, "text_tokens": position - vision,
            "padding": seq_len - position, "items": len(segments), "segments": segments, "cu_seqlens": cu}
