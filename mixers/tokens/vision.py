"""Vision-token accounting: how many LLM tokens an image or a video costs under a VLM's processor.

Each preset reproduces its model's resize rule and token count (checked against transformers' own
processors in the tests) and the wrapper tokens its chat format puts around a media item:

- ``qwen2-vl``: ``smart_resize`` to multiples of 28 within [min_pixels, max_pixels]; an image costs
  (h/28)(w/28); a video's frames are padded to an even count and cost ceil(F/2) x one frame.
  Wrapped in ``<|vision_start|> ... <|vision_end|>`` (2 tokens).
- ``kimi-k25`` (MoonViT-3D): scale down to the patch limits, then *pad* (never crop) to multiples of
  28; a video is cut into chunks of up to 4 consecutive frames, each pooled over time to one
  frame's tokens: ceil(F/4) x one frame. Image wrapper ``<|media_begin|>image<|media_content|>
  ... <|media_end|>`` (4 tokens); each video chunk carries a timestamp and the same wrapper.
- ``kimi-vl`` (MoonViT): at most ``in_token_limit`` 14-px patches before the 2x2 merge, then
  centre-crop (``fit="crop"``, the default) or pad (``fit="pad"``, as the released checkpoint's
  ``pad_input``) to multiples of 28; a video is a sequence of frames, each an image.
- ``llava-onevision``: 729 tokens per 384-px tile (SigLIP, patch 14) plus the anyres_max_9 grid
  and one newline token per row; a video costs 196 tokens per frame plus one newline.
- ``custom``: patch, merge, temporal unit and min/max pixels of your own model (Qwen-style rule).

Limits are preset parameters (defaults: ``Preset.describe()``, docs/formats.md, ``fusionforge tokens
--presets``); pass overrides (``image_tokens(w, h, "kimi-k25", max_patches=4096)``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fusionforge.pipelines.core.errors import ConfigError

PRESETS = ("qwen2-vl", "kimi-k25", "kimi-vl", "llava-onevision", "custom")
LLAVA_GRID_SIDE = 6  # anyres grids of 1x1 up to 6x6 tiles (image_grid_pinpoints 384..2304 at tile_size 384)


@dataclass(frozen=True)
class Wrapper:
    """Text-side tokens around a media item: strings (for a tokenizer) and their default counts."""

    prefix: str = ""
    suffix: str = ""
    prefix_tokens: int = 0
    suffix_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.prefix_tokens + self.suffix_tokens


@dataclass(frozen=True)
class ImageCount:
    """One image: its input size, the size the encoder sees, the patch grid and the LLM tokens."""

    width: int
    height: int
    resized_width: int
    resized_height: int
    grid: tuple[int, int, int]  # (t, h, w) in encoder patches
    tokens: int  # placeholder tokens in the LLM sequence
    wrapper_tokens: int

    @property
    def total(self) -> int:
        return self.tokens + self.wrapper_tokens


@dataclass(frozen=True)
class VideoCount:
    """One video: chunks are the temporal units the model merges (2 frames in Qwen, 4 in Kimi K2.5)."""

    width: int
    height: int
    n_frames: int
    resized_width: int
    resized_height: int
    grid: tuple[int, int, int]  # (temporal units, h, w) in encoder patches
    chunks: int
    tokens_per_chunk: int
    extra_tokens: int  # vision tokens once per video (LLaVA's newline)
    tokens: int
    wrapper_tokens: int  # item wrapper plus every chunk's wrapper

    @property
    def total(self) -> int:
        return self.tokens + self.wrapper_tokens


@dataclass(frozen=True)
class Preset:
    """Every knob of every family; each family reads only the ones ``describe()`` lists.

    The defaults of every built-in preset are tabled in docs/formats.md ("Vision-token presets"),
    generated from ``describe()`` by ``fusionforge.mixers.tokens.preset_table`` (a test keeps them equal).
    """

    name: str
    family: str
    patch_size: int = 14
    merge_size: int = 2
    temporal_patch_size: int = 1
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280
    video_min_pixels: int = 128 * 28 * 28
    video_max_pixels: int = 768 * 28 * 28
    cap_pixels_per_frame: bool = False
    max_video_tokens: int = 128000
    max_patches: int = 16384
    video_max_patches: int = 4096
    max_patches_per_side: int = 512
    in_token_limit: int = 4096
    fit: str = "crop"
    tile_size: int = 384
    tile_tokens: int = 729
    max_tiles: int = 9
    video_frame_tokens: int = 196
    image_wrapper: Wrapper = Wrapper()
    video_wrapper: Wrapper = Wrapper()
    chunk_wrapper: Wrapper = Wrapper()

    def __post_init__(self) -> None:
        if self.family not in _FAMILIES:
            raise ConfigError(f"unknown preset family {self.family!r}; choose one of {', '.join(PRESETS)}")
        if self.fit not in ("crop", "pad"):
            raise ConfigError(f"fit must be 'crop' or 'pad', got {self.fit!r}")
        if min(self.patch_size, self.merge_size, self.temporal_patch_size) < 1:
            raise ConfigError("patch_size, merge_size and temporal_patch_size must be at least 1")

    def with_overrides(self, **overrides) -> Preset:
        """A copy with some parameters changed; unknown names are a ``ConfigError`` listing the known ones."""
        known = {f.name for f in dataclasses.fields(self)} - {"name", "family"}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown vision preset parameter(s) {sorted(unknown)}; known: {sorted(known)}")
        return dataclasses.replace(self, **overrides)

    def describe(self) -> dict[str, Any]:
        """The parameters this preset's family reads, with their values (the rest are ignored)."""
        return {name: getattr(self, name) for name in FAMILY_PARAMETERS[self.family]}

    def image(self, width: int, height: int) -> ImageCount:
        _check_size(width, height)
        return _FAMILIES[self.family][0](self, width, height)

    def video(self, width: int, height: int, n_frames: int) -> VideoCount:
        _check_size(width, height)
        if n_frames < 0 or (n_frames == 0 and self.family != "qwen2-vl"):
            raise ValueError(f"a video needs at least one frame, got n_frames={n_frames}")
        return _FAMILIES[self.family][1](self, width, height, n_frames)


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")


