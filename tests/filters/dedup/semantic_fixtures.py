"""A tiny model2vec model the tests control, and texts with paraphrases it can and cannot see.

The model is a word-level tokenizer trained here plus one vector per word, saved with model2vec's own
``save_pretrained`` and loaded through ``StaticModel.from_pretrained`` (the loading path fusionforge
uses). Synonyms get the same base vector plus small noise, so a paraphrase (every word swapped for a
synonym, the order shuffled) lands close to its original; unrelated documents draw other words and
land far apart. A document that shares half its words with another lands in between: it shows the
threshold is respected.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

SYNONYMS_PER_WORD = 3
CONCEPTS = 400
DIM = 32


def vocabulary(seed: int = 0, concepts: int = CONCEPTS, syllables: int = 3) -> list[list[str]]:
    """``concepts`` groups of synonyms (made-up words of ``syllables`` syllables), one group per concept."""
    rng = random.Random(seed)
    letters = "bcdfghjklmnprstvz"
    vowels = "aeiou"
    seen: set[str] = set()
    groups = []
    while len(groups) < concepts:
        group = []
        while len(group) < SYNONYMS_PER_WORD:
            word = "".join(rng.choice(letters) + rng.choice(vowels) for _ in range(syllables))
            if word not in seen:
                seen.add(word)
                group.append(word)
        groups.append(group)
    return groups


def build_static_model(
    folder: Path, seed: int = 0, noise: float = 0.05, groups: list[list[str]] | None = None, dim: int = DIM
) -> Path:
    """Train the tokenizer, set the vectors (``dim`` wide), save the model2vec folder; return it.

    ``bench/semantic_dedup.py`` builds its model here too, with a larger vocabulary.
    """
    from model2vec import StaticModel
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    groups = groups or vocabulary(seed)
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    words = [w for group in groups for w in group]
    trainer = trainers.WordLevelTrainer(vocab_size=len(words) + 1, special_tokens=["[UNK]"])  # every word
    tokenizer.train_from_iterator([" ".join(words)], trainer)
    rng = np.random.default_rng(seed)
    concept = {w: i for i, group in enumerate(groups) for w in group}
    base = rng.standard_normal((len(groups), dim)).astype(np.float32)
    vocab = tokenizer.get_vocab()
    vectors = np.zeros((len(vocab), dim), np.float32)
    for word, index in sorted(vocab.items()):  # by word: the trainer numbers tied words in any order
        if word in concept:
            vectors[index] = base[concept[word]] + noise * rng.standard_normal(dim)
    StaticModel(vectors, tokenizer, normalize=True).save_pretrained(folder)
    return folder


def document(rng: random.Random, groups: list[list[str]], words: int = 40) -> list[int]:
    """A document as concept numbers."""
    return [rng.randrange(len(groups)) for _ in range(words)]


def spell(concepts: list[int], groups: list[list[str]], rng: random.Random, synonym: bool) -> str:
    """The document in words: the first synonym of each concept, or a random one (a paraphrase)."""
    return " ".join(rng.choice(groups[c]) if synonym else groups[c][0] for c in concepts)


def paraphrase_corpus(seed: int = 1, originals: int = 30) -> tuple[list[dict], set[frozenset[str]], set[str]]:
    """Records, the duplicate pairs (ids) semantic dedup must find, and ids of half-overlapping documents.

    Every third original gets a paraphrase (synonyms, shuffled order); every fifth gets a document that
    shares half its words and replaces the other half (cosine about 0.7: below a 0.9 threshold).
    """
    groups = vocabulary()
    rng = random.Random(seed)
    records, pairs, halves = [], set(), set()
    for i in range(originals):
        concepts = document(rng, groups)
        records.append({"id": f"t{i:03d}", "text": spell(concepts, groups, rng, synonym=False)})
        if i % 3 == 0:
            shuffled = concepts[:]
            rng.shuffle(shuffled)
            records.append({"id": f"t{i:03d}-para", "text": spell(shuffled, groups, rng, synonym=True)})
            pairs.add(frozenset({f"t{i:03d}", f"t{i:03d}-para"}))
        if i % 5 == 1:
            half = concepts[: len(concepts) // 2] + document(rng, groups, len(concepts) // 2)
            records.append({"id": f"t{i:03d}-half", "text": spell(half, groups, rng, synonym=False)})
            halves.add(f"t{i:03d}-half")
    return records, pairs, halves
