"""Keyframe CLIP score of a video against its caption (optional; same model loading as images).

Only keyframes are decoded (``-skip_frame nokey``: cheap, and each one is a full picture), at most
``max_keyframes`` of them spread evenly over the video. ``score`` is the cosine similarity between
the caption embedding and the normalised mean of the keyframe embeddings. Kept by ``threshold`` or
``top_fraction`` like the image score (``filters/policy.py``). Videos already dropped are skipped.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from fusionforge.filters.image.clip_model import ClipPolicy, ClipScorer, check_clip_args
from fusionforge.filters.media import first_of_kind, video_url
from fusionforge.filters.video.common import video_facts
from fusionforge.filters.video.decode import decode_frames
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import BadMedia
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, ScoringStage


def spread(count: int, wanted: int) -> list[int]:
    """``wanted`` indices spread evenly over ``range(count)`` (all of them when there are fewer)."""
    if count <= wanted:
        return list(range(count))
    return sorted({int(round(i * (count - 1) / (wanted - 1))) for i in range(wanted)}) if wanted > 1 else [count // 2]


@register
class VideoClipScore(ClipPolicy, ScoringStage):
    """``video_clip_score_v1``: CLIP similarity of a video's keyframes with its caption."""

    name: ClassVar[str] = "video_clip_score_v1"
    resources: ClassVar[Resources] = Resources(batch_size=8)
    stateful: ClassVar[bool] = True

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str | None = None,
        device: str = "auto",
        precision: str = "fp32",
        max_keyframes: int = 8,
        threshold: float | None = None,
        top_fraction: float | None = None,
        timeout_s: float = 300.0,
        resolved_threshold: float | None = None,
        reuse_scores: bool = False,
    ) -> None:
        self.init_policy(threshold, top_fraction, resolved_threshold, reuse_scores)
        check_clip_args(model, pretrained)
        self.max_keyframes = max_keyframes
        self.timeout_s = timeout_s
        self.scorer = None if reuse_scores else ClipScorer(model, pretrained, device, precision)

    def applies(self, batch: pa.Table) -> pa.Array:
        has_video = pa.array([first_of_kind(m, "video") is not None for m in batch.column(S.MEDIA).to_pylist()])
        return pc.and_(has_video, batch.column(S.DROP_REASON).is_null())

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        if self.reuse_scores:
            return self.stored_scores(batch)
        captions = batch.column(S.TEXT).to_pylist()
        scores = np.full(batch.num_rows, np.nan)
        keyframes: list[int | None] = [None] * batch.num_rows
        errors: list[str | None] = [None] * batch.num_rows
        for row, media in enumerate(batch.column(S.MEDIA).to_pylist()):
            item = first_of_kind(media, "video")
            try:
                facts = video_facts(item, self.timeout_s)
                with video_url(item) as url:
                    frames = decode_frames(
                        url, facts.width, facts.height, max_side=336, keyframes_only=True, timeout_s=self.timeout_s
                    ).pixels
            except (BadMedia, OSError) as exc:
                errors[row] = f"{getattr(exc, 'reason', 'unreadable_video')}: {exc}"
                continue
            if len(frames) == 0:
                continue
            chosen = [Image.fromarray(frames[i]) for i in spread(len(frames), self.max_keyframes)]
            image = self.scorer.image_features(chosen).mean(axis=0)
            image /= np.linalg.norm(image) or 1.0
            scores[row] = float(image @ self.scorer.text_features([captions[row] or ""])[0])
            keyframes[row] = len(chosen)
        return {
            "score": pa.array(scores, pa.float64(), mask=np.isnan(scores)),
            "keyframes": pa.array(keyframes, pa.int64()),
            "error": pa.array(errors, pa.string()),
        }

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        return self.policy_reasons(scores["score"].to_numpy(zero_copy_only=False))
