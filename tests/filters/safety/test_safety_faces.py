import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from fusionforge.filters.safety.faces import SafetyFaces, covered_share, find_faces, load_cascade
from fusionforge.pipelines.core import schema as S

STAGE = "safety_faces_v1"


def column(out, field):
    return out.column(S.stage_column(STAGE, field)).to_pylist()


def test_drawn_faces_are_counted_where_they_are_and_plain_pictures_have_none(pictures, make_batch, make_record):
    rows = []
    for count in (1, 2, 3):
        image, _ = pictures.faces(count)
        rows.append(make_record(f"f/{count}", "faces", "image", [pictures.item(image)]))
    for i, image in enumerate(pictures.plain()):
        rows.append(make_record(f"p/{i}", "plain", "image", [pictures.item(image, "JPEG")]))
    rows.append(make_record("t/0", "a text record"))
    out = SafetyFaces()(make_batch(rows))
    assert column(out, "faces") == [1, 2, 3, 0, 0, 0, 0, None]
    boxes = column(out, "boxes")
    for count, found in zip((1, 2, 3), boxes):
        _, centres = pictures.faces(count)
        middles = sorted((b["x"] + b["w"] / 2, b["y"] + b["h"] / 2) for b in found)
        assert np.allclose(middles, sorted(centres), atol=25)  # each box sits on a drawn face
        assert {b["media_index"] for b in found} == {0}
    shares = column(out, "face_share")
    assert 0 < shares[0] < shares[1] < shares[2] < 0.5 and shares[3:7] == [0.0] * 4
    assert out.column(S.DROP_REASON).to_pylist() == [None] * 8  # no limit given: scores only


def test_max_faces_drops_records_with_more_faces(pictures, make_batch, make_record):
    rows = [make_record(f"f/{n}", "x", "image", [pictures.item(pictures.faces(n)[0])]) for n in (1, 2, 3)]
    out = SafetyFaces(max_faces=2)(make_batch(rows))
    assert out.column(S.DROP_REASON).to_pylist() == [None, None, f"{STAGE}:too_many_faces"]


def test_an_interleaved_document_counts_its_most_crowded_image(pictures, make_batch, make_record):
    media = [
        pictures.item(pictures.plain()[0]),
        pictures.item(pictures.faces(2)[0]),
        pictures.item(pictures.faces(1)[0]),
    ]
    out = SafetyFaces()(make_batch([make_record("d/0", "doc", "interleaved", media)]))
    assert column(out, "faces") == [2]
    assert sorted(b["media_index"] for b in column(out, "boxes")[0]) == [1, 1, 2]


def test_faces_are_blurred_in_kept_images_and_the_record_changes_with_them(pictures, make_batch, make_record):
    image, _ = pictures.faces(2)
    rows = [
        make_record("f/png", "faces", "image", [pictures.item(image)]),
        make_record("f/jpg", "faces", "image", [pictures.item(image, "JPEG")]),
        make_record("f/crowd", "faces", "image", [pictures.item(pictures.faces(3)[0])]),
        make_record("p/0", "plain", "image", [pictures.item(pictures.plain()[3])]),
    ]
    batch = make_batch(rows)
    batch = batch.set_column(batch.column_names.index(S.CONTENT_HASH), S.CONTENT_HASH, [["h0", "h1", "h2", "h3"]])
    stage = SafetyFaces(max_faces=2, blur=True)
    out = stage(batch)
    assert column(out, "blurred") == [1, 1, 0, 0]  # the crowded record is dropped: not rewritten
    assert out.column(S.DROP_REASON).to_pylist() == [None, None, f"{STAGE}:too_many_faces", None]
    media = out.column(S.MEDIA).to_pylist()
    before = batch.column(S.MEDIA).to_pylist()
    assert media[2] == before[2] and media[3] == before[3]
    cascade = load_cascade(None)
    for row, fmt in ((0, "png"), (1, "jpeg")):
        item = media[row][0]
        assert item["format"] == fmt and item["uri"] is None and item["offset"] is None
        assert item["size"] == len(item["bytes"]) and item["sha256"] == hashlib.sha256(item["bytes"]).hexdigest()
        blurred = np.asarray(Image.open(io.BytesIO(item["bytes"])).convert("RGB"))
        assert len(find_faces(cascade, blurred, 1024, 1.1, 5, 24)) == 0  # the detector no longer sees a face
        expected = S.content_hash("image", "faces", [item["sha256"]], [])
        assert out.column(S.CONTENT_HASH)[row].as_py() == expected != batch.column(S.CONTENT_HASH)[row].as_py()
    boxes = column(out, "boxes")[0]
    original = np.asarray(image)
    blurred = np.asarray(Image.open(io.BytesIO(media[0][0]["bytes"])))
    outside = np.ones(original.shape[:2], dtype=bool)
    for b in boxes:  # the grown boxes (15% a side) are the only pixels that may change
        dx, dy = round(b["w"] * 0.15), round(b["h"] * 0.15)
        outside[max(0, b["y"] - dy) : b["y"] + b["h"] + dy, max(0, b["x"] - dx) : b["x"] + b["w"] + dx] = False
    assert np.array_equal(original[outside], blurred[outside])
    assert not np.array_equal(original[~outside], blurred[~outside])


