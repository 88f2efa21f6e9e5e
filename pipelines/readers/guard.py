"""One record's failure stays that record's: whatever goes wrong while building it becomes its failed row.

``rows.py`` gives a reason for every line or row that cannot be parsed. Building a record from a
parsed row then meets data of any shape: a number where a path belongs, lists nested a thousand
deep, a lone surrogate that Arrow cannot store. ``guarded`` turns an exception there into the
record's failed row with a reason, and ``records_table`` turns a row that Arrow refuses into a
failed row, so one record never costs its batch, its file or the run. Under ``strict`` the first
such record raises ``BadRecord`` (file and position) instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import BadRecord
from fusionforge.pipelines.readers.base import InputFile, ReaderOptions, failed_row
from fusionforge.pipelines.readers.rows import iter_structured

RowBuilder = Callable[[InputFile, int, dict[str, Any], ReaderOptions], dict[str, Any]]


def reason_for(exc: BaseException) -> str:
    """A ledger reason for an exception met while reading one record."""
    detail = f"{type(exc).__name__}: {exc}"[:300]
    if isinstance(exc, RecursionError):
        return "nesting_too_deep: the record nests lists or objects deeper than can be processed"
    if isinstance(exc, MemoryError):
        return "record_too_large: there was not enough memory to read it"
    if isinstance(exc, UnicodeError):
        return f"invalid_encoding: {detail}"
    if isinstance(exc, OverflowError) or (isinstance(exc, ValueError) and "digits" in str(exc)):
        return f"number_too_large: {detail}"
    if isinstance(exc, (TypeError, AttributeError, KeyError, IndexError, ValueError)):
        return f"wrong_type: {detail}"
    return f"unreadable_record: {detail}"


def guarded(
    file: InputFile,
    position: int,
    modality: str,
    options: ReaderOptions,
    build: Callable[[], dict[str, Any]],
    own_id: Any = None,
) -> dict[str, Any]:
    """``build()``, or the failed row saying why it raised (``strict``: ``BadRecord``)."""
    try:
        return build()
    except BadRecord:
        raise  # strict mode, raised by failed_row inside build
    except Exception as exc:  # noqa: BLE001 - every failure of one record is that record's ledger entry
        return failed_row(file, position, reason_for(exc), modality, options, own_id)


def read_structured(
    file: InputFile, options: ReaderOptions, modality: str, build: RowBuilder
) -> Iterator[dict[str, Any]]:
    """The loop every JSONL/Parquet reader shares: each row becomes ``build``'s record or a failed row."""
    for position, row in iter_structured(file, options.max_record_mb):
        if isinstance(row, str):
            yield failed_row(file, position, row, modality, options)
            continue
        try:  # guarded(), spelled out: this runs once per row of every JSONL/Parquet input
            record = build(file, position, row, options)
        except BadRecord:
            raise
        except Exception as exc:  # noqa: BLE001
            record = failed_row(file, position, reason_for(exc), modality, options, row.get(options.id_field))
        yield record


def records_table(rows: list[dict[str, Any]], schema: pa.Schema, strict: bool = False) -> pa.Table:
    """Rows as a table of ``schema``; a row Arrow cannot store becomes a failed row (``strict``: raises)."""
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except Exception:  # noqa: BLE001 - find the rows at fault, one by one
        return pa.Table.from_pylist([_storable(row, schema, strict) for row in rows], schema=schema)


def _storable(row: dict[str, Any], schema: pa.Schema, strict: bool) -> dict[str, Any]:
    try:
        pa.Table.from_pylist([row], schema=schema)
        return row
    except Exception as exc:  # noqa: BLE001
        reason = reason_for(exc)
        if strict:
            raise BadRecord(reason, where=f"{row.get(S.INPUT_FILE)}:{row.get(S.INPUT_POSITION)}") from exc
    failed = {name: _plain_text(row.get(name)) for name in (S.ID, S.SOURCE, S.MODALITY, S.INPUT_FILE)}
    failed[S.INPUT_POSITION] = row.get(S.INPUT_POSITION)
    failed[S.ERROR] = _plain_text(row.get(S.ERROR)) or f"read:{reason}"
    return failed


def _plain_text(value: Any) -> str | None:
    """A string Arrow can store: lone surrogates (from ``\\udc80`` escapes or undecodable names) spelled out."""
    if value is None:
        return None
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")
