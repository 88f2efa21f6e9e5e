"""Executors: the same stages over the same partitions, in Ray tasks, on Ray Data or in this process.

A job is ``Source`` (records split into partitions) -> stages -> a ``PartitionWriter`` called once
per partition with that partition's rows in input order. The in-process executor does that in a
loop (``process_partition``). On Ray, a job whose stages are all stateless and CPU-only (nearly
every step) runs the same ``process_partition`` as one plain task per partition: read, the stages
in slices, the writer, and only the small summary goes back; at most ``window`` tasks (twice the
cluster's CPUs) are submitted at a time, so the driver holds a bounded number of references
whatever the number of partitions, and rows never cross the object store. A job with a stateful
(model-holding) or GPU stage runs on Ray Data instead: one read task per partition
(``ray_reads.py``), ``map_batches(batch_format="pyarrow")`` per stage (actor pools for stateful
stages) and ``groupby().map_groups()`` to hand each writer its partition's rows. Because stages are
row-wise and the writer sorts rows back into input order, every path writes the same bytes (tests
hold them to that).

A Ray worker that dies (killed by its own data: a native crash, the OOM killer) is not retried
forever, which is Ray Data's default: tasks get ``TASK_RETRIES`` retries, and actors are not
restarted (Ray Data hands its actors their constructor arguments through the object store, and Ray
prints an ERROR for every pool that may restart with them; the partition rerun below covers a dead
actor as it covers a dead task). A partition task that still dies is known by its task; on Ray Data,
whose run fails as a whole, the executor finds the partitions at fault by running halves of the
unfinished ones again. A partition that fails alone has its records failed (``error`` =
``worker_died: ...``, the stages skip failed rows) and written like any other, so the run ends
with every other partition kept and one ledger row per record. (A stage that kills the process of
the in-process executor ends that process: run such stages on Ray, or keep the hostile part in a
subprocess, as the sandbox and the RFT verifier pool do.)
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError, SchemaError
from fusionforge.pipelines.core.executor_choice import LOCAL, RAY
from fusionforge.pipelines.core.progress import UNIT, Progress, quiet
from fusionforge.pipelines.core.ray_env import TASK_RETRIES, init_ray, remote_args_allowed
from fusionforge.pipelines.core.ray_reads import read_partitions
from fusionforge.pipelines.core.ray_tasks import default_window, windowed
from fusionforge.pipelines.core.source import PARTITION_COL, Source, in_order, tag_batches
from fusionforge.pipelines.core.stage import Stage, StageSpec

PartitionWriter = Callable[[int, pa.Table], dict[str, Any]]


class Executor(ABC):
    """Runs a job; returns the partitions that held rows (their summaries go to the writer and to ``progress``)."""

    @abstractmethod
    def run(
        self,
        source: Source,
        stages: Sequence[StageSpec],
        writer: PartitionWriter,
        partitions: Sequence[int] | None = None,
        progress: Progress = quiet,
    ) -> list[int]:
        """Process ``partitions`` (default: all); return the partitions that held rows, in the order run (Ray: sorted).

        Each partition's summary goes to ``writer`` (which makes it the partition's marker) and to
        ``progress`` as a ``UNIT`` event; it is not kept here: held for every partition, the summaries
        of pack's counting (a token histogram each) grew the driver by tens of MB at 515 shards.
        """


class InProcessExecutor(Executor):
    """Everything in this process, one partition after another: for tests, debugging and tiny jobs."""

    def run(self, source, stages, writer, partitions=None, progress=quiet):
        built = [spec.build() for spec in stages]
        done = []
        for partition in source.partitions() if partitions is None else partitions:
            summary = process_partition(source, partition, stages, built, writer)
            if summary is not None:
                done.append(partition)
                progress(UNIT, summary)
        return done


def process_partition(
    source: Source, partition: int, specs: Sequence[StageSpec], built: Sequence[Stage], writer: PartitionWriter
) -> dict[str, Any] | None:
    """Read one partition, apply the built stages batch by batch (in slices of each stage's batch size),
    write it in input order; its summary, or None when the partition holds no rows."""
    batches = []
    for batch in tag_batches(partition, source.read(partition)):
        for stage, spec in zip(built, specs):
            batch = _apply_in_slices(stage, batch, spec.effective_resources.batch_size)
        batches.append(batch)
    if not batches:
        return None
    summary = writer(partition, in_order(pa.concat_tables(batches, promote_options="permissive")))
    summary.setdefault("partition", partition)
    return summary


def _apply_in_slices(stage: Stage, batch: pa.Table, batch_size: int) -> pa.Table:
    if batch.num_rows <= batch_size:
        return stage(batch)
    parts = [stage(batch.slice(i, batch_size)) for i in range(0, batch.num_rows, batch_size)]
    return pa.concat_tables(parts, promote_options="permissive")


class RayExecutor(Executor):
    """One Ray task per partition for jobs of stateless CPU stages; Ray Data (actor pools, GPUs) otherwise.

    ``window``: the most partition tasks submitted and not yet finished (default: twice the cluster's CPUs).
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None, window: int | None = None) -> None:
        self.ray = init_ray(address=address, num_cpus=num_cpus)
        self.window = window

    def run(self, source, stages, writer, partitions=None, progress=quiet):
        wanted = list(source.partitions() if partitions is None else partitions)
        done: set[int] = set()
        if all(as_task(spec) for spec in stages):
            self._run_tasks(source, list(stages), writer, wanted, progress, done)
        else:
            self._run_isolating(source, list(stages), writer, wanted, progress, done)
        return sorted(done)

    def _run_tasks(self, source, stages, writer, parts, progress: Progress, done) -> None:
        """Each partition read, processed and written by one task, at most ``window`` of them submitted at
        once (the driver holds that many references, not one per partition); summaries arrive as
        partitions finish. A partition whose task died ``TASK_RETRIES + 1`` times is written through
        ``FailedPartition`` by a task of its own."""
        ray = self.ray
        cpus = max((spec.effective_resources.num_cpus for spec in stages), default=1.0)
        task = ray.remote(_partition_task).options(num_cpus=cpus, max_retries=TASK_RETRIES)
        job = ray.put((source, stages, writer))

        def submit(item: tuple[int, str | None]) -> Any:
            partition, failed = item
            if failed is None:
                return task.remote(job, partition)
            return task.remote((FailedPartition(source, partition, failed), stages, writer), partition)

        todo: deque[tuple[int, str | None]] = deque((p, None) for p in parts)  # (partition, why its records fail)
        for (partition, failed), ref in windowed(ray, submit, todo, self.window or default_window(ray)):
            try:
                summary = ray.get(ref)
            except Exception as exc:
                if failed is not None or not worker_died(exc):
                    raise
                todo.append((partition, _died_reason(exc)))
                continue
            if summary is not None:
                done.add(partition)
                progress(UNIT, summary)

    def _run_isolating(self, source, stages, writer, parts, progress: Progress, done) -> None:
        """Run ``parts``; if a worker death ends the run, run the unfinished halves again, down to one partition."""
        try:
            self._run_once(source, stages, writer, parts, progress, done)
        except Exception as exc:
            if not worker_died(exc):
                raise
            left = [p for p in parts if p not in done]
            if len(left) > 1:
                half = len(left) // 2
                self._run_isolating(source, stages, writer, left[:half], progress, done)
                self._run_isolating(source, stages, writer, left[half:], progress, done)
            elif left:
                reason = _died_reason(exc)
                self._run_once(FailedPartition(source, left[0], reason), stages, writer, left, progress, done)

    def _run_once(self, source, stages, writer, parts, progress: Progress, done) -> None:
        if not parts:
            return
        ds = read_partitions(self.ray, source, parts)
        pools = sum(1 for spec in stages if spec.stage.stateful and not spec.effective_resources.num_gpus)
        shuffle_partitions = max(1, min(len(parts), 4 * int(self.ray.cluster_resources().get("CPU", 1))))
        with remote_args_allowed():
            for spec in stages:
                ds = self._apply(ds, spec, pools)
            ds = ds.groupby(PARTITION_COL, num_partitions=shuffle_partitions).map_groups(
                _write_group, fn_kwargs={"writer": writer}, batch_format="pyarrow", max_retries=TASK_RETRIES
            )
        for row in ds.iter_rows():
            summary = json.loads(row["summary"])
            done.add(summary["partition"])
            progress(UNIT, summary)

    def _apply(self, ds, spec: StageSpec, cpu_pools: int):
        res = spec.effective_resources
        common = {"batch_format": "pyarrow", "batch_size": res.batch_size, "num_cpus": res.num_cpus}
        if res.num_gpus:
            common["num_gpus"] = res.num_gpus
        if spec.stage.stateful:
            actor_cpus, size = self._pool(res, 1 if res.num_gpus else cpu_pools)
            common["num_cpus"] = actor_cpus
            return ds.map_batches(
                spec.stage,
                fn_constructor_kwargs=dict(spec.params),
                concurrency=(1, size),
                max_restarts=0,  # see the module docstring: a restart would need Ray Data's constructor
                max_task_retries=0,  # arguments kept in the object store, which Ray warns about per pool
                **common,
            )
        return ds.map_batches(_apply_stateless, fn_kwargs={"spec": spec}, max_retries=TASK_RETRIES, **common)

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


_BUILT: dict[str, Stage] = {}  # this worker process's built stateless stages, by what their spec says
_BUILT_LIMIT = 64


def _built(spec: StageSpec) -> Stage:
    """One built stage per distinct spec per worker process, so a stateless stage's ``__init__`` (a block
    list read, an array loaded) runs once, not per batch. Keyed by the spec's repr (params hold lists and
    dicts, so a spec is not hashable); a param without a faithful repr only costs a rebuild. The
    in-process executor reuses one instance the same way."""
    key = repr((spec.stage.__module__, spec.stage.__qualname__, spec.params, spec.resources))
    stage = _BUILT.get(key)
    if stage is None:
        if len(_BUILT) >= _BUILT_LIMIT:
            _BUILT.clear()
        stage = _BUILT[key] = spec.build()
    return stage


def _apply_stateless(batch: pa.Table, spec: StageSpec) -> pa.Table:
    return _built(spec)(batch)


def as_task(spec: StageSpec) -> bool:
    """Whether a stage can run inside a plain partition task: stateless (no actor pool) and CPU-only."""
    return not spec.stage.stateful and not spec.effective_resources.num_gpus


def _partition_task(job: tuple[Source, list[StageSpec], PartitionWriter], partition: int) -> dict[str, Any] | None:
    source, specs, writer = job
    return process_partition(source, partition, specs, [_built(spec) for spec in specs], writer)


def _died_reason(exc: BaseException) -> str:
    return (
        f"worker_died: the worker processing this partition died {TASK_RETRIES + 1} times "
        f"({type(exc).__name__}); its records were not processed"
    )


def _write_group(group: pa.Table, writer: PartitionWriter) -> pa.Table:
    partition = group.column(PARTITION_COL)[0].as_py()
    summary = writer(partition, in_order(group))
    summary.setdefault("partition", partition)
    return pa.table({"summary": [json.dumps(summary, sort_keys=True)]})


def worker_died(exc: BaseException) -> bool:
    """True when Ray gave up on a task because its worker process died (not for an exception the code raised)."""
    import ray.exceptions as rex

    seen: BaseException | None = exc
    for _ in range(8):  # Ray Data may wrap the error; look down the chain a little
        if seen is None:
            return False
        if isinstance(seen, rex.RayActorError) and not seen.actor_init_failed:
            return True
        if isinstance(seen, (rex.WorkerCrashedError, rex.OutOfMemoryError, rex.NodeDiedError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class FailedPartition(Source):
    """One partition of ``source`` whose records all carry ``reason`` as their error: what is written for a
    partition whose worker kept dying. Needs a source whose rows have an ``error`` column."""

    def __init__(self, source: Source, partition: int, reason: str) -> None:
        self._source, self._partition, self._reason = source, partition, reason

    def partitions(self) -> list[int]:
        return [self._partition]

    def read(self, partition: int) -> Iterator[pa.Table]:
        for batch in self._source.read(partition):
            if S.ERROR not in batch.column_names:  # no way to fail these rows one by one: the run ends
                raise SchemaError(f"partition {partition}: {self._reason}, and its rows have no error column")
            reasons = pa.array([self._reason] * batch.num_rows, pa.string())
            errors = pc.coalesce(batch.column(S.ERROR), reasons)
            yield batch.set_column(batch.column_names.index(S.ERROR), S.ERROR, errors)


def make_executor(kind: str = RAY, address: str | None = None, num_cpus: int | None = None) -> Executor:
    """``"ray"`` (a local Ray, or the cluster at ``address``) or ``"local"`` (this process); not ``auto``."""
    if kind == LOCAL:
        return InProcessExecutor()
    if kind == RAY:
        return RayExecutor(address=address, num_cpus=num_cpus)
    raise ConfigError(f"executor {kind!r} cannot run a job; use 'ray' or 'local' (choose 'auto' first)")
