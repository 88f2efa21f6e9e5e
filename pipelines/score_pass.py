"""The score pass of top-fraction policies: score everything once, pick the threshold, reuse the scores.

For the stages kept by ``top_fraction``: the filter list up to the last of them runs over the input
(their policy off) and only their score columns (and errors they raised) are stored per input
partition in ``OUT/_work/scores/`` (atomic, one file per partition: a killed pass resumes where it
stopped). The exact threshold is then found
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
from fusionforge.pipelines.core.source import Source
from fusionforge.pipelines.core.stage import StageSpec, set_column
from fusionforge.pipelines.job import Job

SCORES_DIR = f"{WORK_DIR}/scores"


def part_path(folder: Path, partition: int) -> Path:
    return folder / f"part-{partition:06d}.parquet"


def write_scores(folder: str, stages: Sequence[str], partition: int, table: pa.Table) -> dict[str, Any]:
    """The score pass's writer: id, the ranked stages' columns, and the errors those stages raised."""
    prefixes = tuple(S.stage_column(name, "") for name in stages)
    errors = table.column(S.ERROR).to_pylist()
    own = [e if e is not None and e.startswith(tuple(f"{n}:" for n in stages)) else None for e in errors]
    keep = table.select([S.ID] + [c for c in table.column_names if c.startswith(prefixes)])
    keep = keep.append_column(S.ERROR, pa.array(own, pa.string()))
    with atomic_path(part_path(Path(folder), partition)) as tmp:
        pq.write_table(keep, tmp)
    return {"partition": partition, "rows": table.num_rows}


def run_score_pass(job: Job, specs: Sequence[StageSpec]) -> dict[str, dict[str, Any]]:
    """Score every record with the top-fraction stages; return each one's fraction and threshold.

    The stages up to the last ranked one run (ranked ones with their policy off), so a ranked stage
    sees what it would see in the writing pass (e.g. the language column it is gated on); only the
    ranked stages' columns are kept.
    """
    positions = [i for i, s in enumerate(specs) if s.params.get("top_fraction") is not None]
    ranked = [specs[i] for i in positions]
    scoring = [
        dataclasses.replace(s, params={**s.params, "top_fraction": None, "threshold": None}) if i in positions else s
        for i, s in enumerate(specs[: positions[-1] + 1])
    ]
    folder = job.out / SCORES_DIR
    todo = [p for p in job.source.partitions() if not part_path(folder, p).exists()]
    if todo:
        job.run.make_executor().run(
            job.source, scoring, partial(write_scores, str(folder), [s.name for s in ranked]), todo
        )
    result = {}
    for spec in ranked:
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
