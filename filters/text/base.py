"""What every text filter shares: which rows it judges (modality, language) and how rules decide.

Heuristics written for web documents misjudge image captions, and English stop-word rules misjudge
German; so a text filter judges the modalities it is given (documents and interleaved documents by
default) and, when ``languages`` is set, only records whose detected language (the
``text_lang_id_v1__lang`` column of an earlier language-ID stage) is in that list. The rest get null
scores and no decision from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.stage import ScoringStage

LANG_COLUMN = "text_lang_id_v1__lang"
DEFAULT_MODALITIES = (S.Modality.TEXT.value, S.Modality.INTERLEAVED.value)
ALL_MODALITIES = tuple(m.value for m in S.Modality)


class TextFilter(ScoringStage):
    """A scoring stage over the ``text`` column of some modalities (and, optionally, languages)."""

    def __init__(self, modalities: Sequence[str] = DEFAULT_MODALITIES, languages: Sequence[str] | None = None,
                 lang_column: str = LANG_COLUMN) -> None:
        unknown = set(modalities) - set(ALL_MODALITIES)
        if unknown or not modalities:
            raise ValueError(f"modalities must be a non-empty subset of {list(ALL_MODALITIES)}, got {list(modalities)}")
        self.modalities = tuple(modalities)
        self.languages = tuple(languages) if languages else None
        self.lang_column = lang_column

    def applies(self, batch: pa.Table) -> pa.Array:
        mask = pc.is_in(batch.column(S.MODALITY), value_set=pa.array(self.modalities, pa.string()))
        if self.languages is None:
            return mask
        if self.lang_column not in batch.column_names:
            if pc.any(mask).as_py():
                raise ConfigError(f"{self.name}: languages={list(self.languages)} needs the column "
                                  f"{self.lang_column!r}; put text_lang_id_v1 before it in the filter list")
            return mask
        in_language = pc.is_in(batch.column(self.lang_column), value_set=pa.array(self.languages, pa.string()))
        return pc.and_(mask, pc.fill_null(in_language, False))


def texts_of(batch: pa.Table) -> pa.Array:
    """The text column as one non-null large_string array (a missing text is the empty string)."""
    return pc.fill_null(batch.column(S.TEXT).combine_chunks().cast(pa.large_string()), "")


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
