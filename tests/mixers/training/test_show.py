"""``fusionforge show``: a packed sequence with its documents, decoded text and media markers, as text and JSON."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from click.testing import CliRunner

from fusionforge.cli.main import cli
from fusionforge.pipelines.transform import ManifestSource


def test_show_json_holds_the_plan_and_the_records_text(packed_kimi, tiny_shards):
    plan = pq.read_table(packed_kimi / "plan.parquet").to_pylist()
    row = next(r for r in plan if any(s["media"] for s in r["segments"]) and len(r["segments"]) > 1)
    result = CliRunner().invoke(cli, ["show", str(packed_kimi), "--sequence", str(row["sequence_id"]), "--json"])
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert view["vision_tokens"] == row["vision_tokens"] and view["tokens"] == row["tokens"]
    assert abs(view["vision_share"] - row["vision_tokens"] / row["tokens"]) < 1e-6
    assert [(s["start"], s["end"]) for s in view["segments"]] == list(zip(row["cu_seqlens"], row["cu_seqlens"][1:]))
    assert [m["vision_tokens"] for m in view["media"]] == [
        m["vision_tokens"] for s in row["segments"] for m in s["media"]
    ]
    source = ManifestSource(str(tiny_shards))
    for segment in view["segments"]:
        record = [r for t in source.read(segment["partition"]) for r in t.to_pylist()][segment["row"]]
        text = "".join(p.get("text", "") for p in segment["parts"])
        assert text == record["text"] + "<|endoftext|>"  # the whole record: nothing of it is cut here


def test_show_prints_markers_and_boundaries(packed_qwen):
    plan = pq.read_table(packed_qwen / "plan.parquet").to_pylist()
    row = next(r for r in plan if any(m["kind"] == "video" for s in r["segments"] for m in s["media"]))
    result = CliRunner().invoke(cli, ["show", str(packed_qwen), "--sequence", str(row["sequence_id"])])
    assert result.exit_code == 0, result.output
    video = next(m for s in row["segments"] for m in s["media"] if m["kind"] == "video")
    expected = (
        f"[video {video['width']}x{video['height']} chunks [{video['chunk_start']}, {video['chunk_end']}): "
        f"{video['vision_tokens']} tokens]"
    )
    assert expected in result.stdout
    assert f"{row['vision_tokens']} vision" in result.stdout and f"sequence {row['sequence_id']}" in result.stdout
    missing = CliRunner().invoke(cli, ["show", str(packed_qwen), "--sequence", str(len(plan))])
    assert missing.exit_code != 0 and f"no sequence {len(plan)}" in missing.output
