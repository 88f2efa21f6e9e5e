"""Words and lines of a whole batch at once, with Arrow compute kernels (no per-document Python loop).

Words are whitespace-separated tokens with punctuation trimmed from both ends; a token that is only
punctuation is not a word (so "--" and "..." do not count, and "end." is the 3-letter word "end").
Lines are split on "\\n" (a trailing "\\r" is dropped); blank lines are not counted as lines.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PUNCTUATION = string.punctuation + "“”‘’«»„‚‹›–—…·•¿¡、。，！？：；（）【】「」"


@dataclass(frozen=True)
class Pieces:
    """Flattened pieces (words or lines) of ``n_docs`` documents; ``docs[i]`` owns ``values[i]``."""

    values: pa.Array
    docs: np.ndarray
    n_docs: int

    def count(self, mask: np.ndarray | pa.Array | None = None) -> np.ndarray:
        """Pieces per document (only those where ``mask`` is True, when given)."""
        docs = self.docs if mask is None else self.docs[_bool(mask)]
        return np.bincount(docs, minlength=self.n_docs).astype(np.int64)

    def total(self, weights: np.ndarray | pa.Array) -> np.ndarray:
        """Sum of ``weights`` (one per piece) per document."""
        return np.bincount(self.docs, weights=np.asarray(weights, dtype=np.float64), minlength=self.n_docs)

    def lengths(self) -> np.ndarray:
        """Characters of each piece."""
        return pc.utf8_length(self.values).to_numpy(zero_copy_only=False).astype(np.int64)


def split_words(texts: pa.Array) -> Pieces:
    """The words of every text (see the module docstring)."""
    tokens = pc.utf8_split_whitespace(texts)
    flat = pc.list_flatten(tokens)
    docs = pc.list_parent_indices(tokens).to_numpy(zero_copy_only=False)
    stripped = pc.utf8_trim(flat, characters=PUNCTUATION)
    keep = pc.greater(pc.utf8_length(stripped), 0)
    return Pieces(stripped.filter(keep), docs[_bool(keep)], len(texts))


def split_lines(texts: pa.Array, keep_blank: bool = False, strip: bool = True) -> Pieces:
    """The lines of every text, right-stripped of whitespace (as they are with ``strip=False``); blank
    lines only with ``keep_blank``."""
    lines = pc.split_pattern(texts, "\n")
    flat = pc.list_flatten(lines)
    if strip:
        flat = pc.utf8_rtrim_whitespace(flat)
    docs = pc.list_parent_indices(lines).to_numpy(zero_copy_only=False)
    if keep_blank:
        return Pieces(flat, docs, len(texts))
    keep = pc.greater(pc.utf8_length(pc.utf8_ltrim_whitespace(flat)), 0)
    return Pieces(flat.filter(keep), docs[_bool(keep)], len(texts))


def matches(values: pa.Array, pattern: str) -> np.ndarray:
    """Which values match the RE2 ``pattern`` (searched anywhere unless anchored)."""
    return _bool(pc.match_substring_regex(values, pattern))


def _bool(mask: np.ndarray | pa.Array) -> np.ndarray:
    if isinstance(mask, (pa.Array, pa.ChunkedArray)):
        return pc.fill_null(mask, False).to_numpy(zero_copy_only=False).astype(bool)
    return np.asarray(mask, dtype=bool)