# ---------------------------------------------------------------- Qwen2-VL (and custom)
def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL's resize: multiples of ``factor``, pixels within [min_pixels, max_pixels], aspect kept."""
    aspect = max(height, width) / min(height, width)
    if aspect > 200:
        raise ValueError(f"absolute aspect ratio must be smaller than 200, got {aspect}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _qwen_image(p: Preset, width: int, height: int) -> ImageCount:
    factor = p.patch_size * p.merge_size
    h, w = smart_resize(height, width, factor, p.min_pixels, p.max_pixels)
    tokens = (h // factor) * (w // factor)
    return ImageCount(width, height, w, h, (1, h // p.patch_size, w // p.patch_size), tokens, p.image_wrapper.tokens)


def qwen_video_max_pixels(p: Preset, n_frames: int) -> int:
    """Most pixels of one frame of an ``n_frames`` video: ``video_max_pixels``, or with ``cap_pixels_per_frame``
    an even share of ``max_video_tokens`` (as transformers' processor caps the frames of one call)."""
    if not (p.cap_pixels_per_frame and n_frames):
        return p.video_max_pixels
    factor = p.patch_size * p.merge_size
    total_pixels = int(p.max_video_tokens * factor * factor * 0.9)
    share = total_pixels * p.temporal_patch_size // n_frames
    return max(min(p.video_max_pixels, share), int(p.video_min_pixels * 1.05))


def _qwen_video(p: Preset, width: int, height: int, n_frames: int) -> VideoCount:
    factor = p.patch_size * p.merge_size
    max_pixels = qwen_video_max_pixels(p, n_frames)
    h, w = smart_resize(height, width, factor, p.video_min_pixels, max_pixels)
    grid_t = -(-n_frames // p.temporal_patch_size)  # an odd count is padded with the last frame
    per_chunk = (h // factor) * (w // factor)
    return VideoCount(
        width,
        height,
        n_frames,
        w,
        h,
        (grid_t, h // p.patch_size, w // p.patch_size),
        grid_t,
        per_chunk,
        0,
        grid_t * per_chunk,
        p.video_wrapper.tokens,
    )


# ---------------------------------------------------------------- Kimi K2.5 (MoonViT-3D)
def navit_resize(
    height: int, width: int, patch_size: int, merge_size: int, max_patches: int, max_per_side: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Kimi K2.5's resize: scale down to the patch limits (never up), then pad to multiples of 28."""
    current = max(1.0, height // patch_size) * max(1.0, width // patch_size)
    scale = min(
        1.0, math.sqrt(max_patches / current), max_per_side * patch_size / height, max_per_side * patch_size / width
    )
    new_h = min(max(1, int(height * scale)), max_per_side * patch_size)
    new_w = min(max(1, int(width * scale)), max_per_side * patch_size)
    factor = merge_size * patch_size
    return (new_h, new_w), (new_h + (factor - new_h % factor) % factor, new_w + (factor - new_w % factor) % factor)


def _k25_frame(p: Preset, width: int, height: int, max_patches: int) -> tuple[int, int, int]:
    _, (pad_h, pad_w) = navit_resize(height, width, p.patch_size, p.merge_size, max_patches, p.max_patches_per_side)
    return pad_h, pad_w, (pad_h // p.patch_size) * (pad_w // p.patch_size) // p.merge_size**2


def _k25_image(p: Preset, width: int, height: int) -> ImageCount:
    h, w, tokens = _k25_frame(p, width, height, p.max_patches)
    return ImageCount(width, height, w, h, (1, h // p.patch_size, w // p.patch_size), tokens, p.image_wrapper.tokens)


def _k25_video(p: Preset, width: int, height: int, n_frames: int) -> VideoCount:
    h, w, per_chunk = _k25_frame(p, width, height, p.video_max_patches)
    chunks = -(-n_frames // p.temporal_patch_size)  # a trailing chunk of 1-3 frames still costs one frame
    wrappers = p.video_wrapper.tokens + chunks * p.chunk_wrapper.tokens
    return VideoCount(
        width,
        height,
        n_frames,
        w,
        h,
        (chunks, h // p.patch_size, w // p.patch_size),
        chunks,
        per_chunk,
        0,
        chunks * per_chunk,
        wrappers,
    )


# ---------------------------------------------------------------- Kimi-VL (MoonViT)
def _kimi_vl_image(p: Preset, width: int, height: int) -> ImageCount:
    w, h = width, height
    patches = (w // p.patch_size) * (h // p.patch_size)
    if patches > p.in_token_limit:
        scale = math.sqrt(p.in_token_limit / patches)
        w, h = int(w * scale), int(h * scale)
    factor = p.patch_size * p.merge_size
    if p.fit == "pad":
        w, h = w + (factor - w % factor) % factor, h + (factor - h % factor) % factor
    else:
        w, h = w - w % factor, h - h % factor
        if w == 0 or h == 0:
            raise ValueError(f"{width}x{height} is smaller than one {factor}x{factor} merge window after cropping")
    side = p.max_patches_per_side
    if w // p.patch_size >= side or h // p.patch_size >= side:
        raise ValueError(f"{width}x{height} exceeds the position embedding ({side} patches per side) after resizing")
    tokens = (h // factor) * (w // factor)
    return ImageCount(width, height, w, h, (1, h // p.patch_size, w // p.patch_size), tokens, p.image_wrapper.tokens)


def _kimi_vl_video(p: Preset, width: int, height: int, n_frames: int) -> VideoCount:
    frame = _kimi_vl_image(p, width, height)
    wrappers = p.video_wrapper.tokens + n_frames * p.image_wrapper.tokens
    return VideoCount(
        width,
        height,
        n_frames,
        frame.resized_width,
        frame.resized_height,
        (n_frames, *frame.grid[1:]),
        n_frames,
        frame.tokens,
        0,
        n_frames * frame.tokens,
        wrappers,
    )


# ---------------------------------------------------------------- LLaVA-OneVision
def select_best_resolution(height: int, width: int, candidates: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """The anyres grid resolution that keeps the most pixels and wastes the fewest (LLaVA-NeXT's rule)."""
    best, best_effective, best_waste = candidates[0], 0, float("inf")
    for cand_h, cand_w in candidates:
        scale = min(cand_w / width, cand_h / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        waste = cand_h * cand_w - effective
        if effective > best_effective or (effective == best_effective and waste < best_waste):
            best, best_effective, best_waste = (cand_h, cand_w), effective, waste
    return best


def _llava_image(p: Preset, width: int, height: int) -> ImageCount:
    side = int(math.sqrt(p.tile_tokens))
    tiles = range(p.tile_size, p.tile_size * LLAVA_GRID_SIDE + 1, p.tile_size)
    best_h, best_w = select_best_resolution(height, width, tuple((h, w) for h in tiles for w in tiles))
    cur_h, cur_w = side * (best_h // p.tile_size), side * (best_w // p.tile_size)
    if width / height > cur_w / cur_h:
        cur_h -= ((cur_h - int(round(height * (cur_w / width), 7))) // 2) * 2
    else:
        cur_w -= ((cur_w - int(round(width * (cur_h / height), 7))) // 2) * 2
    unpadded, newlines = cur_h * cur_w, cur_h
    ratio = math.sqrt(cur_h * cur_w / (p.max_tiles * side**2))
    if ratio > 1.1:
        unpadded, newlines = int(cur_h // ratio) * int(cur_w // ratio), int(cur_h // ratio)
    tokens = p.tile_tokens + unpadded + newlines
    return ImageCount(
        width,
        height,
        best_w,
        best_h,
        (1, best_h // p.patch_size, best_w // p.patch_size),
        tokens,
        p.image_wrapper.tokens,
    )


def _llava_video(p: Preset, width: int, height: int, n_frames: int) -> VideoCount:
    return VideoCount(
        width,
        height,
        n_frames,
        p.tile_size,
        p.tile_size,
        (n_frames, 27, 27),
        n_frames,
        p.video_frame_tokens,
        1,
        n_frames * p.video_frame_tokens + 1,
        p.video_wrapper.tokens,
    )


_QWEN_PARAMETERS = (
    "patch_size",
    "merge_size",
    "temporal_patch_size",
    "min_pixels",
    "max_pixels",
    "video_min_pixels",
    "video_max_pixels",
    "cap_pixels_per_frame",
    "max_video_tokens",
    "image_wrapper",
    "video_wrapper",
)
FAMILY_PARAMETERS: dict[str, tuple[str, ...]] = {
    "qwen2-vl": _QWEN_PARAMETERS,
    "custom": _QWEN_PARAMETERS,
    "kimi-k25": (
        "patch_size",
        "merge_size",
        "temporal_patch_size",
        "max_patches",
        "video_max_patches",
        "max_patches_per_side",
        "image_wrapper",
        "video_wrapper",
        "chunk_wrapper",
    ),
    "kimi-vl": (
        "patch_size",
        "merge_size",
        "in_token_limit",
        "max_patches_per_side",
        "fit",
        "image_wrapper",
        "video_wrapper",
    ),
    "llava-onevision": (
        "patch_size",
        "tile_size",
        "tile_tokens",
        "max_tiles",
        "video_frame_tokens",
        "image_wrapper",
        "video_wrapper",
    ),
}

_FAMILIES = {
    "qwen2-vl": (_qwen_image, _qwen_video),
    "custom": (_qwen_image, _qwen_video),
    "kimi-k25": (_k25_image, _k25_video),
    "kimi-vl": (_kimi_vl_image, _kimi_vl_video),
    "llava-onevision": (_llava_image, _llava_video),
}

_QWEN_WRAP = Wrapper("<|vision_start|>", "<|vision_end|>", 1, 1)
_KIMI_IMAGE_WRAP = Wrapper("<|media_begin|>image<|media_content|>", "<|media_end|>", 3, 1)
BUILTIN: dict[str, Preset] = {
    "qwen2-vl": Preset(
        "qwen2-vl", "qwen2-vl", temporal_patch_size=2, image_wrapper=_QWEN_WRAP, video_wrapper=_QWEN_WRAP
    ),
    # Timestamps ("00:00:02.000") are text: 7 tokens with Kimi's tokenizer (digit groups and punctuation).
    "kimi-k25": Preset(
        "kimi-k25",
        "kimi-k25",
        temporal_patch_size=4,
        image_wrapper=_KIMI_IMAGE_WRAP,
        chunk_wrapper=Wrapper("{timestamp}<|media_begin|>video<|media_content|>", "<|media_end|>", 10, 1),
    ),
    "kimi-vl": Preset("kimi-vl", "kimi-vl", image_wrapper=_KIMI_IMAGE_WRAP),
    "llava-onevision": Preset("llava-onevision", "llava-onevision", image_wrapper=Wrapper("<image>", "", 0, 0)),
    "custom": Preset("custom", "custom", temporal_patch_size=2),
}


def get_preset(preset: str | Preset = "kimi-k25", **overrides) -> Preset:
    """A built-in preset by name (with optional parameter overrides), or ``preset`` itself."""
    if isinstance(preset, Preset):
        return preset.with_overrides(**overrides) if overrides else preset
    if preset not in BUILTIN:
        raise ConfigError(f"unknown vision preset {preset!r}; choose one of {', '.join(PRESETS)}")
    base = BUILTIN[preset]
    return base.with_overrides(**overrides) if overrides else base


def parse_override(item: str) -> tuple[str, Any]:
    """``"key=value"`` from a command line -> ``(key, value)`` typed as the preset parameter is."""
    key, sep, text = item.partition("=")
    fields = {f.name: f.type for f in dataclasses.fields(Preset)} if sep else {}
    if key not in fields or key in ("name", "family"):
        known = sorted(set(fields or {f.name for f in dataclasses.fields(Preset)}) - {"name", "family"})
        raise ConfigError(f"{item!r}: expected KEY=VALUE with KEY one of {', '.join(known)}")
    kind = str(fields[key])
    if kind == "bool":
        if text.lower() not in ("true", "false"):
            raise ConfigError(f"{item!r}: {key} is true or false")
        return key, text.lower() == "true"
    if kind == "int":
        try:
            return key, int(text)
        except ValueError:
            raise ConfigError(f"{item!r}: {key} is a whole number") from None
    return key, text


def image_tokens(width: int, height: int, preset: str | Preset = "kimi-k25", **overrides) -> ImageCount:
    """Tokens of one ``width`` x ``height`` image under ``preset``."""
    return get_preset(preset, **overrides).image(width, height)


def video_tokens(width: int, height: int, n_frames: int, preset: str | Preset = "kimi-k25", **overrides) -> VideoCount:
    """Tokens of one video of ``n_frames`` frames (as sampled for the model) under ``preset``."""
    return get_preset(preset, **overrides).video(width, height, n_frames)


def fit_size(count: Callable[[int, int], int], width: int, height: int, max_tokens: int) -> tuple[int, int] | None:
    """The largest down-scaled ``(width, height)`` (aspect kept) whose ``count`` fits ``max_tokens``, or None.

    Token counts grow with the scale in steps, so a binary search over the width finds the largest
    fitting size; the caller resizes the media to that size before the processor sees it.
    """

    def tokens(w: int) -> int | None:
        try:
            return count(w, max(1, round(height * w / width)))
        except ValueError:
            return None

    low, high, best = 1, width, None
    while low <= high:
        mid = (low + high) // 2
        value = tokens(mid)
        if value is not None and value <= max_tokens:
            best, low = mid, mid + 1
        else:
            high = mid - 1
    return None if best is None else (best, max(1, round(height * best / width)))


def fit_image(preset: Preset, width: int, height: int, max_tokens: int) -> ImageCount | None:
    """The image shrunk (aspect kept) until its placeholder tokens fit ``max_tokens``, or None."""
    size = fit_size(lambda w, h: preset.image(w, h).tokens, width, height, max_tokens)
    return None if size is None else preset.image(*size)
