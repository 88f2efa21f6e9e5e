"""Decision helpers shared by filters: rules in order, ratios that may be undefined, limits that may be off."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pyarrow as pa

from fusionforge.pipelines.core.bounds import NON_NEGATIVE


def first_failing(n_rows: int, rules: Iterable[tuple[str, np.ndarray]]) -> list[str | None]:
    """Per row, the reason of the first rule whose mask is True there, else None (rules in order)."""
    reasons: list[str | None] = [None] * n_rows
    open_rows = np.ones(n_rows, dtype=bool)
    for reason, mask in rules:
        hits = np.nonzero(open_rows & np.asarray(mask, dtype=bool))[0]
        for row in hits:
            reasons[row] = reason
        open_rows[hits] = False
    return reasons


def check_limits(stage: str, limits: Mapping[str, float | None]) -> None:
    """Refuse a negative limit (a stage's parameter: ``ValueError``); None turns a limit off."""
    negative = [name for name, value in limits.items() if NON_NEGATIVE.problem(name, value)]
    if negative:
        raise ValueError(f"{stage}: limits must be >= 0 or None (off): {negative}")


def safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` with NaN where the denominator is zero."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def float_array(values: np.ndarray) -> pa.Array:
    """A float64 Arrow array with NaN stored as null (an undefined ratio is not a number to compare)."""
    values = np.asarray(values, dtype=np.float64)
    return pa.array(values, pa.float64(), mask=np.isnan(values))


def exceeds(values: np.ndarray, limit: float | None) -> np.ndarray:
    """``values > limit`` (False where undefined or when the rule is off)."""
    if limit is None:
        return np.zeros(len(values), dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf) > limit


def below(values: np.ndarray, limit: float | None) -> np.ndarray:
    """``values < limit`` (False where undefined or when the rule is off)."""
    if limit is None:
        return np.zeros(len(values), dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=np.inf) < limit


def at_most(values: np.ndarray, limit: float | None) -> np.ndarray:
    """``values <= limit`` (False where undefined or when the rule is off)."""
    if limit is None:
        return np.zeros(len(values), dtype=bool)
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=np.inf) <= limit


def at_least(values: np.ndarray, limit: float | None) -> np.ndarray:
    """``values >= limit`` (False where undefined or when the rule is off)."""
    if limit is None:
        return np.zeros(len(values), dtype=bool)
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf) >= limit
