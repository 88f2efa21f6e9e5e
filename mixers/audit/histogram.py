"""A mergeable histogram with fixed log-spaced bins: exact counts, quantiles to a known relative error.

Every value falls in a bin fixed in advance (``SUB`` bins per octave, mirrored for negative values,
one bin for zero), so two histograms of two parts of a corpus add up bin by bin to the histogram of
the whole: the merge is exact and order-free, and the state stays small (a few hundred occupied bins
whatever the number of values). Count, min and max are exact; a quantile is the geometric middle of
the bin that holds it (clamped to [min, max]), so it is within ``RELATIVE_ERROR`` of the true value.
While a metric has at most ``EXACT_LIMIT`` distinct values (frame counts, common image sizes), the
values themselves are kept too and quantiles are exact; that also merges exactly, because the union
of two parts has more than ``EXACT_LIMIT`` distinct values whenever one part has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SUB = 32  # bins per octave
RELATIVE_ERROR = 2 ** (1 / (2 * SUB)) - 1  # about 1.09%: half a bin's width, relative
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
EXACT_LIMIT = 256  # distinct values kept exactly before falling back to bins


@dataclass
class LogHistogram:
    """Counts per log-spaced bin; ``bins`` maps a signed bin index to a count (0 holds the zeros)."""

    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    bins: dict[int, int] = field(default_factory=dict)
    exact: dict[float, int] | None = field(default_factory=dict)  # value -> count; None past EXACT_LIMIT

    def add(self, values: Any) -> None:
        """Fold an array of values in; NaN and infinite values are ignored."""
        array = np.asarray(values, dtype=np.float64)
        array = array[np.isfinite(array)]
        if not array.size:
            return
        self.count += int(array.size)
        self.total += float(array.sum())
        self.minimum = min(self.minimum, float(array.min()))
        self.maximum = max(self.maximum, float(array.max()))
        keys, counts = np.unique(bin_index(array), return_counts=True)
        for key, n in zip(keys.tolist(), counts.tolist()):
            self.bins[key] = self.bins.get(key, 0) + n
        if self.exact is not None:
            values, counts = np.unique(array, return_counts=True)
            self._add_exact(zip(values.tolist(), counts.tolist()))

    def _add_exact(self, items) -> None:
        for value, n in items:
            self.exact[value] = self.exact.get(value, 0) + n
            if len(self.exact) > EXACT_LIMIT:
                self.exact = None
                return

    def merge(self, other: LogHistogram) -> LogHistogram:
        """This histogram plus ``other``, in place (returns self)."""
        self.count += other.count
        self.total += other.total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)
        for key, n in other.bins.items():
            self.bins[key] = self.bins.get(key, 0) + n
        if other.exact is None:
            self.exact = None
        elif self.exact is not None:
            self._add_exact(other.exact.items())
        return self

    def scaled(self, factor: float) -> LogHistogram:
        """Counts multiplied by ``factor`` (fractional; rounded when reported): a whole estimated from a sample."""
        out = LogHistogram(self.count * factor, self.total * factor, self.minimum, self.maximum)
        out.bins = {k: n * factor for k, n in self.bins.items()}
        out.exact = None if self.exact is None else {v: n * factor for v, n in self.exact.items()}
        return out

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The smallest value with at least a fraction ``q`` of the values at or below it (inverted CDF).

        Exact while the distinct values are kept, else to ``RELATIVE_ERROR``.
        """
        if not self.count:
            return None
        if q <= 0:
            return self.minimum
        if q >= 1:
            return self.maximum
        rank = q * self.count
        seen = 0
        if self.exact is not None:
            for value in sorted(self.exact):
                seen += self.exact[value]
                if seen >= rank:
                    return value
            return self.maximum
        for key in sorted(self.bins):
            seen += self.bins[key]
            if seen >= rank:
                return min(max(bin_middle(key), self.minimum), self.maximum)
        return self.maximum

    def to_dict(self) -> dict[str, Any]:
        """JSON form: exact count/min/max, mean, quantiles and the occupied bins ``[low, high, count]``."""
        if not self.count:
            return {
                "count": 0,
                "min": None,
                "max": None,
                "mean": None,
                "quantiles": {},
                "quantiles_exact": True,
                "bins": [],
            }
        bins = [
            [_r(low), _r(high), round(self.bins[key])] for key in sorted(self.bins) for low, high in [bin_edges(key)]
        ]
        return {
            "count": round(self.count),
            "min": _r(self.minimum),
            "max": _r(self.maximum),
            "mean": _r(self.mean),
            "quantiles": {f"p{round(q * 100)}": _r(self.quantile(q)) for q in QUANTILES},
            "quantiles_exact": self.exact is not None,
            "bins": bins,
        }


def bin_index(values: np.ndarray) -> np.ndarray:
    """Signed bin of each value: 0 for zero, ``±(1 + offset + floor(log2|v| * SUB))`` otherwise.

    The offset keeps every non-zero value's index away from 0 for magnitudes down to 2**-1000.
    """
    magnitude = np.abs(values)
    nonzero = magnitude > 0
    index = np.zeros(values.shape, dtype=np.int64)
    logs = np.floor(np.log2(magnitude[nonzero]) * SUB).astype(np.int64)
    index[nonzero] = (1 + _OFFSET + logs) * np.sign(values[nonzero]).astype(np.int64)
    return index


_OFFSET = 1100 * SUB  # log2 of the smallest positive double is about -1074


def bin_edges(key: int) -> tuple[float, float]:
    """The half-open range of values in bin ``key`` (low < high, also for negative bins)."""
    if key == 0:
        return 0.0, 0.0
    step = abs(key) - 1 - _OFFSET
    low, high = 2.0 ** (step / SUB), 2.0 ** ((step + 1) / SUB)
    return (low, high) if key > 0 else (-high, -low)


def bin_middle(key: int) -> float:
    """The geometric middle of a bin: at most ``RELATIVE_ERROR`` from any value in it."""
    low, high = bin_edges(key)
    if key == 0:
        return 0.0
    return math.copysign(math.sqrt(abs(low) * abs(high)), low)


def round_significant(value: float | None, digits: int = 10) -> float | None:
    """Round to ``digits`` significant digits, so float sums over different splits print alike."""
    if value is None or value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


_r = round_significant
