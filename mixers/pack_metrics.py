"""Packing metrics, accumulated window by window in sequence order (integer bookkeeping, bounded memory).

Padding fraction, global vision ratio, the ratio error of every window (as packed, B sequences)
and of every run of ``batch`` consecutive sequences (sliding), the per-sequence ratio distribution
(mean, p5, p95, the zero-vision share, the share within +-5 pp of the target), split documents,
items per sequence and tokens per source (the realised mixture).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

RATIO_BINS = 10_000  # per-sequence ratios are histogrammed at 1e-4 resolution: exact enough for p5/p95


class PackMetrics:
    """Feed ``add_window(rows)`` in sequence order; ``summary()`` gives the report figures."""

    def __init__(self, seq_len: int, target: float, batch: int, band: float = 0.05) -> None:
        self.seq_len, self.target, self.batch, self.band = seq_len, target, batch, band
        self.sequences = self.tokens = self.vision = self.items = self.max_items = 0
        self.zero_vision = self.within_band = 0
        self.ratio_sum = 0.0
        self.histogram = np.zeros(RATIO_BINS + 1, np.int64)
        self.window_errors: list[float] = []
        self.sliding: deque[tuple[int, int]] = deque()
        self.sliding_tokens = self.sliding_vision = 0
        self.sliding_max_error = 0.0
        self.sliding_count = 0
        self.split_segments = self.split_documents = 0
        self.by_source: dict[str, int] = {}

    def add_window(self, rows: list[dict[str, Any]]) -> None:
        tokens = sum(r["tokens"] for r in rows)
        vision = sum(r["vision_tokens"] for r in rows)
        if tokens:
            self.window_errors.append(vision / tokens - self.target)
        for row in rows:
            self._add_sequence(row)

    def _add_sequence(self, row: dict[str, Any]) -> None:
        tokens, vision = row["tokens"], row["vision_tokens"]
        self.sequences += 1
        self.tokens += tokens
        self.vision += vision
        self.items += row["items"]
        self.max_items = max(self.max_items, row["items"])
        ratio = vision / tokens if tokens else 0.0
        self.ratio_sum += ratio
        self.histogram[int(round(ratio * RATIO_BINS))] += 1
        self.zero_vision += vision == 0
        self.within_band += abs(ratio - self.target) <= self.band + 1e-12
        for segment in row["segments"]:
            self.by_source[segment["source"]] = self.by_source.get(segment["source"], 0) + segment["length"]
            if segment["split"]:
                self.split_segments += 1
                self.split_documents += segment["sample_start"] == 0  # each split document starts once
        self.sliding.append((tokens, vision))
        self.sliding_tokens += tokens
        self.sliding_vision += vision
        if len(self.sliding) > self.batch:
            old_tokens, old_vision = self.sliding.popleft()
            self.sliding_tokens -= old_tokens
            self.sliding_vision -= old_vision
        if len(self.sliding) == self.batch and self.sliding_tokens:
            self.sliding_count += 1
            error = abs(self.sliding_vision / self.sliding_tokens - self.target)
            self.sliding_max_error = max(self.sliding_max_error, error)

    def quantile(self, q: float) -> float:
        if not self.sequences:
            return 0.0
        cumulative = np.cumsum(self.histogram)
        return float(np.searchsorted(cumulative, q * self.sequences, side="left") / RATIO_BINS)

    def summary(self) -> dict[str, Any]:
        n = max(1, self.sequences)
        full_windows = self.window_errors[:-1] if len(self.window_errors) > 1 else self.window_errors
        return {
            "sequences": self.sequences,
            "seq_len": self.seq_len,
            "tokens": self.tokens,
            "vision_tokens": self.vision,
            "text_tokens": self.tokens - self.vision,
            "padding_tokens": self.sequences * self.seq_len - self.tokens,
            "padding_fraction": 1 - self.tokens / (n * self.seq_len) if self.sequences else 0.0,
            "target_vision_ratio": self.target,
            "global_vision_ratio": self.vision / self.tokens if self.tokens else 0.0,
            "global_ratio_error": (self.vision / self.tokens - self.target) if self.tokens else 0.0,
            "windows": len(self.window_errors),
            "window_ratio_error_max": max((abs(e) for e in full_windows), default=0.0),
            "window_ratio_error_last": abs(self.window_errors[-1]) if self.window_errors else 0.0,
            "sliding_batch": self.batch,
            "sliding_ratio_error_max": self.sliding_max_error,
            "per_sequence_ratio": {"mean": self.ratio_sum / n, "p5": self.quantile(0.05), "p50": self.quantile(0.5),
                                   "p95": self.quantile(0.95)},
            "zero_vision_share": self.zero_vision / n,
            "within_band_share": self.within_band / n,
            "band": self.band,
            "split_documents": self.split_documents,
            "split_segments": self.split_segments,
            "items_per_sequence": {"mean": self.items / n, "max": self.max_items},
            "tokens_by_source": dict(sorted(self.by_source.items())),
        }
