"""Executors: the same stages over the same partitions, on Ray Data or in this process.

A job is ``Source`` (records split into partitions) -> stages -> a ``PartitionWriter`` called once
per partition with that partition's rows in input order. The Ray executor reads partitions with a
Datasource, applies each stage with ``map_batches(batch_format="pyarrow")`` (actor pools for
stateful stages) and regroups rows by partition with ``groupby().map_groups()``; the in-process
executor does the same in a loop. Because stages are row-wise and the writer sorts rows back into
input order, both produce byte-identical outputs (a test holds them to that).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import pyarrow as pa

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.progress import UNIT, Progress, quiet
from fusionforge.pipelines.core.ray_env import init_ray
from fusionforge.pipelines.core.source import PARTITION_COL, Source, in_order, tag_batches
from fusionforge.pipelines.core.stage import Stage, StageSpec

PartitionWriter = Callable[[int, pa.Table], dict[str, Any]]
EXECUTORS = ("ray", "local")


class Executor(ABC):
    """Runs a job; returns the writer's summaries in partition order."""

    @abstractmethod
    def run(
        self,
        source: Source,
        stages: Sequence[StageSpec],
        writer: PartitionWriter,
        partitions: Sequence[int] | None = None,
        progress: Progress = quiet,
    ) -> list[dict[str, Any]]:
        """Process ``partitions`` (default: all) and return one summary per partition (each also a ``UNIT`` event)."""


class InProcessExecutor(Executor):
    """Everything in this process, one partition after another: for tests, debugging and tiny jobs."""

    def run(self, source, stages, writer, partitions=None, progress=quiet):
        built = [spec.build() for spec in stages]
        summaries = []
        for partition in source.partitions() if partitions is None else partitions:
            batches = []
            for batch in tag_batches(partition, source.read(partition)):
                for stage, spec in zip(built, stages):
                    batch = _apply_in_slices(stage, batch, spec.effective_resources.batch_size)
                batches.append(batch)
            if not batches:
                continue
            summary = writer(partition, in_order(pa.concat_tables(batches, promote_options="permissive")))
            summaries.append(summary)
            progress(UNIT, summary)
        return summaries


def _apply_in_slices(stage: Stage, batch: pa.Table, batch_size: int) -> pa.Table:
    if batch.num_rows <= batch_size:
        return stage(batch)
    parts = [stage(batch.slice(i, batch_size)) for i in range(0, batch.num_rows, batch_size)]
    return pa.concat_tables(parts, promote_options="permissive")


class RayExecutor(Executor):
    """Ray Data: one read task per partition, map_batches per stage, map_groups per partition."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.ray = init_ray(address=address, num_cpus=num_cpus)

    def run(self, source, stages, writer, partitions=None, progress=quiet):
        wanted = list(source.partitions() if partitions is None else partitions)
        if not wanted:
            return []
        from fusionforge.pipelines.core.partition_datasource import PartitionDatasource

        ds = self.ray.data.read_datasource(PartitionDatasource(source, wanted), override_num_blocks=len(wanted))
        pools = sum(1 for spec in stages if spec.stage.stateful and not spec.effective_resources.num_gpus)
        for spec in stages:
            ds = self._apply(ds, spec, pools)
        shuffle_partitions = max(1, min(len(wanted), 4 * int(self.ray.cluster_resources().get("CPU", 1))))
        ds = ds.groupby(PARTITION_COL, num_partitions=shuffle_partitions).map_groups(
            _write_group, fn_kwargs={"writer": writer}, batch_format="pyarrow"
        )
        summaries = []
        for row in ds.iter_rows():
            summary = json.loads(row["summary"])
            summaries.append(summary)
            progress(UNIT, summary)
        return sorted(summaries, key=lambda s: s["partition"])

    def _apply(self, ds, spec: StageSpec, cpu_pools: int):
        res = spec.effective_resources
        common = {"batch_format": "pyarrow", "batch_size": res.batch_size, "num_cpus": res.num_cpus}
        if res.num_gpus:
            common["num_gpus"] = res.num_gpus
        if spec.stage.stateful:
            actor_cpus, size = self._pool(res, 1 if res.num_gpus else cpu_pools)
            common["num_cpus"] = actor_cpus
            return ds.map_batches(spec.stage, fn_constructor_kwargs=dict(spec.params), concurrency=(1, size), **common)
        return ds.map_batches(_apply_stateless, fn_kwargs={"spec": spec}, **common)

    def _pool(self, res, pools: int) -> tuple[float, int]:
        """CPUs per actor and the largest pool size for one of ``pools`` CPU actor pools.

        Every pool starts with one actor, and all pools together leave one CPU to the reads and
        writes: on a small machine several model stages get a fraction of a CPU each rather than
        waiting forever for CPUs that the other pools hold (a deadlock).
        """
        cpus = float(self.ray.cluster_resources().get("CPU", 1))
        budget = max(cpus - 1, 1.0) / max(pools, 1)
        actor_cpus = min(res.num_cpus, budget)
        fitting = max(1, int(budget // actor_cpus + 1e-9))
        return actor_cpus, min(res.concurrency, fitting) if res.concurrency else fitting


@lru_cache(maxsize=64)
def _built(spec: StageSpec) -> Stage:
    return spec.build()


def _apply_stateless(batch: pa.Table, spec: StageSpec) -> pa.Table:
    try:
        stage = _built(spec)
    except TypeError:  # unhashable params: build per batch (cheap for stateless stages)
        stage = spec.build()
    return stage(batch)


def _write_group(group: pa.Table, writer: PartitionWriter) -> pa.Table:
    partition = group.column(PARTITION_COL)[0].as_py()
    summary = writer(partition, in_order(group))
    summary.setdefault("partition", partition)
    return pa.table({"summary": [json.dumps(summary, sort_keys=True)]})


def make_executor(kind: str = "ray", address: str | None = None, num_cpus: int | None = None) -> Executor:
    """``"ray"`` (a local Ray, or the cluster at ``address``) or ``"local"`` (in-process): ``EXECUTORS``."""
    if kind == "local":
        return InProcessExecutor()
    if kind == "ray":
        return RayExecutor(address=address, num_cpus=num_cpus)
    raise ConfigError(f"unknown executor {kind!r}; use 'ray' or 'local'")
