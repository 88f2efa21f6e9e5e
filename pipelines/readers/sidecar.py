"""Sidecar captions for media folders: ``stem.txt`` or ``stem.json`` next to ``stem.jpg``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fusionforge.pipelines.readers.base import DEFAULT_MAX_RECORD_MB, MB
from fusionforge.pipelines.readers.rows import Failure, decode_json, too_large


def read_sidecar(
    media_path: str, caption_field: str = "caption", max_record_mb: float = DEFAULT_MAX_RECORD_MB
) -> tuple[str, dict[str, Any], str | None]:
    """(caption, extra metadata, error text or None) from the media file's sidecars."""
    path = Path(media_path)
    caption, meta = "", {}
    json_path, txt_path = path.with_suffix(".json"), path.with_suffix(".txt")
    for sidecar in (json_path, txt_path):
        if sidecar.is_file() and sidecar.stat().st_size > max_record_mb * MB:
            return "", {}, too_large(f"sidecar {sidecar.name}", sidecar.stat().st_size, max_record_mb)
    if json_path.is_file():
        data = decode_json(json_path.read_bytes(), f"sidecar {json_path.name}")
        if isinstance(data, Failure):
            code, _, detail = data.reason.partition(": ")
            unparsable = code in ("malformed_json", "invalid_encoding")
            return "", {}, f"malformed_sidecar: {json_path.name}: {detail}" if unparsable else data.reason
        if isinstance(data, dict):
            caption = data.pop(caption_field, data.pop("text", "")) or ""
            meta = data
    if txt_path.is_file():
        try:
            caption = txt_path.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError as exc:
            return "", {}, f"malformed_sidecar: {txt_path.name}: {exc}"
    return str(caption), meta, None
