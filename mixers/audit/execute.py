"""Fold the units of work in this process or as Ray tasks, merging partial states as they finish.

Only the small partial states travel (never record batches), and at most ``2 x CPUs`` units are in
flight on Ray, so the driver's memory is bounded by a few states and each worker's by one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fusionforge.mixers.audit.discover import Unit
from fusionforge.mixers.audit.state import AuditState, fold_unit
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.ray_env import init_ray

UnitCallback = Callable[[Unit], None]


def collect(
    units: Iterable[Unit],
    executor: str = "local",
    ray_address: str | None = None,
    num_cpus: int | None = None,
    on_unit: UnitCallback | None = None,
    presets: tuple[str, ...] = (),
) -> AuditState:
    """The merged state of every unit (vision tokens counted with ``presets``, if any)."""
    if executor == "local":
        state = AuditState()
        for unit in units:
            state.merge(fold_unit(unit, presets))
            if on_unit:
                on_unit(unit)
        return state
    if executor == "ray":
        return _collect_on_ray(list(units), ray_address, num_cpus, on_unit, presets)
    raise ConfigError(f"unknown executor {executor!r}; use 'ray' or 'local'")


def _collect_on_ray(
    units: list[Unit], address: str | None, num_cpus: int | None, on_unit: UnitCallback | None, presets: tuple[str, ...]
) -> AuditState:
    ray = init_ray(address=address, num_cpus=num_cpus)
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
            unit = pending.pop(ref)
            if on_unit:
                on_unit(unit)
    return state
