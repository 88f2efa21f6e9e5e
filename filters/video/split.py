"""Scene splitting: a video with cuts becomes one record per scene clip (an expanding stage).

Each clip is a new record: its own MP4 (re-encoded with libx264 so it starts on the scene's first
frame; ``reencode=False`` stream-copies, which is faster but starts on the keyframe before the cut),
the parent's caption and meta plus ``clip_of``/``clip_start_s``/``clip_end_s``, ``parent_id`` set,
and the id ``"{parent id}#t={start:.3f},{end:.3f}"`` (a W3C media-fragment time range, so the id
says where the clip came from and never depends on timing). The parent keeps its row with
``drop_reason = "video_scenes_v1:split_into_clips"`` (it lands in ``rejected/`` with its cut times);
a video with a single scene is left as it is. Columns: on parents and unsplit videos ``n_clips`` and
``cut_times``; on clips ``start_s``, ``end_s`` and ``clip_index``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

import pyarrow as pa

from fusionforge.filters.media import video_url
from fusionforge.filters.video.common import live_video_rows, video_facts
from fusionforge.filters.video.scenes import ClipEncoding, extract_clip, plan_clips, scene_scores
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.bounds import Bound
from fusionforge.pipelines.core.errors import BadMedia
from fusionforge.pipelines.core.expand import derive_rows
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, Stage, add_drop_reasons, add_errors, set_column

SPLIT = "split_into_clips"
SCENE_SCORE = Bound(integer=False, min=0, max=1, min_open=True, max_open=True)  # 0 cuts every frame, 1 none


def clip_id(parent_id: str, start: float, end: float) -> str:
    """The id of a clip: its parent's id and its time range."""
    return f"{parent_id}#t={start:.3f},{end:.3f}"


@register
class SceneSplit(Stage):
    """``video_scenes_v1``: split videos at scene cuts into clip records (see the module docstring)."""

    name: ClassVar[str] = "video_scenes_v1"
    resources: ClassVar[Resources] = Resources(batch_size=4)
    expands: ClassVar[bool] = True

    def __init__(
        self,
        threshold: float = 0.3,
        min_clip_s: float = 1.0,
        max_clip_s: float | None = None,
        detect_side: int = 320,
        reencode: bool = True,
        crf: int = 18,
        preset: str = "veryfast",
        threads: int = 1,
        timeout_s: float = 600.0,
    ) -> None:
        SCENE_SCORE.require(f"{self.name}: threshold", threshold, ValueError)
        if max_clip_s is not None and max_clip_s < min_clip_s:
            raise ValueError(f"{self.name}: max_clip_s ({max_clip_s}) must be >= min_clip_s ({min_clip_s})")
        self.threshold, self.min_clip_s, self.max_clip_s = threshold, min_clip_s, max_clip_s
        self.detect_side = detect_side
        self.encoding = ClipEncoding(reencode=reencode, crf=crf, preset=preset, threads=threads)
        self.timeout_s = timeout_s

    def __call__(self, batch: pa.Table) -> pa.Table:
        n = batch.num_rows
        n_clips: list[int | None] = [None] * n
        cut_times: list[list[float] | None] = [None] * n
        errors: list[str | None] = [None] * n
        reasons: list[str | None] = [None] * n
        parents: list[int] = []
        children: dict[str, list[Any]] = {k: [] for k in ("id", "media", "meta", "hash", "start", "end", "index")}
        rows = batch.to_pylist() if batch.num_rows else []
        for row, item in live_video_rows(batch):
            try:
                clips = self._split(item)
            except (BadMedia, OSError) as exc:
                errors[row] = f"{self.name}:{getattr(exc, 'reason', 'unreadable_video')}: {exc}"
                continue
            n_clips[row] = len(clips)
            cut_times[row] = [start for start, _, _, _ in clips[1:]]
            if len(clips) < 2:
                continue
            reasons[row] = f"{self.name}:{SPLIT}"
            for index, (start, end, data, info) in enumerate(clips):
                parents.append(row)
                self._add_child(children, rows[row], index, start, end, data, info)
        batch = set_column(batch, S.stage_column(self.name, "n_clips"), pa.array(n_clips, pa.int64()))
        batch = set_column(batch, S.stage_column(self.name, "cut_times"), pa.array(cut_times, pa.list_(pa.float64())))
        batch = add_errors(batch, pa.array(errors, pa.string()))
        batch = add_drop_reasons(batch, pa.array(reasons, pa.string()))
        updates = {
            S.MEDIA: children["media"],
            S.META: children["meta"],
            S.CONTENT_HASH: children["hash"],
            S.DROP_REASON: [None] * len(parents),
            S.ERROR: [None] * len(parents),
            S.stage_column(self.name, "n_clips"): [None] * len(parents),
            S.stage_column(self.name, "cut_times"): [None] * len(parents),
            S.stage_column(self.name, "start_s"): children["start"],
            S.stage_column(self.name, "end_s"): children["end"],
            S.stage_column(self.name, "clip_index"): children["index"],
        }
        return derive_rows(batch, parents, children["id"], updates)

    def _split(self, item: dict[str, Any]) -> list[tuple[float, float, bytes | None, Any]]:
        """(start, end, clip bytes, clip facts) per clip; a single scene gives one entry without bytes."""
        facts = video_facts(item, self.timeout_s)
        with video_url(item) as url:
            scores = scene_scores(url, facts.width, facts.height, self.detect_side, self.timeout_s)
            plan = plan_clips(scores, facts.duration_s, self.threshold, self.min_clip_s, self.max_clip_s)
            if len(plan) < 2:
                return [(start, end, None, None) for start, end in plan]
            return [(start, end, *extract_clip(url, start, end, self.encoding, self.timeout_s)) for start, end in plan]

    def _add_child(
        self,
        children: dict[str, list[Any]],
        parent: dict[str, Any],
        index: int,
        start: float,
        end: float,
        data: bytes,
        info: Any,
    ) -> None:
        digest = hashlib.sha256(data).hexdigest()
        clip = {
            "kind": "video",
            "uri": None,
            "offset": None,
            "size": len(data),
            "bytes": data,
            "sha256": digest,
            "format": "mp4",
            "width": info.width,
            "height": info.height,
            "duration_s": info.duration_s,
            "fps": info.fps,
            "n_frames": info.n_frames,
            "codec": info.codec,
        }
        others = [m for m in parent[S.MEDIA] or [] if m["kind"] != "video"]
        meta = {**json.loads(parent[S.META] or "{}"), "clip_of": parent[S.ID], "clip_start_s": start, "clip_end_s": end}
        children["id"].append(clip_id(parent[S.ID], start, end))
        children["media"].append([clip, *others])
        children["meta"].append(json.dumps(meta, ensure_ascii=False, sort_keys=True))
        children["hash"].append(S.content_hash(parent[S.MODALITY], parent[S.TEXT], [digest]))
        children["start"].append(start)
        children["end"].append(end)
        children["index"].append(index)
