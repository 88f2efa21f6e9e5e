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
from fusionforge.filters.image.clip_model import DEVICES
from fusionforge.pipelines.core.bounds import (
    COUNT,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_FRACTION,
    PROPER_FRACTION,
    Bound,
    check_bounds,
    within,
)
from fusionforge.pipelines.core.settings import RUN_FIELDS, RunSettings, build_config, check_known, flat_config
from fusionforge.pipelines.transform import TransformConfig
from fusionforge.pipelines.writers.webdataset_writer import sharding_problem

COMPARED = ("text", "images", "videos")  # what dedupe can compare: one switch each in DedupeConfig
# Not settings of what counts as a duplicate: where the run reads and writes, its sharding, how it runs.
NOT_DEDUPE_SETTINGS = ("input", "output", "shard_size_mb", "shard_count", "embed_gpus", "reuse_embeddings", *RUN_FIELDS)
PERMUTATIONS = Bound(integer=True, min=2)  # MinHash permutations: LSH needs at least two
HAMMING_BITS = Bound(integer=True, min=0, max=31)  # differing bits of 64-bit hashes that still match
PARAGRAPH_DOCS = Bound(integer=True, min=2)  # documents a paragraph must be in to count as boilerplate
CROP = Bound(integer=False, min=0, max=0.25, max_open=True)  # fraction cut per side; a quarter leaves no middle


