"""Token-weighted mixing of SFT sources, and a train/validation split that stays put when inputs grow.

The mixture file is the project's one format (``mixers/mixture.py``, also read by ``pack``)::

    seed: 0
    max_epochs: 2                   # default upsampling limit per source
    sources:
      chat:  {proportion: 0.6}      # shares of the training tokens
      tools: {proportion: 0.3, max_epochs: 4}
      proxy: {proportion: 0.1}
    budget_tokens: 2000000          # optional; default: the most the proportions allow within max_epochs

Each source is taken in whole epochs plus a partial one, chosen by a seeded hash of the
conversation id on the token-weighted histogram, so shares are shares of tokens. Input sources the
mixture does not name get no tokens. The split is by a seeded hash of the conversation's content,
so adding inputs never moves an existing conversation, and it happens before mixing, so a repeated
conversation can never sit in both splits; validation is not mixed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import xxhash

from fusionforge.mixers.mixture import HASH_BUCKETS, Mixture, hash_bucket, load_mixture, plan_mixture, record_hash
from fusionforge.pipelines.core.errors import ConfigError

__all__ = ["Mixture", "check_sources", "load_mixture", "plan_copies", "split_of"]


def check_sources(mixture: Mixture, sources: list[str]) -> None:
    """Every source the mixture names must be among the inputs (fails before any work)."""
    unknown = [s for s in mixture.sources if s not in sources]
    if unknown:
        raise ConfigError(f"the mixture names source(s) {unknown} that are not among the inputs {sources}")


def split_of(conversation_hash: str, seed: int, val_fraction: float) -> str:
    """``"val"`` for about ``val_fraction`` of conversations, by a seeded hash of their content."""
    unit = xxhash.xxh64_intdigest(f"{seed}:{conversation_hash}".encode()) / 2**64
    return "val" if unit < val_fraction else "train"


def plan_copies(mixture: Mixture | None, items: list[tuple[str, str, int]], seed: int) -> tuple[list[int], dict]:
    """Copies of each training ``(source, id, tokens)`` item, and the realised-against-target report."""
    if mixture is None:
        return [1] * len(items), {}
    hashes = [record_hash(mixture.seed, record_id) for _, record_id, _ in items]
    tokens: dict[str, int] = dict.fromkeys(mixture.sources, 0)
    histograms = {name: np.zeros(HASH_BUCKETS, np.float64) for name in mixture.sources}
    for (source, _, n), u in zip(items, hashes):
        if source in tokens:
            tokens[source] += n
            histograms[source][hash_bucket(u)] += n
    empty = sorted(name for name, n in tokens.items() if n == 0)
    live = dataclasses.replace(mixture, sources={k: v for k, v in mixture.sources.items() if k not in empty})
    plan = plan_mixture(live, {k: v for k, v in tokens.items() if k not in empty}, histograms, seed)
    copies = [plan.instances(source, u) for (source, _, _), u in zip(items, hashes)]
    realised: dict[str, int] = dict.fromkeys(plan.targets, 0)
    for (source, _, n), c in zip(items, copies):
        if c:
            realised[source] += n * c
    report: dict[str, Any] = {
        "budget_tokens": sum(t.target for t in plan.targets.values()),
        "sources": plan.report(realised),
    }
    if empty:
        report["empty_sources"] = empty  # named, but no training conversation survived: their share went elsewhere
    not_named = sorted({source for source, _, _ in items} - set(mixture.sources))
    if not_named:
        report["not_in_mixture"] = not_named
    return copies, report
