"""Image and video folders: every media file is a record, captioned by its ``.txt`` / ``.json`` sidecar."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from typing import Any

from fusionforge.pipelines.core.schema import Modality
from fusionforge.pipelines.readers.base import (
    InputFile,
    ReaderOptions,
    failed_row,
    media_kind_of,
    media_ref,
    record_row,
)
from fusionforge.pipelines.readers.guard import guarded
from fusionforge.pipelines.readers.sidecar import read_sidecar


def read_media_file(file: InputFile, options: ReaderOptions, modality: Modality) -> Iterator[dict[str, Any]]:
    """One image or video record for one media file (the planner lists the folder)."""
    yield guarded(file, 0, modality, options, partial(_media_record, file, options, modality))


def _media_record(file: InputFile, options: ReaderOptions, modality: Modality) -> dict[str, Any]:
    caption, meta, error = read_sidecar(file.path, options.caption_field, options.max_record_mb)
    if error:
        return failed_row(file, 0, error, modality, options)
    _, fmt = media_kind_of(file.path) or (modality.value, None)
    media = media_ref(modality.value, file.path, fmt, size=os.path.getsize(file.path))
    own_id = meta.pop(options.id_field, None)
    return record_row(file, 0, modality, caption, media=[media], meta=meta, own_id=own_id)


def read_image_file(file: InputFile, options: ReaderOptions) -> Iterator[dict[str, Any]]:
    return read_media_file(file, options, Modality.IMAGE)


def read_video_file(file: InputFile, options: ReaderOptions) -> Iterator[dict[str, Any]]:
    return read_media_file(file, options, Modality.VIDEO)
