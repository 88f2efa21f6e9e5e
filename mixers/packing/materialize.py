"""``pack --materialize``: WebDataset shards of packed samples a training dataloader reads directly.

One sample per sequence, key ``{sequence_id:09d}``:

- ``.input_ids.npy``: int32 token ids, L long (text ids from the tokenizer, the preset's placeholder
  id for every vision token, wrappers as the chat format writes them, pad id 0 after ``tokens``);
- ``.roles.npy``: uint8, L long, each token's ``Role`` (what a trainer masks from the loss; 0 after
  ``tokens``), so a reader needs neither the input shards nor the tokenizer to build labels;
- ``.json``: ``sequence_id``, ``window``, ``cu_seqlens``, the segments, and for each media item its
  token offset, length, the size to resize it to before the processor, its chunk range, frame count
  and sampling rate (videos), its format and its member name;
- ``.000.jpg``, ``.001.mp4``, ...: the media bytes, in the order they appear in the sequence.

Shards hold ``samples_per_shard`` sequences each, are written atomically and skipped on resume.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from fusionforge.mixers.packing.layout import (
    FPS_COLUMN,
    FRAMES_COLUMN,
    LayoutOptions,
    Wrappers,
    chunk_timestamp,
    frame_sampling,
    record_layout,
)
from fusionforge.mixers.tokens.text import TextCounter, record_texts
from fusionforge.mixers.tokens.vision import get_preset
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.io import atomic_path, read_range
from fusionforge.pipelines.core.lifecycle import PACKED_SHARD, Markers
from fusionforge.pipelines.transform import ManifestSource

PLACEHOLDERS = {
    "qwen2-vl": ("<|image_pad|>", "<|video_pad|>"),
    "kimi-k25": ("<|media_pad|>", "<|media_pad|>"),
    "kimi-vl": ("<|media_pad|>", "<|media_pad|>"),
    "llava-onevision": ("<image>", "<video>"),
    "custom": ("<|image_pad|>", "<|video_pad|>"),
}
EXTENSIONS = {"jpeg": "jpg"}


class Role(IntEnum):
    """What a token of a record's layout is; ordered: from ``WRAPPER`` up not learned, from ``IMAGE`` up vision."""

    TEXT = 0
    EOS = 1
    WRAPPER = 2  # chat markup around a media item or a video chunk (timestamps included)
    IMAGE = 3  # an image placeholder
    VIDEO = 4  # a video placeholder


class Encoder:
    """Rebuilds a record's token ids exactly as its layout counted them."""

    def __init__(self, cfg: Any) -> None:
        if not cfg.tokenizer:
            raise ConfigError("--materialize writes token ids and needs a real tokenizer: pass --tokenizer PATH")
        self.counter = TextCounter(cfg.tokenizer, cfg.tiktoken_pattern)
        self.preset = get_preset(cfg.vision_preset, **dict(cfg.preset_overrides))
        self.opts = LayoutOptions(self.preset, cfg.seq_len, cfg.seq_vision_cap, cfg.video_group_tokens, cfg.eos)
        self.wrappers = Wrappers(self.preset, self.counter.encode_markup)
        names = PLACEHOLDERS[cfg.vision_preset]
        self.pads = [self.counter.token_id(n) for n in names]
        missing = [n for n, i in zip(names, self.pads) if i is None]
        if missing:
            raise ConfigError(
                f"the tokenizer has no {missing} token(s), which preset {cfg.vision_preset} uses for "
                "vision placeholders; use the model's own tokenizer"
            )
        self.eos = self.counter.eos_id
        if cfg.eos and self.eos is None:
            raise ConfigError("the tokenizer defines no eos_token (tokenizer_config.json); pass --no-eos")

    def encode(self, record: dict[str, Any]) -> tuple[list[int], list[int]]:
        """The record's token ids and, per token, its ``Role`` (what a trainer masks from the loss)."""
        return self.encode_many([record])[0]

    def encode_many(self, records: list[dict[str, Any]]) -> list[tuple[list[int], list[int]]]:
        """``encode`` of several records, their texts tokenized in one batch (the tokenizer's threads)."""
        texts = [record_texts(r[S.MODALITY], r[S.TEXT], r[S.SEGMENTS]) for r in records]
        flat = self.counter.encode_batch([t for parts in texts for t in parts])
        ends = np.cumsum([len(parts) for parts in texts])
        return [self._assemble(r, flat[end - len(t) : end]) for r, t, end in zip(records, texts, ends)]

    def _assemble(self, record: dict[str, Any], encoded: list[list[int]]) -> tuple[list[int], list[int]]:
        layout = record_layout(record, [len(e) for e in encoded], self.opts, self.wrappers)
        ids: list[int] = []
        roles: list[int] = []

        def add(tokens: list[int], role: int) -> None:
            ids.extend(tokens)
            roles.extend([int(role)] * len(tokens))

        markup = self.counter.encode_markup
        for block in layout.blocks:
            if block.kind == "text":
                add(encoded[block.part], Role.TEXT)
            elif block.kind == "eos":
                add([self.eos], Role.EOS)
            elif block.kind == "image":
                wrap = self.preset.image_wrapper
                add(markup(wrap.prefix), Role.WRAPPER)
                add([self.pads[0]] * block.vision, Role.IMAGE)
                add(markup(wrap.suffix), Role.WRAPPER)
            else:
                self._video_ids(record, block, add)
        return ids, roles

    def _video_ids(self, record: dict[str, Any], block, add: Callable[[list[int], int], None]) -> None:
        markup, preset = self.counter.encode_markup, self.preset
        item = record[S.MEDIA][block.part]
        fps = float(record.get(FPS_COLUMN) or item["fps"] or 1.0)
        frames = record.get(FRAMES_COLUMN)
        frames = int(frames) if frames is not None else int(item["n_frames"] or 0)
        per_chunk = preset.video(block.width, block.height, frames).tokens_per_chunk
        extra = block.vision - per_chunk * (block.chunk_end - block.chunk_start)
        add(markup(preset.video_wrapper.prefix), Role.WRAPPER)
        add([self.pads[1]] * extra, Role.VIDEO)
        for k in range(block.chunk_start, block.chunk_end):
            prefix = preset.chunk_wrapper.prefix.format(timestamp=chunk_timestamp(k, preset.temporal_patch_size, fps))
            add(markup(prefix), Role.WRAPPER)
            add([self.pads[1]] * per_chunk, Role.VIDEO)
            add(markup(preset.chunk_wrapper.suffix), Role.WRAPPER)
        add(markup(preset.video_wrapper.suffix), Role.WRAPPER)