def test_video_keyframes_are_counted_not_boxed_nor_blurred(pictures, make_batch, make_record, make_media, tmp_path):
    import subprocess

    from fusionforge.pipelines.core.video import require_tool

    frame = tmp_path / "faces.png"
    pictures.faces(2)[0].save(frame)
    video = tmp_path / "faces.mp4"
    args = [require_tool("ffmpeg"), "-v", "error", "-loop", "1", "-i", str(frame), "-t", "2", "-r", "10", "-g", "10"]
    subprocess.run([*args, "-pix_fmt", "yuv420p", "-c:v", "libx264", str(video)], check=True, timeout=60)
    out = SafetyFaces(blur=True)(make_batch([make_record("v/0", "a video", "video", [make_media(video, "video")])]))
    assert column(out, "faces") == [2] and column(out, "boxes") == [[]] and column(out, "blurred") == [0]
    assert out.column(S.MEDIA).to_pylist()[0][0]["uri"] == str(video)


def test_undecodable_images_fail_and_settings_are_checked(pictures, make_batch, make_record, tmp_path):
    broken = {"kind": "image", "uri": None, "offset": None, "size": 7, "bytes": b"not png", "format": "png"}
    out = SafetyFaces()(make_batch([make_record("b/0", "x", "image", [broken])]))
    assert out.column(S.ERROR)[0].as_py().startswith(f"{STAGE}:undecodable_image")
    assert column(out, "faces") == [None] and out.column(S.DROP_REASON)[0].as_py() is None
    with pytest.raises(ValueError, match="scale_factor"):
        SafetyFaces.check(scale_factor=1.0)
    with pytest.raises(ValueError, match="max_faces"):
        SafetyFaces.check(max_faces=-1)
    from fusionforge.pipelines.core.errors import ConfigError

    with pytest.raises(ConfigError, match="does not exist"):
        SafetyFaces.check(cascade_path=str(tmp_path / "none.xml"))
    (tmp_path / "bad.xml").write_text("<opencv_storage></opencv_storage>")
    with pytest.raises(ConfigError, match="not a cascade"):
        SafetyFaces(cascade_path=str(tmp_path / "bad.xml"))


def test_covered_share_counts_overlaps_once():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 10, 10]])
    assert covered_share(boxes, 20, 20) == pytest.approx(150 / 400)


def test_a_batch_without_pictures_passes_through_with_blur_on(make_batch, make_record):
    batch = make_batch([make_record("t/0", "only text")])
    out = SafetyFaces(blur=True)(batch)
    assert out.column(S.DROP_REASON).to_pylist() == [None] and out.column(S.MEDIA).to_pylist() == [[]]
