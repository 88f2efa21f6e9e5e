"""How a step runs, apart from what it computes: one frozen ``RunSettings`` that every step's config holds.

Every config keeps its run settings in a field named ``run``. ``flat_config`` spreads them among
the config's own fields for ``config.yaml`` (one level of keys, as a reader of that file expects),
and ``build_config`` goes the other way: a config from flat values, each field taking the value of
its name and ``run`` the run settings' ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from fusionforge.pipelines.core.bounds import COUNT, SEED, check_bounds, within
from fusionforge.pipelines.core.config import DEFAULT_SEED
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.executor_choice import AUTO, CHOICES, ExecutorChoice, choose_executor
from fusionforge.pipelines.core.runner import Executor, make_executor

RUN = "run"  # the field of every config that holds its RunSettings
Config = TypeVar("Config")


@dataclass(frozen=True)
class RunSettings:
    """Where a step runs (executor, Ray cluster, CPUs), whether it continues a killed run, stops at the
    first bad record, and the seed of its random choices."""

    # "auto" (executor_choice.py: by the planned input, the CPUs and ray_address), "ray" (a local Ray,
    # or the cluster at ray_address) or "local" (this process)
    executor: str = AUTO
    ray_address: str | None = None
    num_cpus: int | None = within(COUNT, None)  # None: every CPU of this machine
    resume: bool = False
    strict: bool = False
    seed: int = within(SEED, DEFAULT_SEED)

    def __post_init__(self) -> None:
        unknown = f"unknown executor {self.executor!r}; use {', '.join(map(repr, CHOICES))}"
        check_bounds(self, None if self.executor in CHOICES else unknown)

    def choose(self, step: str, planned_bytes: Callable[[], int]) -> tuple[RunSettings, ExecutorChoice]:
        """These settings with the executor ``auto`` picks for ``step``, and why.

        ``planned_bytes`` (the input's size) is asked only when the choice depends on it.
        """
        weighed = self.executor == AUTO and not self.ray_address
        size = planned_bytes() if weighed else 0
        choice = choose_executor(self.executor, self.ray_address, step, size, self.num_cpus)
        return dataclasses.replace(self, executor=choice.chosen), choice

    def make_executor(self) -> Executor:
        """The executor (``choose`` first: ``auto`` is not one)."""
        return make_executor(self.executor, self.ray_address, self.num_cpus)


RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunSettings))


def flat_config(cfg: Any) -> dict[str, Any]:
    """``cfg``'s fields as plain data, its run settings' fields in place of ``run`` (what ``config.yaml`` records)."""
    flat: dict[str, Any] = {}
    for name, value in dataclasses.asdict(cfg).items():
        if name == RUN:
            flat.update(value)
        else:
            flat[name] = value
    return flat


def build_config(cls: type[Config], values: Mapping[str, Any]) -> Config:
    """A ``cls`` from flat ``values``: each field takes the value of its name, ``run`` the run settings' ones.

    Values that name neither are left out (a command's other options). Run settings not given keep
    the default of ``cls``'s ``run``.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    own = {k: v for k, v in values.items() if k in fields and k != RUN}
    if RUN in fields and RUN not in values:
        base = fields[RUN].default if fields[RUN].default is not dataclasses.MISSING else RunSettings()
        given = {k: v for k, v in values.items() if k in RUN_FIELDS and k not in own}
        own[RUN] = dataclasses.replace(base, **given)
    elif RUN in values:
        own[RUN] = values[RUN]
    return cls(**own)


def check_known(cls: type, values: Mapping[str, Any], what: str) -> None:
    """Refuse keys that are neither a field of ``cls`` nor a run setting, listing the known ones."""
    known = {f.name for f in dataclasses.fields(cls)} - {RUN} | set(RUN_FIELDS)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown {what} settings {unknown}; known: {', '.join(sorted(known))}")
