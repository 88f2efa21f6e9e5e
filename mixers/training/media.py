"""Media of a planned sequence through the model family's own transformers processors.

The processors are built from the pack's preset (never fetched from a hub), so they resize exactly
as the preset counted. Each media span of the plan is one processor call: an image resized to the
size the plan recorded (the original, or shrunk to fit), or a video chunk group's frames (sampled
as the frame filter sampled them, else every frame, scaled to the recorded size). The placeholder
tokens the processor's grid implies are checked against the plan before anything is yielded.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import ffmpeg
import numpy as np
from PIL import Image

from fusionforge.filters.media import item_bytes, video_url
from fusionforge.filters.video.decode import run_ffmpeg
from fusionforge.mixers.tokens.vision import Preset, qwen_video_max_pixels
from fusionforge.pipelines.core.errors import ConfigError, MissingDependency, RunError

QWEN_FAMILIES = ("qwen2-vl", "custom")
FAMILIES = (*QWEN_FAMILIES, "kimi-k25")
VIDEO_TIMEOUT_S = 300.0


class MediaMismatch(RunError):
    """The processor's placeholder count for a media item differs from the plan's (never silently truncated)."""


@dataclass(frozen=True)
class MediaInput:
    """One plan media span and what its pixels come from, whichever copy of the data is read.

    ``item`` is a record's media item (``uri`` + byte range, or inline ``bytes`` with its ``format``);
    ``sampling`` is a video's counted frames and the rate they were sampled at (None: every frame).
    """

    span: dict[str, Any]
    item: dict[str, Any]
    sampling: tuple[int, float | None] = (0, None)


@dataclass
class Processed:
    """One media span through its processor: pixels, one grid row per encoder item, and its placeholder tokens."""

    kind: str  # "image" | "video"
    pixel_values: Any  # torch.Tensor
    grid_thw: Any  # torch.Tensor (rows, 3)
    tokens: int


class MediaProcessors:
    """The image and video processors of the preset's model family, configured from the preset."""

    def __init__(self, preset: Preset) -> None:
        if preset.family not in FAMILIES:
            raise ConfigError(
                f"the training loader supports presets of the {', '.join(FAMILIES)} families, not {preset.family!r}"
            )
        try:
            self.image, self.video = _build(preset)
        except ImportError as exc:
            raise MissingDependency("transformers", "local-model") from exc
        self.preset = preset
        self.merge = preset.merge_size**2

    def process(self, media: MediaInput, where: str) -> Processed:
        """Pixels for one plan media span; ``where`` names the sequence and record in errors."""
        item, span = media.item, media.span
        size = (span["width"], span["height"])
        if span["kind"] == "image":
            image = decode_image(item_bytes(item), size)
            out = self.image(images=[image], input_data_format="channels_last", return_tensors="pt")
            result = Processed("image", out["pixel_values"], out["image_grid_thw"], 0)
        else:
            frames = self._frames(media, size, where)
            kwargs = {"do_sample_frames": False, "return_tensors": "pt"}
            if self.preset.family in QWEN_FAMILIES:
                # The per-frame cap depends on the frame count: the whole video's, as the plan counted it, not
                # this chunk group's (a few frames alone would be capped higher and make more tokens).
                most = qwen_video_max_pixels(self.preset, media.sampling[0])
                kwargs["size"] = {"shortest_edge": self.preset.video_min_pixels, "longest_edge": most}
                kwargs["cap_pixels_per_frame"] = False
            out = self.video(videos=[frames], **kwargs)
            result = Processed("video", out["pixel_values_videos"], out["video_grid_thw"], 0)
        pooled = result.kind == "video" and self.preset.family == "kimi-k25"
        result.tokens = sum(t * h * w // ((t if pooled else 1) * self.merge) for t, h, w in result.grid_thw.tolist())
        if result.tokens != span["vision_tokens"]:
            raise MediaMismatch(
                f"{where}: the {span['kind']} {span['media_index']} ({span['width']}x{span['height']}) makes "
                f"{result.tokens} placeholder tokens in the processor, the plan holds {span['vision_tokens']}"
            )
        return result

    def _frames(self, media: MediaInput, size: tuple[int, int], where: str) -> np.ndarray:
        """The frames of the span's temporal chunks, (n, height, width, 3) uint8."""
        span, (total, rate) = media.span, media.sampling
        unit = self.preset.temporal_patch_size
        first, stop = span["chunk_start"] * unit, min(span["chunk_end"] * unit, total)
        frames = decode_video(media.item, size, rate, stop)
        if len(frames) < stop:
            raise MediaMismatch(
                f"{where}: video {span['media_index']} decodes to {len(frames)} frames, the plan counted {total}"
            )
        return frames[first:stop]


def decode_image(data: bytes, size: tuple[int, int]) -> np.ndarray:
    """The image decoded once into an RGB array (height, width, 3) at ``size``, which the processor takes as it is.

    Given a PIL image, the processor would convert it to RGB again (a copy). Images with another mode
    or with transparency go through the processor's own conversion (transparency onto white) first.
    """
    image = Image.open(io.BytesIO(data))
    if image.mode != "RGB" or "transparency" in image.info:
        from transformers.image_transforms import convert_to_rgb

        image = Image.fromarray(convert_to_rgb(image, return_numpy=True))
    if image.size != size:
        image = image.resize(size, Image.BICUBIC)
    return np.array(image)


def decode_video(item: dict[str, Any], size: tuple[int, int], fps: float | None, max_frames: int) -> np.ndarray:
    """The first ``max_frames`` frames (resampled to ``fps`` as the frame filter samples), RGB at ``size``."""
    width, height = size
    with video_url(item) as url:
        stream = ffmpeg.input(url)
        if fps is not None:
            stream = stream.filter("fps", fps=fps)
        stream = stream.filter("scale", width, height)
        output = stream.output("pipe:", format="rawvideo", pix_fmt="rgb24", **{"frames:v": max_frames})
        raw = run_ffmpeg(output, VIDEO_TIMEOUT_S)
    count = len(raw) // (width * height * 3)
    return np.frombuffer(bytearray(raw[: count * width * height * 3]), np.uint8).reshape(count, height, width, 3)


def _build(preset: Preset) -> tuple[Any, Any]:
    if preset.family in QWEN_FAMILIES:
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
        from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

        common = {
            "patch_size": preset.patch_size,
            "merge_size": preset.merge_size,
            "temporal_patch_size": preset.temporal_patch_size,
        }
        image = Qwen2VLImageProcessor(
            size={"shortest_edge": preset.min_pixels, "longest_edge": preset.max_pixels}, **common
        )
        video = Qwen2VLVideoProcessor(
            size={"shortest_edge": preset.video_min_pixels, "longest_edge": preset.video_max_pixels},
            max_video_tokens=preset.max_video_tokens,
            **common,
        )
        return image, video
    from transformers.models.kimi_k25.image_processing_kimi_k25 import Kimi_K25ImageProcessor
    from transformers.models.kimi_k25.video_processing_kimi_k25 import Kimi_K25VideoProcessor

    side = {"max_height": preset.max_patches_per_side, "max_width": preset.max_patches_per_side}
    common = {"patch_size": preset.patch_size, "merge_size": preset.merge_size, "size": side}
    image = Kimi_K25ImageProcessor(max_patches=preset.max_patches, **common)
    video = Kimi_K25VideoProcessor(
        max_patches=preset.video_max_patches, temporal_patch_size=preset.temporal_patch_size, **common
    )
    return image, video
