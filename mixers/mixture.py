"""Token-weighted mixtures: how many tokens each source contributes, and which records supply them.

A mixture YAML (mosaicml-streaming style, but in *tokens*, not samples)::

    seed: 0
    budget_tokens: 2_000_000     # optional: the total; default: the largest the epoch limits allow
    max_epochs: 4                # default upsampling limit per source
    sources:
      web:    {proportion: 0.7}              # a share of what the fixed sources leave of the budget
      photos: {proportion: 0.2, max_epochs: 2}
      docs:   {repeat: 1.5}                  # 1.5 x the source's tokens
      clips:  {choose: 50_000}               # exactly this many tokens

With a budget, each ``proportion`` source gets its share of what the fixed sources leave, but never
more than ``max_epochs`` passes over it. When that limit bites, its tokens are *not* handed to the
other sources (that would push their shares further from what the file says) and the shares are
not scaled down to match (that would silently shrink the budget): the plan keeps every other
target, falls short of the budget, and ``MixturePlan.warnings`` says which source, by how much, and
the two fixes (raise its ``max_epochs`` or lower ``budget_tokens``). Without a budget the proportion
sources' total is the largest the limits allow at the given shares, so they are never capped; a
``repeat`` or ``choose`` beyond ``max_epochs`` is capped, with the same warning.

A source is taken in whole epochs plus one partial epoch. Records of the partial epoch are chosen
by a seeded hash ``u`` of their id: those below a threshold found on the token-weighted histogram
of ``u``, so the chosen share is a share of *tokens* (not of records) and the sampler is
deterministic, streaming and the same on every worker. Sources not named get no tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from fusionforge.pipelines.core.config import load_yaml
from fusionforge.pipelines.core.errors import ConfigError

HASH_BUCKETS = 4096
_KINDS = ("proportion", "repeat", "choose")


@dataclass(frozen=True)
class SourceSpec:
    name: str
    proportion: float | None = None
    repeat: float | None = None
    choose: int | None = None
    max_epochs: float | None = None


@dataclass(frozen=True)
class Mixture:
    sources: dict[str, SourceSpec]
    budget_tokens: int | None = None
    max_epochs: float = 4.0
    seed: int = 0


@dataclass(frozen=True)
class SourceTarget:
    """What one source contributes: its target tokens, as whole epochs plus a hash threshold."""

    tokens: int  # the source's own size in tokens
    target: int
    epochs: int  # whole epochs
    threshold: float  # records with u < threshold are in the partial epoch
    capped: bool = False  # the target was lowered to respect max_epochs


@dataclass
class MixturePlan:
    targets: dict[str, SourceTarget] = field(default_factory=dict)
    seed: int = 0
    warnings: list[str] = field(default_factory=list)  # targets lowered by max_epochs, and what that costs

    def instances(self, source: str, u: float) -> int:
        """How many times a record with hash ``u`` is taken (0 when its source is not in the mixture)."""
        target = self.targets.get(source)
        if target is None:
            return 0
        return target.epochs + (1 if u < target.threshold else 0)

    def report(self, realised: dict[str, int]) -> dict[str, Any]:
        """Target against realised token shares per source."""
        total_target = sum(t.target for t in self.targets.values()) or 1
        total_real = sum(realised.values()) or 1
        return {
            name: {
                "target_tokens": t.target,
                "target_share": t.target / total_target,
                "realised_tokens": realised.get(name, 0),
                "realised_share": realised.get(name, 0) / total_real,
                "epochs": t.target / t.tokens if t.tokens else 0.0,
                "capped_by_max_epochs": t.capped,
            }
            for name, t in sorted(self.targets.items())
        }


def record_hash(seed: int, record_id: str) -> float:
    """A uniform number in [0, 1) from the seed and the record id (stable across runs and machines)."""
    return xxhash.xxh64_intdigest(record_id.encode(), seed=seed & 0xFFFFFFFFFFFFFFFF) / 2**64


def hash_bucket(u: float) -> int:
    return min(HASH_BUCKETS - 1, int(u * HASH_BUCKETS))


def load_mixture(path: str | Path, overrides: tuple[str, ...] = ()) -> Mixture:
    """Read and check a mixture YAML; every mistake is a ``ConfigError`` that says what is allowed."""
    data = load_yaml(path, overrides)
    return parse_mixture(data)


def parse_mixture(data: dict[str, Any]) -> Mixture:
    unknown = set(data) - {"seed", "budget_tokens", "max_epochs", "sources"}
    if unknown:
        raise ConfigError(f"unknown mixture key(s) {sorted(unknown)}; use seed, budget_tokens, max_epochs, sources")
    sources = data.get("sources")
    if not isinstance(sources, dict) or not sources:
        raise ConfigError("a mixture needs 'sources': a mapping of source name -> {proportion|repeat|choose: ...}")
    specs = {}
    for name, spec in sources.items():
        spec = spec or {}
        if not isinstance(spec, dict) or set(spec) - {*_KINDS, "max_epochs"}:
            raise ConfigError(f"source {name!r}: allowed keys are proportion, repeat, choose, max_epochs")
        given = [k for k in _KINDS if spec.get(k) is not None]
        if len(given) != 1:
            raise ConfigError(f"source {name!r}: give exactly one of proportion, repeat or choose (got {given})")
        value = spec[given[0]]
        if not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"source {name!r}: {given[0]} must be a positive number, got {value!r}")
        choose = int(spec["choose"]) if spec.get("choose") is not None else None
        specs[name] = SourceSpec(name, spec.get("proportion"), spec.get("repeat"), choose, spec.get("max_epochs"))
    budget = data.get("budget_tokens")
    if budget is not None and (not isinstance(budget, int) or budget <= 0):
        raise ConfigError(f"budget_tokens must be a positive integer, got {budget!r}")
    max_epochs = float(data.get("max_epochs", 4.0))
    if max_epochs <= 0:
        raise ConfigError("max_epochs must be positive")
    return Mixture(specs, budget, max_epochs, int(data.get("seed", 0)))


def plan_mixture(
    mixture: Mixture | None, source_tokens: dict[str, int], histograms: dict[str, np.ndarray], seed: int = 0
) -> MixturePlan:
    """Targets per source from the sources' sizes; ``histograms`` are token sums per hash bucket.

    Without a mixture every source is taken once, whole (hashes use ``seed``); with one, its own seed.
    """
    if mixture is None:
        return MixturePlan({n: SourceTarget(t, t, 1, 0.0) for n, t in source_tokens.items() if t > 0}, seed)
    missing = set(mixture.sources) - set(source_tokens)
    if missing:
        raise ConfigError(
            f"mixture names source(s) {sorted(missing)} that the input does not have (it has: {sorted(source_tokens)})"
        )
    targets: dict[str, float] = {}
    for name, spec in mixture.sources.items():
        if spec.choose is not None:
            targets[name] = spec.choose
        elif spec.repeat is not None:
            targets[name] = spec.repeat * source_tokens[name]
    weighted = {n: s.proportion for n, s in mixture.sources.items() if s.proportion is not None}
    if weighted:
        total_weight = sum(weighted.values())
        limit = {n: source_tokens[n] * _epochs_limit(mixture, n) for n in weighted}
        if mixture.budget_tokens is not None:
            rest = mixture.budget_tokens - sum(targets.values())
            if rest <= 0:
                raise ConfigError("choose/repeat sources already use the whole budget_tokens; raise it")
        else:
            rest = min(limit[n] * total_weight / w for n, w in weighted.items())
        for name, weight in weighted.items():
            targets[name] = rest * weight / total_weight
    plan = MixturePlan(seed=mixture.seed)
    wanted_total = sum(targets.values())
    for name, target in targets.items():
        size = source_tokens[name]
        cap = size * _epochs_limit(mixture, name)
        capped = target > cap + 1e-9
        if capped:
            spec = mixture.sources[name]
            asks, fix = (
                ("its proportion of budget_tokens", "lower budget_tokens")
                if spec.proportion is not None
                else (f"repeat {spec.repeat:g}", "lower repeat")
                if spec.repeat is not None
                else (f"choose {spec.choose:,}", "lower choose")
            )
            plan.warnings.append(
                f"mixture source {name!r}: {asks} asks for {int(round(target)):,} tokens but max_epochs "
                f"{_epochs_limit(mixture, name):g} allows {int(round(cap)):,} ({size:,} tokens per epoch); it gets "
                f"{int(round(cap)):,} and no other source takes its place. Raise its max_epochs or {fix}"
            )
        target = int(round(min(target, cap)))
        epochs = target // size if size else 0
        remainder = target - epochs * size
        threshold = _threshold(histograms.get(name), remainder) if remainder else 0.0
        plan.targets[name] = SourceTarget(size, target, epochs, threshold, capped)
    if plan.warnings:
        total = sum(t.target for t in plan.targets.values())
        plan.warnings.append(
            f"the mixture holds {total:,} tokens, {int(round(wanted_total - total)):,} fewer than "
            f"{'budget_tokens' if mixture.budget_tokens is not None else 'its sources ask for'}; "
            "the sources' shares differ from those the mixture file asks for"
        )
    return plan


def _epochs_limit(mixture: Mixture, name: str) -> float:
    own = mixture.sources[name].max_epochs
    return float(own if own is not None else mixture.max_epochs)


def _threshold(histogram: np.ndarray | None, remainder: int) -> float:
    """The hash value below which records hold ``remainder`` tokens (linear inside the boundary bucket)."""
    if histogram is None or not histogram.sum():
        return 0.0
    cumulative = np.cumsum(histogram)
    bucket = int(np.searchsorted(cumulative, remainder, side="left"))
    if bucket >= HASH_BUCKETS:
        return 1.0
    before = cumulative[bucket - 1] if bucket else 0
    inside = histogram[bucket]
    fraction = (remainder - before) / inside if inside else 1.0
    return (bucket + min(1.0, max(0.0, fraction))) / HASH_BUCKETS


def epoch_order(seed: int, source: str, epoch: int, items: int) -> np.ndarray:
    """A seeded permutation of ``items`` positions for one (source, epoch)."""
    key = xxhash.xxh64_intdigest(f"{source}:{epoch}".encode(), seed=seed & 0xFFFFFFFFFFFFFFFF)
    return np.random.default_rng(key).permutation(items)
