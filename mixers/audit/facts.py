"""Vectorised facts of a record batch: language, reason key, text bytes and the flattened media items.

Everything here works on whole Arrow columns (no per-row Python), because the audit reads every
record of a corpus. Columns a batch does not have (a stripped-down Parquet file, an older output)
count as empty rather than as an error: an audit describes what is there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.pipelines.core import schema as S

UNKNOWN_LANGUAGE = "und"  # BCP-47 "undetermined"
LANG_SUFFIX = "__lang"  # a language-ID stage's output column: "{stage}__lang"
_META_LANG = r'"(?:lang|language)"\s*:\s*"(?P<lang>[^"]*)"'
FRAMES_COLUMN = "video_frames_v1__n_frames"  # sampled frames per video (the video_frames_v1 stage)


def language_column(batch: pa.RecordBatch) -> str | None:
    """The language-ID stage column to trust, if any (the first ``*__lang`` string column by name)."""
    names = sorted(
        f.name
        for f in batch.schema
        if f.name.endswith(LANG_SUFFIX) and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
    )
    return names[0] if names else None


def languages(batch: pa.RecordBatch) -> pa.Array:
    """Per record: the language-ID column's value, else ``lang``/``language`` from ``meta``, else ``und``."""
    column = language_column(batch)
    found = batch.column(column).cast(pa.string()) if column else pa.nulls(batch.num_rows, pa.string())
    if S.META in batch.schema.names and found.null_count:  # meta only where no language-ID column answered
        meta = pc.extract_regex(batch.column(S.META).cast(pa.large_string()), _META_LANG)
        from_meta = pc.if_else(pc.is_valid(meta), pc.struct_field(meta, "lang"), None).cast(pa.string())
        found = pc.coalesce(found, from_meta)
    found = pc.if_else(pc.equal(pc.utf8_length(found), 0), None, found)
    return pc.coalesce(found, UNKNOWN_LANGUAGE)


def text_bytes(batch: pa.RecordBatch) -> np.ndarray:
    """UTF-8 bytes of each record's text (0 when it has none)."""
    if S.TEXT not in batch.schema.names:
        return np.zeros(batch.num_rows, np.int64)
    return _int_array(pc.binary_length(batch.column(S.TEXT)))


def text_chars(batch: pa.RecordBatch) -> np.ndarray:
    """Characters (code points) of each record's text (0 when it has none)."""
    if S.TEXT not in batch.schema.names:
        return np.zeros(batch.num_rows, np.int64)
    return _int_array(pc.utf8_length(batch.column(S.TEXT)))


def has_text(batch: pa.RecordBatch) -> np.ndarray:
    if S.TEXT not in batch.schema.names:
        return np.zeros(batch.num_rows, bool)
    return _bool_array(pc.is_valid(batch.column(S.TEXT)))


@dataclass(frozen=True)
class MediaItems:
    """The media items of a batch, flattened: ``parent[i]`` is the record row of item ``i``."""

    parent: np.ndarray
    kind: np.ndarray  # object array of "image" / "video" / other
    width: np.ndarray  # float, NaN when unknown
    height: np.ndarray
    n_frames: np.ndarray
    duration_s: np.ndarray
    size: np.ndarray  # int64 bytes (0 when unknown)

    @property
    def images(self) -> np.ndarray:
        return self.kind == "image"

    @property
    def videos(self) -> np.ndarray:
        return self.kind == "video"

    def per_record(self, values: np.ndarray, rows: int) -> np.ndarray:
        """Sum ``values`` (one per item) into one figure per record."""
        return np.bincount(self.parent, weights=values, minlength=rows)


def media_items(batch: pa.RecordBatch) -> MediaItems:
    """Flatten the ``media`` list column (no Python loop over rows)."""
    if S.MEDIA not in batch.schema.names or batch.num_rows == 0:
        empty = np.zeros(0)
        return MediaItems(np.zeros(0, np.int64), np.zeros(0, object), empty, empty, empty, empty, np.zeros(0, np.int64))
    media = batch.column(S.MEDIA)
    parent = _int_array(pc.list_parent_indices(media))
    items = pc.list_flatten(media)
    names = {items.type.field(i).name for i in range(items.type.num_fields)}

    def field(name: str) -> np.ndarray:
        if name not in names:
            return np.full(len(items), np.nan)
        return pc.struct_field(items, name).cast(pa.float64()).to_numpy(zero_copy_only=False)

    size = np.zeros(len(items), np.int64)
    if "size" in names:
        size = _int_array(pc.struct_field(items, "size"))
    if "bytes" in names:
        inline = _int_array(pc.binary_length(pc.struct_field(items, "bytes")))
        size = np.where(size > 0, size, inline)
    kind = (
        pc.struct_field(items, "kind").to_numpy(zero_copy_only=False)
        if "kind" in names
        else np.full(len(items), None, object)
    )
    return MediaItems(parent, kind, field("width"), field("height"), field("n_frames"), field("duration_s"), size)


_NOT_SCORES = ("cluster", "cluster_id", "id", "index", "offset", "partition", "row")  # identifiers, not measures


def numeric_score_columns(batch: pa.RecordBatch) -> list[str]:
    """Stage output columns (``"{stage}__{field}"``) that hold numbers or booleans: the filter scores.

    Identifier fields (``dedupe__cluster``, ``*__id``, ...) are numbers but not measures, and are left out.
    """
    out = []
    for schema_field in batch.schema:
        if "__" not in schema_field.name or schema_field.name.startswith("_"):
            continue
        if schema_field.name.rsplit("__", 1)[1] in _NOT_SCORES:
            continue
        kind = schema_field.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            out.append(schema_field.name)
    return out


def _int_array(values: pa.Array) -> np.ndarray:
    return pc.fill_null(values, 0).cast(pa.int64()).to_numpy(zero_copy_only=False)


def _bool_array(values: pa.Array) -> np.ndarray:
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False).astype(bool)
