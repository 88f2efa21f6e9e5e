"""Gopher quality rules (Rae et al. 2021, "Scaling Language Models", appendix A.1.1), vectorised.

A document is dropped when (defaults in brackets; any rule is off when its limit is None):

- it has fewer than ``min_words`` [50] or more than ``max_words`` [100,000] words;
- its mean word length is outside [``min_mean_word_length`` 3, ``max_mean_word_length`` 10] characters;
- its "#" or its ellipsis ("..." or "…") count per word exceeds ``max_hash_ratio`` /
  ``max_ellipsis_ratio`` [0.1 each];
- more than ``max_bullet_lines_ratio`` [0.9] of its lines start with a bullet, or more than
  ``max_ellipsis_lines_ratio`` [0.3] end with an ellipsis;
- fewer than ``min_alpha_words_ratio`` [0.8] of its words contain a letter;
- it holds fewer than ``min_stop_words`` [2] occurrences of ``stop_words`` (Gopher's English
  "the, be, to, of, and, that, have, with"; give your language's list, or gate the stage with
  ``languages``).

Words and lines are as in ``filters/text/words.py``. Every ratio is stored, so thresholds can be
re-tuned from ``rejected/`` and the manifest without re-running.

``reference`` (``filters/text/reference.py``): ``fusionforge`` (the default: the rules above) or
``datatrove`` (datatrove 0.10.1's ``GopherQualityFilter``: words are spaCy tokens, punctuation
tokens included; the word-count and mean-length rules count only tokens with a non-punctuation
character, the hash, ellipsis and alphabetic ratios divide by all tokens; lines are
``str.splitlines`` pieces, blank ones included, and a bullet line starts with "•" or "-"; the
stop-word rule counts distinct stop words, case-sensitively). Score columns keep their names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.filters.rules import below, check_limits, exceeds, first_failing, float_array, safe_ratio
from fusionforge.filters.text.base import DEFAULT_MODALITIES, LANG_COLUMN, TextFilter, texts_of
from fusionforge.filters.text.reference import DATATROVE, FUSIONFORGE, check_reference
from fusionforge.filters.text.spacy_words import SpacyWords, english_tokenizer
from fusionforge.filters.text.words import matches, split_lines, split_words
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources

GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
BULLET_LINE = r"^\s*[•●○◦‣▪▫■□\-*–]"
ELLIPSIS_LINE = r"(\.\.\.|…)$"
LETTER = r"\pL"
REFERENCES = (FUSIONFORGE, DATATROVE)
# str.splitlines()'s line boundaries (a "\r\n" pair is one).
SPLITLINES = "\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]"


def gopher_quality_scores(texts: pa.Array, stop_words: Sequence[str] = GOPHER_STOP_WORDS) -> dict[str, np.ndarray]:
    """The Gopher quality statistics of every text, as numpy arrays (NaN where undefined)."""
    words = split_words(texts)
    lines = split_lines(texts)
    n_words = words.count()
    n_lines = lines.count()
    word_lengths = words.lengths()
    hashes = pc.count_substring(texts, "#").to_numpy(zero_copy_only=False)
    ellipses = pc.count_substring(texts, "...").to_numpy(zero_copy_only=False) + pc.count_substring(
        texts, "…"
    ).to_numpy(zero_copy_only=False)
    stop_set = pa.array(sorted({w.lower() for w in stop_words}), pa.large_string())
    return {
        "words": n_words,
        "mean_word_length": safe_ratio(words.total(word_lengths), n_words),
        "hash_ratio": safe_ratio(hashes, n_words),
        "ellipsis_ratio": safe_ratio(ellipses, n_words),
        "bullet_lines_ratio": safe_ratio(lines.count(matches(lines.values, BULLET_LINE)), n_lines),
        "ellipsis_lines_ratio": safe_ratio(lines.count(matches(lines.values, ELLIPSIS_LINE)), n_lines),
        "alpha_words_ratio": safe_ratio(words.count(matches(words.values, LETTER)), n_words),
        "stop_words": words.count(pc.is_in(pc.utf8_lower(words.values), value_set=stop_set)),
    }


def datatrove_gopher_quality_scores(
    texts: pa.Array, stop_words: Sequence[str] = GOPHER_STOP_WORDS, splitter: SpacyWords | None = None
) -> dict[str, np.ndarray]:
    """The statistics datatrove's ``GopherQualityFilter`` tests, of every text (NaN where undefined)."""
    splitter = splitter or SpacyWords(stop_words)
    words = splitter.tokens(texts.to_pylist()).words()
    f = words.facts
    n_tokens = words.count()
    meaningful = ~f.symbol[words.ids]
    n_words = words.count(meaningful)
    hashes = pc.count_substring(texts, "#").to_numpy(zero_copy_only=False)
    ellipses = pc.count_substring(texts, "...").to_numpy(zero_copy_only=False) + pc.count_substring(
        texts, "…"
    ).to_numpy(zero_copy_only=False)
    lines, line_docs = _splitlines(texts)
    n_lines = np.bincount(line_docs, minlength=len(texts))
    bullet = matches(pc.utf8_ltrim_whitespace(lines), r"^[•\-]")
    ellipsis_end = matches(pc.utf8_rtrim_whitespace(lines), ELLIPSIS_LINE)
    stop = f.stop[words.ids]
    pairs = np.unique(words.docs[stop >= 0] * (len(splitter.stop_words) + 1) + stop[stop >= 0])
    return {
        "words": n_words,
        "mean_word_length": safe_ratio(words.total(np.where(meaningful, f.length[words.ids], 0)), n_words),
        "hash_ratio": safe_ratio(hashes, n_tokens),
        "ellipsis_ratio": safe_ratio(ellipses, n_tokens),
        "bullet_lines_ratio": safe_ratio(np.bincount(line_docs[bullet], minlength=len(texts)), n_lines),
        "ellipsis_lines_ratio": safe_ratio(np.bincount(line_docs[ellipsis_end], minlength=len(texts)), n_lines),
        "alpha_words_ratio": safe_ratio(words.count(f.alpha[words.ids]), n_tokens),
        "stop_words": np.bincount(pairs // (len(splitter.stop_words) + 1), minlength=len(texts)).astype(np.int64),
    }


def _splitlines(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The ``str.splitlines()`` lines of every text, flattened, with the index of the text of each."""
    pieces = pc.split_pattern_regex(texts, SPLITLINES)
    lengths = pc.list_value_length(pieces).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(pieces)
    docs = pc.list_parent_indices(pieces).to_numpy(zero_copy_only=False)
    # splitlines() has no empty piece after a final line break, and no line at all in "".
    last = np.cumsum(lengths) - 1
    drop = np.zeros(len(flat), dtype=bool)
    ends_empty = pc.equal(pc.utf8_length(flat), 0).to_numpy(zero_copy_only=False)
    drop[last[lengths > 0]] = ends_empty[last[lengths > 0]]
    return flat.filter(pa.array(~drop)), docs[~drop]


@register
class GopherQuality(TextFilter):
    """``text_gopher_quality_v1``: Gopher's document quality rules (see the module docstring)."""

    name: ClassVar[str] = "text_gopher_quality_v1"
    resources: ClassVar[Resources] = Resources(batch_size=1024)

    def __init__(
        self,
        min_words: int | None = 50,
        max_words: int | None = 100_000,
        min_mean_word_length: float | None = 3,
        max_mean_word_length: float | None = 10,
        max_hash_ratio: float | None = 0.1,
        max_ellipsis_ratio: float | None = 0.1,
        max_bullet_lines_ratio: float | None = 0.9,
        max_ellipsis_lines_ratio: float | None = 0.3,
        min_alpha_words_ratio: float | None = 0.8,
        min_stop_words: int | None = 2,
        stop_words: Sequence[str] = GOPHER_STOP_WORDS,
        reference: str = FUSIONFORGE,
        modalities: Sequence[str] = DEFAULT_MODALITIES,
        languages: Sequence[str] | None = None,
        lang_column: str = LANG_COLUMN,
    ) -> None:
        super().__init__(modalities, languages, lang_column)
        self.limits = {
            "min_words": min_words,
            "max_words": max_words,
            "min_mean_word_length": min_mean_word_length,
            "max_mean_word_length": max_mean_word_length,
            "max_hash_ratio": max_hash_ratio,
            "max_ellipsis_ratio": max_ellipsis_ratio,
            "max_bullet_lines_ratio": max_bullet_lines_ratio,
            "max_ellipsis_lines_ratio": max_ellipsis_lines_ratio,
            "min_alpha_words_ratio": min_alpha_words_ratio,
            "min_stop_words": min_stop_words,
        }
        check_limits(self.name, self.limits)
        self.stop_words = tuple(stop_words)
        self.reference = check_reference(self.name, reference, REFERENCES)
        self._splitter = None
        if self.reference == DATATROVE:
            english_tokenizer()  # fail now, not at the first batch, when spaCy is missing
            self._splitter = SpacyWords(self.stop_words)

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        if self._splitter is not None:
            stats = datatrove_gopher_quality_scores(texts_of(batch), self.stop_words, self._splitter)
        else:
            stats = gopher_quality_scores(texts_of(batch), self.stop_words)
        return {
            k: pa.array(v, pa.int64()) if k in ("words", "stop_words") else float_array(v) for k, v in stats.items()
        }

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        s = {k: v.to_numpy(zero_copy_only=False).astype(np.float64) for k, v in scores.items()}
        lim = self.limits
        return first_failing(
            len(s["words"]),
            [
                ("too_few_words", below(s["words"], lim["min_words"])),
                ("too_many_words", exceeds(s["words"], lim["max_words"])),
                ("short_words", below(s["mean_word_length"], lim["min_mean_word_length"])),
                ("long_words", exceeds(s["mean_word_length"], lim["max_mean_word_length"])),
                ("too_many_hashes", exceeds(s["hash_ratio"], lim["max_hash_ratio"])),
                ("too_many_ellipses", exceeds(s["ellipsis_ratio"], lim["max_ellipsis_ratio"])),
                ("bullet_lines", exceeds(s["bullet_lines_ratio"], lim["max_bullet_lines_ratio"])),
                ("ellipsis_lines", exceeds(s["ellipsis_lines_ratio"], lim["max_ellipsis_lines_ratio"])),
                ("few_alphabetic_words", below(s["alpha_words_ratio"], lim["min_alpha_words_ratio"])),
                ("few_stop_words", below(s["stop_words"], lim["min_stop_words"])),
            ],
        )
