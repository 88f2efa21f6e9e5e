"""The library entry points: collect the state of some outputs, or run the whole audit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fusionforge.mixers.audit.discover import Discovery, Unit, discover
from fusionforge.mixers.audit.execute import collect
from fusionforge.mixers.audit.state import AuditState
from fusionforge.mixers.audit.summary import build_report
from fusionforge.mixers.audit.target import Target
from fusionforge.mixers.audit.tokens import check_preset


@dataclass(frozen=True)
class AuditOptions:
    """How to read: exactly or from a sample, whether to follow outputs upstream, where to run."""

    sample: float | None = None  # fraction of each file's row groups; None: read everything (exact)
    seed: int = 0
    upstream: bool = False  # also audit the outputs these were made from (config.yaml "input")
    executor: str = "local"  # "local" (this process) or "ray"
    ray_address: str | None = None
    num_cpus: int | None = None
    vision_presets: tuple[str, ...] = ()  # count vision tokens with these presets (the first one is the primary)


def collect_state(
    paths: Sequence[str],
    options: AuditOptions = AuditOptions(),
    on_plan: Callable[[int], None] | None = None,
    on_unit: Callable[[Unit], None] | None = None,
) -> tuple[Discovery, AuditState]:
    """Discover and fold ``paths``; ``on_plan(rows)`` gets the rows to read, ``on_unit`` each finished unit."""
    for preset in options.vision_presets:
        check_preset(preset)
    found = discover(list(paths), options.sample, options.seed, options.upstream)
    if on_plan:
        on_plan(sum(u.rows for u in found.units))
    state = collect(
        found.units, options.executor, options.ray_address, options.num_cpus, on_unit, tuple(options.vision_presets)
    )
    return found, state


def run_audit(
    paths: Sequence[str],
    options: AuditOptions = AuditOptions(),
    target: Target | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_unit: Callable[[Unit], None] | None = None,
) -> dict[str, Any]:
    """The audit report of the outputs at ``paths`` (read as parts of one corpus)."""
    found, state = collect_state(paths, options, on_plan, on_unit)
    return build_report(found, state, target, options.sample, options.seed, tuple(options.vision_presets))
