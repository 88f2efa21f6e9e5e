"""Fixtures for filter tests: record batches built in the test, and videos made with ffmpeg's lavfi sources."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import ffmpeg
import pyarrow as pa
import pytest

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.video import probe_video, require_tool


def record(rid: str, text: str | None = "", modality: str = "text", media: list | None = None, **extra) -> dict:
    """One record row (record schema columns plus any stage columns in ``extra``)."""
    return {
        S.ID: rid,
        S.SOURCE: rid.split("/")[0],
        S.MODALITY: modality,
        S.TEXT: text,
        S.MEDIA: media or [],
        S.META: json.dumps({}),
        S.INPUT_FILE: f"{rid}.in",
        S.INPUT_POSITION: 0,
        **extra,
    }


def batch_of(rows: list[dict]) -> pa.Table:
    """A validated batch: the record schema, then any extra columns the rows carry."""
    extra = list(dict.fromkeys(k for r in rows for k in r if k not in S.RECORD_SCHEMA.names))
    base = pa.Table.from_pylist(
        [{k: v for k, v in r.items() if k in S.RECORD_SCHEMA.names} for r in rows], schema=S.RECORD_SCHEMA
    )
    for name in extra:
        base = base.append_column(name, pa.array([r.get(name) for r in rows]))
    return S.validate(base)


def media_file(path: Path, kind: str) -> dict:
    """A media entry pointing at a whole file, with the facts ingest would have filled in."""
    item = {
        "kind": kind,
        "uri": str(path),
        "offset": None,
        "size": path.stat().st_size,
        "bytes": None,
        "sha256": None,
        "format": path.suffix.lstrip(".").lower().replace("jpg", "jpeg"),
    }
    if kind == "video":
        info = probe_video(str(path))
        item.update(
            width=info.width,
            height=info.height,
            duration_s=info.duration_s,
            fps=info.fps,
            n_frames=info.n_frames,
            codec=info.codec,
        )
    return item


def lavfi_video(path: Path, segments: list[tuple[str, float]], rate: int = 25, size: str = "160x120") -> Path:
    """An H.264 MP4 of lavfi sources played one after another: hard cuts at the segment boundaries."""
    parts = [
        ffmpeg.input(f"{name}=duration={seconds}:size={size}:rate={rate}", f="lavfi") for name, seconds in segments
    ]
    stream = parts[0] if len(parts) == 1 else ffmpeg.concat(*parts, v=1, a=0)
    args = (
        stream.output(str(path), vcodec="libx264", pix_fmt="yuv420p", g=rate)
        .global_args("-y", "-v", "error", "-threads", "1")
        .compile(cmd=require_tool("ffmpeg"))
    )
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    return path


@pytest.fixture(scope="session")
def make_batch():
    return batch_of


@pytest.fixture(scope="session")
def make_record():
    return record


@pytest.fixture(scope="session")
def make_media():
    return media_file


@pytest.fixture(scope="session")
def make_video():
    return lavfi_video
