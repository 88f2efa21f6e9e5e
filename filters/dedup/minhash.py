"""MinHash signatures, vectorised over a whole batch of documents.

Tokens are hashed through Arrow's dictionary encoding (each distinct word of the batch is hashed
once, in numpy), word n-grams are combined with shifted array sums, and the permutations are
datasketch's ``affine32`` scheme (MurmurHash3 ``fmix32`` pre-mix, then ``a * h + b mod 2**32``
with the same ``a``, ``b`` drawn from ``RandomState(seed)``), applied permutation-major with
``np.minimum.reduceat``. Given the same 32-bit shingle hashes, the signatures are bit-identical
to ``datasketch.MinHash(num_perm, seed).update_batch`` (a test holds them to that); nothing loops
over tokens in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.filters.dedup import text_normalize as tn
from fusionforge.pipelines.core.config import DEFAULT_SEED

_U64 = np.uint64
_U32 = np.uint32
EMPTY = np.uint32(0xFFFF_FFFF)  # the value of a permutation slot no shingle reached (datasketch's too)


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser (a bijection that spreads every input bit)."""
    x = x ^ (x >> _U64(33))
    x = x * _U64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> _U64(33))
    x = x * _U64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> _U64(33))


def fmix32(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser, as datasketch applies it before its affine permutations."""
    x = x ^ (x >> _U32(16))
    x = x * _U32(0x85EBCA6B)
    x = x ^ (x >> _U32(13))
    x = x * _U32(0xC2B2AE35)
    return x ^ (x >> _U32(16))


def _string_hashes(strings: pa.Array) -> np.ndarray:
    """A 64-bit hash per string: a position-weighted sum of its UTF-8 bytes, then ``fmix64``."""
    strings = strings.cast(pa.large_string())
    if len(strings) == 0:
        return np.empty(0, _U64)
    buffers = strings.buffers()
    offsets = np.frombuffer(buffers[1], np.int64)[strings.offset : strings.offset + len(strings) + 1]
    data = np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None else np.empty(0, np.uint8)
    lengths = np.diff(offsets)
    base = int(offsets[0])
    raw = data[base : int(offsets[-1])].astype(_U64) + _U64(1)
    owner = np.repeat(np.arange(len(lengths)), lengths)
    position = np.arange(len(raw)) - (offsets[:-1] - base)[owner]
    weights = fmix64(np.arange(1, int(lengths.max(initial=0)) + 1, dtype=_U64) * _U64(0x9E3779B97F4A7C15))
    sums = np.zeros(len(lengths), _U64)
    nonempty = lengths > 0
    if raw.size:
        sums[nonempty] = np.add.reduceat(raw * weights[position], (offsets[:-1] - base)[nonempty])
    return fmix64(sums + lengths.astype(_U64) * _U64(0xC2B2AE3D27D4EB4F))


def token_hashes(tokens: pa.ListArray) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every non-empty token, flattened, and the token count per document."""
    if isinstance(tokens, pa.ChunkedArray):
        tokens = tokens.combine_chunks()
    flat = pc.list_flatten(tokens)
    parents = np.asarray(pc.list_parent_indices(tokens), dtype=np.int64)
    if len(flat) == 0:
        return np.empty(0, _U64), np.zeros(len(tokens), np.int64)
    encoded = pc.dictionary_encode(flat)
    distinct = encoded.dictionary
    hashes = _string_hashes(distinct)
    indices = np.asarray(encoded.indices, dtype=np.int64)
    nonempty = np.asarray(pc.binary_length(distinct), dtype=np.int64)[indices] > 0
    counts = np.bincount(parents[nonempty], minlength=len(tokens)).astype(np.int64)
    return hashes[indices[nonempty]], counts


def shingle_hashes(hashes: np.ndarray, counts: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every run of ``ngram`` consecutive tokens inside each document.

    A document with fewer than ``ngram`` (but at least one) tokens gets a single shingle of all its
    tokens, so short texts still compare; a document without tokens gets none.
    """
    total = int(counts.sum())
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    ends = (starts + counts)[owner]
    index = np.arange(total)
    multipliers = fmix64(np.arange(1, ngram + 1, dtype=_U64) * _U64(0xD6E8FEB86659FD93)) | _U64(1)
    acc = hashes * multipliers[0]
    for shift in range(1, ngram):
        term = np.zeros(total, _U64)
        term[: total - shift] = hashes[shift:] * multipliers[shift]
        term[index + shift >= ends] = 0
        acc = acc + term
    keep = (index + ngram <= ends) | ((index == starts[owner]) & (counts[owner] < ngram))
    per_doc = np.where(counts >= ngram, counts - ngram + 1, (counts > 0).astype(np.int64))
    return (fmix64(acc[keep]) >> _U64(32)).astype(_U32), per_doc


class MinHasher:
    """``num_perm`` affine permutations of 32-bit shingle hashes (datasketch's ``affine32`` scheme)."""

    def __init__(self, num_perm: int = 128, seed: int = DEFAULT_SEED) -> None:
        if num_perm < 2:
            raise ValueError(f"num_perm must be at least 2, got {num_perm}")
        self.num_perm = num_perm
        self.seed = seed
        generator = np.random.RandomState(seed)
        self.a = generator.randint(0, 1 << 31, num_perm, dtype=_U32) * _U32(2) + _U32(1)
        self.b = generator.randint(0, 1 << 32, num_perm, dtype=_U32)

    def signatures(self, shingles: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """``(documents, num_perm)`` uint32 signatures; a document without shingles gets ``EMPTY`` everywhere."""
        out = np.full((self.num_perm, len(counts)), EMPTY, _U32)
        present = counts > 0
        if present.any():
            mixed = fmix32(shingles.astype(_U32, copy=False))
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[present]
            scratch = np.empty_like(mixed)
            for k in range(self.num_perm):
                np.multiply(mixed, self.a[k], out=scratch)
                scratch += self.b[k]
                out[k, present] = np.minimum.reduceat(scratch, starts)
        return np.ascontiguousarray(out.T)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The fraction of equal slots of two (stacks of) signatures: MinHash's Jaccard estimate."""
    return np.mean(a == b, axis=-1)


def exact_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard of two documents' shingle sets, from their shingle hashes (repeats allowed; 1.0 for two empty)."""
    a, b = np.unique(a), np.unique(b)
    if len(a) == 0 and len(b) == 0:
        return 1.0
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common)


@dataclass(frozen=True)
class TextSketch:
    """What near-duplicate detection needs to know about a batch of texts."""

    exact: np.ndarray  # (n, 2) uint64: 128-bit key of the exact-normalised text
    signatures: np.ndarray  # (n, num_perm) uint32
    shingles: np.ndarray  # uint32, each document's shingle hashes in text order (repeats kept), concatenated
    shingle_offsets: np.ndarray  # int64, n + 1: document i's are shingles[offsets[i]:offsets[i + 1]]
    lengths: np.ndarray  # int64 characters of the exact-normalised text

    @property
    def shingle_counts(self) -> np.ndarray:
        """Shingles per document (0: nothing to compare, e.g. a blank or punctuation-only text)."""
        return np.diff(self.shingle_offsets)

    def shingle_set(self, row: int) -> np.ndarray:
        return self.shingles[self.shingle_offsets[row] : self.shingle_offsets[row + 1]]


@dataclass(frozen=True)
class TextSketcher:
    """Normalise, shingle and MinHash texts; the one path every text dedup in fusionforge goes through."""

    num_perm: int = 128
    ngram: int = 5
    seed: int = DEFAULT_SEED
    char_ngrams: bool = False
    casefold: bool = True
    collapse_whitespace: bool = True

    def __post_init__(self) -> None:
        if self.ngram < 1:
            raise ValueError(f"ngram must be at least 1, got {self.ngram}")
        if self.num_perm < 2:
            raise ValueError(f"num_perm must be at least 2, got {self.num_perm}")

    def hasher(self) -> MinHasher:
        return _hasher(self.num_perm, self.seed)

    def sketch(self, texts: pa.Array | Sequence[str | None]) -> TextSketch:
        normalized = tn.normalize_exact(texts, casefold=self.casefold, collapse_whitespace=self.collapse_whitespace)
        if self.char_ngrams:
            codepoints, counts = tn.char_codepoints(normalized)
            hashes = fmix64(codepoints * _U64(0x9E3779B97F4A7C15) + _U64(1))
        else:
            hashes, counts = token_hashes(tn.word_tokens(normalized))
        shingles, per_doc = shingle_hashes(hashes, counts, self.ngram)
        signatures = self.hasher().signatures(shingles, per_doc)
        lengths = np.asarray(pc.utf8_length(normalized).fill_null(0), dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(per_doc)]).astype(np.int64)
        return TextSketch(tn.exact_keys(normalized), signatures, shingles, offsets, lengths)


_HASHERS: dict[tuple[int, int], MinHasher] = {}


def _hasher(num_perm: int, seed: int) -> MinHasher:
    key = (num_perm, seed)
    if key not in _HASHERS:
        _HASHERS[key] = MinHasher(num_perm, seed)
    return _HASHERS[key]
