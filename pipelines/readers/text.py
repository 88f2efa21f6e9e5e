"""Text documents from JSONL (plain, gzip, zstd, bz2) or Parquet: one record per row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fusionforge.pipelines.core.schema import Modality
from fusionforge.pipelines.readers.base import InputFile, ReaderOptions, failed_row, record_row, split_meta
from fusionforge.pipelines.readers.guard import read_structured


def read_text(file: InputFile, options: ReaderOptions) -> Iterator[dict[str, Any]]:
    """Rows with a string ``options.text_field``; other fields go to ``meta``."""
    return read_structured(file, options, Modality.TEXT, text_record)


def text_record(file: InputFile, position: int, row: dict[str, Any], options: ReaderOptions) -> dict[str, Any]:
    text = row.get(options.text_field)
    if not isinstance(text, str):
        found = type(text).__name__ if options.text_field in row else "nothing"
        return failed_row(
            file,
            position,
            f"missing_field: {options.text_field!r} must be a string, found {found}",
            options=options,
            own_id=row.get(options.id_field),
        )
    meta = split_meta(row, {options.text_field, options.id_field})
    return record_row(file, position, Modality.TEXT, text, meta=meta, own_id=row.get(options.id_field))
