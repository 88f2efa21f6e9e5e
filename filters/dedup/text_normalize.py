"""Text normalisation for exact keys and for shingling, vectorised over Arrow arrays.

Two levels, one built on the other so that texts equal under the first are equal under the second:

- *exact*: Unicode NFC, optional case folding and whitespace collapsing; hashed to a 128-bit key.
- *shingling*: the exact form lower-cased with punctuation and symbols turned into spaces, then
  split into words (or kept as characters for character n-grams).

Everything per token runs in Arrow's C++ kernels; Python only touches whole documents.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

_NOT_WORD = r"[^\p{L}\p{N}\p{M}]+"  # RE2 classes: letters, numbers and combining marks make words


def as_text_array(texts: pa.Array | pa.ChunkedArray | Sequence[str | None]) -> pa.LargeStringArray:
    """``texts`` as one contiguous large_string array (nulls kept)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    if not isinstance(texts, pa.Array):
        texts = pa.array(list(texts), pa.large_string())
    return texts.cast(pa.large_string())


def normalize_exact(texts: pa.Array | Sequence[str | None], *, casefold: bool = True,
                    collapse_whitespace: bool = True) -> pa.LargeStringArray:
    """NFC, then optional Unicode case folding (``str.casefold``) and whitespace collapsing."""
    array = pc.utf8_normalize(as_text_array(texts), "NFC")
    if casefold:
        array = pa.array([None if t is None else t.casefold() for t in array.to_pylist()], pa.large_string())
    if collapse_whitespace:
        array = pc.utf8_trim_whitespace(pc.replace_substring_regex(array, r"\s+", " "))
    return array


def exact_keys(normalized: pa.Array) -> np.ndarray:
    """128-bit xxh3 of each normalised text as an ``(n, 2)`` uint64 array (hi, lo); null text hashes as ''."""
    keys = np.empty((len(normalized), 2), np.uint64)
    for row, text in enumerate(normalized.to_pylist()):
        digest = xxhash.xxh3_128_intdigest((text or "").encode("utf-8"))
        keys[row, 0], keys[row, 1] = digest >> 64, digest & 0xFFFF_FFFF_FFFF_FFFF
    return keys


def shingle_form(normalized: pa.Array) -> pa.LargeStringArray:
    """Lower-cased, punctuation and symbols replaced by single spaces, trimmed."""
    lowered = pc.utf8_lower(normalized)
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(lowered, _NOT_WORD, " "))


def word_tokens(normalized: pa.Array) -> pa.ListArray:
    """The words of each (exact-normalised) text; a null or empty text has none."""
    return pc.utf8_split_whitespace(shingle_form(normalized))


def char_codepoints(normalized: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Code points of each text's shingle form (single spaces kept) and the count per text."""
    texts = shingle_form(normalized).to_pylist()
    parts = [np.frombuffer((t or "").encode("utf-32-le"), "<u4") for t in texts]
    counts = np.fromiter((len(p) for p in parts), np.int64, len(parts))
    values = np.concatenate(parts).astype(np.uint64) if parts else np.empty(0, np.uint64)
    return values, counts
