"""The score pass of top-fraction policies: score everything once, pick the threshold, reuse the scores.

For each stage kept by ``top_fraction``: the stages run over the input (policy off) and only their
score columns (and any error) are stored per input partition in ``OUT/_work/scores/`` (atomic,
one file per partition: a killed pass resumes where it stopped). The exact threshold is then found
from those files (``filters/policy.py``), and the writing pass reads them back through
``ScoreJoinSource``, so each model runs once per record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fusionforge.filters.policy import top_fraction_threshold
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.io import WORK_DIR, atomic_path
from fusionforge.pipelines.core.runner import Source, make_executor
from fusionforge.pipelines.core.stage import StageSpec, set_column
from fusionforge.pipelines.job import Job

SCORES_DIR = f"{WORK_DIR}/scores"


def part_path(folder: Path, partition: int) -> Path:
    return folder / f"part-{partition:06d}.parquet"


def write_scores(folder: str, prefixes: Sequence[str], partition: int, table: pa.Table) -> dict[str, Any]:
    """The score pass's writer: id, error and the policy stages' columns of one partition."""
    keep = [S.ID, S.ERROR] + [c for c in table.column_names if c.startswith(tuple(prefixes))]
    with atomic_path(part_path(Path(folder), partition)) as tmp:
        pq.write_table(table.select(keep), tmp)
    return {"partition": partition, "rows": table.num_rows}


def run_score_pass(job: Job, specs: Sequence[StageSpec]) -> dict[str, dict[str, Any]]:
    """Score every record with the top-fraction stages; return each one's fraction and threshold."""
    folder = job.out / SCORES_DIR
    scoring = [dataclasses.replace(s, params={**s.params, "top_fraction": None, "threshold": None}) for s in specs]
    prefixes = [S.stage_column(s.name, "") for s in specs]
    todo = [p for p in job.source.partitions() if not part_path(folder, p).exists()]
    if todo:
        executor = make_executor(job.executor, job.ray_address, job.num_cpus)
        executor.run(job.source, scoring, partial(write_scores, str(folder), prefixes), todo)
    result = {}
    for spec in specs:
        column = S.stage_column(spec.name, getattr(spec.stage, "policy_field", "score"))
        fraction = spec.params["top_fraction"]
        threshold = top_fraction_threshold(partial(_column_chunks, folder, column), fraction)
        result[spec.name] = {"top_fraction": fraction, "threshold": threshold, "column": column}
    return result


def _column_chunks(folder: Path, column: str) -> Iterator[np.ndarray]:
    for path in sorted(folder.glob("part-*.parquet")):
        if column in pq.read_schema(path).names:
            yield pq.read_table(path, columns=[column]).column(column).to_numpy()


class ScoreJoinSource(Source):
    """Another source's partitions with the score pass's columns (and errors) joined by id."""

    def __init__(self, inner: Source, folder: str | Path) -> None:
        self.inner = inner
        self.folder = Path(folder)

    def partitions(self) -> list[int]:
        return self.inner.partitions()

    def read(self, partition: int) -> Iterator[pa.Table]:
        scores = pq.read_table(part_path(self.folder, partition))
        index = {rid: row for row, rid in enumerate(scores.column(S.ID).to_pylist())}
        for batch in self.inner.read(partition):
            rows = pa.array([index[rid] for rid in batch.column(S.ID).to_pylist()], pa.int64())
            joined = scores.take(rows)
            for name in joined.column_names:
                if name not in (S.ID, S.ERROR):
                    batch = set_column(batch, name, joined.column(name))
            batch = set_column(batch, S.ERROR, pc.coalesce(batch.column(S.ERROR), joined.column(S.ERROR)))
            yield batch
