import hashlib

import pyarrow as pa

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.stages.finalize import FinalizeRecords


def _media(data: bytes) -> dict:
    item = dict.fromkeys(S.MEDIA_FIELDS)
    item.update(kind="image", uri="x.png", sha256=hashlib.sha256(data).hexdigest())
    return item


def _row(record_id, text, modality="text", media=(), segments=None, position=1):
    return {
        S.ID: record_id,
        S.SOURCE: "s",
        S.MODALITY: modality,
        S.TEXT: text,
        S.MEDIA: list(media),
        S.SEGMENTS: segments,
        S.INPUT_FILE: "f.jsonl",
        S.INPUT_POSITION: position,
    }


def _finalize(rows):
    return FinalizeRecords()(pa.Table.from_pylist(rows, schema=S.RECORD_SCHEMA)).to_pylist()


def test_exact_duplicates_keep_their_ids_and_share_the_content_hash():
    out = _finalize(
        [
            _row("s/f.jsonl#1", "same words", position=1),
            _row("s/f.jsonl#2", "same words", position=2),
            _row("s/f.jsonl#3", "other words", position=3),
            _row("s/f.jsonl#4", "  \n", position=4),
        ]
    )
    assert [r[S.ID] for r in out] == ["s/f.jsonl#1", "s/f.jsonl#2", "s/f.jsonl#3", "s/f.jsonl#4"]
    assert out[0][S.CONTENT_HASH] == out[1][S.CONTENT_HASH] != out[2][S.CONTENT_HASH]
    assert [r[S.DROP_REASON] for r in out] == [None, None, None, "ingest_finalize_v1:empty_text"]


def test_same_image_same_caption_same_hash_and_the_modality_counts():
    picture = _media(b"pixels")
    image, again, text = _finalize(
        [_row("s/a", "a cat", "image", [picture]), _row("s/b", "a cat", "image", [picture]), _row("s/c", "a cat")]
    )
    assert image[S.CONTENT_HASH] == again[S.CONTENT_HASH] != text[S.CONTENT_HASH]


def _doc(record_id, parts):
    media = [_media(p.encode()) for kind, p in parts if kind == "image"]
    segments, index = [], 0
    for kind, value in parts:
        if kind == "text":
            segments.append({"type": "text", "text": value, "media_index": None})
        else:
            segments.append({"type": "image", "text": None, "media_index": index})
            index += 1
    text = "\n\n".join(v for k, v in parts if k == "text")
    return _row(record_id, text, "interleaved", media, segments)


def test_interleaved_parts_in_another_order_are_another_document():
    original = [("text", "intro"), ("image", "chart"), ("text", "the chart shows growth"), ("image", "photo")]
    image_moved = [("image", "chart"), ("text", "intro"), ("text", "the chart shows growth"), ("image", "photo")]
    images_swapped = [("text", "intro"), ("image", "photo"), ("text", "the chart shows growth"), ("image", "chart")]
    out = _finalize(
        [_doc("s/a", original), _doc("s/b", original), _doc("s/c", image_moved), _doc("s/d", images_swapped)]
    )
    hashes = [r[S.CONTENT_HASH] for r in out]
    assert hashes[0] == hashes[1]
    assert len({hashes[0], hashes[2], hashes[3]}) == 3
    # the joined text and the set of images are the same for all four: only the order tells them apart
    assert len({r[S.TEXT] for r in out}) == 1


def test_records_that_failed_get_no_hash_and_no_decision():
    broken = _row("s/x", "", "image")
    broken[S.ERROR] = "probe:undecodable_image: not a recognised image format (x.png)"
    (out,) = _finalize([broken])
    assert out[S.CONTENT_HASH] is None and out[S.DROP_REASON] is None