@dataclass(frozen=True)
class DedupeConfig:
    """What ``dedupe`` reads and writes, what counts as a duplicate, and which copy stays."""

    input: str
    output: str
    text: bool = True
    images: bool = True
    videos: bool = True
    within_source: bool = False  # default: a copy in another source is a duplicate too
    paragraphs: bool = False  # also remove paragraphs found in paragraph_min_docs documents or more (boilerplate)
    paragraph_min_docs: int = within(PARAGRAPH_DOCS, 3)
    text_threshold: float = within(POSITIVE_FRACTION, 0.8)
    num_perm: int = within(PERMUTATIONS, 128)
    ngram: int = within(COUNT, 5)
    char_ngrams: bool = False
    bands: int | None = within(COUNT, None)  # with rows: explicit LSH parameters instead of datasketch's search
    rows: int | None = within(COUNT, None)
    verify: bool = True  # check candidates with the signature's Jaccard estimate
    # exact Jaccard for estimates this close to the threshold
    recheck_margin: float = within(PROPER_FRACTION, DEFAULT_RECHECK_MARGIN)
    casefold: bool = True
    collapse_whitespace: bool = True
    image_hash: str = "phash"
    image_hamming: int | None = within(HAMMING_BITS, None)  # None: the measured default of the hash (pHash 8, dHash 6)
    image_crops: float = within(CROP, CROP_FRACTION)  # 0: no crop variants
    # colour-thumbnail check of pHash matches (0: off)
    image_color: float = within(NON_NEGATIVE, DEFAULT_MAX_COLOR_DISTANCE)
    video_fps: float = within(POSITIVE, 1.0)
    video_max_frames: int = within(COUNT, 32)
    video_hamming: int = within(HAMMING_BITS, DEFAULT_MAX_DISTANCE)
    video_match: float = within(POSITIVE_FRACTION, 0.8)
    keep: str = "first"  # first | longest | best:<column>
    bucket_fanout: int = within(COUNT, 64)  # text: a bucket's first 64 members are paired with every other
    # images, videos: stored hashes a row is compared with per bucket
    hamming_fanout: int = within(COUNT, HAMMING_FANOUT)
    rows_per_shuffle_partition: int = within(COUNT, 2_000_000)
    timeout_s: float = within(POSITIVE, 60.0)
    shard_size_mb: float | None = within(NON_NEGATIVE, 256.0)  # 0 or None: no size limit
    shard_count: int | None = within(COUNT, None)
    # --semantic (SemDeDup): embeddings, k-means, cosine pairs inside each cluster, instead of the hashes
    semantic: bool = False
    text_model: str | None = None  # a local model2vec folder, or "clip" (CLIP's text tower)
    clip_model: str = "ViT-B-32"  # images and video keyframes (and text with text_model="clip")
    clip_pretrained: str | None = None  # a local checkpoint; without it images and videos are not embedded
    device: str = "auto"
    semantic_threshold: float = within(POSITIVE_FRACTION, 0.9)  # cosine at or above which two items are copies
    semantic_clusters: int | None = within(COUNT, None)  # k-means clusters (None: one per 1,000 items)
    # clusters each item joins (its nearest): 1 (SemDeDup's) lost 10-18% of the pairs at 0.9, 2 lost 1-4%
    semantic_probes: int = within(COUNT, 2)
    kmeans_sample: int = within(COUNT, 100_000)  # rows the centroids are trained on, at most
    kmeans_iterations: int = within(COUNT, 20)
    max_keyframes: int = within(COUNT, 4)  # keyframes averaged into a video's embedding
    embed_batch: int = within(COUNT, 16)  # CLIP micro-batch (fixed shape, so every executor gets the same floats)
    embed_gpus: float = within(NON_NEGATIVE, 0.0)  # GPUs per embedding actor on Ray
    pair_shard_items: int = within(COUNT, 50_000)  # items per pair-search task (whole clusters)
    reuse_embeddings: str | None = None  # an earlier --semantic output whose embeddings are taken
    run: RunSettings = RunSettings()  # run.seed seeds the MinHash signatures and the k-means sample

    def __post_init__(self) -> None:
        problems = [sharding_problem(self.shard_size_mb, self.shard_count)]
        if (self.bands is None) != (self.rows is None):
            problems.append("give --bands and --rows together, or neither (then they follow the threshold)")
        elif self.bands is not None and self.bands * self.rows > self.num_perm:
            problems.append(
                f"--bands x --rows must be at most --num-perm ({self.bands} x {self.rows}, --num-perm {self.num_perm})"
            )
        if self.image_hash not in HASH_KINDS:
            problems.append(f"--image-hash must be one of {', '.join(HASH_KINDS)}, got {self.image_hash!r}")
        if self.keep not in ("first", "longest") and not (self.keep.startswith("best:") and len(self.keep) > 5):
            problems.append(f"--keep must be first, longest or best:<column>, got {self.keep!r}")
        if not (self.text or self.images or self.videos):
            problems.append("nothing to compare: enable text, images or videos")
        if self.semantic:
            problems += semantic_problems(self)
        check_bounds(self, *problems)

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

    def semantic_kinds(self) -> dict[str, bool]:
        """Which kinds --semantic embeds: those compared whose model is given."""
        clip = self.clip_pretrained is not None or self.clip_model.startswith("local-dir:")
        return {
            "text": self.text and self.text_model is not None,
            "images": self.images and clip,
            "videos": self.videos and clip,
        }

    def embed_params(self) -> dict[str, Any]:
        """Keyword arguments of the ``dedupe_embed_v1`` stage."""
        kinds = self.semantic_kinds()
        return {
            "text_model": self.text_model if kinds["text"] else None,
            "images": kinds["images"],
            "videos": kinds["videos"],
            "clip_model": self.clip_model,
            "clip_pretrained": self.clip_pretrained,
            "device": self.device,
            "max_keyframes": self.max_keyframes,
            "micro_batch": self.embed_batch,
            "timeout_s": self.timeout_s,
            "strict": self.run.strict,
            "drop_inputs": True,
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


def semantic_problems(cfg: DedupeConfig) -> list[str]:
    """What makes a --semantic run impossible: no model for anything compared, or a kind asked without one."""
    kinds = cfg.semantic_kinds()
    asked = {"text": cfg.text, "images": cfg.images, "videos": cfg.videos}
    problems = []
    if not any(kinds.values()):
        problems.append("--semantic needs a model: --text-model DIR (model2vec) and/or --clip-pretrained FILE")
    elif not all(asked.values()):  # --only named the kinds: each needs its model
        missing = [k for k, v in asked.items() if v and not kinds[k]]
        if missing:
            need = "--text-model" if missing == ["text"] else "--clip-pretrained"
            problems.append(f"--semantic --only {' '.join(missing)} needs {need}")
    if cfg.text_model == "clip" and not (kinds["images"] or cfg.clip_pretrained):
        problems.append("--text-model clip needs --clip-pretrained (CLIP's weights)")
    if cfg.device not in DEVICES:
        problems.append(f"--device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    return problems
