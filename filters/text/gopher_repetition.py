"""Gopher repetition rules (Rae et al. 2021, table A1): repeated lines, paragraphs and n-grams.

A document is dropped when (defaults in brackets, None turns a rule off):

- duplicate paragraphs (split on blank lines) exceed ``max_dup_para_frac`` [0.30] of paragraphs or
  ``max_dup_para_char_frac`` [0.20] of characters;
- duplicate lines exceed ``max_dup_line_frac`` [0.30] of non-blank lines or ``max_dup_line_char_frac``
  [0.20] of characters ("duplicate" = equal to an earlier one; the first copy is not counted);
- the most frequent n-gram covers more than ``top_ngrams[n]`` of the word characters
  [n=2: 0.20, 3: 0.18, 4: 0.16] (its length times its count; 0 when no n-gram repeats);
- words inside n-grams that occur more than once cover more than ``dup_ngrams[n]`` of the word
  characters [n=5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10], each word counted once.

Character fractions of n-grams are over the characters of words (whitespace excluded), as in
RedPajama-V2's implementation of these rules. N-grams are compared through 64-bit polynomial hashes
of word ids (numpy, no per-n-gram string building); a false match needs a 64-bit collision.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np
import pyarrow as pa
from fusionforge.filters.rules import exceeds, first_failing, float_array
from fusionforge.filters.text.base import DEFAULT_MODALITIES, LANG_COLUMN, TextFilter, texts_of
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources

TOP_NGRAMS = {2: 0.20, 3: 0.18, 4: 0.16}
DUP_NGRAMS = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_HASH_BASE = np.uint64(1_000_003)


def duplicate_stats(pieces: Sequence[str]) -> tuple[int, int]:
    """(number of pieces equal to an earlier piece, their characters)."""
    seen: set[str] = set()
    count = chars = 0
    for piece in pieces:
        if piece in seen:
            count += 1
            chars += len(piece)
        else:
            seen.add(piece)
    return count, chars


def ngram_hashes(word_ids: np.ndarray, n: int) -> np.ndarray:
    """A 64-bit hash per n-gram start position (wrapping polynomial arithmetic)."""
    count = len(word_ids) - n + 1
    hashes = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            hashes = hashes * _HASH_BASE + word_ids[k:k + count]
    return hashes


def top_ngram_chars(hashes: np.ndarray, gram_chars: np.ndarray) -> int:
    """Characters covered by the most frequent n-gram (the earliest on ties): length x count; 0 if none repeats."""
    _, first, counts = np.unique(hashes, return_index=True, return_counts=True)
    best = np.lexsort((first, -counts))[0]
    return int(gram_chars[first[best]] * counts[best]) if counts[best] > 1 else 0


def duplicated_ngram_chars(hashes: np.ndarray, word_lengths: np.ndarray, n: int) -> int:
    """Characters of the words that lie inside any n-gram occurring more than once."""
    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    repeated = counts[inverse] > 1
    covered = np.zeros(len(word_lengths), dtype=bool)
    for k in range(n):
        covered[k:k + len(repeated)] |= repeated
    return int(word_lengths[covered].sum())


def repetition_stats(text: str, top_ngrams: Mapping[int, float] = TOP_NGRAMS,
                     dup_ngrams: Mapping[int, float] = DUP_NGRAMS) -> dict[str, float]:
    """The repetition statistics of one document (NaN where undefined, e.g. an empty text)."""
    stats: dict[str, float] = {}
    length = len(text) or np.nan
    paragraphs = [p.strip() for p in PARAGRAPH_BREAK.split(text.strip()) if p.strip()]
    dup_paras, dup_para_chars = duplicate_stats(paragraphs)
    stats["dup_para_frac"] = dup_paras / len(paragraphs) if paragraphs else np.nan
    stats["dup_para_char_frac"] = dup_para_chars / length
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    dup_lines, dup_line_chars = duplicate_stats(lines)
    stats["dup_line_frac"] = dup_lines / len(lines) if lines else np.nan
    stats["dup_line_char_frac"] = dup_line_chars / length
    words = text.split()
    vocabulary: dict[str, int] = {}
    word_ids = np.fromiter((vocabulary.setdefault(w, len(vocabulary) + 1) for w in words), np.uint64, len(words))
    word_lengths = np.fromiter((len(w) for w in words), np.int64, len(words))
    word_chars = int(word_lengths.sum()) or np.nan
    empty = 0.0 if words else np.nan  # too few words for an n-gram: nothing repeats
    window = np.concatenate([[0], np.cumsum(word_lengths)])
    for n in sorted(set(top_ngrams) | set(dup_ngrams)):
        hashes = ngram_hashes(word_ids, n) if len(words) >= n else None
        if n in top_ngrams:
            stats[f"top_{n}gram_char_frac"] = empty if hashes is None else \
                top_ngram_chars(hashes, window[n:] - window[:-n]) / word_chars
        if n in dup_ngrams:
            stats[f"dup_{n}gram_char_frac"] = empty if hashes is None else \
                duplicated_ngram_chars(hashes, word_lengths, n) / word_chars
    return stats


@register
class GopherRepetition(TextFilter):
    """``text_gopher_repetition_v1``: Gopher's repetition rules (see the module docstring)."""

    name: ClassVar[str] = "text_gopher_repetition_v1"
    resources: ClassVar[Resources] = Resources(batch_size=512)

    def __init__(self, max_dup_para_frac: float | None = 0.30, max_dup_para_char_frac: float | None = 0.20,
                 max_dup_line_frac: float | None = 0.30, max_dup_line_char_frac: float | None = 0.20,
                 top_ngrams: Mapping[int, float] | None = None, dup_ngrams: Mapping[int, float] | None = None,
                 modalities: Sequence[str] = DEFAULT_MODALITIES, languages: Sequence[str] | None = None,
                 lang_column: str = LANG_COLUMN) -> None:
        super().__init__(modalities, languages, lang_column)
        self.limits = {"dup_para_frac": max_dup_para_frac, "dup_para_char_frac": max_dup_para_char_frac,
                       "dup_line_frac": max_dup_line_frac, "dup_line_char_frac": max_dup_line_char_frac}
        self.top_ngrams = {int(n): float(f) for n, f in (TOP_NGRAMS if top_ngrams is None else top_ngrams).items()}
        self.dup_ngrams = {int(n): float(f) for n, f in (DUP_NGRAMS if dup_ngrams is None else dup_ngrams).items()}
        if any(n < 1 for n in (*self.top_ngrams, *self.dup_ngrams)):
            raise ValueError(f"{self.name}: n-gram sizes must be >= 1")

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        rows = [repetition_stats(text, self.top_ngrams, self.dup_ngrams) for text in texts_of(batch).to_pylist()]
        keys = list(rows[0]) if rows else []
        return {k: float_array(np.array([r[k] for r in rows], dtype=np.float64)) for k in keys}

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        s = {k: v.to_numpy(zero_copy_only=False).astype(np.float64) for k, v in scores.items()}
        rules = [(key, exceeds(s[key], limit)) for key, limit in self.limits.items()]
        rules += [(f"top_{n}gram", exceeds(s[f"top_{n}gram_char_frac"], f)) for n, f in sorted(self.top_ngrams.items())]
        rules += [(f"dup_{n}gram", exceeds(s[f"dup_{n}gram_char_frac"], f)) for n, f in sorted(self.dup_ngrams.items())]
        return first_failing(len(next(iter(s.values()))), rules)
