"""A downloaded body becomes an image file only once the bounded decoder has read all of it.

``inspect_image`` (``core/images.py``) checks the pixel count from the header before decoding, keeps
Pillow's decompression-bomb guard on and decodes every byte, so a truncated or hostile file is a
ledger reason here rather than a crash in ``shard`` later. The file is named by its row (never by
timing) with the extension of the format the decoder found, and written atomically, so a resumed run
writes the same name with the same bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from fusionforge.pipelines.core.errors import BadMedia
from fusionforge.pipelines.core.images import inspect_image
from fusionforge.pipelines.core.io import atomic_path

IMAGES_DIR = "images"
# The formats ``shard`` reads by extension (readers/base.py IMAGE_EXTENSIONS); any other is refused here.
EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "gif": ".gif", "bmp": ".bmp", "tiff": ".tif"}


@dataclass(frozen=True)
class StoredImage:
    path: str  # relative to the output folder
    width: int
    height: int
    format: str
    sha256: str


def partition_folder(partition: int) -> str:
    """``images/00003``: one folder per partition, so no folder grows past ``--partition-size`` files."""
    return f"{IMAGES_DIR}/{partition:05d}"


def store_image(data: bytes, out_dir: str, partition: int, name: str, max_pixels: int) -> StoredImage:
    """Check ``data`` and write it as ``images/{partition}/{name}.{ext}``; raises ``BadMedia`` when it is no image."""
    try:
        info = inspect_image(data, max_pixels)
    except BadMedia:
        raise
    except Exception as exc:  # noqa: BLE001 - a hostile file may trip any decoder plugin; it is that URL's fate
        raise BadMedia("undecodable_image", f"{type(exc).__name__}: {exc}"[:300]) from exc
    extension = EXTENSIONS.get(info.format)
    if extension is None:
        raise BadMedia("unsupported_format", f"{info.format or 'unknown'} images are not read by shard")
    relative = f"{partition_folder(partition)}/{name}{extension}"
    with atomic_path(Path(out_dir) / relative) as tmp:
        tmp.write_bytes(data)
    return StoredImage(relative, info.width, info.height, info.format, hashlib.sha256(data).hexdigest())
