"""From a counted record to the token layout the packer places: blocks, then pieces of at most L tokens.

A record's layout is its token stream in order: text parts (cuttable anywhere), images (atomic:
wrapper + placeholders), video chunk groups (atomic: consecutive temporal chunks with their
wrappers) and, optionally, one end-of-sample token. Pieces are token ranges of that stream:

- a record that fits (at most L tokens, vision within the per-sequence cap) is one atomic piece;
- a text-only record longer than L is one splittable piece (cut by the packer where room is left);
- a multimodal record longer than L is cut into pieces of at most L tokens, only inside text parts
  or between blocks, never inside an image or a chunk.

An image (or a video frame size) too large for the sequence is shrunk with the preset's own rule
until it fits (the piece records the size to resize to), or the record is rejected with a reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fusionforge.mixers.packing.packer import LONG, TEXT, VISION
from fusionforge.mixers.tokens.vision import Preset, Wrapper, fit_image, fit_size
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.bounds import Bound

SEQ_LEN = Bound(integer=True, min=16)  # tokens per packed sequence (L); pack refuses shorter ones
FRAMES_COLUMN = "video_frames_v1__n_frames"  # the video filters' frame sampling (preferred over ffprobe's count)
FPS_COLUMN = "video_frames_v1__fps"


def frame_sampling(record: dict[str, Any], item: dict[str, Any]) -> tuple[int, float | None]:
    """A video's counted frames and the rate the frame filter sampled them at (None: every decoded frame)."""
    sampled = record.get(FRAMES_COLUMN)
    if sampled is not None:
        return int(sampled), record.get(FPS_COLUMN)
    return int(item["n_frames"] or 0), None


@dataclass(frozen=True)
class Block:
    """One unit of a record's token stream."""

    kind: str  # "text" | "image" | "video" | "eos"
    tokens: int
    vision: int = 0
    part: int = 0  # text: index among the record's text parts; media: index into `media`
    width: int = 0  # media: the size to give the processor (the original, or shrunk to fit)
    height: int = 0
    chunk_start: int = 0  # video: the group's first and last+1 temporal chunk
    chunk_end: int = 0


@dataclass
class Layout:
    blocks: list[Block] = field(default_factory=list)
    reject: str | None = None
    resized: int = 0  # media items shrunk to fit

    @property
    def tokens(self) -> int:
        return sum(b.tokens for b in self.blocks)

    @property
    def vision(self) -> int:
        return sum(b.vision for b in self.blocks)


class Wrappers:
    """Text-side tokens around media: counted with the tokenizer when there is one, else the preset's defaults."""

    def __init__(self, preset: Preset, encode: Callable[[str], list[int]] | None = None) -> None:
        self.preset, self._encode = preset, encode
        self._cache: dict[str, int] = {}

    def _count(self, text: str, default: int) -> int:
        if self._encode is None or not text:
            return default if self._encode is None else 0
        if text not in self._cache:
            self._cache[text] = len(self._encode(text))
        return self._cache[text]

    def around(self, wrapper: Wrapper) -> int:
        return self._count(wrapper.prefix, wrapper.prefix_tokens) + self._count(wrapper.suffix, wrapper.suffix_tokens)

    def chunk(self, index: int, fps: float) -> int:
        wrapper = self.preset.chunk_wrapper
        prefix = wrapper.prefix.format(timestamp=chunk_timestamp(index, self.preset.temporal_patch_size, fps))
        return self._count(prefix, wrapper.prefix_tokens) + self._count(wrapper.suffix, wrapper.suffix_tokens)


