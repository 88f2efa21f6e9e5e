"""Exact and near-duplicate removal on the user turns, with the dedupe stages' own code.

Two conversations that ask the same thing (the same user turns, up to case and spacing, or a
MinHash Jaccard estimate above the threshold) are duplicates whatever the answers say; the first
in input order is kept. Normalisation, shingling and MinHash come from ``filters.dedup.api``, the
in-process entry points of ``fusionforge dedupe``, so both commands agree on what a duplicate is.
"""

from __future__ import annotations

from fusionforge.filters.dedup.api import exact_duplicates, near_duplicates


def duplicate_reasons(
    ids: list[str], user_texts: list[str], near_threshold: float | None = 0.8, seed: int = 1
) -> list[str | None]:
    """Per conversation: None (kept), ``"exact_dup_of: <id>"`` or ``"near_dup_of: <id>"``."""
    reasons: list[str | None] = [None if j is None else f"exact_dup_of: {ids[j]}" for j in exact_duplicates(user_texts)]
    if not near_threshold:
        return reasons
    survivors = [i for i, reason in enumerate(reasons) if reason is None]
    near = near_duplicates([user_texts[i] for i in survivors], threshold=near_threshold, seed=seed)
    for position, kept in enumerate(near):
        if kept is not None:
            reasons[survivors[position]] = f"near_dup_of: {ids[survivors[kept]]}"
    return reasons
