"""Token counts per record: what the record carries, else a labelled estimate.

Records carry ``text_tokens`` and ``vision_tokens`` once a token-counting stage has run (a real
tokenizer, a vision-token preset). Where a count is missing the audit estimates it and counts how
many records were estimated, so a report never passes an estimate off as a measurement:

- text: ``ceil(characters / 4)``, the same estimate as ``fusionforge.mixers.tokens.text`` without a
  tokenizer (about four characters per token for BPE vocabularies on web text);
- vision: 28-pixel merged patches, padded (``ceil(w/28) * ceil(h/28)`` per image) and videos in
  chunks of 4 frames (``ceil(frames/4)`` times one frame), with the sampled frame count of
  ``video_frames_v1`` when present, else the probed frame count. This is the Kimi K2.5 token rule
  without its size limits and wrapper tokens.

With a vision preset (``--vision-preset kimi-k25``), ``vision_token_counts`` counts every media item
with ``fusionforge.mixers.tokens.vision`` (the packer's own rule: placeholder tokens, without the
wrapper tokens around an item), the sampled frame count of ``video_frames_v1`` first, as the packer does.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.mixers.audit.facts import FRAMES_COLUMN, MediaItems, has_text, text_chars
from fusionforge.mixers.tokens.vision import get_preset, image_tokens, video_tokens
from fusionforge.pipelines.core import schema as S

CHARS_PER_TOKEN = 4
PATCH = 28  # pixels per merged vision token side (14-px patches, 2x2 merge)
FRAMES_PER_CHUNK = 4  # consecutive frames pooled into one frame's tokens
ESTIMATE_RULE = {
    "text": f"ceil(characters / {CHARS_PER_TOKEN})",
    "vision": f"image: ceil(w/{PATCH})*ceil(h/{PATCH}); video: ceil(frames/{FRAMES_PER_CHUNK}) * one frame",
}


def text_token_counts(batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, estimated) per record: ``text_tokens`` where set, else the estimate from the text's length."""
    recorded, known = _recorded(batch, S.TEXT_TOKENS)
    estimate = -(-text_chars(batch) // CHARS_PER_TOKEN)
    estimated = ~known & has_text(batch)
    return np.where(known, recorded, np.where(estimated, estimate, 0)), estimated


def vision_token_counts(
    batch: pa.RecordBatch, media: MediaItems, preset: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, estimated) per record: with ``preset``, the preset's count of every media item; else
    ``vision_tokens`` where set, and the estimate from the media facts where not."""
    frames = media.n_frames
    if FRAMES_COLUMN in batch.schema.names and len(media.parent):
        sampled = pc.cast(batch.column(FRAMES_COLUMN), pa.float64()).to_numpy(zero_copy_only=False)[media.parent]
        frames = np.where(np.isnan(sampled), frames, sampled)
    if preset is not None:
        per_item = np.array(
            [
                _preset_count(preset, k, w, h, f)
                for k, w, h, f in zip(media.kind.tolist(), media.width.tolist(), media.height.tolist(), frames.tolist())
            ],
            np.float64,
        )
        return media.per_record(per_item, batch.num_rows).astype(np.int64), np.zeros(batch.num_rows, bool)
    recorded, known = _recorded(batch, S.VISION_TOKENS)
    per_item = np.nan_to_num(np.ceil(media.width / PATCH) * np.ceil(media.height / PATCH))
    chunks = np.nan_to_num(np.ceil(frames / FRAMES_PER_CHUNK))
    per_item = np.where(media.videos, per_item * chunks, np.where(media.images, per_item, 0))
    estimate = media.per_record(per_item, batch.num_rows).astype(np.int64)
    has_media = np.bincount(media.parent, minlength=batch.num_rows) > 0
    estimated = ~known & has_media
    return np.where(known, recorded, np.where(estimated, estimate, 0)), estimated


@lru_cache(maxsize=65536)
def _preset_count(preset: str, kind: str | None, width: float, height: float, frames: float) -> int:
    """Placeholder tokens of one item under ``preset``; 0 when its size is unknown or invalid."""
    if not (width > 0 and height > 0):  # NaN (unknown) or zero
        return 0
    try:
        if kind == "image":
            return image_tokens(int(width), int(height), preset).tokens
        if kind == "video" and frames > 0:
            return video_tokens(int(width), int(height), int(frames), preset).tokens
    except ValueError:  # a size the model's processor rejects (e.g. aspect ratio beyond 200)
        return 0
    return 0


def check_preset(preset: str) -> None:
    """Raise ``ConfigError`` for an unknown preset name, before any work."""
    get_preset(preset)


def _recorded(batch: pa.RecordBatch, name: str) -> tuple[np.ndarray, np.ndarray]:
    if name not in batch.schema.names:
        return np.zeros(batch.num_rows, np.int64), np.zeros(batch.num_rows, bool)
    column = batch.column(name)
    known = pc.is_valid(column).to_numpy(zero_copy_only=False).astype(bool)
    return pc.fill_null(column, 0).cast(pa.int64()).to_numpy(zero_copy_only=False), known
