"""FineWeb's line-level quality checks (Penedo et al. 2024, "The FineWeb Datasets"), vectorised.

A document is dropped when (defaults as published, in brackets):

- at most ``line_punct_thr`` [0.12] of its lines end in ``. ' " ! ?`` (``few_punctuated_lines``);
- at least ``short_line_thr`` [0.67] of its lines have at most ``short_line_length`` [30]
  characters (``short_lines``);
- characters of lines that repeat an earlier non-blank line are at least ``char_dup_thr`` [0.01]
  of its characters (newlines excluded) (``duplicate_lines``);
- it has more than ``list_ratio_thr`` [0.3] newlines per word (``list_like``).

As in FineWeb, lines are the "\\n"-separated pieces, blank ones included. Unlike FineWeb, trailing
whitespace does not hide a line's final punctuation, and words are those of
``filters/text/words.py`` (FineWeb counts NLTK tokens, punctuation included, so its newline-per-word
ratio is a little lower on the same text). Every statistic is computed over the whole batch with
Arrow kernels except the duplicated-line characters, a set lookup per line, once per document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.filters.rules import at_least, at_most, exceeds, first_failing, float_array, safe_ratio
from fusionforge.filters.text.base import DEFAULT_MODALITIES, LANG_COLUMN, TextFilter, texts_of
from fusionforge.filters.text.gopher_repetition import duplicate_stats
from fusionforge.filters.text.words import matches, split_lines, split_words
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources


def fineweb_scores(texts: pa.Array, short_line_length: int = 30) -> dict[str, np.ndarray]:
    """FineWeb's line statistics of every text (NaN where undefined)."""
    lines = split_lines(texts, keep_blank=True)
    n_lines = lines.count()
    punctuated = matches(lines.values, r"[.'\"!?]$")
    short = pc.less_equal(pc.utf8_length(lines.values), short_line_length)
    dup_chars = np.array(
        [duplicate_stats([x for x in t.split("\n") if x.strip()])[1] for t in texts.to_pylist()], dtype=np.float64
    )
    newlines = pc.count_substring(texts, "\n").to_numpy(zero_copy_only=False)
    return {
        "line_punct_ratio": safe_ratio(lines.count(punctuated), n_lines),
        "short_line_ratio": safe_ratio(lines.count(short), n_lines),
        "char_dup_ratio": safe_ratio(dup_chars, pc.utf8_length(texts).to_numpy(zero_copy_only=False) - newlines),
        "list_ratio": safe_ratio(newlines, split_words(texts).count()),
    }


@register
class FineWebQuality(TextFilter):
    """``text_fineweb_quality_v1``: FineWeb's line-level checks (see the module docstring)."""

    name: ClassVar[str] = "text_fineweb_quality_v1"
    resources: ClassVar[Resources] = Resources(batch_size=1024)

    def __init__(
        self,
        line_punct_thr: float | None = 0.12,
        short_line_thr: float | None = 0.67,
        short_line_length: int = 30,
        char_dup_thr: float | None = 0.01,
        list_ratio_thr: float | None = 0.3,
        modalities: Sequence[str] = DEFAULT_MODALITIES,
        languages: Sequence[str] | None = None,
        lang_column: str = LANG_COLUMN,
    ) -> None:
        super().__init__(modalities, languages, lang_column)
        self.line_punct_thr = line_punct_thr
        self.short_line_thr = short_line_thr
        self.short_line_length = short_line_length
        self.char_dup_thr = char_dup_thr
        self.list_ratio_thr = list_ratio_thr

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        return {k: float_array(v) for k, v in fineweb_scores(texts_of(batch), self.short_line_length).items()}

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        s = {k: v.to_numpy(zero_copy_only=False).astype(np.float64) for k, v in scores.items()}
        return first_failing(
            len(s["list_ratio"]),
            [
                ("few_punctuated_lines", at_most(s["line_punct_ratio"], self.line_punct_thr)),
                ("short_lines", at_least(s["short_line_ratio"], self.short_line_thr)),
                ("duplicate_lines", at_least(s["char_dup_ratio"], self.char_dup_thr)),
                ("list_like", exceeds(s["list_ratio"], self.list_ratio_thr)),
            ],
        )
