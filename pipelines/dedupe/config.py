"""``DedupeConfig``: every setting of ``fusionforge dedupe``, checked before any work starts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from fusionforge.filters.dedup.hamming import HAMMING_FANOUT, hamming_band_params
from fusionforge.filters.dedup.image_hash import (
    CROP_FRACTION,
    DEFAULT_MAX_COLOR_DISTANCE,
    DEFAULT_MAX_DISTANCE,
    HASH_KINDS,
    MAX_DISTANCES,
)
from fusionforge.filters.dedup.lsh import lsh_params
from fusionforge.filters.dedup.verify import DEFAULT_RECHECK_MARGIN
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.settings import RUN_FIELDS, RunSettings, build_config, check_known, flat_config
from fusionforge.pipelines.transform import TransformConfig

COMPARED = ("text", "images", "videos")  # what dedupe can compare: one switch each in DedupeConfig
# Not settings of what counts as a duplicate: where the run reads and writes, its sharding, how it runs.
NOT_DEDUPE_SETTINGS = ("input", "output", "shard_size_mb", "shard_count", *RUN_FIELDS)


@dataclass(frozen=True)
class DedupeConfig:
    """What ``dedupe`` reads and writes, what counts as a duplicate, and which copy stays."""

    input: str
    output: str
    text: bool = True
    images: bool = True
    videos: bool = True
    within_source: bool = False  # default: a copy in another source is a duplicate too
    text_threshold: float = 0.8
    num_perm: int = 128
    ngram: int = 5
    char_ngrams: bool = False
    bands: int | None = None  # with rows: explicit LSH parameters instead of datasketch's search
    rows: int | None = None
    verify: bool = True  # check candidates with the signature's Jaccard estimate
    recheck_margin: float = DEFAULT_RECHECK_MARGIN  # exact Jaccard for estimates this close to the threshold
    casefold: bool = True
    collapse_whitespace: bool = True
    image_hash: str = "phash"
    image_hamming: int | None = None  # None: the measured default of the hash (pHash 8, dHash 6)
    image_crops: float = CROP_FRACTION  # 0: no crop variants
    image_color: float = DEFAULT_MAX_COLOR_DISTANCE  # colour-thumbnail check of pHash matches (0: off)
    video_fps: float = 1.0
    video_max_frames: int = 32
    video_hamming: int = DEFAULT_MAX_DISTANCE
    video_match: float = 0.8
    keep: str = "first"  # first | longest | best:<column>
    bucket_fanout: int = 64  # text: a bucket's first 64 members are paired with every other
    hamming_fanout: int = HAMMING_FANOUT  # images, videos: stored hashes a row is compared with per bucket
    rows_per_shuffle_partition: int = 2_000_000
    timeout_s: float = 60.0
    shard_size_mb: float | None = 256.0
    shard_count: int | None = None
    run: RunSettings = RunSettings()  # run.seed seeds the MinHash signatures

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 < self.text_threshold <= 1.0:
            problems.append(f"--text-threshold must be in (0, 1], got {self.text_threshold}")
        if self.num_perm < 2 or self.ngram < 1:
            problems.append(f"--num-perm must be >= 2 and --ngram >= 1 (got {self.num_perm}, {self.ngram})")
        if (self.bands is None) != (self.rows is None):
            problems.append("give --bands and --rows together, or neither (then they follow the threshold)")
        elif self.bands is not None and (self.bands < 1 or self.rows < 1 or self.bands * self.rows > self.num_perm):
            problems.append(
                f"--bands x --rows must be positive and at most --num-perm "
                f"({self.bands} x {self.rows}, --num-perm {self.num_perm})"
            )
        if not 0.0 <= self.recheck_margin < 1.0:
            problems.append(f"--recheck-margin must be in [0, 1), got {self.recheck_margin}")
        if self.image_hash not in HASH_KINDS:
            problems.append(f"--image-hash must be one of {', '.join(HASH_KINDS)}, got {self.image_hash!r}")
        for name, value in (("--image-hamming", self.image_hamming), ("--video-hamming", self.video_hamming)):
            if value is not None and not 0 <= value <= 31:
                problems.append(f"{name} must be between 0 and 31 bits, got {value}")
        if self.bucket_fanout < 1 or self.hamming_fanout < 1:
            problems.append(
                f"bucket_fanout and hamming_fanout must be >= 1 (got {self.bucket_fanout}, {self.hamming_fanout})"
            )
        if self.image_color < 0:
            problems.append(f"--image-color must be >= 0 (0: no colour check), got {self.image_color}")
        if not 0.0 <= self.image_crops < 0.25:
            problems.append(f"--image-crops must be in [0, 0.25), got {self.image_crops}")
        if not 0.0 < self.video_match <= 1.0 or self.video_fps <= 0 or self.video_max_frames < 1:
            problems.append("--video-match must be in (0, 1], --video-fps > 0 and --video-max-frames >= 1")
        if self.keep not in ("first", "longest") and not (self.keep.startswith("best:") and len(self.keep) > 5):
            problems.append(f"--keep must be first, longest or best:<column>, got {self.keep!r}")
        if not (self.text or self.images or self.videos):
            problems.append("nothing to compare: enable text, images or videos")
        if problems:
            raise ConfigError("; ".join(problems))

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> DedupeConfig:
        """Build from a plain mapping (a recipe step); unknown keys are an error that lists the known ones."""
        check_known(cls, data, "dedupe")
        return build_config(cls, data)

    @property
    def score_column(self) -> str | None:
        return self.keep[5:] if self.keep.startswith("best:") else None

    def lsh(self) -> tuple[int, int]:
        """(bands, rows): as given, else datasketch's optimum for the threshold, weighted for recall."""
        if self.bands is not None:
            return self.bands, self.rows
        return lsh_params(self.text_threshold, self.num_perm)

    @property
    def image_max_distance(self) -> int:
        """``image_hamming``, or the default measured for ``image_hash``."""
        return MAX_DISTANCES[self.image_hash] if self.image_hamming is None else self.image_hamming

    def hamming_bands(self) -> dict[str, int]:
        """Bit-sampling bands of image and video hashes: bits per band and bands, from each threshold."""
        image_bits, image_bands = hamming_band_params(self.image_max_distance)
        video_bits, video_bands = hamming_band_params(self.video_hamming)
        return {
            "image_band_bits": image_bits,
            "image_bands": image_bands,
            "video_band_bits": video_bits,
            "video_bands": video_bands,
        }

    def transform(self, resume: bool | None = None) -> TransformConfig:
        run = self.run if resume is None else dataclasses.replace(self.run, resume=resume)
        return TransformConfig(self.input, self.output, self.shard_size_mb, self.shard_count, run)

    def settings(self) -> dict[str, Any]:
        """The settings that decide the output (a resumed run must share them): these and the seed."""
        own = {k: v for k, v in flat_config(self).items() if k not in NOT_DEDUPE_SETTINGS}
        return {**own, "seed": self.run.seed}

    def sketch_params(self) -> dict[str, Any]:
        """Keyword arguments of the ``dedupe_sketch_v1`` stage."""
        return {
            "text": self.text,
            "images": self.images,
            "videos": self.videos,
            "num_perm": self.num_perm,
            "ngram": self.ngram,
            "seed": self.run.seed,
            "char_ngrams": self.char_ngrams,
            "casefold": self.casefold,
            "collapse_whitespace": self.collapse_whitespace,
            "keep_shingles": self.recheck_margin > 0,
            "image_hash": self.image_hash,
            "crop_fraction": self.image_crops,
            "video_fps": self.video_fps,
            "video_max_frames": self.video_max_frames,
            "timeout_s": self.timeout_s,
            "strict": self.run.strict,
            "drop_inputs": True,
        }