def materialize(out: Path, source: ManifestSource, cfg: Any, encoder: Encoder) -> dict[str, Any]:
    """Write ``packed/*.tar`` from ``plan.parquet`` with ``encoder`` (built before any work); return counts."""
    plan = pq.ParquetFile(out / "plan.parquet")
    written = Markers(str(out), PACKED_SHARD)
    shards, samples = [], 0
    for number, batch in enumerate(plan.iter_batches(batch_size=cfg.samples_per_shard)):
        name = f"packed-{number:06d}.tar"
        shards.append(name)
        samples += batch.num_rows
        if written.read(number) is not None:
            continue
        sequences = batch.to_pylist()
        records = _records(source, {(s["partition"], s["row"]) for q in sequences for s in q["segments"]})
        with atomic_path(out / "packed" / name) as tmp, tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for sequence in sequences:
                _write_sample(tar, sequence, records, encoder, cfg.seq_len)
        written.mark({"samples": batch.num_rows}, number)
    return {"shards": len(shards), "samples": samples, "folder": "packed/"}


def _records(source: ManifestSource, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], dict[str, Any]]:
    found: dict[tuple[int, int], dict[str, Any]] = {}
    for partition in sorted({p for p, _ in wanted}):
        rows = [r for t in source.read(partition) for r in t.to_pylist()]
        for p, row in wanted:
            if p == partition:
                found[(p, row)] = rows[row]
    return found


def _write_sample(
    tar: tarfile.TarFile, sequence: dict[str, Any], records: dict, encoder: Encoder, seq_len: int
) -> None:
    key = f"{sequence['sequence_id']:09d}"
    ids, roles = np.zeros(seq_len, np.int32), np.zeros(seq_len, np.uint8)
    media_members, spans = [], []
    cache: dict[tuple[int, int], tuple[list[int], list[int]]] = {}
    for segment in sequence["segments"]:
        where = (segment["partition"], segment["row"])
        record = records[where]
        if where not in cache:
            cache[where] = encoder.encode(record)
        start, length, at = segment["sample_start"], segment["length"], segment["offset"]
        ids[at : at + length] = cache[where][0][start : start + length]
        roles[at : at + length] = cache[where][1][start : start + length]
        for media in segment["media"]:
            item = record[S.MEDIA][media["media_index"]]
            data = (
                item["bytes"]
                if item.get("bytes") is not None
                else read_range(item["uri"], item["offset"], item["size"])
            )
            ext = EXTENSIONS.get(item["format"] or "", item["format"] or "bin")
            member = f"{key}.{len(media_members):03d}.{ext}"
            media_members.append((member, data))
            span = {**media, "sample_id": segment["sample_id"], "member": member, "format": item["format"]}
            if media["kind"] == "video":
                span["frames"], span["fps"] = frame_sampling(record, item)
            spans.append(span)
    header = {
        "sequence_id": sequence["sequence_id"],
        "window": sequence["window"],
        "tokens": sequence["tokens"],
        "vision_tokens": sequence["vision_tokens"],
        "cu_seqlens": sequence["cu_seqlens"],
        "media": spans,
        "segments": [{k: v for k, v in s.items() if k != "media"} for s in sequence["segments"]],
    }
    members = [(f"{key}.input_ids.npy", _npy(ids)), (f"{key}.roles.npy", _npy(roles))]
    members.append((f"{key}.json", json.dumps(header).encode()))
    for name, data in members + media_members:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
