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
of word ids (Arrow dictionary-encodes the words of the whole batch; one numpy sort per n-gram size
and batch, no per-n-gram string building); a false match needs a 64-bit collision.

``reference`` (``filters/text/reference.py``): ``fusionforge`` (the default: the rules above) or
``datatrove`` (datatrove 0.10.1's ``GopherRepetitionFilter``: an empty text is dropped as
``empty``; paragraphs are the pieces between runs of two or more "\n" and lines those between runs
of "\n", neither stripped; words are spaCy tokens, punctuation included; every character fraction
is over the whole text's characters; the top n-gram is counted even when it occurs once, its
characters those of its words joined by spaces; duplicated n-gram characters are found by
datatrove's left-to-right scan, which skips the n words of a repeat, n-grams joined without
spaces). That mode counts each document's n-grams in a hash table (``kernels.datatrove_gram_stats``),
since its scan walks every document anyway.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.filters.rules import exceeds, first_failing, float_array, safe_ratio
from fusionforge.filters.text.base import DEFAULT_MODALITIES, LANG_COLUMN, TextFilter, texts_of
from fusionforge.filters.text.reference import DATATROVE, FUSIONFORGE, check_reference
from fusionforge.filters.text.spacy_words import SpacyWords, english_tokenizer
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources

TOP_NGRAMS = {2: 0.20, 3: 0.18, 4: 0.16}
DUP_NGRAMS = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
DATATROVE_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
DATATROVE_LINE_BREAK = re.compile(r"\n+")
REFERENCES = (FUSIONFORGE, DATATROVE)
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


@dataclass(frozen=True)
class BatchWords:
    """The whitespace words of a batch, flattened: an id per distinct word, its length, its document."""

    ids: np.ndarray
    lengths: np.ndarray
    docs: np.ndarray
    n_docs: int

    @classmethod
    def of(cls, texts: pa.Array) -> BatchWords:
        tokens = pc.utf8_split_whitespace(texts)
        flat = pc.list_flatten(tokens)
        ids = pc.dictionary_encode(flat).indices.to_numpy(zero_copy_only=False).astype(np.uint64) + np.uint64(1)
        lengths = pc.utf8_length(flat).to_numpy(zero_copy_only=False).astype(np.int64)
        return cls(ids, lengths, pc.list_parent_indices(tokens).to_numpy(zero_copy_only=False), len(texts))

    def chars(self) -> np.ndarray:
        return np.bincount(self.docs, weights=self.lengths, minlength=self.n_docs)


