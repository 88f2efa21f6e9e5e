"""Fold record batches (a manifest's kept records, ``rejected/``'s dropped ones) into mergeable sums.

The state is small whatever the corpus: sums per (source, modality, language, status, reason) and
fixed-bin histograms per metric. Two states of two parts add up to the state of the whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.mixers.audit.domains import DomainCounts
from fusionforge.mixers.audit.facts import (
    FRAMES_COLUMN,
    languages,
    media_items,
    numeric_score_columns,
    text_bytes,
)
from fusionforge.mixers.audit.histogram import LogHistogram
from fusionforge.mixers.audit.tokens import text_token_counts, vision_token_counts
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.ledger import reason_kinds

GROUP_KEYS = ("source", "modality", "language", "status", "reason")
MEASURES = (
    "records",
    "text_bytes",
    "media_bytes",
    "text_tokens",
    "vision_tokens",
    "text_tokens_estimated",
    "vision_tokens_estimated",
    "images",
    "videos",
)
KEPT, REJECTED = "kept", "rejected"
GroupKey = tuple[str, str, str, str, str]


def preset_measure(preset: str) -> str:
    return f"vision_tokens:{preset}"


@dataclass
class RecordsState:
    """Sums per group key (``GROUP_KEYS`` -> ``measures``), histograms per ``"{kept|rejected}/{metric}"`` and
    records per web domain (``domains.py``).

    With vision presets, ``vision_tokens`` is the first preset's count and every preset's count is
    also summed under ``vision_tokens:{preset}``.
    """

    groups: dict[GroupKey, list[int]] = field(default_factory=dict)
    histograms: dict[str, LogHistogram] = field(default_factory=dict)
    presets: tuple[str, ...] = ()
    domains: DomainCounts = field(default_factory=DomainCounts)

    @property
    def measures(self) -> tuple[str, ...]:
        return MEASURES + tuple(preset_measure(p) for p in self.presets)

    def fold(self, batch: pa.RecordBatch, kept: bool) -> None:
        """Add one batch: ``kept`` for manifest rows, else rows of ``rejected/`` (dropped or failed)."""
        if batch.num_rows == 0:
            return
        media = media_items(batch)
        text_tokens, text_estimated = text_token_counts(batch)
        by_preset = {p: vision_token_counts(batch, media, p)[0] for p in self.presets}
        if self.presets:
            vision_tokens, vision_estimated = by_preset[self.presets[0]], np.zeros(batch.num_rows, bool)
        else:
            vision_tokens, vision_estimated = vision_token_counts(batch, media)
        status, reason = _status_and_reason(batch, kept)
        columns = {
            "source": _strings(batch, S.SOURCE),
            "modality": _strings(batch, S.MODALITY),
            "language": languages(batch),
            "status": status,
            "reason": reason,
            "records": np.ones(batch.num_rows, np.int64),
            "text_bytes": text_bytes(batch),
            "media_bytes": media.per_record(media.size.astype(np.float64), batch.num_rows).astype(np.int64),
            "text_tokens": text_tokens,
            "vision_tokens": vision_tokens,
            "text_tokens_estimated": text_estimated.astype(np.int64),
            "vision_tokens_estimated": vision_estimated.astype(np.int64),
            "images": np.bincount(media.parent[media.images], minlength=batch.num_rows).astype(np.int64),
            "videos": np.bincount(media.parent[media.videos], minlength=batch.num_rows).astype(np.int64),
            **{preset_measure(p): counts for p, counts in by_preset.items()},
        }
        measures = self.measures
        sums = pa.table(columns).group_by(list(GROUP_KEYS)).aggregate([(m, "sum") for m in measures])
        keys = zip(*(sums.column(k).to_pylist() for k in GROUP_KEYS))
        values = zip(*(sums.column(f"{m}_sum").to_pylist() for m in measures))
        for key, row in zip(keys, values):
            current = self.groups.setdefault(key, [0] * len(measures))
            for i, value in enumerate(row):
                current[i] += value
        self._histograms(batch, KEPT if kept else REJECTED, media, text_tokens, vision_tokens, columns["modality"])
        self.domains.fold(batch)

    def _histograms(self, batch, prefix, media, text_tokens, vision_tokens, modality) -> None:
        modality = np.asarray(modality.to_pylist(), dtype=object)
        texts = (
            pc.is_valid(batch.column(S.TEXT)).to_numpy(zero_copy_only=False)
            if S.TEXT in batch.schema.names
            else np.zeros(batch.num_rows, bool)
        )
        with_media = np.bincount(media.parent, minlength=batch.num_rows) > 0
        for name in sorted(set(modality.tolist())):
            rows = modality == name
            self._add(f"{prefix}/text_tokens/{name}", text_tokens[rows & texts])
            self._add(f"{prefix}/vision_tokens/{name}", vision_tokens[rows & with_media])
        images, videos = media.images, media.videos
        self._add(f"{prefix}/image_width", media.width[images])
        self._add(f"{prefix}/image_height", media.height[images])
        self._add(f"{prefix}/image_megapixels", media.width[images] * media.height[images] / 1e6)
        self._add(f"{prefix}/image_aspect", media.width[images] / media.height[images])
        self._add(f"{prefix}/video_duration_s", media.duration_s[videos])
        self._add(f"{prefix}/video_frames", media.n_frames[videos])
        scores = [c for c in numeric_score_columns(batch) if c != FRAMES_COLUMN]
        for column in [FRAMES_COLUMN, *scores]:
            if column in batch.schema.names:
                values = pc.cast(batch.column(column), pa.float64()).to_numpy(zero_copy_only=False)
                key = "video_sampled_frames" if column == FRAMES_COLUMN else f"score/{column}"
                self._add(f"{prefix}/{key}", values)

    def _add(self, key: str, values: np.ndarray) -> None:
        values = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        if values.size:
            self.histograms.setdefault(key, LogHistogram()).add(values)

    def merge(self, other: RecordsState) -> RecordsState:
        if other.groups and self.presets != other.presets:
            if self.groups:
                raise ValueError(f"cannot merge audits counted with presets {self.presets} and {other.presets}")
            self.presets = other.presets
        for key, row in other.groups.items():
            current = self.groups.setdefault(key, [0] * len(row))
            for i, value in enumerate(row):
                current[i] += value
        for key, histogram in other.histograms.items():
            self.histograms.setdefault(key, LogHistogram()).merge(histogram)
        self.domains.merge(other.domains)
        return self

    def scaled(self, factor: float) -> RecordsState:
        groups = {k: [v * factor for v in row] for k, row in self.groups.items()}  # rounded when reported
        histograms = {k: h.scaled(factor) for k, h in self.histograms.items()}
        return RecordsState(groups, histograms, self.presets, self.domains.scaled(factor))

    def totals(self, where=lambda key: True) -> dict[str, int]:
        """Sums of every measure over the groups whose key passes ``where`` (whole numbers)."""
        out = dict.fromkeys(self.measures, 0)
        for key, row in self.groups.items():
            if where(key):
                for name, value in zip(self.measures, row):
                    out[name] += value
        return {name: round(value) for name, value in out.items()}


def _status_and_reason(batch: pa.RecordBatch, kept: bool) -> tuple[pa.Array, pa.Array]:
    if kept:
        return pa.array(["kept"] * batch.num_rows), pa.array([""] * batch.num_rows)
    error = batch.column(S.ERROR) if S.ERROR in batch.schema.names else pa.nulls(batch.num_rows, pa.string())
    drop = batch.column(S.DROP_REASON) if S.DROP_REASON in batch.schema.names else pa.nulls(batch.num_rows, pa.string())
    status = pc.if_else(pc.is_valid(error), "failed", pc.if_else(pc.is_valid(drop), "dropped", "kept"))
    reason = pc.fill_null(reason_kinds(pc.coalesce(error.cast(pa.string()), drop.cast(pa.string()))), "")
    return status, reason


def _strings(batch: pa.RecordBatch, name: str) -> pa.Array:
    if name not in batch.schema.names:
        return pa.array(["unknown"] * batch.num_rows)
    return pc.fill_null(batch.column(name).cast(pa.string()), "unknown")