def chunk_timestamp(index: int, frames_per_chunk: int, fps: float) -> str:
    """``HH:MM:SS.mmm`` of a chunk's first frame, as Kimi K2.5's processor writes it."""
    seconds = index * frames_per_chunk / (fps or 1.0)
    return time.strftime("%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1000):03d}"


@dataclass(frozen=True)
class LayoutOptions:
    """What decides the layout: the preset, L, the per-sequence vision cap, video groups and the EOS token."""

    preset: Preset
    seq_len: int
    vision_cap: int | None = None
    video_group_tokens: int | None = None
    eos: bool = True

    @property
    def vision_limit(self) -> int:
        return min(self.seq_len, self.vision_cap or self.seq_len)


def record_layout(record: dict[str, Any], part_tokens: list[int], opts: LayoutOptions, wrappers: Wrappers) -> Layout:
    """The blocks of one record (modality order: media then caption; interleaved: segment order)."""
    layout = Layout()
    media = record[S.MEDIA] or []
    modality = record[S.MODALITY]
    if modality == S.Modality.INTERLEAVED and record[S.SEGMENTS]:
        text_index = 0
        for segment in record[S.SEGMENTS]:
            if segment["type"] == "text":
                layout.blocks.append(Block("text", part_tokens[text_index], part=text_index))
                text_index += 1
            elif segment["media_index"] is not None and segment["media_index"] < len(media):
                _media_blocks(layout, record, segment["media_index"], opts, wrappers)
    else:
        for index in range(len(media)):
            _media_blocks(layout, record, index, opts, wrappers)
        layout.blocks.extend(Block("text", t, part=i) for i, t in enumerate(part_tokens))
    if opts.eos:
        layout.blocks.append(Block("eos", 1))
    return layout


def _media_blocks(layout: Layout, record: dict[str, Any], index: int, opts: LayoutOptions, wrappers: Wrappers) -> None:
    if layout.reject:
        return
    item = record[S.MEDIA][index]
    if item["kind"] not in ("image", "video"):
        return  # e.g. "frame": sampled frames stored beside their video, already counted from its n_frames
    width, height = item["width"] or 0, item["height"] or 0
    preset = opts.preset
    try:
        if item["kind"] == "image":
            wrap = wrappers.around(preset.image_wrapper)
            count = preset.image(width, height)
            most = min(opts.vision_limit, opts.seq_len - wrap)
            if count.tokens > most:
                count = fit_image(preset, width, height, most)
                if count is None:
                    layout.reject = "oversize_image"
                    return
                layout.resized += 1
            layout.blocks.append(Block("image", count.tokens + wrap, count.tokens, index, count.width, count.height))
            return
        frames = record.get(FRAMES_COLUMN)
        frames = int(frames) if frames is not None else int(item["n_frames"] or 0)
        fps = record.get(FPS_COLUMN) or item["fps"] or 1.0
        _video_blocks(layout, index, width, height, frames, float(fps), opts, wrappers)
    except ValueError as exc:
        layout.reject = f"bad_media_size: {exc}"


def _video_blocks(
    layout: Layout,
    index: int,
    width: int,
    height: int,
    frames: int,
    fps: float,
    opts: LayoutOptions,
    wrappers: Wrappers,
) -> None:
    preset = opts.preset
    count = preset.video(width, height, frames)
    if count.chunks == 0:
        return
    group_cap = min(opts.seq_len, opts.video_group_tokens or opts.seq_len)
    item_wrap = wrappers.around(preset.video_wrapper)
    chunk_wraps = [wrappers.chunk(k, fps) for k in range(count.chunks)]
    room = group_cap - item_wrap - count.extra_tokens - max(chunk_wraps)
    if count.tokens_per_chunk > min(room, opts.vision_limit):
        size = fit_size(
            lambda w, h: preset.video(w, h, frames).tokens_per_chunk, width, height, min(room, opts.vision_limit)
        )
        if size is None:
            layout.reject = "oversize_video_frame"
            return
        width, height = size
        count = preset.video(width, height, frames)
        layout.resized += 1
    start, tokens, vision = 0, item_wrap + count.extra_tokens, count.extra_tokens
    for k in range(count.chunks):
        cost = count.tokens_per_chunk + chunk_wraps[k]
        if k > start and (tokens + cost > group_cap or vision + count.tokens_per_chunk > opts.vision_limit):
            layout.blocks.append(Block("video", tokens, vision, index, width, height, start, k))
            start, tokens, vision = k, item_wrap, 0
        tokens += cost
        vision += count.tokens_per_chunk
    layout.blocks.append(Block("video", tokens, vision, index, width, height, start, count.chunks))


@dataclass(frozen=True)
class Piece:
    """A token range of a record's layout that the packer places as one item."""

    kind: int  # VISION, TEXT or LONG
    start: int
    length: int
    vision: int
    blocks: tuple[tuple[int, Block], ...]  # (token offset inside the piece, block) of the media it holds


def pieces(layout: Layout, opts: LayoutOptions) -> list[Piece]:
    """Cut a layout into packer items (see the module docstring for the rules)."""
    total, vision = layout.tokens, layout.vision
    if total <= opts.seq_len and vision <= opts.vision_limit:
        return [Piece(VISION if vision else TEXT, 0, total, vision, _media_in(layout.blocks, 0))]
    if vision == 0:
        return [Piece(LONG, 0, total, 0, ())]
    out: list[Piece] = []
    start, size, vis, held = 0, 0, 0, []

    def close() -> None:
        nonlocal start, size, vis, held
        if size:
            out.append(Piece(VISION if vis else TEXT, start, size, vis, tuple(held)))
        start, size, vis, held = start + size, 0, 0, []

    for block in layout.blocks:
        if block.kind in ("text", "eos"):
            left = block.tokens
            while left:
                used = min(left, opts.seq_len - size)
                size += used
                left -= used
                if size == opts.seq_len:
                    close()
        else:
            if size + block.tokens > opts.seq_len or vis + block.vision > opts.vision_limit:
                close()
            held.append((size, block))
            size += block.tokens
            vis += block.vision
    close()
    return out


def _media_in(blocks: list[Block], start: int) -> tuple[tuple[int, Block], ...]:
    out, offset = [], 0
    for block in blocks:
        if block.kind in ("image", "video"):
            out.append((offset - start, block))
        offset += block.tokens
    return tuple(out)
