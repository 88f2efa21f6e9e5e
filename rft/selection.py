"""Which passing samples of a prompt become SFT data: de-duplication, then the acceptance policy.

Within one prompt (duplicates across different prompts are different conversations): exact
duplicates (case and whitespace folded) go first, then near duplicates (MinHash over word
5-grams at ``near_threshold`` Jaccard, from ``fusionforge.filters.dedup``), keeping the earliest
sample (round, then index). The policy then picks from what is left:

- ``first``: the earliest passing sample;
- ``shortest``: the shortest passing response (characters; ties to the earliest), since long
  correct answers padded with detours teach detours;
- ``all``: every distinct passing sample, up to ``max_per_prompt`` when set.
"""

from __future__ import annotations

from collections.abc import Sequence

from fusionforge.filters.dedup.api import exact_duplicates, near_duplicates
from fusionforge.pipelines.core.errors import ConfigError

POLICIES = ("first", "all", "shortest")
ACCEPTED, DUP_EXACT, DUP_NEAR, NOT_SELECTED = "accepted", "duplicate_exact", "duplicate_near", "not_selected"


def select(
    texts: Sequence[str], policy: str = "first", max_per_prompt: int | None = None, near_threshold: float = 0.8
) -> list[str]:
    """The fate of each passing sample (given in round, index order): accepted, a duplicate, or not selected."""
    if policy not in POLICIES:
        raise ConfigError(f"unknown acceptance policy {policy!r}; use one of {', '.join(POLICIES)}")
    fates = [ACCEPTED] * len(texts)
    if not texts:
        return fates
    for position, original in enumerate(exact_duplicates(list(texts))):
        if original is not None:
            fates[position] = DUP_EXACT
    distinct = [i for i, fate in enumerate(fates) if fate == ACCEPTED]
    if len(distinct) > 1:
        near = near_duplicates([texts[i] for i in distinct], threshold=near_threshold)
        for position, original in zip(distinct, near):
            if original is not None:
                fates[position] = DUP_NEAR
    candidates = [i for i, fate in enumerate(fates) if fate == ACCEPTED]
    if policy == "first":
        keep = set(candidates[:1])
    elif policy == "shortest":
        keep = {min(candidates, key=lambda i: (len(texts[i]), i))}
    else:
        keep = set(candidates[:max_per_prompt] if max_per_prompt else candidates)
    return [NOT_SELECTED if fate == ACCEPTED and i not in keep else fate for i, fate in enumerate(fates)]
