"""The library entry points: collect the state of some outputs, or run the whole audit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fusionforge.mixers.audit.discover import Discovery, discover
from fusionforge.mixers.audit.execute import collect
from fusionforge.mixers.audit.state import AuditState
from fusionforge.mixers.audit.summary import build_report
from fusionforge.mixers.audit.target import Target
from fusionforge.mixers.audit.tokens import check_preset
from fusionforge.pipelines.core.bounds import POSITIVE_FRACTION, check_bounds, within
from fusionforge.pipelines.core.progress import Progress, plan, quiet
from fusionforge.pipelines.core.settings import RunSettings


@dataclass(frozen=True)
class AuditOptions:
    """How to read: exactly or from a sample, whether to follow outputs upstream, where to run."""

    sample: float | None = within(POSITIVE_FRACTION, None)  # fraction of each file's row groups; None: all (exact)
    upstream: bool = False  # also audit the outputs these were made from (config.yaml "input")
    vision_presets: tuple[str, ...] = ()  # count vision tokens with these presets (the first one is the primary)
    run: RunSettings = RunSettings(executor="local")  # run.seed: --sample's choice of row groups

    def __post_init__(self) -> None:
        check_bounds(self)
        for preset in self.vision_presets:
            check_preset(preset)


def collect_state(
    paths: Sequence[str], options: AuditOptions = AuditOptions(), progress: Progress = quiet
) -> tuple[Discovery, AuditState]:
    """Discover and fold ``paths``; ``progress`` hears the rows to read (the plan) and each finished unit's rows."""
    found = discover(list(paths), options.sample, options.run.seed, options.upstream)
    plan(progress, sum(u.rows for u in found.units))
    return found, collect(found.units, options.run, progress, tuple(options.vision_presets))


def run_audit(
    paths: Sequence[str],
    options: AuditOptions = AuditOptions(),
    target: Target | None = None,
    progress: Progress = quiet,
) -> dict[str, Any]:
    """The audit report of the outputs at ``paths`` (read as parts of one corpus)."""
    found, state = collect_state(paths, options, progress)
    return build_report(found, state, target, options.sample, options.run.seed, tuple(options.vision_presets))
