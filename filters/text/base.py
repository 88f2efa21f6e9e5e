"""What every text filter shares: which rows it judges (modality, language) and how rules decide.

Heuristics written for web documents misjudge image captions, and English stop-word rules misjudge
German; so a text filter judges the modalities it is given (documents and interleaved documents by
default) and, when ``languages`` is set, only records whose detected language (the
``text_lang_id_v1__lang`` column of an earlier language-ID stage) is in that list. The rest get null
scores and no decision from it.
"""

from __future__ import annotations

from collections.abc import Sequence

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

    def __init__(
        self,
        modalities: Sequence[str] = DEFAULT_MODALITIES,
        languages: Sequence[str] | None = None,
        lang_column: str = LANG_COLUMN,
    ) -> None:
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
                raise ConfigError(
                    f"{self.name}: languages={list(self.languages)} needs the column "
                    f"{self.lang_column!r}; put text_lang_id_v1 before it in the filter list"
                )
            return mask
        in_language = pc.is_in(batch.column(self.lang_column), value_set=pa.array(self.languages, pa.string()))
        return pc.and_(mask, pc.fill_null(in_language, False))


def texts_of(batch: pa.Table) -> pa.Array:
    """The text column as one non-null large_string array (a missing text is the empty string)."""
    return pc.fill_null(batch.column(S.TEXT).combine_chunks().cast(pa.large_string()), "")
