import io
import json
import tarfile

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.readers import read_file
from fusionforge.pipelines.readers.base import InputFile, ReaderOptions


def _file(path, fmt, rel=None):
    return InputFile(str(path), rel or path.name, "src", fmt)


def test_image_folder_sidecars(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "a.txt").write_text("  a red circle \n")
    (tmp_path / "b.png").write_bytes(b"x")
    (tmp_path / "b.json").write_text(json.dumps({"caption": "two squares", "id": "B", "license": "cc0"}))
    (tmp_path / "c.png").write_bytes(b"x")
    (tmp_path / "c.json").write_text("{not json")
    a, b, c = (list(read_file(_file(tmp_path / n, "images"), ReaderOptions()))[0] for n in ("a.jpg", "b.png", "c.png"))
    assert a[S.TEXT] == "a red circle" and a[S.ID] == "src/a.jpg#0"
    assert b[S.TEXT] == "two squares" and b[S.ID] == "src/B" and json.loads(b[S.META])["license"] == "cc0"
    assert c[S.ERROR].startswith("read:malformed_sidecar")


def test_video_folder_record(tmp_path):
    (tmp_path / "v.mp4").write_bytes(b"x" * 10)
    (tmp_path / "v.txt").write_text("a clip")
    (row,) = read_file(_file(tmp_path / "v.mp4", "videos"), ReaderOptions())
    assert row[S.MODALITY] == "video" and row[S.MEDIA][0]["kind"] == "video" and row[S.MEDIA][0]["size"] == 10


def test_interleaved_parts_and_obelics_layout(tmp_path):
    (tmp_path / "i.png").write_bytes(b"x")
    listing = tmp_path / "docs.jsonl"
    rows = [
        {
            "id": 1,
            "parts": [
                {"type": "text", "text": "Intro"},
                {"type": "image", "image": "i.png"},
                {"type": "text", "text": "Outro"},
            ],
        },
        {"id": 2, "texts": ["Only text", None], "images": [None, "i.png"]},
        {"id": 3, "parts": [{"type": "image", "image": "https://example.org/x.png"}]},
        {"id": 4, "parts": [{"type": "audio", "audio": "a.wav"}]},
    ]
    listing.write_text("\n".join(json.dumps(r) for r in rows))
    one, two, three, four = read_file(_file(listing, "interleaved"), ReaderOptions())
    assert one[S.TEXT] == "Intro\n\nOutro"
    assert [s["type"] for s in one[S.SEGMENTS]] == ["text", "image", "text"]
    assert one[S.SEGMENTS][1]["media_index"] == 0 and len(one[S.MEDIA]) == 1
    assert [s["type"] for s in two[S.SEGMENTS]] == ["text", "image"]
    assert three[S.ERROR].startswith("read:remote_media")
    assert four[S.ERROR].startswith("read:bad_part")


def test_webdataset_tar_groups_members_and_flags_unsafe_paths(tmp_path):
    path = tmp_path / "s.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in [
            ("k1.jpg", b"JPEGDATA"),
            ("k1.txt", b"caption one"),
            ("k1.json", b'{"id": "own"}'),
            ("k2.txt", b"text only"),
            ("../evil.txt", b"x"),
            ("k3.000.png", b"P0"),
            ("k3.001.png", b"P1"),
            ("k3.txt", b"two images"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    rows = list(read_file(_file(path, "wds"), ReaderOptions()))
    assert [r[S.MODALITY] for r in rows] == ["image", "text", "text", "interleaved"]
    first = rows[0]
    assert first[S.ID] == "src/own" and first[S.TEXT] == "caption one"
    media = first[S.MEDIA][0]
    with open(path, "rb") as handle:
        handle.seek(media["offset"])
        assert handle.read(media["size"]) == b"JPEGDATA"
    assert rows[1][S.TEXT] == "text only" and rows[2][S.ERROR].startswith("read:unsafe_member_path")
    assert len(rows[3][S.MEDIA]) == 2


def test_truncated_tar_keeps_earlier_samples_and_reports(tmp_path):
    path = tmp_path / "t.tar"
    with tarfile.open(path, "w") as tar:
        for i in range(3):
            info = tarfile.TarInfo(f"k{i}.txt")
            data = f"text {i}".encode() * 200
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = path.read_bytes()
    path.write_bytes(data[:2500])
    rows = list(read_file(_file(path, "wds"), ReaderOptions()))
    assert rows[0][S.TEXT].startswith("text 0")
    assert rows[-1][S.ERROR].startswith("read:corrupt_tar")
