"""The pack ledger: every input record's fate, partition by partition (kept, or dropped with a reason).

Reasons: ``mixers_pack_items_v1:oversize_*`` (too large even shrunk), ``pack:not_in_mixture`` (its
source has no share), ``pack:not_sampled`` (the mixture's partial epoch did not choose it),
``pack:surplus`` (chosen, but the target vision ratio left no room for it: the other kind ran out).

The surplus comes from ``surplus.py``'s files, read one input partition at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.mixers.mixture import MixturePlan
from fusionforge.mixers.packing.counting import ITEMS_DIR
from fusionforge.mixers.packing.surplus import surplus_rows
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.io import atomic_path
from fusionforge.pipelines.core.ledger import DROPPED, KEPT, LEDGER_SCHEMA, ledger_summary
from fusionforge.pipelines.writers.manifest import LEDGER


def write_ledger(out: Path, partitions: list[int], plan: MixturePlan) -> dict[str, Any]:
    """Write ``ledger.parquet``, one input partition at a time (its surplus read from ``spill_surplus``'s files)."""
    with atomic_path(out / LEDGER) as tmp, pq.ParquetWriter(tmp, LEDGER_SCHEMA) as writer:
        for partition in partitions:
            keys, counts = surplus_rows(out, partition)
            table = pq.read_table(
                out / ITEMS_DIR / f"part-{partition:06d}.parquet",
                columns=[
                    S.ID,
                    S.SOURCE,
                    S.MODALITY,
                    S.INPUT_FILE,
                    S.INPUT_POSITION,
                    "row",
                    "u",
                    "reject",
                    "piece",
                    "n_pieces",
                ],
                filters=[("piece", "<=", 0)],
            )
            rows = table.to_pylist()
            statuses, reasons = [], []
            for row in rows:
                reason = _reason(row, plan, keys, counts)
                statuses.append(DROPPED if reason else KEPT)
                reasons.append(reason)
            ledger = pa.table(
                {
                    S.ID: table.column(S.ID),
                    S.SOURCE: table.column(S.SOURCE),
                    S.MODALITY: table.column(S.MODALITY),
                    S.INPUT_FILE: table.column(S.INPUT_FILE),
                    S.INPUT_POSITION: table.column(S.INPUT_POSITION),
                    "status": pa.array(statuses, pa.string()),
                    "reason": pa.array(reasons, pa.string()),
                    "step": pa.array(["pack"] * len(rows), pa.string()),
                    S.PARENT_ID: pa.nulls(len(rows), pa.string()),
                },  # pack derives no records
                schema=LEDGER_SCHEMA,
            )
            writer.write_table(ledger)
    return ledger_summary(out / LEDGER)


def _reason(row: dict[str, Any], plan: MixturePlan, keys: np.ndarray, counts: np.ndarray) -> str | None:
    if row["reject"]:
        return row["reject"]
    if row[S.SOURCE] not in plan.targets:
        return "pack:not_in_mixture"
    instances = plan.instances(row[S.SOURCE], row["u"])
    if instances == 0:
        return "pack:not_sampled"
    at = int(np.searchsorted(keys, row["row"]))
    unplaced = int(counts[at]) if at < len(keys) and keys[at] == row["row"] else 0
    return "pack:surplus" if unplaced >= instances * row["n_pieces"] else None
