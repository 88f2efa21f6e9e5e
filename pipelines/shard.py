"""``fusionforge shard``: raw inputs -> WebDataset shards + manifest + ledger + report.

plan (partitions of input files) -> read -> ingest stages (probe media, finalise) -> per-partition
shard writer -> merge manifest and ledger parts -> report. Each partition is a unit of resume: its
marker is written after its shards and parts, and ``--resume`` skips partitions that have one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.bounds import COUNT, NON_NEGATIVE, POSITIVE, check_bounds, within
from fusionforge.pipelines.core.images import DEFAULT_MAX_PIXELS
from fusionforge.pipelines.core.io import WORK_DIR
from fusionforge.pipelines.core.progress import Progress, quiet
from fusionforge.pipelines.core.settings import RunSettings, flat_config
from fusionforge.pipelines.core.source import Source
from fusionforge.pipelines.core.stage import StageSpec
from fusionforge.pipelines.core.video import DEFAULT_TOOL_MEMORY_MB
from fusionforge.pipelines.job import Job, run_job
from fusionforge.pipelines.readers import read_file
from fusionforge.pipelines.readers.base import ReaderOptions, claim_id
from fusionforge.pipelines.readers.guard import records_table
from fusionforge.pipelines.readers.plan import Partition, parse_input, plan_fingerprint, plan_inputs
from fusionforge.pipelines.readers.warc_index import INDEX_FILE, build_index
from fusionforge.pipelines.stages.finalize import FinalizeRecords
from fusionforge.pipelines.stages.probe_media import VIDEO_CHECKS, ProbeMedia
from fusionforge.pipelines.writers.webdataset_writer import ShardLayout, sharding_problem


@dataclass(frozen=True)
class ShardConfig:
    """Everything that decides what ``shard`` writes; dumped to ``config.yaml`` next to the output."""

    inputs: tuple[str, ...]
    output: str
    format: str = "auto"
    shard_size_mb: float | None = within(NON_NEGATIVE, 256.0)  # 0 or None: no size limit
    shard_count: int | None = within(COUNT, None)
    partition_mb: float = within(POSITIVE, 512.0)
    shuffle: bool = False  # inside each partition, seeded by run.seed
    max_pixels: int = within(COUNT, DEFAULT_MAX_PIXELS)
    max_media_mb: float = within(POSITIVE, 2048.0)
    video_check: str = "decode"
    timeout_s: float = within(POSITIVE, 60.0)
    tool_memory_mb: float = within(POSITIVE, DEFAULT_TOOL_MEMORY_MB)
    reader: ReaderOptions = field(default_factory=ReaderOptions)
    run: RunSettings = RunSettings()

    def __post_init__(self) -> None:
        checks = None if self.video_check in VIDEO_CHECKS else f"video_check must be one of {', '.join(VIDEO_CHECKS)}"
        check_bounds(self, sharding_problem(self.shard_size_mb, self.shard_count), checks)

    def stages(self) -> list[StageSpec]:
        probe = {
            "max_pixels": self.max_pixels,
            "max_media_mb": self.max_media_mb,
            "video_check": self.video_check,
            "timeout_s": self.timeout_s,
            "strict": self.run.strict,
            "tool_memory_mb": self.tool_memory_mb,
        }
        return [StageSpec(ProbeMedia, probe), StageSpec(FinalizeRecords)]

    def output_settings(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run it continues."""
        keep = (
            "format",
            "shard_size_mb",
            "shard_count",
            "partition_mb",
            "shuffle",
            "seed",
            "max_pixels",
            "max_media_mb",
            "video_check",
            "reader",
        )
        return {k: v for k, v in flat_config(self).items() if k in keep}


WEB_INDEX_DIR = "web_index"  # under the output's _work/: the URL index of the run's WARC files
BATCH_BYTES = 64 * 1024**2  # a batch closes sooner when its rows carry this many media bytes


class IngestSource(Source):
    """Partitions of raw input files, read by the reader of each file's format.

    Record ids are unique across the whole input: a record whose id an earlier record of its
    partition uses gets its position-derived id (``claim_id``). Ids that *earlier partitions* use
    are only known once they have run; ``avoiding`` gives the source that also treats those as used
    (the job reruns the partitions concerned with it), so the outcome never depends on partitioning.
    WARC files are read together: ``prepare`` indexes the image captures of all of them once, so a
    page in one partition finds its images in any WARC of the run.
    """

    def __init__(
        self,
        partitions: list[Partition],
        options: ReaderOptions,
        batch_rows: int = 1024,
        taken: Mapping[int, frozenset[str]] | None = None,
        web_index: str | None = None,
    ) -> None:
        self._partitions = {p.index: p for p in partitions}
        self._options = options
        self._batch_rows = batch_rows
        self._taken = dict(taken or {})
        self._web_index = web_index

    def partitions(self) -> list[int]:
        return sorted(self._partitions)

    def planned_bytes(self) -> int:
        return sum(p.planned_bytes() for p in self._partitions.values())

    def prepare(self, work_dir: Path) -> None:
        warcs = [f.path for p in self.partitions() for f in self._partitions[p].files if f.format == "warc"]
        if not warcs:
            return
        target = work_dir / WEB_INDEX_DIR / INDEX_FILE
        if not target.exists():  # written whole or not at all: one left by a killed run is complete
            build_index(list(dict.fromkeys(warcs)), target)
        self._web_index = str(target)

    def avoiding(self, taken: Mapping[int, frozenset[str]]) -> IngestSource:
        partitions = list(self._partitions.values())
        return IngestSource(partitions, self._options, self._batch_rows, taken, self._web_index)

    def read(self, partition: int) -> Iterator[pa.Table]:
        rows: list[dict[str, Any]] = []
        copied = 0  # media bytes the rows carry (images copied out of gzip WARCs and PDFs, embedded bytes)
        used = set(self._taken.get(partition, ()))
        for file in self._partitions[partition].files:
            if file.format == "warc" and self._web_index is not None:
                file = replace(file, index=self._web_index)
            for row in read_file(file, self._options):
                claim_id(row, file, used)
                rows.append(row)
                copied += sum(len(item["bytes"]) for item in row.get(S.MEDIA) or () if item.get("bytes"))
                if len(rows) >= self._batch_rows or copied >= BATCH_BYTES:
                    yield records_table(rows, S.RECORD_SCHEMA, self._options.strict)
                    rows, copied = [], 0
        if rows:
            yield records_table(rows, S.RECORD_SCHEMA, self._options.strict)


def run_shard(cfg: ShardConfig, progress: Progress = quiet) -> dict[str, Any]:
    """Run the shard job; return the report (also written to ``report.json``)."""
    specs = [parse_input(text, cfg.format) for text in cfg.inputs]
    plan = plan_inputs(specs, cfg.partition_mb, output=cfg.output)
    partitions = plan.partitions
    shuffle_seed = cfg.run.seed if cfg.shuffle else None
    layout = ShardLayout(cfg.output, "shard", cfg.shard_size_mb, cfg.shard_count, shuffle_seed)
    job = Job(
        step="shard",
        layout=layout,
        source=IngestSource(partitions, cfg.reader),
        stages=cfg.stages(),
        fingerprint={"plan": plan_fingerprint(partitions), "settings": cfg.output_settings()},
        config=flat_config(cfg),
        run=cfg.run,
        extra_report={"skipped_inputs": [skipped.note() for skipped in plan.skipped]},
        scratch=(f"{WORK_DIR}/{WEB_INDEX_DIR}",),
    )
    return run_job(job, progress)
