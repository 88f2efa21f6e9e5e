"""Test corpora with injected duplicates, and brute-force ground truth (no fusionforge code involved)."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from itertools import combinations

from fusionforge.pipelines.demo_corpus import WORDS

EDIT_RATES = (0.01, 0.02, 0.05, 0.10, 0.20)


def random_doc(rng: random.Random, vocab: list[str], low: int = 150, high: int = 400) -> str:
    words = [rng.choice(vocab) for _ in range(rng.randint(low, high))]
    return " ".join(words).capitalize() + "."


def edit_words(rng: random.Random, text: str, rate: float, vocab: list[str]) -> str:
    """Replace each word with probability ``rate`` by a different random word."""
    words = text.split()
    for i, word in enumerate(words):
        if rng.random() < rate:
            words[i] = next(w for w in iter(lambda: rng.choice(vocab), None) if w != word)
    return " ".join(words)


def translate(text: str, source: str = "en", target: str = "de") -> str:
    """Word-by-word translation through the demo corpus's aligned word lists."""
    table = dict(zip(WORDS[source], WORDS[target]))
    return " ".join(table.get(w.lower().strip("."), w) for w in text.split())


def injected_corpus(
    seed: int, originals: int, vocab_size: int = 20000
) -> tuple[list[str], dict[str, list[tuple[int, int]]]]:
    """Originals with exact copies, word-edited copies at each rate, and unrelated documents.

    Returns the shuffled texts and, per kind of copy, the (original, copy) positions.
    """
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(vocab_size)]
    texts = [random_doc(rng, vocab) for _ in range(originals)]
    kinds: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for i in range(originals):
        kind = ("exact", *EDIT_RATES, None)[i % (len(EDIT_RATES) + 2)]
        if kind is None:
            continue
        copy = texts[i] if kind == "exact" else edit_words(rng, texts[i], kind, vocab)
        kinds[str(kind)].append((i, len(texts)))
        texts.append(copy)
    order = list(range(len(texts)))
    rng.shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    return [texts[i] for i in order], {k: sorted((position[a], position[b]) for a, b in v) for k, v in kinds.items()}


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def true_pairs(texts: list[str], threshold: float, n: int = 5) -> dict[tuple[int, int], float]:
    """Every pair with Jaccard >= threshold, by brute force over all pairs that share a shingle."""
    sets = [shingles(t, n) for t in texts]
    index: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, s in enumerate(sets):
        for shingle in s:
            index[shingle].append(i)
    candidates = set()
    for members in index.values():
        candidates.update(combinations(members, 2))
    out = {}
    for i, j in candidates:
        jaccard = len(sets[i] & sets[j]) / len(sets[i] | sets[j])
        if jaccard >= threshold:
            out[(i, j)] = jaccard
    return out


def cluster_pairs(kept_of: list[int | None]) -> set[tuple[int, int]]:
    """All pairs placed in the same cluster by a per-index 'kept index or None' list."""
    clusters: dict[int, list[int]] = defaultdict(list)
    for i, kept in enumerate(kept_of):
        clusters[i if kept is None else kept].append(i)
    return {pair for members in clusters.values() for pair in combinations(sorted(members), 2)}


def precision_recall(predicted: set[tuple[int, int]], truth: set[tuple[int, int]]) -> tuple[float, float]:
    hits = len(predicted & truth)
    return hits / max(len(predicted), 1), hits / max(len(truth), 1)
