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

``reference`` (``filters/text/reference.py``):

- ``fusionforge`` (the default): the rules above;
- ``fineweb-2024``: datatrove's ``FineWebQualityFilter`` as FineWeb was built (datatrove commit
  c72b1e4a, April 2024): lines as they are (a trailing space hides the final punctuation), and words
  for the list ratio are NLTK-like tokens (``treebank_word_counts``: punctuation split off as NLTK's
  Treebank tokenizer splits it; NLTK itself, with its punkt sentence model, is not used);
- ``datatrove``: today's ``FineWebQualityFilter`` (0.10.1): blank lines are not lines (a text without
  a non-blank line is dropped as ``empty``), a line is punctuated when it ends with one of Unicode's
  sentence terminals (datatrove's ``TERMINAL_PUNCTUATION``: "." "!" "?" and 156 others, no quotes),
  the limits are strict (``<`` 0.12, ``>`` 0.67, ``>`` 0.01), words are spaCy tokens. spaCy, the
  slow part, counts words only where the list rule decides: ``list_ratio`` is null for a document an
  earlier rule drops or whose newlines per whitespace-separated word are within the limit (spaCy
  never finds fewer words than that).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.filters.rules import at_least, at_most, below, exceeds, first_failing, float_array, safe_ratio
from fusionforge.filters.text.base import DEFAULT_MODALITIES, LANG_COLUMN, TextFilter, texts_of
from fusionforge.filters.text.gopher_repetition import duplicate_stats
from fusionforge.filters.text.reference import DATATROVE, FINEWEB_2024, FUSIONFORGE, check_reference
from fusionforge.filters.text.spacy_words import DATATROVE_TERMINAL_PUNCTUATION, SpacyWords, english_tokenizer
from fusionforge.filters.text.words import matches, split_lines, split_words
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources

REFERENCES = (FUSIONFORGE, FINEWEB_2024, DATATROVE)
STOP_CHARS = r"[.'\"!?]$"
TERMINAL_PUNCT = "[" + "".join(re.escape(c) for c in DATATROVE_TERMINAL_PUNCTUATION) + "]$"
# NLTK's Treebank tokenizer splits these off a whitespace token (a rough count of what it adds).
TREEBANK_SPLITS = (
    r"^[\"'`(\[{<]+|[;@#$%&?!()\[\]{}<>]|--|\.\.\.|,(?:\D|$)|:(?:\D|$)|(?:n't|'s|'m|'d|'ll|'re|'ve)$|[.\"']+$"
)


def treebank_word_counts(texts: pa.Array) -> np.ndarray:
    """About how many tokens NLTK's ``word_tokenize`` finds in each text: whitespace tokens, plus one per
    punctuation mark or clitic that its Treebank rules split off (counted by ``TREEBANK_SPLITS``)."""
    tokens = pc.utf8_split_whitespace(texts)
    flat = pc.list_flatten(tokens)
    docs = pc.list_parent_indices(tokens).to_numpy(zero_copy_only=False)
    splits = pc.count_substring_regex(flat, TREEBANK_SPLITS).to_numpy(zero_copy_only=False)
    whole = pc.match_substring_regex(flat, r"^[^\w]+$").to_numpy(zero_copy_only=False)  # "--" stays one token
    extra = np.where(whole, 0, splits)
    return np.bincount(docs, weights=1 + extra, minlength=len(texts))


def spacy_list_ratio(texts: pa.Array, rows: np.ndarray, splitter: SpacyWords | None = None) -> np.ndarray:
    """Newlines per spaCy word (datatrove's list ratio) of the texts ``rows`` selects; NaN elsewhere."""
    out = np.full(len(texts), np.nan)
    picked = np.flatnonzero(rows)
    if len(picked):
        chosen = texts.take(pa.array(picked))
        words = (splitter or SpacyWords()).tokens(chosen.to_pylist()).words().count()
        out[picked] = safe_ratio(pc.count_substring(chosen, "\n").to_numpy(zero_copy_only=False), words)
    return out


def fineweb_scores(
    texts: pa.Array,
    short_line_length: int = 30,
    reference: str = FUSIONFORGE,
    splitter: SpacyWords | None = None,
    list_rows: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """FineWeb's line statistics of every text under ``reference``'s definitions (NaN where undefined).

    In the ``datatrove`` mode spaCy counts words only in the texts ``list_rows`` selects (a boolean
    mask; all by default); ``list_ratio`` is NaN elsewhere."""
    if reference == FUSIONFORGE:
        lines = split_lines(texts, keep_blank=True)
    else:
        lines = split_lines(texts, keep_blank=reference == FINEWEB_2024, strip=False)
    n_lines = lines.count()
    punctuated = matches(lines.values, TERMINAL_PUNCT if reference == DATATROVE else STOP_CHARS)
    short = pc.less_equal(pc.utf8_length(lines.values), short_line_length)
    dup_chars = np.array(
        [duplicate_stats([x for x in t.split("\n") if x.strip()])[1] for t in texts.to_pylist()], dtype=np.float64
    )
    newlines = pc.count_substring(texts, "\n").to_numpy(zero_copy_only=False)
    if reference == DATATROVE:
        rows = np.ones(len(texts), dtype=bool) if list_rows is None else list_rows
        list_ratio = spacy_list_ratio(texts, rows, splitter)
    else:
        words = treebank_word_counts(texts) if reference == FINEWEB_2024 else split_words(texts).count()
        list_ratio = safe_ratio(newlines, words)
    scores = {
        "line_punct_ratio": safe_ratio(lines.count(punctuated), n_lines),
        "short_line_ratio": safe_ratio(lines.count(short), n_lines),
        "char_dup_ratio": safe_ratio(dup_chars, pc.utf8_length(texts).to_numpy(zero_copy_only=False) - newlines),
        "list_ratio": list_ratio,
    }
    if reference == DATATROVE:
        scores["lines"] = n_lines
    return scores


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
        reference: str = FUSIONFORGE,
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
        self.reference = check_reference(self.name, reference, REFERENCES)
        self._splitter = None
        if self.reference == DATATROVE:
            english_tokenizer()  # fail now, not at the first batch, when spaCy is missing
            self._splitter = SpacyWords()

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        texts = texts_of(batch)
        if self.reference != DATATROVE:
            scores = fineweb_scores(texts, self.short_line_length, self.reference)
        else:
            # spaCy (the slow part) counts words only where the list rule can decide: a text that an
            # earlier rule drops, or whose newlines per whitespace-separated word are within the limit
            # (spaCy finds at least as many words), keeps list_ratio undefined.
            scores = fineweb_scores(texts, self.short_line_length, DATATROVE, list_rows=np.zeros(len(texts), bool))
            undecided = np.array([r is None for r in self._decide_lines(scores)])
            newlines = pc.count_substring(texts, "\n").to_numpy(zero_copy_only=False)
            chunks = np.array([len(t.split()) for t in texts.to_pylist()], dtype=np.float64)
            rows = undecided & exceeds(safe_ratio(newlines, chunks), self.list_ratio_thr)
            scores["list_ratio"] = spacy_list_ratio(texts, rows, self._splitter)
        return {k: pa.array(v, pa.int64()) if k == "lines" else float_array(v) for k, v in scores.items()}

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        s = {k: v.to_numpy(zero_copy_only=False).astype(np.float64) for k, v in scores.items()}
        return self._decide_lines(s)

    def _decide_lines(self, s: dict[str, np.ndarray]) -> list[str | None]:
        strict = self.reference == DATATROVE  # today's datatrove: < and >; FineWeb's release: <= and >=
        rules = [("empty", s["lines"] == 0)] if strict else []
        rules += [
            ("few_punctuated_lines", (below if strict else at_most)(s["line_punct_ratio"], self.line_punct_thr)),
            ("short_lines", (exceeds if strict else at_least)(s["short_line_ratio"], self.short_line_thr)),
            ("duplicate_lines", (exceeds if strict else at_least)(s["char_dup_ratio"], self.char_dup_thr)),
            ("list_like", exceeds(s["list_ratio"], self.list_ratio_thr)),
        ]
        return first_failing(len(s["list_ratio"]), rules)
