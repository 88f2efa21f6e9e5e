"""N-gram overlap with evaluation sets: one implementation for pretraining filters and the SFT builder.

Text is normalised (NFKC, case-folded, punctuation and spacing removed: words only), then every
window of ``n`` words (13 by default: GPT-3, Brown et al. 2020, appendix C; the Llama 2 report's
contamination analysis also matches long token n-grams) is hashed: each word with xxh64, a window
as a polynomial of its word hashes in wrapping uint64 arithmetic, vectorised with numpy. Evaluation
hashes sit in a sorted array; a text's windows are looked up with one ``searchsorted``. An eval
text shorter than ``n`` words (but at least ``min_tokens``) is matched whole. Each match names the
eval set, the eval sample and the shared words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import xxhash

from fusionforge.filters.decontam.eval_files import eval_samples, split_spec
from fusionforge.pipelines.core.errors import ConfigError

DEFAULT_NGRAM = 13
DEFAULT_MIN_TOKENS = 8
_WORD = re.compile(r"\w+")
_BASE = 0x9E3779B97F4A7C15  # odd: multiplication by it is a bijection mod 2**64

# (path, eval set name, stats) -> (sample id, texts) per sample; the SFT builder reads chats its own way
SampleReader = Callable[[str, str, dict[str, Any]], Iterator[tuple[str, list[str]]]]


def normalize(text: str) -> list[str]:
    """The words of ``text``: NFKC, case-folded, punctuation dropped."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def window_hashes(words: list[str], n: int) -> np.ndarray:
    """One uint64 per window of ``n`` consecutive words (empty when there are fewer words)."""
    if len(words) < n:
        return np.empty(0, np.uint64)
    hashed = np.fromiter(map(_word_hash, words), np.uint64, len(words))
    windows = np.lib.stride_tricks.sliding_window_view(hashed, n)
    return (windows * _powers(n)).sum(axis=1, dtype=np.uint64)


@lru_cache(maxsize=1 << 20)
def _word_hash(word: str) -> int:
    """xxh64 of a word, cached: a vocabulary repeats, and the cache lookup is cheaper than hashing."""
    return xxhash.xxh64_intdigest(word.encode())


@lru_cache(maxsize=64)
def _powers(n: int) -> np.ndarray:
    return np.array([pow(_BASE, n - 1 - i, 2**64) for i in range(n)], np.uint64)


@dataclass(frozen=True)
class Match:
    """A text that shares ``ngram`` with sample ``eval_sample`` of eval set ``eval_set``.

    ``hits``: how many of the text's windows (of the matched length) are in the index.
    """

    eval_set: str
    eval_sample: str
    ngram: str
    hits: int = 1


class EvalIndex:
    """Hashed n-grams of evaluation files (``NAME=PATH`` or ``PATH``; JSONL, Parquet or plain text)."""

    def __init__(
        self,
        evals: Iterable[str],
        n: int = DEFAULT_NGRAM,
        min_tokens: int = DEFAULT_MIN_TOKENS,
        reader: SampleReader = eval_samples,
    ) -> None:
        if n < 1 or min_tokens < 1:
            raise ConfigError(f"n-gram size and min_tokens must be >= 1 (got {n}, {min_tokens})")
        self.n = n
        self.min_tokens = min(min_tokens, n)
        self.samples: list[tuple[str, str]] = []  # (eval set, sample id) by owner number
        self.stats: dict[str, dict[str, Any]] = {}
        pieces: dict[int, list[tuple[np.ndarray, int]]] = {}
        for spec_text in evals:
            name, path = split_spec(spec_text)
            if name in self.stats:
                raise ConfigError(f"two eval sets are both named {name!r}; name them apart with NAME=PATH")
            stats = {"path": path, "samples": 0, "indexed": 0, "too_short": 0, "unreadable": 0}
            self.stats[name] = stats
            for sample_id, texts in reader(path, name, stats):
                owner = len(self.samples)
                self.samples.append((name, sample_id))
                indexed = False
                for text in texts:
                    words = normalize(text)
                    if len(words) < self.min_tokens:
                        continue
                    length = min(len(words), n)
                    pieces.setdefault(length, []).append((window_hashes(words, length), owner))
                    indexed = True
                stats["indexed" if indexed else "too_short"] += 1
        self._keys: dict[int, np.ndarray] = {}
        self._owners: dict[int, np.ndarray] = {}
        for length, items in sorted(pieces.items()):
            keys = np.concatenate([h for h, _ in items])
            owners = np.concatenate([np.full(len(h), o, np.int64) for h, o in items])
            keys, first = np.unique(keys, return_index=True)  # sorted; the first owner of a shared n-gram wins
            self._keys[length], self._owners[length] = keys, owners[first]

    @property
    def size(self) -> int:
        """Distinct hashed n-grams in the index."""
        return sum(len(k) for k in self._keys.values())

    def match(self, texts: list[str]) -> Match | None:
        """The first eval n-gram found in any of ``texts`` (each text matched on its own), or None."""
        for text in texts:
            words = normalize(text)
            for length, keys in self._keys.items():
                hashes = window_hashes(words, length)
                if not len(hashes):
                    continue
                pos = np.minimum(np.searchsorted(keys, hashes), len(keys) - 1)
                hits = np.flatnonzero(keys[pos] == hashes)
                if len(hits):
                    eval_set, sample = self.samples[int(self._owners[length][pos[hits[0]]])]
                    ngram = " ".join(words[hits[0] : hits[0] + length])
                    return Match(eval_set, sample, ngram, len(hits))
        return None
