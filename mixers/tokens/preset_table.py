"""The vision presets' parameters and defaults as data and as the Markdown table in docs/formats.md.

``preset_rows`` is what ``fusionforge tokens --presets`` prints; ``presets_markdown`` is the block
between the ``presets:begin`` / ``presets:end`` markers of docs/formats.md (a test compares them, so
the documented defaults cannot drift from the code). Regenerate with
``python -m fusionforge.mixers.tokens.preset_table``.
"""

from __future__ import annotations

from typing import Any

from fusionforge.mixers.tokens.vision import BUILTIN, PRESETS, Wrapper

MEANING = {
    "patch_size": "side of one encoder patch, in pixels",
    "merge_size": "patches merged per side into one LLM token (merge_size^2 patches -> 1 token)",
    "temporal_patch_size": "frames per temporal unit: Qwen pads to an even count; Kimi K2.5 pools chunks of 4",
    "min_pixels": "fewest pixels of a resized image (smaller ones are scaled up)",
    "max_pixels": "most pixels of a resized image (larger ones are scaled down)",
    "video_min_pixels": "fewest pixels of a resized video frame",
    "video_max_pixels": "most pixels of a resized video frame",
    "cap_pixels_per_frame": "lower video_max_pixels so that a whole video fits max_video_tokens",
    "max_video_tokens": "token budget of one video when cap_pixels_per_frame is on",
    "max_patches": "most patches of an image before the merge (larger images are scaled down, never up)",
    "video_max_patches": "most patches of one video frame before the merge",
    "max_patches_per_side": "most patches along one side (the position embedding's size)",
    "in_token_limit": "most patches of an image before the merge (larger images are scaled down)",
    "fit": "how a resized image reaches multiples of patch_size x merge_size: crop or pad",
    "tile_size": "side of one anyres tile and of a video frame, in pixels",
    "tile_tokens": "tokens of one tile (the base image and each grid tile)",
    "max_tiles": "most tiles' worth of grid features before they are pooled (anyres_max_9)",
    "video_frame_tokens": "tokens of one video frame (plus one newline token per video)",
    "image_wrapper": "text around an image: prefix ... suffix (token counts without a tokenizer)",
    "video_wrapper": "text around a video",
    "chunk_wrapper": "text around each temporal chunk ({timestamp} is the chunk's start, HH:MM:SS.mmm)",
}


def _value(value: Any) -> Any:
    if isinstance(value, Wrapper):
        return {
            "prefix": value.prefix,
            "suffix": value.suffix,
            "prefix_tokens": value.prefix_tokens,
            "suffix_tokens": value.suffix_tokens,
        }
    return value


def preset_rows() -> dict[str, dict[str, Any]]:
    """Every built-in preset's parameters (the ones its family reads) and their defaults, JSON-ready."""
    return {name: {key: _value(value) for key, value in BUILTIN[name].describe().items()} for name in PRESETS}


def format_value(value: Any) -> str:
    """A parameter value as plain text (wrappers as ``prefix ... suffix (a + b tokens)``)."""
    if isinstance(value, dict):
        if not value["prefix"] and not value["suffix"]:
            return f"none ({value['prefix_tokens']} + {value['suffix_tokens']} tokens)"
        return f"{value['prefix']} ... {value['suffix']} ({value['prefix_tokens']} + {value['suffix_tokens']} tokens)"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _cell(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`"


def presets_markdown() -> str:
    """The docs/formats.md block: one parameter / default / meaning table per preset."""
    lines: list[str] = []
    for name, params in preset_rows().items():
        lines += [f"`{name}`:", "", "| parameter | default | meaning |", "| --- | --- | --- |"]
        lines += [f"| `{key}` | {_cell(format_value(value))} | {MEANING[key]} |" for key, value in params.items()]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(presets_markdown())
