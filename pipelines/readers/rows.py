"""Rows of structured inputs (JSONL, plain or compressed, and Parquet), where every failure is a reason.

A row comes out as a dict, or as the reason text of why it could not be read: invalid encoding,
malformed JSON, nesting too deep, a number too large, not an object, or over the record cap. Damage
that ends a file early (a broken Parquet footer, a cut or damaged compressed stream) comes out once,
at position -1, as ``unreadable_file`` saying how much could not be read, after every row before it.
Nothing here raises for the content of a file, so one bad byte never costs the rows after it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from fusionforge.pipelines.readers.base import DEFAULT_MAX_RECORD_MB, MB, InputFile
from fusionforge.pipelines.readers.lines import DamagedFile, iter_lines

FILE_POSITION = -1  # the position of a failure that concerns the whole file, not one row
# Deeper JSON is refused when read, well below Python's recursion limit (1000 frames, which a parser
# shares with its caller's stack): later steps parse the record again (the shard writer, a Ray
# worker with a deep stack), and a record must not pass here and fail there.
MAX_NESTING = 256
_BOM = b"\xef\xbb\xbf"


def iter_structured(
    file: InputFile, max_record_mb: float = DEFAULT_MAX_RECORD_MB
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Rows of a JSONL (optionally compressed) or Parquet file: (position, row) or (position, reason)."""
    if file.path.lower().endswith(".parquet"):
        return iter_parquet_rows(file, max_record_mb)
    return iter_json_objects(file, max_record_mb)


def iter_json_objects(
    file: InputFile, max_record_mb: float = DEFAULT_MAX_RECORD_MB
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, object) per non-blank JSONL line; a line that is no JSON object gives (line, reason)."""
    return iter_json_values(file, max_record_mb, objects_only=True)


class Failure:
    """Why a line could not be read (a JSON value can itself be a string, so reasons travel wrapped)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def iter_json_values(
    file: InputFile, max_record_mb: float = DEFAULT_MAX_RECORD_MB, objects_only: bool = False
) -> Iterator[tuple[int, Any]]:
    """(line number, JSON value or ``Failure``) per non-blank line; a damaged file ends with a ``Failure``.

    With ``objects_only``, a value that is not an object is a failure too, and failures come as
    their reason text (``iter_json_objects``): one loop for both, as it runs once per line.
    """
    max_bytes = max(1, int(max_record_mb * MB))
    failed = (lambda reason: reason) if objects_only else Failure
    try:
        for line_no, line in iter_lines(file, max_bytes):
            if isinstance(line, int):
                yield line_no, failed(too_large(f"line {line_no}", line, max_record_mb))
                continue
            if line_no == 1 and file.start == 0 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            if not line.strip():
                continue
            value = decode_json(line, f"line {line_no}")
            if isinstance(value, Failure):
                yield line_no, failed(value.reason)
            elif objects_only and not isinstance(value, dict):
                yield line_no, f"malformed_json: expected an object, got {type(value).__name__} (line {line_no})"
            else:
                yield line_no, value
    except DamagedFile as exc:
        yield FILE_POSITION, failed(f"unreadable_file: {exc.detail}")
    except OSError as exc:  # the file itself cannot be opened
        yield FILE_POSITION, failed(f"unreadable_file: {type(exc).__name__}: {exc}")


def decode_json(data: bytes, where: str) -> Any:
    """The JSON value in ``data``, or a ``Failure`` naming what is wrong with it; never raises."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Failure(f"invalid_encoding: {where} is not UTF-8 ({exc.reason} at byte {exc.start})")
    too_deep = Failure(f"nesting_too_deep: {where} nests arrays or objects more than {MAX_NESTING} deep")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return Failure(f"malformed_json: {exc.msg} ({where}, column {exc.colno})")
    except RecursionError:
        return too_deep
    except ValueError as exc:  # Python refuses integers of more than 4300 digits
        return Failure(f"number_too_large: {where}: {exc}")
    if data.count(b"[") + data.count(b"{") > MAX_NESTING and _deeper_than(value, MAX_NESTING):
        return too_deep
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists/objects nest more than ``limit`` deep (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        if children and depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def iter_parquet_rows(
    file: InputFile, max_record_mb: float = DEFAULT_MAX_RECORD_MB, batch_size: int = 1024
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(row number, row dict) per Parquet row; damage ends the rows with one ``unreadable_file`` reason."""
    import pyarrow.parquet as pq

    max_bytes = max_record_mb * MB
    try:
        parquet = pq.ParquetFile(file.path)
    except Exception as exc:  # noqa: BLE001 - a broken footer or a file that is no Parquet at all
        size = _size(file.path)
        yield FILE_POSITION, f"unreadable_file: {type(exc).__name__}: {exc}; none of its {size:,} bytes could be read"
        return
    total = parquet.metadata.num_rows
    position = 0
    try:
        for batch in parquet.iter_batches(batch_size=batch_size):
            whole_batch_fits = batch.nbytes <= max_bytes
            for row in _batch_rows(batch):
                size = 0 if whole_batch_fits or isinstance(row, str) else _value_bytes(row)
                yield position, too_large(f"row {position}", size, max_record_mb) if size > max_bytes else row
                position += 1
    except Exception as exc:  # noqa: BLE001 - a damaged page or row group ends what can be read
        lost = f"{total - position:,} of its {total:,} rows" if total >= position else "the rest"
        cause = f"{type(exc).__name__}: {exc}"
        yield FILE_POSITION, f"unreadable_file: damaged after row {position} ({cause}); {lost} could not be read"


def _batch_rows(batch) -> list[dict[str, Any] | str]:
    """The batch's rows as dicts; a row with a value Python cannot hold (a date out of range) is a reason."""
    try:
        return batch.to_pylist()
    except Exception:  # noqa: BLE001 - find the rows at fault, one by one
        rows: list[dict[str, Any] | str] = []
        for index in range(batch.num_rows):
            try:
                rows.append(batch.slice(index, 1).to_pylist()[0])
            except Exception as exc:  # noqa: BLE001
                rows.append(f"wrong_type: a value cannot be converted ({type(exc).__name__}: {exc})")
        return rows


def _value_bytes(value: Any) -> int:
    """About how many bytes a decoded row holds: the length of its strings and binaries, 8 per scalar."""
    if isinstance(value, (str, bytes, bytearray)):
        return len(value)
    if isinstance(value, dict):
        return sum(_value_bytes(k) + _value_bytes(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(_value_bytes(v) for v in value)
    return 8


def too_large(where: str, size: int, max_record_mb: float) -> str:
    """The ``record_too_large`` reason for something of ``size`` bytes at ``where``."""
    cap = f"the record cap of {max_record_mb:g} MB (--max-record-mb)"
    return f"record_too_large: {where} is {size / MB:,.1f} MB, over {cap}"


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
