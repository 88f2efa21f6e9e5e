"""``interleaved_doc_v1``: document-level rules of interleaved documents: how many images, how much text per image.

Reasons, in order: ``too_few_images`` (fewer image parts than ``min_images`` [1]) and
``too_many_images`` (more than ``max_images`` [30]): OBELICS' ``number_images_min/max_cutoff``
(MINT-1T's dataset card states the same bounds); ``too_few_words_per_image`` / ``too_many_words_per_image``: the
document's words divided by its image parts outside [``min_words_per_image``, ``max_words_per_image``]
[both off: neither OBELICS nor MINT-1T sets a ratio; a slide deck of captions or a wall of text
with one thumbnail are what they catch]. Image parts are those with bytes (``image``), counted as
shown, so an image shown twice counts twice, as OBELICS counts them; ``image_url`` parts (no
bytes) are not images a model sees. Put it after ``interleaved_nodes_v1`` so the removed logos do
not count. Scores: ``images``, ``words``, ``words_per_image`` (null without images).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.filters.interleaved.parts import IMAGE
from fusionforge.filters.rules import below, check_limits, exceeds, first_failing, float_array, safe_ratio
from fusionforge.filters.text.base import texts_of
from fusionforge.filters.text.words import split_words
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, ScoringStage


@register
class InterleavedDocument(ScoringStage):
    """``interleaved_doc_v1``: image-count and text/image-ratio bounds (see the module docstring)."""

    name: ClassVar[str] = "interleaved_doc_v1"
    resources: ClassVar[Resources] = Resources(batch_size=1024)

    def __init__(
        self,
        min_images: int | None = 1,
        max_images: int | None = 30,
        min_words_per_image: float | None = None,
        max_words_per_image: float | None = None,
    ) -> None:
        self.limits = {
            "min_images": min_images,
            "max_images": max_images,
            "min_words_per_image": min_words_per_image,
            "max_words_per_image": max_words_per_image,
        }
        check_limits(self.name, self.limits)

    def applies(self, batch: pa.Table) -> pa.Array:
        return pc.equal(batch.column(S.MODALITY), S.Modality.INTERLEAVED.value)

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        segments = batch.column(S.SEGMENTS).combine_chunks()
        parents = pc.list_parent_indices(segments).to_numpy(zero_copy_only=False)
        types = pc.struct_field(pc.list_flatten(segments), "type")
        is_image = pc.fill_null(pc.equal(types, IMAGE), False).to_numpy(zero_copy_only=False)
        images = np.bincount(parents[is_image], minlength=batch.num_rows).astype(np.int64)
        words = split_words(texts_of(batch)).count()
        return {
            "images": pa.array(images, pa.int64()),
            "words": pa.array(words, pa.int64()),
            "words_per_image": float_array(safe_ratio(words, images)),
        }

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        images = scores["images"].to_numpy(zero_copy_only=False).astype(np.float64)
        ratio = scores["words_per_image"].to_numpy(zero_copy_only=False).astype(np.float64)
        lim = self.limits
        return first_failing(
            len(images),
            [
                ("too_few_images", below(images, lim["min_images"])),
                ("too_many_images", exceeds(images, lim["max_images"])),
                ("too_few_words_per_image", below(ratio, lim["min_words_per_image"])),
                ("too_many_words_per_image", exceeds(ratio, lim["max_words_per_image"])),
            ],
        )
