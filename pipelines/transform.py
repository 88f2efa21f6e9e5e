"""Run stages over an earlier fusionforge output and write a new one (what dedupe and filter build on).

The input is a folder with ``manifest.parquet`` (any shard-writing step's output). Each input shard is
one partition, so the output keeps the input's sharding and each output shard holds a subset of one
input shard, in the same order. Media bytes are copied from the input shards by byte range; records
a stage drops go to ``rejected/`` with every score column, and the ledger accounts for each input row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.bounds import COUNT, NON_NEGATIVE, check_bounds, within
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.executor_choice import ExecutorChoice, files_bytes
from fusionforge.pipelines.core.lifecycle import SUCCESS
from fusionforge.pipelines.core.progress import Progress, quiet
from fusionforge.pipelines.core.settings import RunSettings, flat_config
from fusionforge.pipelines.core.source import Source
from fusionforge.pipelines.core.stage import StageSpec
from fusionforge.pipelines.job import Job, run_job
from fusionforge.pipelines.writers.manifest import MANIFEST
from fusionforge.pipelines.writers.webdataset_writer import MANIFEST_EXTRA, ShardLayout, sharding_problem

LOCATION_COLUMNS = tuple(name for name, _ in MANIFEST_EXTRA)


@dataclass(frozen=True)
class TransformConfig:
    """Input and output folders, sharding of the output and how to run."""

    input: str
    output: str
    shard_size_mb: float | None = within(NON_NEGATIVE, 256.0)  # 0 or None: no size limit
    shard_count: int | None = within(COUNT, None)
    run: RunSettings = RunSettings()

    def __post_init__(self) -> None:
        check_bounds(self, sharding_problem(self.shard_size_mb, self.shard_count))


class ManifestSource(Source):
    """The records of an output folder, one partition per input shard, media URIs made absolute."""

    def __init__(self, folder: str | Path, columns: Sequence[str] | None = None) -> None:
        self.folder = Path(folder).resolve()
        manifest = self.folder / MANIFEST
        if not manifest.exists():
            raise ConfigError(f"{folder} has no {MANIFEST}; give the output folder of shard, dedupe or filter")
        self.path = str(manifest)
        self.columns = list(columns) if columns is not None else None
        self.shards, self._ranges = shard_runs(manifest)
        if len(set(self.shards)) != len(self.shards):
            raise ConfigError(f"{manifest}: rows of one shard are not contiguous; was it written by fusionforge?")

    def partitions(self) -> list[int]:
        return list(range(len(self.shards)))

    def planned_bytes(self) -> int:
        return files_bytes(self.folder / shard for shard in self.shards)

    def row_range(self, partition: int) -> tuple[int, int]:
        """The manifest rows ``[start, stop)`` of one partition (its input shard)."""
        return self._ranges[partition]

    def read(self, partition: int) -> Iterator[pa.Table]:
        start, stop = self._ranges[partition]
        parquet = pq.ParquetFile(self.path)
        offset = 0
        for group in range(parquet.metadata.num_row_groups):
            rows = parquet.metadata.row_group(group).num_rows
            if offset + rows > start and offset < stop:
                table = parquet.read_row_group(group, columns=self.columns)
                table = table.slice(max(0, start - offset), min(stop, offset + rows) - max(start, offset))
                yield self._absolute(table.drop_columns([c for c in LOCATION_COLUMNS if c in table.column_names]))
            offset += rows
            if offset >= stop:
                break

    def _absolute(self, table: pa.Table) -> pa.Table:
        if S.MEDIA not in table.column_names:
            return table
        media = table.column(S.MEDIA).to_pylist()
        for items in media:
            for item in items or []:
                if item["uri"] and not Path(item["uri"]).is_absolute():
                    item["uri"] = str(self.folder / item["uri"])
        index = table.column_names.index(S.MEDIA)
        return table.set_column(index, S.MEDIA, pa.array(media, pa.list_(S.MEDIA_TYPE)))


def shard_runs(manifest: Path, batch_rows: int = 65_536) -> tuple[list[str], list[tuple[int, int]]]:
    """Each run of equal ``shard`` values in ``manifest`` and its rows ``[start, stop)``, in order.

    Read batch by batch and compared with Arrow, never as one Python string per row: at a million
    rows that list left about 100 MB more in every process that opened the folder.
    """
    shards: list[str] = []
    ranges: list[tuple[int, int]] = []
    offset = 0
    for batch in pq.ParquetFile(manifest).iter_batches(batch_size=batch_rows, columns=["shard"], use_threads=False):
        column, n = batch.column(0), batch.num_rows
        if n == 0:
            continue
        if column.null_count:
            raise ConfigError(f"{manifest}: {column.null_count} rows without a shard; was it written by fusionforge?")
        changed = pc.not_equal(column.slice(1), column.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        starts = np.r_[0, np.flatnonzero(changed) + 1]
        stops = np.r_[starts[1:], n]
        for shard, start, stop in zip(column.take(pa.array(starts)).to_pylist(), starts.tolist(), stops.tolist()):
            if start == 0 and shards and shards[-1] == shard:  # the previous batch's last run goes on
                ranges[-1] = (ranges[-1][0], offset + stop)
            else:
                shards.append(shard)
                ranges.append((offset + start, offset + stop))
        offset += n
    return shards, ranges


def transform_fingerprint(cfg: TransformConfig, settings: dict[str, Any]) -> dict[str, Any]:
    """What a resumed run must share with the run it continues: the input's identity, the settings, the sharding."""
    input_report = Path(cfg.input) / SUCCESS
    identity = {
        "input": str(Path(cfg.input).resolve()),
        "input_finished": input_report.stat().st_mtime_ns if input_report.exists() else None,
    }
    return {"input": identity, "settings": settings, "sharding": [cfg.shard_size_mb, cfg.shard_count]}


