"""What the safety stages share: the rows they judge, decoding each row's pictures, a limit on a score.

A safety stage judges a record by the pictures it shows (``pictures.py``): a model runs per picture
and ``judge`` folds one record's pictures into its values (the worst picture, mostly). Records
already dropped or failed by an earlier stage are not decoded again (decoding and the models are
the expensive part); a record whose media will not decode gets an error, not a score.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.filters.safety.pictures import Picture, PictureLimits, has_pictures, record_pictures
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.bounds import COUNT, POSITIVE, Bound
from fusionforge.pipelines.core.errors import BadMedia, media_error
from fusionforge.pipelines.core.stage import ScoringStage


class PictureStage(ScoringStage):
    """A scoring stage over the images and video keyframes of each live record that has any."""

    fields: ClassVar[dict[str, pa.DataType]]  # the values ``judge`` returns, and their Arrow types
    stateful: ClassVar[bool] = True

    def init_pictures(self, max_pixels: int, max_keyframes: int, keyframe_side: int, timeout_s: float) -> None:
        require_bounds(
            self.name,
            max_pixels=(max_pixels, COUNT),
            max_keyframes=(max_keyframes, COUNT),
            keyframe_side=(keyframe_side, COUNT),
            timeout_s=(timeout_s, POSITIVE),
        )
        self.limits = PictureLimits(max_pixels, max_keyframes, keyframe_side, timeout_s)

    @abstractmethod
    def judge(self, pictures: list[Picture]) -> dict[str, Any]:
        """One record's values (the keys of ``fields``) from its decoded pictures (at least one)."""

    def applies(self, batch: pa.Table) -> pa.Array:
        shows = pa.array([has_pictures(media) for media in batch.column(S.MEDIA).to_pylist()], pa.bool_())
        return pc.and_(shows, batch.column(S.DROP_REASON).is_null())

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        values: dict[str, list[Any]] = {name: [None] * batch.num_rows for name in self.fields}
        errors: list[str | None] = [None] * batch.num_rows
        for row, media in enumerate(batch.column(S.MEDIA).to_pylist()):
            try:
                pictures = record_pictures(media, self.limits)
            except (BadMedia, OSError) as exc:
                errors[row] = media_error(exc)
                continue
            if pictures:  # a video with no keyframe decoded has nothing to judge
                for name, value in self.judge(pictures).items():
                    values[name][row] = value
        scores = {name: pa.array(values[name], kind) for name, kind in self.fields.items()}
        return {**scores, "error": pa.array(errors, pa.string())}


def require_bounds(stage: str, **checks: tuple[Any, Bound]) -> None:
    """Raise ``ValueError`` naming the first parameter outside its bound (``name=(value, bound)``)."""
    for what, (value, bound) in checks.items():
        bound.require(f"{stage}: {what}", value, ValueError)


def over_limit(values: pa.Array, limit: float | None, reason: str) -> list[str | None]:
    """``reason`` where a value is above ``limit`` (None: no limit); unscored rows are kept."""
    if limit is None:
        return [None] * len(values)
    numbers = np.nan_to_num(values.to_numpy(zero_copy_only=False).astype(np.float64), nan=-np.inf)
    return [reason if flag else None for flag in numbers > limit]


def under_limit(values: pa.Array, limit: float | None, reason: str) -> list[str | None]:
    """``reason`` where a value is below ``limit`` (None: no limit); unscored rows are kept."""
    if limit is None:
        return [None] * len(values)
    numbers = np.nan_to_num(values.to_numpy(zero_copy_only=False).astype(np.float64), nan=np.inf)
    return [reason if flag else None for flag in numbers < limit]


def first_reason(*columns: list[str | None]) -> list[str | None]:
    """Per row, the first reason any of the columns gives."""
    return [next((r for r in row if r), None) for row in zip(*columns)]
