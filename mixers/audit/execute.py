"""Fold the units of work in this process or as Ray tasks, merging partial states as they finish.

Only the small partial states travel (never record batches), and at most ``2 x CPUs`` units are in
flight on Ray, so the driver's memory is bounded by a few states and each worker's by one batch.
"""

from __future__ import annotations

from collections.abc import Iterable

from fusionforge.mixers.audit.discover import Unit
from fusionforge.mixers.audit.state import AuditState, fold_unit
from fusionforge.pipelines.core.executor_choice import LOCAL, files_bytes
from fusionforge.pipelines.core.progress import UNIT, Progress, quiet
from fusionforge.pipelines.core.ray_env import init_ray
from fusionforge.pipelines.core.settings import RunSettings


def collect(
    units: Iterable[Unit],
    run: RunSettings,
    progress: Progress = quiet,
    presets: tuple[str, ...] = (),
) -> AuditState:
    """The merged state of every unit (vision tokens counted with ``presets``, if any).

    ``auto`` weighs the units' files: a small audit is read in this process, a large one on Ray.
    """
    units = list(units)
    run, _ = run.choose("audit", lambda: files_bytes(unit.path for unit in units))
    if run.executor == LOCAL:
        state = AuditState()
        for unit in units:
            state.merge(fold_unit(unit, presets))
            _done(progress, unit)
        return state
    return _collect_on_ray(units, run, progress, presets)


def _done(progress: Progress, unit: Unit) -> None:
    progress(UNIT, {"path": str(unit.path), "rows": unit.rows})


def _collect_on_ray(units: list[Unit], run: RunSettings, progress: Progress, presets: tuple[str, ...]) -> AuditState:
    ray = init_ray(address=run.ray_address, num_cpus=run.num_cpus)
    task = ray.remote(num_cpus=1, max_retries=2)(fold_unit)
    window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    state = AuditState()
    pending: dict = {}
    queue = list(reversed(units))
    while queue or pending:
        while queue and len(pending) < window:
            unit = queue.pop()
            pending[task.remote(unit, presets)] = unit
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            state.merge(ray.get(ref))
            _done(progress, pending.pop(ref))
    return state
