"""What the video stages share: which rows they work on and the facts they need about a video."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from fusionforge.filters.media import first_of_kind, video_url
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.video import VideoInfo, probe_video


def live_video_rows(batch: pa.Table) -> list[tuple[int, dict[str, Any]]]:
    """(row, video item) for each row with a video and neither an error nor a drop reason.

    Decoding is the expensive part of video work, so records already dropped by an earlier stage
    (or split into clips) are not decoded again.
    """
    errors = batch.column(S.ERROR).to_pylist()
    dropped = batch.column(S.DROP_REASON).to_pylist()
    rows = []
    for row, media in enumerate(batch.column(S.MEDIA).to_pylist()):
        item = first_of_kind(media, "video")
        if item is not None and errors[row] is None and dropped[row] is None:
            rows.append((row, item))
    return rows


def video_facts(item: dict[str, Any], timeout_s: float) -> VideoInfo:
    """Size, duration and rate of a video: from its media entry when complete, else from ffprobe."""
    needed = ("width", "height", "duration_s", "fps")
    if all(item.get(k) for k in needed):
        return VideoInfo(
            width=item["width"],
            height=item["height"],
            duration_s=item["duration_s"],
            fps=item["fps"],
            n_frames=item.get("n_frames") or 0,
            codec=item.get("codec") or "",
            n_streams=0,
            format=item.get("format") or "",
        )
    with video_url(item) as url:
        return probe_video(url, timeout_s)
