"""The one Arrow record schema every fusionforge stage reads and writes.

A record is a text document, an image-text pair, an interleaved image-text document or a video
with its caption. Media never travel as decoded pixels: each media item is a *reference* (a URI
plus an optional byte range into a tar shard) or, for inputs that embed them, the encoded bytes.
Stage outputs are added as namespaced columns ``"{stage}__{field}"``; rows are never deleted by a
stage, they get a ``drop_reason`` (decided) or an ``error`` (failed) instead.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.pipelines.core.errors import SchemaError


class Modality(StrEnum):
    """What kind of sample a record is."""

    TEXT = "text"
    IMAGE = "image"  # an image-text pair: one image, its caption in `text`
    VIDEO = "video"  # one video, its caption in `text`
    INTERLEAVED = "interleaved"  # ordered text and image parts in `segments`


# Column names, spelled once.
ID = "id"
CONTENT_HASH = "content_hash"
SOURCE = "source"
MODALITY = "modality"
TEXT = "text"
SEGMENTS = "segments"
MEDIA = "media"
META = "meta"
INPUT_FILE = "input_file"
INPUT_POSITION = "input_position"
TEXT_TOKENS = "text_tokens"
VISION_TOKENS = "vision_tokens"
DROP_REASON = "drop_reason"
ERROR = "error"
PARENT_ID = "parent_id"

MEDIA_TYPE = pa.struct(
    [
        ("kind", pa.string()),  # "image" | "video"
        ("uri", pa.string()),  # local path, or a tar shard path when offset/size are set
        ("offset", pa.int64()),  # byte offset of the member data inside `uri` (null: whole file)
        ("size", pa.int64()),  # byte size of the encoded media
        ("bytes", pa.large_binary()),  # inline encoded bytes: inputs that embed media, media a stage made or rewrote
        ("sha256", pa.string()),  # of the encoded bytes
        ("format", pa.string()),  # jpeg, png, webp, mp4, ... (lower case, as a file extension)
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("duration_s", pa.float64()),
        ("fps", pa.float64()),
        ("n_frames", pa.int64()),
        ("codec", pa.string()),
    ]
)
MEDIA_FIELDS = tuple(MEDIA_TYPE.field(i).name for i in range(MEDIA_TYPE.num_fields))

SEGMENT_TYPE = pa.struct(
    [
        ("type", pa.string()),  # "text" | "image" | "video"
        ("text", pa.large_string()),  # the text of a text part
        ("media_index", pa.int32()),  # index into `media` for a media part
    ]
)

RECORD_SCHEMA = pa.schema(
    [
        (ID, pa.string()),
        (CONTENT_HASH, pa.string()),
        (SOURCE, pa.string()),
        (MODALITY, pa.string()),
        (TEXT, pa.large_string()),
        (SEGMENTS, pa.list_(SEGMENT_TYPE)),
        (MEDIA, pa.list_(MEDIA_TYPE)),
        (META, pa.large_string()),  # JSON object; always holds "input_id" when the input had an id
        (INPUT_FILE, pa.string()),
        (INPUT_POSITION, pa.int64()),  # line, row, member or file index inside input_file
        (TEXT_TOKENS, pa.int64()),
        (VISION_TOKENS, pa.int64()),
        (DROP_REASON, pa.string()),  # null: kept; "{stage}:{reason}": decided against
        (ERROR, pa.string()),  # null: fine; "{stage}:{kind}: {detail}": could not be processed
        (PARENT_ID, pa.string()),  # null: read from an input; else the id of the record it was derived from
    ]
)
CORE_COLUMNS = tuple(RECORD_SCHEMA.names)
REQUIRED_NON_NULL = (ID, SOURCE, MODALITY, INPUT_FILE, INPUT_POSITION)
_MODALITIES = frozenset(m.value for m in Modality)


def stage_column(stage: str, field: str) -> str:
    """Name of a stage's output column, e.g. ``stage_column("text_gopher_v1", "word_count")``."""
    return f"{stage}__{field}"


def content_hash(
    modality: str, text: str | None, media_hashes: list[str | None], segments: list[dict] | None = None
) -> str:
    """sha256 over what the record holds (text and media bytes' hashes), not where it came from.

    An interleaved document is hashed part by part, in order (each part's type, then its text or its
    media's hash, length-prefixed): the same parts in another order are another document.
    """
    digest = hashlib.sha256()
    digest.update(modality.encode())
    digest.update(b"\x00")
    if segments:
        for segment in segments:
            index = segment.get("media_index")
            payload = segment.get("text") if index is None else media_hashes[index]
            for value in (segment.get("type") or "", payload or ""):
                data = value.encode("utf-8")
                digest.update(b"%d:" % len(data) + data)
        return digest.hexdigest()
    digest.update((text or "").encode("utf-8"))
    for media_hash in media_hashes:
        digest.update(b"\x00")
        digest.update((media_hash or "").encode())
    return digest.hexdigest()


def empty_table() -> pa.Table:
    """A zero-row table with the record schema."""
    return RECORD_SCHEMA.empty_table()


def validate(table: pa.Table) -> pa.Table:
    """Return ``table`` with the record columns cast to ``RECORD_SCHEMA``, or raise ``SchemaError``.

    Missing optional record columns are added as nulls; extra columns (stage outputs) are kept
    after the record columns, provided they are not Python-object (pickled) columns. A value that
    cannot be cast, a null in a required column or an unknown modality is an error that names the
    column, because a silently wrong schema corrupts every stage after it.
    """
    columns: list[pa.Array | pa.ChunkedArray] = []
    for field in RECORD_SCHEMA:
        if field.name not in table.column_names:
            if field.name in REQUIRED_NON_NULL:
                raise SchemaError(f"column {field.name!r} is required but missing (have: {table.column_names})")
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        if column.type != field.type:
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                expected = f"column {field.name!r} has type {column.type}, expected {field.type}"
                raise SchemaError(f"{expected}: {exc}") from exc
        columns.append(column)
    extras = [name for name in table.column_names if name not in RECORD_SCHEMA.names]
    for name in extras:
        if pa.types.is_binary(table.schema.field(name).type) and name.endswith("__pickle"):
            raise SchemaError(f"column {name!r} looks like a pickled object column; fusionforge stores no pickles")
    out = pa.Table.from_arrays(columns + [table.column(n) for n in extras], names=list(RECORD_SCHEMA.names) + extras)
    _check_values(out)
    return out


def _check_values(table: pa.Table) -> None:
    for name in REQUIRED_NON_NULL:
        nulls = table.column(name).null_count
        if nulls:
            raise SchemaError(f"column {name!r} has {nulls} null value(s); it must be set on every record")
    unknown = set(table.column(MODALITY).to_pylist()) - _MODALITIES
    if unknown:
        raise SchemaError(f"unknown modality {sorted(unknown)}; expected one of {sorted(_MODALITIES)}")
    ids = table.column(ID)
    if len(ids) and pc.count_distinct(ids).as_py() != len(ids):
        raise SchemaError("column 'id' has duplicate values inside one batch; ids must be unique")
