"""The target an audit is checked against: token shares per source and a vision-token ratio.

Read from a mixture YAML (the file ``fusionforge pack --mixture`` takes). Accepted layout::

    sources:                 # or "streams"; a mapping name -> spec, or a list of specs with "name"
      web:    {proportion: 0.6}
      photos: {proportion: 0.3, max_epochs: 2}
      clips:  {repeat: 2}    # repeat / choose: no share target for this source
      forum:  0.1            # a bare number is a proportion
    vision_ratio: 0.10       # optional target vision-token share
    tolerance: 0.02          # optional: allowed |realised - target| of a source's token share
    vision_tolerance: 0.01   # optional: the same for the vision ratio

When every source has a proportion, proportions are normalised to sum to 1 and sources the file
does not name have a target of 0; otherwise proportions are shares of the whole as written and
only they are checked. Options given on the command line override the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core.config import load_yaml
from fusionforge.pipelines.core.errors import ConfigError

DEFAULT_TOLERANCE = 0.02
DEFAULT_VISION_TOLERANCE = 0.01


@dataclass(frozen=True)
class Target:
    shares: dict[str, float]  # source -> target token share
    closed: bool  # True: every source had a proportion, so unnamed sources have a target of 0
    vision_ratio: float | None = None
    tolerance: float = DEFAULT_TOLERANCE
    vision_tolerance: float = DEFAULT_VISION_TOLERANCE
    path: str | None = None

    def share(self, source: str) -> float | None:
        if source in self.shares:
            return self.shares[source]
        return 0.0 if self.closed else None


def load_target(path: str | None = None, vision_ratio: float | None = None, tolerance: float | None = None,
                vision_tolerance: float | None = None) -> Target | None:
    """The target from a mixture YAML and/or options; None when neither gives one."""
    data = load_yaml(path) if path else {}
    shares, closed = _shares(data, path) if path else ({}, False)
    ratio = vision_ratio if vision_ratio is not None else data.get("vision_ratio")
    if not shares and ratio is None:
        if path:
            raise ConfigError(f"{path} gives no source proportions and no vision_ratio: nothing to check")
        return None
    share_tolerance = tolerance if tolerance is not None else data.get("tolerance", DEFAULT_TOLERANCE)
    ratio_tolerance = vision_tolerance if vision_tolerance is not None else data.get(
        "vision_tolerance", DEFAULT_VISION_TOLERANCE)
    return Target(shares, closed, _fraction(ratio, "vision_ratio") if ratio is not None else None,
                  _fraction(share_tolerance, "tolerance"), _fraction(ratio_tolerance, "vision_tolerance"),
                  str(Path(path)) if path else None)


def _shares(data: dict[str, Any], path: str) -> tuple[dict[str, float], bool]:
    specs = data.get("sources", data.get("streams"))
    if specs is None:
        return {}, False
    if isinstance(specs, list):
        named = {}
        for spec in specs:
            name = spec.get("name", spec.get("source")) if isinstance(spec, dict) else None
            if not name:
                raise ConfigError(f"{path}: every entry of 'sources' needs a 'name' (got {spec!r})")
            named[str(name)] = spec
        specs = named
    if not isinstance(specs, dict):
        raise ConfigError(f"{path}: 'sources' must be a mapping of name -> spec or a list of specs")
    proportions: dict[str, float] = {}
    for name, spec in specs.items():
        value = spec if isinstance(spec, (int, float)) else spec.get("proportion") if isinstance(spec, dict) else None
        if value is not None:
            proportions[str(name)] = _fraction(value, f"sources.{name}.proportion", upper=None)
    closed = bool(proportions) and len(proportions) == len(specs)
    if closed:
        total = sum(proportions.values())
        if total <= 0:
            raise ConfigError(f"{path}: the proportions sum to {total}; they must be positive")
        proportions = {name: value / total for name, value in proportions.items()}
    return proportions, closed


def _fraction(value: Any, name: str, upper: float | None = 1.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a number, got {value!r}") from exc
    if number < 0 or (upper is not None and number > upper):
        raise ConfigError(f"{name} must be between 0 and {upper}, got {number}")
    return number


def deviations(target: Target, realised_shares: dict[str, float], realised_vision: float | None) -> list[dict]:
    """One row per checked figure: target, realised, deviation and whether it is within tolerance."""
    rows = []
    for source in sorted(set(target.shares) | set(realised_shares)):
        goal = target.share(source)
        if goal is None:
            continue
        realised = realised_shares.get(source, 0.0)
        rows.append(_check(f"share:{source}", goal, realised, target.tolerance))
    if target.vision_ratio is not None:
        rows.append(_check("vision_ratio", target.vision_ratio, realised_vision, target.vision_tolerance))
    return rows


def _check(figure: str, goal: float, realised: float | None, tolerance: float) -> dict[str, Any]:
    deviation = None if realised is None else realised - goal
    ok = deviation is not None and abs(deviation) <= tolerance + 1e-12
    return {"figure": figure, "target": goal, "realised": realised, "deviation": deviation,
            "tolerance": tolerance, "ok": ok}
