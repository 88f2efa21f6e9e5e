"""Packing metrics, accumulated window by window in sequence order (integer bookkeeping, bounded memory).

Padding fraction, global vision ratio, the ratio error of every window (as packed, B sequences:
max, mean and p95 of the absolute errors of the full windows; the final, smaller window apart) and
of every run of ``batch`` consecutive sequences (sliding), the per-sequence ratio distribution
(mean, p5, p95, the zero-vision share, the share within +-5 pp of the target), split documents,
items per sequence and tokens per source (the realised mixture). ``tolerance_check`` says whether
the global and the per-window errors are within ``--ratio-tolerance``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

RATIO_BINS = 10_000  # per-sequence ratios are histogrammed at 1e-4 resolution: exact enough for p5/p95


class PackMetrics:
    """Feed ``add_rows(rows)`` (plan rows of whole windows) in sequence order; ``summary()`` gives the figures."""

    def __init__(self, seq_len: int, target: float, batch: int, band: float = 0.05) -> None:
        self.seq_len, self.target, self.batch, self.band = seq_len, target, batch, band
        self.sequences = self.tokens = self.vision = self.items = self.max_items = 0
        self.zero_vision = self.within_band = 0
        self.ratio_sum = 0.0
        self.histogram = np.zeros(RATIO_BINS + 1, np.int64)
        self.window_errors: list[float] = []
        self.tail = np.zeros((2, 0), np.int64)  # tokens and vision of the last batch - 1 sequences
        self.sliding_max_error = 0.0
        self.sliding_count = 0
        self.split_segments = self.split_documents = 0
        self.by_source: dict[str, int] = {}

    def add_rows(self, rows: pa.Table) -> None:
        if not rows.num_rows:
            return
        tokens = rows.column("tokens").to_numpy()
        vision = rows.column("vision_tokens").to_numpy()
        items = rows.column("items").to_numpy()
        _, first, window = np.unique(rows.column("window").to_numpy(), return_index=True, return_inverse=True)
        window_tokens, window_vision = np.bincount(window, tokens), np.bincount(window, vision)
        for w in np.argsort(first):  # windows in sequence order
            if window_tokens[w]:
                self.window_errors.append(float(window_vision[w] / window_tokens[w]) - self.target)
        self.sequences += len(tokens)
        self.tokens += int(tokens.sum())
        self.vision += int(vision.sum())
        self.items += int(items.sum())
        self.max_items = max(self.max_items, int(items.max()))
        ratio = np.where(tokens > 0, vision / np.maximum(tokens, 1), 0.0)
        self.ratio_sum += float(ratio.sum())
        self.histogram += np.bincount(np.rint(ratio * RATIO_BINS).astype(np.int64), minlength=RATIO_BINS + 1)
        self.zero_vision += int((vision == 0).sum())
        self.within_band += int((np.abs(ratio - self.target) <= self.band + 1e-12).sum())
        segments = pc.list_flatten(rows.column("segments")).combine_chunks()
        field = dict(zip([f.name for f in segments.type], segments.flatten()))  # children, sliced like the struct
        split = field["split"].to_numpy(zero_copy_only=False)
        self.split_segments += int(split.sum())
        self.split_documents += int((split & (field["sample_start"].to_numpy() == 0)).sum())  # each starts once
        lengths = pa.table({"source": field["source"], "length": field["length"]})
        for row in lengths.group_by("source").aggregate([("length", "sum")]).to_pylist():
            self.by_source[row["source"]] = self.by_source.get(row["source"], 0) + row["length_sum"]
        self._slide(np.concatenate([self.tail, np.stack([tokens, vision])], axis=1))

    def _slide(self, run: np.ndarray) -> None:
        """Ratio error of every ``batch`` consecutive sequences that ends in this window."""
        if run.shape[1] >= self.batch:
            cumulative = np.concatenate([np.zeros((2, 1), np.int64), np.cumsum(run, axis=1)], axis=1)
            sums = cumulative[:, self.batch :] - cumulative[:, : -self.batch]
            counted = sums[0] > 0
            self.sliding_count += int(counted.sum())
            if counted.any():
                error = np.abs(sums[1][counted] / sums[0][counted] - self.target)
                self.sliding_max_error = max(self.sliding_max_error, float(error.max()))
        self.tail = run[:, max(0, run.shape[1] - self.batch + 1) :]

    def quantile(self, q: float) -> float:
        if not self.sequences:
            return 0.0
        cumulative = np.cumsum(self.histogram)
        return float(np.searchsorted(cumulative, q * self.sequences, side="left") / RATIO_BINS)

    def summary(self) -> dict[str, Any]:
        n = max(1, self.sequences)
        full_windows = self.window_errors[:-1] if len(self.window_errors) > 1 else self.window_errors
        errors = np.abs(np.array(full_windows, np.float64))
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
            "window_ratio_error_max": float(errors.max()) if len(errors) else 0.0,
            "window_ratio_error_mean": float(errors.mean()) if len(errors) else 0.0,
            "window_ratio_error_p95": float(np.percentile(errors, 95)) if len(errors) else 0.0,
            "window_ratio_error_last": abs(self.window_errors[-1]) if self.window_errors else 0.0,
            "sliding_batch": self.batch,
            "sliding_ratio_error_max": self.sliding_max_error,
            "per_sequence_ratio": {
                "mean": self.ratio_sum / n,
                "p5": self.quantile(0.05),
                "p50": self.quantile(0.5),
                "p95": self.quantile(0.95),
            },
            "zero_vision_share": self.zero_vision / n,
            "within_band_share": self.within_band / n,
            "band": self.band,
            "split_documents": self.split_documents,
            "split_segments": self.split_segments,
            "items_per_sequence": {"mean": self.items / n, "max": self.max_items},
            "tokens_by_source": dict(sorted(self.by_source.items())),
        }


def tolerance_check(summary: dict[str, Any], tolerance: float) -> dict[str, Any]:
    """Whether the global ratio error and every full window's error are within ``tolerance`` (``ok``: both)."""
    slack = 1e-12  # an error equal to the tolerance is within it, whatever the float rounding
    global_ok = abs(summary["global_ratio_error"]) <= tolerance + slack
    windows_ok = summary["window_ratio_error_max"] <= tolerance + slack
    return {"tolerance": tolerance, "global": global_ok, "windows": windows_ok, "ok": global_ok and windows_ok}