def run_transform(
    cfg: TransformConfig,
    step: str,
    stages: Sequence[StageSpec],
    settings: dict[str, Any],
    progress: Progress = quiet,
    source: Source | None = None,
    extra_report: dict[str, Any] | None = None,
    complete_report: Callable[[dict[str, Any]], None] | None = None,
    scratch: tuple[str, ...] = (),
    choice: ExecutorChoice | None = None,
) -> dict[str, Any]:
    """Apply ``stages`` to every record of ``cfg.input`` and write ``cfg.output``.

    ``settings`` are the step's own options; with the input's identity they form the fingerprint a
    resumed run must match. ``source`` replaces the default ``ManifestSource`` (e.g. one that joins
    per-record decisions computed by a global step). ``complete_report`` and ``scratch`` are the
    ``Job``'s, and ``choice`` the executor a step that ran work of its own already chose (``cfg.run``'s).
    """
    job = transform_job(cfg, step, stages, settings, source, extra_report, complete_report, scratch, choice)
    return run_job(job, progress)


def transform_job(
    cfg: TransformConfig,
    step: str,
    stages: Sequence[StageSpec],
    settings: dict[str, Any],
    source: Source | None = None,
    extra_report: dict[str, Any] | None = None,
    complete_report: Callable[[dict[str, Any]], None] | None = None,
    scratch: tuple[str, ...] = (),
    choice: ExecutorChoice | None = None,
) -> Job:
    """The ``Job`` that ``run_transform`` runs (for steps that do work of their own before it, under its plan),
    its executor chosen."""
    source = source or ManifestSource(cfg.input)
    layout = ShardLayout(cfg.output, step, cfg.shard_size_mb, cfg.shard_count)
    return Job(
        step=step,
        layout=layout,
        source=source,
        stages=list(stages),
        fingerprint=transform_fingerprint(cfg, settings),
        config={**flat_config(cfg), "step": step, **settings},
        run=cfg.run,
        extra_report=extra_report or {},
        complete_report=complete_report,
        scratch=scratch,
        choice=choice,
    ).chosen()
