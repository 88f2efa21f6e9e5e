"""``decontaminate_v1``: records that share a long n-gram with an evaluation text, or an image with an eval image.

Defaults: ``evals`` and ``eval_images`` empty (give at least one; ``NAME=PATH``, a file, folder or
glob); ``ngram`` 13 (GPT-3's decontamination, Brown et al. 2020, appendix C), ``min_tokens`` 8 (an
eval text with fewer words is not indexed; one with 8-12 words is matched whole);
``max_distance`` 8 pHash bits and ``max_color_distance`` 100 (image dedup's thresholds, measured
there: copies resized, re-encoded or cropped by up to 5% stay within them); ``action`` ``drop``
(``mark``: store the scores, drop nothing). Every record's text is matched (documents, interleaved
documents, captions), and every image of a record (videos are not compared).

Reasons: ``ngram:<eval set>`` (checked first) and ``image:<eval set>``. Scores: ``eval_set``,
``eval_sample``, ``ngram`` (the shared words), ``ngram_hits`` (the record's windows found in the
index), ``image_eval_set``, ``image_eval_sample``, ``image_distance`` (pHash bits to the matched eval
image) and ``contaminated``. An image that cannot be decoded fails its record
(``decontaminate_v1:undecodable_image: ...``): it could not be checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa

from fusionforge.filters.decontam.eval_files import EVAL_SUFFIXES, split_spec
from fusionforge.filters.decontam.images import IMAGE_SUFFIXES, EvalImages, ImageMatch
from fusionforge.filters.decontam.ngrams import DEFAULT_MIN_TOKENS, DEFAULT_NGRAM, EvalIndex, Match
from fusionforge.filters.dedup.image_hash import DEFAULT_MAX_COLOR_DISTANCE, DEFAULT_MAX_DISTANCE
from fusionforge.filters.media import item_bytes, items_of_kind
from fusionforge.filters.text.base import texts_of
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.bounds import COUNT, NON_NEGATIVE, Bound, check_bounds, within
from fusionforge.pipelines.core.errors import BadMedia, media_error
from fusionforge.pipelines.core.images import decode_image
from fusionforge.pipelines.core.io import expand_paths
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import ERROR_FIELD, Resources, ScoringStage

ACTIONS = ("drop", "mark")
HASH_BITS = Bound(integer=True, min=0, max=64)


@dataclass(frozen=True)
class DecontamSettings:
    """The stage's parameters, all checked on construction: the filter list is checked before any work."""

    evals: Sequence[str] = ()
    eval_images: Sequence[str] = ()
    ngram: int = within(COUNT, DEFAULT_NGRAM)
    min_tokens: int = within(COUNT, DEFAULT_MIN_TOKENS)
    max_distance: int = within(HASH_BITS, DEFAULT_MAX_DISTANCE)
    max_color_distance: float = within(NON_NEGATIVE, DEFAULT_MAX_COLOR_DISTANCE)
    action: str = "drop"

    def __post_init__(self) -> None:
        check_bounds(
            self,
            None if self.evals or self.eval_images else "give evals (text files) or eval_images (image files), or both",
            None if self.action in ACTIONS else f"action must be one of {list(ACTIONS)}, got {self.action!r}",
        )
        for specs, suffixes in ((self.evals, EVAL_SUFFIXES), (self.eval_images, IMAGE_SUFFIXES)):
            for spec in specs:
                expand_paths(split_spec(spec)[1], suffixes)  # a ConfigError naming a path that holds no files


@register
class Decontaminate(ScoringStage):
    """Drops (or marks) records whose text shares an n-gram with an eval set, or whose image matches an eval image."""

    name: ClassVar[str] = "decontaminate_v1"
    stateful: ClassVar[bool] = True  # the indexes load once per actor
    resources: ClassVar[Resources] = Resources(batch_size=256)

    def __init__(
        self,
        evals: Sequence[str] = (),
        eval_images: Sequence[str] = (),
        ngram: int = DEFAULT_NGRAM,
        min_tokens: int = DEFAULT_MIN_TOKENS,
        max_distance: int = DEFAULT_MAX_DISTANCE,
        max_color_distance: float = DEFAULT_MAX_COLOR_DISTANCE,
        action: str = "drop",
    ) -> None:
        DecontamSettings(evals, eval_images, ngram, min_tokens, max_distance, max_color_distance, action)
        self.action = action
        self.texts = EvalIndex(evals, ngram, min_tokens) if evals else None
        self.images = EvalImages(eval_images, max_distance, max_color_distance) if eval_images else None

    @classmethod
    def check(cls, **params: object) -> None:
        """Cheap checks before any work (building the stage reads every eval file)."""
        DecontamSettings(**params)

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        texts = texts_of(batch).to_pylist()
        text_matches: list[Match | None] = [self.texts.match([t]) for t in texts] if self.texts else [None] * len(texts)
        image_matches, failures = self._image_matches(batch.column(S.MEDIA).to_pylist())
        scores = {
            "eval_set": pa.array([m.eval_set if m else None for m in text_matches], pa.string()),
            "eval_sample": pa.array([m.eval_sample if m else None for m in text_matches], pa.string()),
            "ngram": pa.array([m.ngram if m else None for m in text_matches], pa.large_string()),
            "ngram_hits": pa.array([(m.hits if m else 0) if self.texts else None for m in text_matches], pa.int64()),
            "image_eval_set": pa.array([m.eval_set if m else None for m in image_matches], pa.string()),
            "image_eval_sample": pa.array([m.eval_sample if m else None for m in image_matches], pa.string()),
            "image_distance": pa.array([m.distance if m else None for m in image_matches], pa.int64()),
            "contaminated": pa.array(
                [None if f else bool(t or i) for t, i, f in zip(text_matches, image_matches, failures)], pa.bool_()
            ),
        }
        if any(failures):
            scores[ERROR_FIELD] = pa.array(failures, pa.string())
        return scores

    def _image_matches(self, media: list) -> tuple[list[ImageMatch | None], list[str | None]]:
        matches: list[ImageMatch | None] = []
        failures: list[str | None] = []
        for items in media:
            found, failure = None, None
            for item in items_of_kind(items, "image") if self.images else []:
                try:
                    found = self.images.match(decode_image(item_bytes(item)))
                except (BadMedia, OSError) as exc:
                    failure = media_error(exc)
                    break
                if found:
                    break
            matches.append(found)
            failures.append(failure)
        return matches, failures

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        if self.action == "mark":
            return [None] * len(scores["contaminated"])
        texts, images = scores["eval_set"].to_pylist(), scores["image_eval_set"].to_pylist()
        return [f"ngram:{t}" if t else f"image:{i}" if i else None for t, i in zip(texts, images)]
