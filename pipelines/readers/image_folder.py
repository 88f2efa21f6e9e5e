"""Image folders: every image file is a record, captioned by its ``.txt`` / ``.json`` sidecar."""

from __future__ import annotations

import os
from collections.abc import Iterator
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
from fusionforge.pipelines.readers.sidecar import read_sidecar


def read_image_file(file: InputFile, options: ReaderOptions) -> Iterator[dict[str, Any]]:
    """One image record for one image file (the planner lists the folder)."""
    caption, meta, error = read_sidecar(file.path, options.caption_field)
    if error:
        yield failed_row(file, 0, error, Modality.IMAGE, options)
        return
    _, fmt = media_kind_of(file.path) or ("image", None)
    media = media_ref("image", file.path, fmt, size=os.path.getsize(file.path))
    own_id = meta.pop(options.id_field, None)
    yield record_row(file, 0, Modality.IMAGE, caption, media=[media], meta=meta, own_id=own_id)
