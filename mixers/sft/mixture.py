"""Token-weighted mixing of sources and a train/validation split that stays put when inputs grow.

A mixture file names every source with its share of the *training tokens* and how many passes
over it are allowed::

    sources:
      chat:   {weight: 0.6}
      tools:  {weight: 0.3, max_epochs: 2}
      vision_proxy: {weight: 0.1, max_epochs: 4}
    total_tokens: 2000000        # optional; default: the most the weights allow within max_epochs

Each source's conversations are ordered by a seeded hash of their id; a source gets whole passes
over its data, then a prefix of that order for the rest of its share. The split is by a seeded
hash of the conversation's content, so adding inputs never moves an existing conversation, and
it happens before mixing, so a repeated conversation can never sit in both splits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import xxhash
from fusionforge.pipelines.core.config import load_yaml
from fusionforge.pipelines.core.errors import ConfigError


@dataclass(frozen=True)
class SourceWeight:
    weight: float
    max_epochs: float = 1.0


@dataclass(frozen=True)
class Mixture:
    """Target token shares (normalised) per source, and an optional token budget."""

    sources: dict[str, SourceWeight]
    total_tokens: int | None = None


def load_mixture(path: str) -> Mixture:
    """Read and check a mixture YAML file; every problem is a ``ConfigError`` that says what to fix."""
    data = load_yaml(path)
    sources = data.get("sources")
    if not isinstance(sources, dict) or not sources:
        raise ConfigError(f"{path}: 'sources' must map each source name to {{weight: W, max_epochs: E}}")
    parsed = {}
    for name, entry in sources.items():
        entry = {"weight": entry} if isinstance(entry, (int, float)) else entry
        if not isinstance(entry, dict) or set(entry) - {"weight", "max_epochs"}:
            raise ConfigError(f"{path}: source {name!r} takes 'weight' and optional 'max_epochs'")
        weight, epochs = entry.get("weight"), entry.get("max_epochs", 1.0)
        if not isinstance(weight, (int, float)) or weight < 0:
            raise ConfigError(f"{path}: the weight of {name!r} must be a number >= 0")
        if not isinstance(epochs, (int, float)) or epochs <= 0:
            raise ConfigError(f"{path}: max_epochs of {name!r} must be a number > 0")
        parsed[str(name)] = SourceWeight(float(weight), float(epochs))
    if not any(s.weight > 0 for s in parsed.values()):
        raise ConfigError(f"{path}: at least one source needs a weight > 0")
    total = data.get("total_tokens")
    if total is not None and (not isinstance(total, int) or total <= 0):
        raise ConfigError(f"{path}: total_tokens must be a positive integer (or left out)")
    return Mixture(parsed, total)


def check_sources(mixture: Mixture, sources: list[str]) -> None:
    """Every input source must be in the mixture and every mixture source among the inputs."""
    missing = [s for s in sources if s not in mixture.sources]
    unknown = [s for s in mixture.sources if s not in sources]
    if missing:
        raise ConfigError(f"the mixture has no weight for source(s) {missing}; add them (weight 0 drops a source)")
    if unknown:
        raise ConfigError(f"the mixture names source(s) {unknown} that are not among the inputs {sources}")


def split_of(conversation_hash: str, seed: int, val_fraction: float) -> str:
    """``"val"`` for about ``val_fraction`` of conversations, by a seeded hash of their content."""
    unit = xxhash.xxh64_intdigest(f"{seed}:{conversation_hash}".encode()) / 2**64
    return "val" if unit < val_fraction else "train"


def plan_copies(mixture: Mixture | None, items: list[tuple[str, str, int]], seed: int) -> tuple[list[int], dict]:
    """Copies of each ``(source, id, tokens)`` item in the training set, and the realised-vs-target report."""
    if mixture is None:
        return [1] * len(items), {}
    by_source: dict[str, list[int]] = {}
    for i, (source, _, _) in enumerate(items):
        by_source.setdefault(source, []).append(i)
    available = {s: sum(items[i][2] for i in by_source.get(s, [])) for s in mixture.sources}
    live = {s: w for s, w in mixture.sources.items() if w.weight > 0 and available[s] > 0}
    total_weight = sum(w.weight for w in live.values())
    budget = mixture.total_tokens or (min(available[s] * w.max_epochs * total_weight / w.weight
                                          for s, w in live.items()) if live else 0)
    copies = [0] * len(items)
    report: dict[str, Any] = {"budget_tokens": int(budget), "sources": {}}
    for source, weight in mixture.sources.items():
        target = budget * weight.weight / total_weight if source in live else 0.0
        chosen = _fill(by_source.get(source, []), items, target, weight.max_epochs, seed, copies)
        report["sources"][source] = {
            "weight": weight.weight, "target_share": round(weight.weight / total_weight, 6) if source in live else 0.0,
            "tokens_available": available[source], "tokens_selected": chosen,
            "epochs": round(chosen / available[source], 4) if available[source] else 0.0,
            "rows": sum(copies[i] for i in by_source.get(source, [])),
        }
        if weight.weight > 0 and not available[source]:
            report["sources"][source]["warning"] = "no kept training conversations: its share went to the others"
    selected = sum(s["tokens_selected"] for s in report["sources"].values())
    for entry in report["sources"].values():
        entry["realised_share"] = round(entry["tokens_selected"] / selected, 6) if selected else 0.0
    return copies, report


def _fill(indices: list[int], items: list[tuple[str, str, int]], target: float, max_epochs: float, seed: int,
          copies: list[int]) -> int:
    """Give ``indices`` whole passes, then a hash-ordered prefix, up to ``target`` tokens; return tokens chosen."""
    total = sum(items[i][2] for i in indices)
    if not indices or target <= 0 or total == 0:
        return 0
    allowed = min(target, total * max_epochs)
    passes = min(math.floor(allowed / total), math.floor(max_epochs))
    for i in indices:
        copies[i] += passes
    chosen, rest = passes * total, allowed - passes * total
    if passes >= max_epochs:
        return chosen
    order = sorted(indices, key=lambda i: xxhash.xxh64_intdigest(f"{seed}:{items[i][1]}".encode()))
    taken = 0
    for i in order:
        tokens = items[i][2]
        if taken + tokens / 2 > rest:
            break
        copies[i] += 1
        taken += tokens
    return chosen + taken
