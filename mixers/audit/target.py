"""The target an audit is checked against: token shares per source and a vision-token ratio.

``--target`` takes the mixture YAML of ``fusionforge pack --mixture`` (read by
``fusionforge.mixers.mixture``, so both commands accept exactly the same file)::

    seed: 0
    budget_tokens: 2_000_000
    max_epochs: 4
    sources:
      web:    {proportion: 0.7}
      photos: {proportion: 0.2, max_epochs: 2}
      docs:   {repeat: 1.5}
      clips:  {choose: 50_000}
    vision_ratio: 0.10       # audit only (optional): the target vision-token share
    tolerance: 0.02          # audit only (optional): allowed |realised - target| of a source's token share
    vision_tolerance: 0.01   # audit only (optional): the same for the vision ratio

Target shares are the packer's own per-source token targets (``plan_mixture``) over the audited
source sizes, divided by their sum; a source the mixture does not name has a target of 0, as the
packer gives it no tokens. Options given on the command line override the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusionforge.mixers.mixture import Mixture, parse_mixture, plan_mixture
from fusionforge.pipelines.core.bounds import FRACTION
from fusionforge.pipelines.core.config import load_yaml
from fusionforge.pipelines.core.errors import ConfigError

DEFAULT_TOLERANCE = 0.02
DEFAULT_VISION_TOLERANCE = 0.01
AUDIT_KEYS = ("vision_ratio", "tolerance", "vision_tolerance")


@dataclass(frozen=True)
class Target:
    mixture: Mixture | None = None
    vision_ratio: float | None = None
    tolerance: float = DEFAULT_TOLERANCE
    vision_tolerance: float = DEFAULT_VISION_TOLERANCE
    path: str | None = None

    def shares(self, source_tokens: dict[str, int]) -> dict[str, float]:
        """Target token share per source, for sources of these sizes (tokens); empty without a mixture."""
        if self.mixture is None:
            return {}
        sizes = {name: source_tokens.get(name, 0) for name in {*self.mixture.sources, *source_tokens}}
        if all(sizes[name] > 0 for name in self.mixture.sources):
            targets = {name: t.target for name, t in plan_mixture(self.mixture, sizes, {}).targets.items()}
        else:  # a named source is missing: its proportion still says what it should have been
            targets = {n: s.proportion for n, s in self.mixture.sources.items() if s.proportion is not None}
        total = sum(targets.values())
        return {name: targets.get(name, 0) / total if total else 0.0 for name in sizes}


def load_target(
    path: str | None = None,
    vision_ratio: float | None = None,
    tolerance: float | None = None,
    vision_tolerance: float | None = None,
) -> Target | None:
    """The target from a mixture YAML and/or options; None when neither gives one."""
    data = load_yaml(path) if path else {}
    mixture_keys = {k: v for k, v in data.items() if k not in AUDIT_KEYS}
    mixture = parse_mixture(mixture_keys) if path and mixture_keys else None
    ratio = vision_ratio if vision_ratio is not None else data.get("vision_ratio")
    if mixture is None and ratio is None:
        if path:
            raise ConfigError(f"{path} gives no sources and no vision_ratio: nothing to check")
        return None
    share_tolerance = tolerance if tolerance is not None else data.get("tolerance", DEFAULT_TOLERANCE)
    ratio_tolerance = (
        vision_tolerance if vision_tolerance is not None else data.get("vision_tolerance", DEFAULT_VISION_TOLERANCE)
    )
    return Target(
        mixture,
        _fraction(ratio, "vision_ratio") if ratio is not None else None,
        _fraction(share_tolerance, "tolerance"),
        _fraction(ratio_tolerance, "vision_tolerance"),
        str(Path(path)) if path else None,
    )


def _fraction(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a number, got {value!r}") from exc
    FRACTION.require(name, number)
    return number


def deviations(
    target: Target, goals: dict[str, float], realised_shares: dict[str, float], realised_vision: float | None
) -> list[dict]:
    """One row per checked figure: target, realised, deviation and whether it is within tolerance."""
    rows = [
        _check(f"share:{source}", goals[source], realised_shares.get(source, 0.0), target.tolerance)
        for source in sorted(goals)
    ]
    if target.vision_ratio is not None:
        rows.append(_check("vision_ratio", target.vision_ratio, realised_vision, target.vision_tolerance))
    return rows


def _check(figure: str, goal: float, realised: float | None, tolerance: float) -> dict[str, Any]:
    deviation = None if realised is None else realised - goal
    ok = deviation is not None and abs(deviation) <= tolerance + 1e-12
    return {
        "figure": figure,
        "target": goal,
        "realised": realised,
        "deviation": deviation,
        "tolerance": tolerance,
        "ok": ok,
    }
