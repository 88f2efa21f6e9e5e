"""One planned sequence as a reader wants it: its documents, their text decoded, media as markers.

``describe_sequence`` returns data (what ``fusionforge show --json`` prints): per segment its
record, source, token range and parts in order, each part either decoded text or a media item
(``kind``, the size given to the processor, the original size when it was shrunk, its vision tokens,
a video's chunk range), plus the sequence's vision tokens and share. The text comes from rebuilding
the record's ids with the pack's tokenizer (checked like the loader checks it); a pack made without
a tokenizer shows its structure only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from fusionforge.mixers.packing.materialize import Encoder, Role
from fusionforge.mixers.training.packed import PackedRun, RecordReader
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError

TEXT_ROLES = (Role.TEXT, Role.EOS)


def describe_sequence(packed: str | Path, sequence_id: int, tokenizer: str | Path | None = None) -> dict[str, Any]:
    """The segments, media and vision share of one sequence of a pack output (see the module docstring)."""
    run = PackedRun.open(packed)
    table = pq.read_table(run.plan_path, filters=[("sequence_id", "=", sequence_id)])
    if table.num_rows != 1:
        total = pq.ParquetFile(run.plan_path).metadata.num_rows
        raise ConfigError(f"{packed} has sequences 0..{total - 1}; there is no sequence {sequence_id}")
    row = table.to_pylist()[0]
    encoder = reader = None
    if tokenizer or run.config.tokenizer:
        encoder = Encoder(dataclasses.replace(run.config, tokenizer=run.check_tokenizer(tokenizer)))
        reader = RecordReader(run.config.input)
    segments = []
    for index, segment in enumerate(row["segments"]):
        record = reader.record(segment["partition"], segment["row"]) if reader else None
        media = [_media(span, record) for span in segment["media"]]
        segments.append(
            {
                "index": index,
                **{k: segment[k] for k in ("sample_id", "source", "modality", "partition", "row", "split", "piece")},
                "start": segment["offset"],
                "end": segment["offset"] + segment["length"],
                "record_tokens": [segment["sample_start"], segment["sample_start"] + segment["length"]],
                "vision_tokens": segment["vision_tokens"],
                "parts": _parts(encoder, record, segment, media) if encoder else [{"media": m} for m in media],
            }
        )
    return {
        "packed": str(packed),
        "sequence_id": row["sequence_id"],
        "window": row["window"],
        "seq_len": run.config.seq_len,
        "tokens": row["tokens"],
        "text_tokens": row["text_tokens"],
        "vision_tokens": row["vision_tokens"],
        "vision_share": round(row["vision_tokens"] / row["tokens"], 6) if row["tokens"] else 0.0,
        "padding": row["padding"],
        "tokenizer": encoder.counter.path if encoder else None,
        "segments": segments,
        "media": [{"segment": s["index"], **p["media"]} for s in segments for p in s["parts"] if "media" in p],
    }


def _media(span: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any]:
    out = {
        "kind": span["kind"],
        "offset": span["offset"],
        "media_index": span["media_index"],
        "width": span["width"],
        "height": span["height"],
        "vision_tokens": span["vision_tokens"],
    }
    if span["kind"] == "video":
        out["chunks"] = [span["chunk_start"], span["chunk_end"]]
    if record is not None:
        item = record[S.MEDIA][span["media_index"]]
        if (item["width"], item["height"]) != (span["width"], span["height"]):
            out["original"] = [item["width"], item["height"]]
    return out


def _parts(encoder: Encoder, record: dict[str, Any], segment: dict[str, Any], media: list[dict]) -> list[dict]:
    """The segment's tokens in order: runs of text decoded, each media block (wrappers included) as one item."""
    ids, roles = encoder.encode(record)
    start, stop = segment["sample_start"], segment["sample_start"] + segment["length"]
    owner = [None] * (stop - start)  # per token: the media item it belongs to, None for text
    bounds = [m["offset"] - segment["offset"] for m in media] + [len(owner)]
    for number in range(len(media)):
        at = bounds[number]
        while at < bounds[number + 1] and roles[start + at] not in TEXT_ROLES:
            owner[at] = number
            at += 1
    parts: list[dict[str, Any]] = []
    text: list[int] = []
    for at, who in enumerate(owner):
        if who is None:
            text.append(ids[start + at])
            continue
        if text:
            parts.append({"text": encoder.counter.decode(text)})
            text = []
        if not parts or parts[-1].get("media") is not media[who]:
            parts.append({"media": media[who]})
    if text:
        parts.append({"text": encoder.counter.decode(text)})
    return parts


def marker(item: dict[str, Any]) -> str:
    """``[image 644x476: 391 tokens]``; a shrunk item names its original size, a video its chunks."""
    size = f"{item['width']}x{item['height']}"
    if "original" in item:
        size += f" (from {item['original'][0]}x{item['original'][1]})"
    chunks = f" chunks [{item['chunks'][0]}, {item['chunks'][1]})" if item["kind"] == "video" else ""
    return f"[{item['kind']} {size}{chunks}: {item['vision_tokens']} tokens]"
