"""Evaluation images by perceptual hash: a record's image matches when it is within a few bits of one.

The hashes and checks are image dedup's (``filters/dedup/image_hash.py``, ``hamming.py``): pHash of
the image and of nine 3% crops, so a slightly cropped copy is found either way round (the record's
crops against the eval image, the record against the eval image's crops), then the 16x16 colour
thumbnails, which tell apart flat drawings that pHash confuses. Eval sets are small next to a
corpus, so every record image is compared with every eval image (one vectorised XOR per image),
with no LSH buckets and so no missed pairs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from fusionforge.filters.decontam.eval_files import split_spec
from fusionforge.filters.dedup.hamming import hamming64
from fusionforge.filters.dedup.image_hash import (
    DEFAULT_MAX_COLOR_DISTANCE,
    DEFAULT_MAX_DISTANCE,
    color_distance,
    color_thumbnails,
    image_hashes,
)
from fusionforge.pipelines.core.errors import BadMedia, ConfigError
from fusionforge.pipelines.core.images import decode_image
from fusionforge.pipelines.core.io import expand_paths

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class ImageMatch:
    """The nearest eval image within the limits, and how many pHash bits apart it is."""

    eval_set: str
    eval_sample: str
    distance: int


class EvalImages:
    """pHashes (image + nine crops) and colour thumbnails of evaluation images (``NAME=PATH`` or ``PATH``)."""

    def __init__(
        self,
        evals: Iterable[str],
        max_distance: int = DEFAULT_MAX_DISTANCE,
        max_color_distance: float = DEFAULT_MAX_COLOR_DISTANCE,
    ) -> None:
        self.max_distance = max_distance
        self.max_color_distance = max_color_distance
        self.samples: list[tuple[str, str]] = []
        self.stats: dict[str, dict[str, Any]] = {}
        hashes, thumbs = [], []
        for spec in evals:
            name, path = split_spec(spec)
            if name in self.stats:
                raise ConfigError(f"two eval image sets are both named {name!r}; name them apart with NAME=PATH")
            stats = self.stats[name] = {"path": path, "images": 0, "unreadable": 0}
            for file in expand_paths(path, IMAGE_SUFFIXES):
                try:
                    image = decode_image(file.read_bytes())
                except (BadMedia, OSError):
                    stats["unreadable"] += 1
                    continue
                stats["images"] += 1
                self.samples.append((name, file.name))
                hashes.append(image_hashes(image))
                thumbs.append(color_thumbnails(image))
        self._hashes = np.stack(hashes) if hashes else np.zeros((0, 10), np.uint64)
        self._thumbs = thumbs

    def match(self, image: Image.Image) -> ImageMatch | None:
        """The closest eval image within ``max_distance`` pHash bits whose colours also agree, or None."""
        if not self.samples:
            return None
        own = image_hashes(image)
        against_stored = hamming64(own[:, None], self._hashes[None, :, 0]).min(axis=0)  # own crops vs eval images
        against_crops = hamming64(own[0], self._hashes).min(axis=1)  # own image vs eval crops
        distance = np.minimum(against_stored, against_crops)
        near = np.flatnonzero(distance <= self.max_distance)
        if not len(near):
            return None
        thumbs = color_thumbnails(image)
        for index in near[np.argsort(distance[near], kind="stable")]:
            if color_distance(thumbs, self._thumbs[index]) <= self.max_color_distance:
                eval_set, sample = self.samples[int(index)]
                return ImageMatch(eval_set, sample, int(distance[index]))
        return None
