"""The audit's partial state: per step, the states of each file kind; folding one unit, merging two.

``fold_unit`` turns one unit of work (whole row groups of one file) into an ``AuditState``;
``AuditState.merge`` adds two. Merging is associative and commutative, so units can be folded in any
order, on any worker, and an audit of a whole equals the merge of the audits of its parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.mixers.audit.clusters import ClusterState, fold_clusters_file
from fusionforge.mixers.audit.discover import (
    CLUSTERS,
    LEDGER,
    MANIFEST,
    PLAN,
    REJECTED,
    RFT_PROMPTS,
    RFT_SAMPLES,
    SFT,
    Unit,
)
from fusionforge.mixers.audit.ledger_stats import LedgerState
from fusionforge.mixers.audit.plan import PlanState
from fusionforge.mixers.audit.posttraining import RFT_PROMPT_READ, RFT_SAMPLE_READ, SFT_READ, RftState, SftState
from fusionforge.mixers.audit.records import RecordsState

BATCH_BYTES = 16 * 1024**2  # decoded bytes per batch: bounds memory whatever the row size
READ_BUFFER = 1024**2  # stream column chunks page by page (not a whole row group at once)
_UNUSED_RECORD_COLUMNS = {"segments", "members", "content_hash", "input_file", "input_position", "shard", "key"}
_MEDIA_LEAVES = {"kind", "size", "width", "height", "duration_s", "n_frames"}


@dataclass
class StepState:
    """Everything read for one step (shard, dedupe, filter, pack, ...)."""

    kept: RecordsState = field(default_factory=RecordsState)
    rejected: RecordsState = field(default_factory=RecordsState)
    ledger: LedgerState = field(default_factory=LedgerState)
    clusters: ClusterState = field(default_factory=ClusterState)
    plan: PlanState = field(default_factory=PlanState)
    sft: SftState = field(default_factory=SftState)
    rft: RftState = field(default_factory=RftState)
    files: dict[str, int] = field(default_factory=dict)  # kind -> units read

    def merge(self, other: StepState) -> StepState:
        self.kept.merge(other.kept)
        self.rejected.merge(other.rejected)
        self.ledger.merge(other.ledger)
        self.clusters.merge(other.clusters)
        self.plan.merge(other.plan)
        self.sft.merge(other.sft)
        self.rft.merge(other.rft)
        for kind, n in other.files.items():
            self.files[kind] = self.files.get(kind, 0) + n
        return self


@dataclass
class AuditState:
    steps: dict[str, StepState] = field(default_factory=dict)
    rows_read: int = 0

    def step(self, name: str) -> StepState:
        return self.steps.setdefault(name, StepState())

    def merge(self, other: AuditState) -> AuditState:
        for name, state in other.steps.items():
            self.step(name).merge(state)
        self.rows_read += other.rows_read
        return self


def fold_unit(unit: Unit, presets: tuple[str, ...] = ()) -> AuditState:
    """Read one unit of work and fold it into a fresh state (vision tokens counted with ``presets``)."""
    state = AuditState()
    step = state.step(unit.step)
    step.kept.presets = step.rejected.presets = tuple(presets)
    step.files[unit.kind] = 1
    state.rows_read = unit.rows
    if unit.kind == CLUSTERS:
        step.clusters = fold_clusters_file(unit.path)
        return state
    parquet = pq.ParquetFile(unit.path, pre_buffer=False, buffer_size=READ_BUFFER)
    columns = _columns(parquet, unit.kind)
    for batch in parquet.iter_batches(
        batch_size=_batch_rows(parquet, unit.row_groups), row_groups=list(unit.row_groups), columns=columns
    ):
        _fold_batch(step, unit, batch)
    if unit.weight != 1.0:
        step.kept, step.rejected = step.kept.scaled(unit.weight), step.rejected.scaled(unit.weight)
        step.ledger, step.plan = step.ledger.scaled(unit.weight), step.plan.scaled(unit.weight)
    return state


def _fold_batch(step: StepState, unit: Unit, batch: pa.RecordBatch) -> None:
    if unit.kind == MANIFEST:
        step.kept.fold(batch, kept=True)
    elif unit.kind == REJECTED:
        step.rejected.fold(batch, kept=False)
    elif unit.kind == LEDGER:
        step.ledger.fold(batch, unit.step)
    elif unit.kind == PLAN:
        step.plan.fold(batch, unit.seq_len)
    elif unit.kind == SFT:
        step.sft.fold(batch, Path(unit.path).stem)  # the split: train.parquet, val.parquet
    elif unit.kind == RFT_PROMPTS:
        step.rft.fold_prompts(batch)
    elif unit.kind == RFT_SAMPLES:
        step.rft.fold_samples(batch)


def _columns(parquet: pq.ParquetFile, kind: str) -> list[str] | None:
    """Leaf columns to decode: records skip what no figure needs (segments, member tables, media URIs), SFT sets
    their messages."""
    wanted = {SFT: SFT_READ, RFT_PROMPTS: RFT_PROMPT_READ, RFT_SAMPLES: RFT_SAMPLE_READ}.get(kind)
    if wanted is not None:
        return [name for name in wanted if name in parquet.schema_arrow.names]
    if kind not in (MANIFEST, REJECTED):
        return None
    out = []
    for i in range(parquet.metadata.num_columns):
        path = parquet.schema.column(i).path
        top, leaf = path.split(".")[0], path.split(".")[-1]
        if top in _UNUSED_RECORD_COLUMNS or (top == "media" and leaf not in _MEDIA_LEAVES):
            continue
        out.append(path)
    return out


def _batch_rows(parquet: pq.ParquetFile, row_groups: tuple[int, ...]) -> int:
    """Rows per batch so that a decoded batch is about ``BATCH_BYTES``, between 1,024 and 65,536 rows.

    With buffered (page by page) reads, memory follows the batch, not the row group: a file written as
    one huge row group is read in the same bounded memory as one written in small ones.
    """
    meta = parquet.metadata
    rows = sum(meta.row_group(i).num_rows for i in row_groups) or 1
    size = sum(meta.row_group(i).total_byte_size for i in row_groups)
    return int(min(65536, max(1024, BATCH_BYTES * rows // max(size, 1))))
