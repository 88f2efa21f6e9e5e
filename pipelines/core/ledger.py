"""The ledger: every input record's fate (kept, dropped with a reason, failed with an error).

Each run writes one ledger row per input record, so ``inputs == kept + dropped + failed`` holds
by construction and can be checked by anyone reading ``ledger.parquet``. A step that derives records
(scene clips of a video) adds one row per derived record, with ``parent_id`` set; then
``inputs + derived == kept + dropped + failed``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fusionforge.pipelines.core import schema as S

KEPT, DROPPED, FAILED = "kept", "dropped", "failed"
_DETAIL = r"(?s): .*"  # "{stage}:{reason}: detail", the detail possibly over several lines (ffprobe's)
_POINTER = r"(?s)(_dup_of):.*"  # "dedupe:near_dup_of:<kept id>"
LEDGER_SCHEMA = pa.schema(
    [
        (S.ID, pa.string()),
        (S.SOURCE, pa.string()),
        (S.MODALITY, pa.string()),
        (S.INPUT_FILE, pa.string()),
        (S.INPUT_POSITION, pa.int64()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("step", pa.string()),
        (S.PARENT_ID, pa.string()),
    ]
)


def status_of(table: pa.Table) -> pa.Array:
    """``failed`` where ``error`` is set, else ``dropped`` where ``drop_reason`` is set, else ``kept``."""
    failed = table.column(S.ERROR).is_valid()
    dropped = table.column(S.DROP_REASON).is_valid()
    return pc.if_else(failed, FAILED, pc.if_else(dropped, DROPPED, KEPT))


def kept_mask(table: pa.Table) -> pa.Array:
    return pc.equal(status_of(table), KEPT)


def ledger_rows(table: pa.Table, step: str) -> pa.Table:
    """The ledger rows of a processed batch."""
    reason = pc.coalesce(table.column(S.ERROR), table.column(S.DROP_REASON))
    return pa.table(
        {
            S.ID: table.column(S.ID),
            S.SOURCE: table.column(S.SOURCE),
            S.MODALITY: table.column(S.MODALITY),
            S.INPUT_FILE: table.column(S.INPUT_FILE),
            S.INPUT_POSITION: table.column(S.INPUT_POSITION),
            "status": status_of(table),
            "reason": reason,
            "step": pa.array([step] * table.num_rows, pa.string()),
            S.PARENT_ID: table.column(S.PARENT_ID)
            if S.PARENT_ID in table.column_names
            else pa.nulls(table.num_rows, pa.string()),
        },
        schema=LEDGER_SCHEMA,
    )


def reason_kinds(reasons: pa.Array) -> pa.Array:
    """Each drop reason or error without its detail (``: ...``) or the record it points at (``_dup_of:<id>``).

    Counts keyed by these stay as many as the kinds of reasons: keyed by the whole reason, dedupe's
    ``dedupe:near_dup_of:<kept id>`` made one entry per kept copy (24,347 at a million records).
    Whitespace left at either end is trimmed.
    """
    kinds = pc.replace_substring_regex(pc.replace_substring_regex(reasons, _DETAIL, ""), _POINTER, r"\1")
    return pc.utf8_trim_whitespace(kinds)


def ledger_summary(path: str | Path) -> dict[str, Any]:
    """Counts by status, by kind of reason (``reason_kinds``), by source x kind and by source x modality x
    status, streamed."""
    totals = {KEPT: 0, DROPPED: 0, FAILED: 0}
    reasons: dict[str, int] = {}
    by_source: dict[str, dict[str, int]] = {}
    by_group: dict[str, dict[str, int]] = {}
    derived = 0
    names = set(pq.read_schema(path).names)
    columns = [S.SOURCE, S.MODALITY, "status", "reason"] + ([S.PARENT_ID] if S.PARENT_ID in names else [])
    for batch in pq.ParquetFile(path).iter_batches(columns=columns, batch_size=65536):
        arrays = [batch.column(i) for i in range(batch.num_columns)]
        arrays[columns.index("reason")] = reason_kinds(arrays[columns.index("reason")])
        values = [array.to_pylist() for array in arrays]
        parents = values[4] if len(values) > 4 else [None] * batch.num_rows
        for source, modality, status, reason, parent in zip(*values[:4], parents):
            totals[status] += 1
            derived += parent is not None
            group = by_group.setdefault(f"{source}/{modality}", {KEPT: 0, DROPPED: 0, FAILED: 0})
            group[status] += 1
            if reason is not None:
                reasons[reason] = reasons.get(reason, 0) + 1
                per_source = by_source.setdefault(source, {})
                per_source[reason] = per_source.get(reason, 0) + 1
    return {
        "inputs": sum(totals.values()) - derived,
        "derived": derived,
        **totals,
        "reasons": _by_count(reasons),
        "reasons_by_source": {source: _by_count(counts) for source, counts in sorted(by_source.items())},
        "by_source_modality": dict(sorted(by_group.items())),
    }


def _by_count(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