def ngram_chars(
    words: BatchWords, n: int, hashes: np.ndarray, top: bool = True, dup: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Per document: characters of its most frequent repeated n-gram times its count (``top``), and of its
    words inside repeated n-grams, each word once (``dup``). ``hashes`` are the n-gram hashes of
    ``words.ids``. One sort per batch, not per document."""
    top_chars = np.zeros(words.n_docs)
    dup_chars = np.zeros(words.n_docs)
    starts = np.nonzero(words.docs[: len(hashes)] == words.docs[n - 1 :])[0]  # n-grams inside one document
    if len(starts) == 0:
        return top_chars, dup_chars
    with np.errstate(over="ignore"):
        keys = hashes[starts] * _HASH_BASE + words.docs[starts].astype(np.uint64)  # never equal across documents
    order = np.argsort(keys)
    run_starts = np.concatenate([[0], np.flatnonzero(np.diff(keys[order])) + 1])
    run_counts = np.diff(np.concatenate([run_starts, [len(keys)]]))
    repeated_runs = run_counts > 1
    if not repeated_runs.any():
        return top_chars, dup_chars
    if dup:
        repeated = np.empty(len(keys), dtype=bool)
        repeated[order] = np.repeat(repeated_runs, run_counts)
        covered = np.zeros(len(words.ids), dtype=bool)
        repeated_starts = starts[repeated]
        for k in range(n):
            covered[repeated_starts + k] = True
        dup_chars = np.bincount(words.docs[covered], weights=words.lengths[covered], minlength=words.n_docs)
    if top:
        first = starts[np.minimum.reduceat(order, run_starts)[repeated_runs]]  # earliest start of each repeated gram
        counts = run_counts[repeated_runs]
        gram_doc = words.docs[first]
        best = np.lexsort((first, -counts, gram_doc))  # per document: most frequent, then earliest
        best = best[np.concatenate([[True], np.diff(gram_doc[best]) != 0])]
        window = np.concatenate([[0], np.cumsum(words.lengths)])
        top_chars[gram_doc[best]] = counts[best] * (window[first[best] + n] - window[first[best]])
    return top_chars, dup_chars


def repetition_scores(
    texts: pa.Array, top_ngrams: Mapping[int, float] = TOP_NGRAMS, dup_ngrams: Mapping[int, float] = DUP_NGRAMS
) -> dict[str, np.ndarray]:
    """The repetition statistics of every text of a batch (NaN where undefined, e.g. an empty text)."""
    values = texts.to_pylist()
    lengths = np.array([len(t) for t in values], dtype=np.float64)
    stats: dict[str, list[float]] = {f"dup_{k}_{m}": [] for k in ("para", "line") for m in ("frac", "char")}
    for text in values:
        paragraphs = [p.strip() for p in PARAGRAPH_BREAK.split(text.strip()) if p.strip()]
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        for kind, pieces in (("para", paragraphs), ("line", lines)):
            count, chars = duplicate_stats(pieces)
            stats[f"dup_{kind}_frac"].append(count / len(pieces) if pieces else np.nan)
            stats[f"dup_{kind}_char"].append(chars)
    out = {
        "dup_para_frac": np.array(stats["dup_para_frac"]),
        "dup_para_char_frac": safe_ratio(np.array(stats["dup_para_char"]), lengths),
        "dup_line_frac": np.array(stats["dup_line_frac"]),
        "dup_line_char_frac": safe_ratio(np.array(stats["dup_line_char"]), lengths),
    }
    words = BatchWords.of(texts)
    word_chars = words.chars()
    hashes, size = words.ids.copy(), 1
    for n in sorted(set(top_ngrams) | set(dup_ngrams)):
        with np.errstate(over="ignore"):
            while size < n:  # extend the (size)-gram hashes to (size + 1)-grams: one pass per size
                size += 1
                hashes = hashes[:-1] * _HASH_BASE + words.ids[size - 1 :] if len(hashes) > 1 else hashes[:0]
        top, dup = ngram_chars(words, n, hashes, top=n in top_ngrams, dup=n in dup_ngrams)
        if n in top_ngrams:
            out[f"top_{n}gram_char_frac"] = safe_ratio(top, word_chars)
        if n in dup_ngrams:
            out[f"dup_{n}gram_char_frac"] = safe_ratio(dup, word_chars)
    return out


def _gram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """The polynomial hash of the n-gram starting at each position (``len(ids) - n + 1`` of them)."""
    hashes = ids.astype(np.uint64) + np.uint64(1)
    with np.errstate(over="ignore"):
        for k in range(1, n):
            hashes = hashes[:-1] * _HASH_BASE + ids[k:].astype(np.uint64) + np.uint64(1)
    return hashes


def datatrove_repetition_scores(
    texts: pa.Array,
    top_ngrams: Mapping[int, float] = TOP_NGRAMS,
    dup_ngrams: Mapping[int, float] = DUP_NGRAMS,
    splitter: SpacyWords | None = None,
) -> dict[str, np.ndarray]:
    """The statistics datatrove's ``GopherRepetitionFilter`` tests, of every text (NaN where undefined)."""
    from fusionforge.filters.text.kernels import datatrove_gram_stats

    values = texts.to_pylist()
    lengths = np.array([len(t) for t in values], dtype=np.float64)
    counts: dict[str, list[float]] = {k: [] for k in ("para_n", "para_dup", "para_chars", "line_n", "line_dup")}
    counts["line_chars"] = []
    for text in values:
        for kind, pieces in (
            ("para", DATATROVE_PARAGRAPH_BREAK.split(text.strip())),
            ("line", DATATROVE_LINE_BREAK.split(text)),
        ):
            dup, chars = duplicate_stats(pieces)
            counts[f"{kind}_n"].append(len(pieces))
            counts[f"{kind}_dup"].append(dup)
            counts[f"{kind}_chars"].append(chars)
    out = {
        "empty": (lengths == 0).astype(np.float64),
        "dup_para_frac": safe_ratio(np.array(counts["para_dup"]), np.array(counts["para_n"])),
        "dup_para_char_frac": safe_ratio(np.array(counts["para_chars"]), lengths),
        "dup_line_frac": safe_ratio(np.array(counts["line_dup"]), np.array(counts["line_n"])),
        "dup_line_char_frac": safe_ratio(np.array(counts["line_chars"]), lengths),
    }
    words = (splitter or SpacyWords()).tokens(values).words()
    starts = np.searchsorted(words.docs, np.arange(words.n_docs + 1))
    window = np.concatenate([[0], np.cumsum(words.facts.length[words.ids])])
    sizes = np.array(sorted(set(top_ngrams) | set(dup_ngrams)), dtype=np.int64)
    top, dup = datatrove_gram_stats(
        words.ids.astype(np.int64),
        window.astype(np.int64),
        starts.astype(np.int64),
        sizes,
        np.array([n in top_ngrams for n in sizes]),
        np.array([n in dup_ngrams for n in sizes]),
        _HASH_BASE,
    )
    for k, n in enumerate(sizes.tolist()):
        if n in top_ngrams:
            out[f"top_{n}gram_char_frac"] = safe_ratio(top[:, k], lengths)
        if n in dup_ngrams:
            out[f"dup_{n}gram_char_frac"] = safe_ratio(dup[:, k], lengths)
    return out


def repetition_stats(
    text: str, top_ngrams: Mapping[int, float] = TOP_NGRAMS, dup_ngrams: Mapping[int, float] = DUP_NGRAMS
) -> dict[str, float]:
    """The repetition statistics of one document."""
    scores = repetition_scores(pa.array([text], pa.large_string()), top_ngrams, dup_ngrams)
    return {k: float(v[0]) for k, v in scores.items()}


@register
class GopherRepetition(TextFilter):
    """``text_gopher_repetition_v1``: Gopher's repetition rules (see the module docstring)."""

    name: ClassVar[str] = "text_gopher_repetition_v1"
    resources: ClassVar[Resources] = Resources(batch_size=512)

    def __init__(
        self,
        max_dup_para_frac: float | None = 0.30,
        max_dup_para_char_frac: float | None = 0.20,
        max_dup_line_frac: float | None = 0.30,
        max_dup_line_char_frac: float | None = 0.20,
        top_ngrams: Mapping[int, float] | None = None,
        dup_ngrams: Mapping[int, float] | None = None,
        reference: str = FUSIONFORGE,
        modalities: Sequence[str] = DEFAULT_MODALITIES,
        languages: Sequence[str] | None = None,
        lang_column: str = LANG_COLUMN,
    ) -> None:
        super().__init__(modalities, languages, lang_column)
        self.limits = {
            "dup_para_frac": max_dup_para_frac,
            "dup_para_char_frac": max_dup_para_char_frac,
            "dup_line_frac": max_dup_line_frac,
            "dup_line_char_frac": max_dup_line_char_frac,
        }
        self.top_ngrams = {int(n): float(f) for n, f in (TOP_NGRAMS if top_ngrams is None else top_ngrams).items()}
        self.dup_ngrams = {int(n): float(f) for n, f in (DUP_NGRAMS if dup_ngrams is None else dup_ngrams).items()}
        if any(n < 1 for n in (*self.top_ngrams, *self.dup_ngrams)):
            raise ValueError(f"{self.name}: n-gram sizes must be >= 1")
        self.reference = check_reference(self.name, reference, REFERENCES)
        self._splitter = None
        if self.reference == DATATROVE:
            english_tokenizer()  # fail now, not at the first batch, when spaCy is missing
            self._splitter = SpacyWords()

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        if self._splitter is not None:
            scores = datatrove_repetition_scores(texts_of(batch), self.top_ngrams, self.dup_ngrams, self._splitter)
        else:
            scores = repetition_scores(texts_of(batch), self.top_ngrams, self.dup_ngrams)
        return {k: float_array(v) for k, v in scores.items()}

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        s = {k: v.to_numpy(zero_copy_only=False).astype(np.float64) for k, v in scores.items()}
        rules = [("empty", s["empty"] > 0)] if "empty" in s else []
        rules += [(key, exceeds(s[key], limit)) for key, limit in self.limits.items()]
        rules += [(f"top_{n}gram", exceeds(s[f"top_{n}gram_char_frac"], f)) for n, f in sorted(self.top_ngrams.items())]
        rules += [(f"dup_{n}gram", exceeds(s[f"dup_{n}gram_char_frac"], f)) for n, f in sorted(self.dup_ngrams.items())]
        return first_failing(len(next(iter(s.values()))), rules)
