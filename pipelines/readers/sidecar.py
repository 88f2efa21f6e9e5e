"""Sidecar captions for media folders: ``stem.txt`` or ``stem.json`` next to ``stem.jpg``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_sidecar(media_path: str, caption_field: str = "caption") -> tuple[str, dict[str, Any], str | None]:
    """(caption, extra metadata, error text or None) from the media file's sidecars."""
    path = Path(media_path)
    caption, meta = "", {}
    json_path = path.with_suffix(".json")
    if json_path.is_file():
        try:
            data = json.loads(json_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return "", {}, f"malformed_sidecar: {json_path.name}: {exc}"
        if isinstance(data, dict):
            caption = data.pop(caption_field, data.pop("text", "")) or ""
            meta = data
    txt_path = path.with_suffix(".txt")
    if txt_path.is_file():
        try:
            caption = txt_path.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError as exc:
            return "", {}, f"malformed_sidecar: {txt_path.name}: {exc}"
    return str(caption), meta, None
