"""Last ingest step: the content hash of each record and the drop of records with nothing in them."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.schema import content_hash
from fusionforge.pipelines.core.stage import Resources, Stage, add_drop_reasons, set_column


@register
class FinalizeRecords(Stage):
    """``ingest_finalize_v1``: fill ``content_hash``; drop text records whose text is blank."""

    name: ClassVar[str] = "ingest_finalize_v1"
    resources: ClassVar[Resources] = Resources(batch_size=1024)

    def __call__(self, batch: pa.Table) -> pa.Table:
        modalities = batch.column(S.MODALITY).to_pylist()
        texts = batch.column(S.TEXT).to_pylist()
        media = batch.column(S.MEDIA).to_pylist()
        segments = batch.column(S.SEGMENTS).to_pylist()
        errors = batch.column(S.ERROR).to_pylist()
        hashes, reasons = [], []
        for modality, text, items, parts, error in zip(modalities, texts, media, segments, errors):
            if error is not None:
                hashes.append(None)
                reasons.append(None)
                continue
            hashes.append(content_hash(modality, text, [m["sha256"] for m in items or []], parts))
            blank = modality == S.Modality.TEXT and not (text or "").strip()
            reasons.append(f"{self.name}:empty_text" if blank else None)
        batch = set_column(batch, S.CONTENT_HASH, pa.array(hashes, pa.string()))
        return add_drop_reasons(batch, pa.array(reasons, pa.string()))
