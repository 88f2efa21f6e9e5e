"""Keep policies for model scores (DataComp style): a fixed threshold, or the top fraction by score.

A threshold is decided row by row. "Keep the top 30%" needs every score first: ``fusionforge filter``
runs a score pass that stores the scores, computes the threshold with ``top_fraction_threshold``
(exact, with memory bounded by a histogram, not by the number of records), and then runs the stage
again with ``resolved_threshold`` set and ``reuse_scores`` on, so the model runs once. The fraction is
taken over every record the stage scored, whatever other stages decide (DataComp's "intersect"
semantics), and ties at the threshold are all kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import pyarrow as pa

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.bounds import POSITIVE_FRACTION, Bound
from fusionforge.pipelines.core.errors import ConfigError

LOW_SCORE = "low_score"
HISTOGRAM_BINS = 1 << 16
EXACT_LIMIT = 1 << 20


class ScorePolicy:
    """Mixin for a scoring stage whose ``score`` field is kept by threshold or top fraction."""

    name: str
    policy_field = "score"
    scores: Bound | None = None  # the values a score takes; a threshold outside them keeps all or nothing

    def init_policy(
        self, threshold: float | None, top_fraction: float | None, resolved_threshold: float | None, reuse_scores: bool
    ) -> None:
        check_policy(self.name, threshold, top_fraction, self.scores)
        self.threshold = threshold
        self.top_fraction = top_fraction
        self.resolved_threshold = resolved_threshold
        self.reuse_scores = reuse_scores

    @property
    def needs_score_pass(self) -> bool:
        """A top fraction whose threshold no score pass has resolved (a pass that found no scores keeps all)."""
        return self.top_fraction is not None and self.resolved_threshold is None and not self.reuse_scores

    def policy_reasons(self, values: np.ndarray) -> list[str | None]:
        """``low_score`` where the score is below the threshold in force; NaN (unscored) is kept."""
        if self.needs_score_pass:
            raise ConfigError(
                f"{self.name}: top_fraction={self.top_fraction} needs every score first; run it "
                "through `fusionforge filter` (a score pass), or give a threshold"
            )
        limit = self.resolved_threshold if self.top_fraction is not None else self.threshold
        if limit is None:
            return [None] * len(values)
        with np.errstate(invalid="ignore"):
            low = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=np.inf) < limit
        return [LOW_SCORE if flag else None for flag in low]

    def stored_scores(self, batch: pa.Table) -> dict[str, pa.Array]:
        """This stage's score columns as an earlier pass stored them (``reuse_scores``)."""
        prefix = S.stage_column(self.name, "")
        found = {c[len(prefix) :]: batch.column(c).combine_chunks() for c in batch.column_names if c.startswith(prefix)}
        if self.policy_field not in found:
            raise ConfigError(f"{self.name}: reuse_scores is on but the batch has no {prefix}{self.policy_field}")
        return found


def check_policy(stage: str, threshold: float | None, top_fraction: float | None, scores: Bound | None = None) -> None:
    """Refuse contradictory or out-of-range policy parameters (``scores``: the range a threshold must be in)."""
    if threshold is not None and top_fraction is not None:
        raise ValueError(f"{stage}: give threshold or top_fraction, not both")
    POSITIVE_FRACTION.require(f"{stage}: top_fraction", top_fraction, ValueError)
    if scores is not None:
        scores.require(f"{stage}: threshold", threshold, ValueError)


def top_fraction_threshold(chunks: Callable[[], Iterable[np.ndarray]], fraction: float) -> float | None:
    """The score of the ``ceil(fraction * n)``-th best of all finite scores (None when there are none).

    ``chunks`` returns a fresh iterator over the scores each time it is called; the scores are read
    a few times (range, then histograms narrowing on the bin that holds the answer) and never held
    all at once, unless at most ``EXACT_LIMIT`` of them fall in the final range.
    """
    n, low, high = 0, math.inf, -math.inf
    for chunk in chunks():
        finite = _finite(chunk)
        if len(finite):
            n += len(finite)
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    if n == 0:
        return None
    rank = max(1, math.ceil(fraction * n))  # 1 = the best score
    while True:
        above = inside = 0
        for chunk in chunks():
            finite = _finite(chunk)
            above += int((finite > high).sum())
            inside += int(((finite >= low) & (finite <= high)).sum())
        if high - low <= 1e-12 * max(1.0, abs(high)):  # the answer is pinned to float precision
            return low
        if inside <= EXACT_LIMIT:
            values = np.concatenate([_between(chunk, low, high) for chunk in chunks()] or [np.empty(0)])
            return float(np.sort(values)[::-1][rank - above - 1])
        edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
        counts = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
        for chunk in chunks():
            counts += np.histogram(_between(chunk, low, high), bins=edges)[0]
        from_top = np.cumsum(counts[::-1]) + above
        top_bin = HISTOGRAM_BINS - 1 - int(np.searchsorted(from_top, rank))
        low, high = float(edges[top_bin]), float(edges[top_bin + 1])


def _between(chunk: np.ndarray, low: float, high: float) -> np.ndarray:
    finite = _finite(chunk)
    return finite[(finite >= low) & (finite <= high)]


def _finite(chunk: np.ndarray) -> np.ndarray:
    values = np.asarray(chunk, dtype=np.float64)
    return values[np.isfinite(values)]
