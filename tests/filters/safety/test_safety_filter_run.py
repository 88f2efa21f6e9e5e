"""``fusionforge filter`` with the safety flags on a real shard output: decisions, stored scores, blurred bytes."""

import hashlib
import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from fusionforge.cli.main import cli
from fusionforge.filters.safety.faces import find_faces, load_cascade
from fusionforge.mixers.audit.api import run_audit
from fusionforge.pipelines.core.io import read_range
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.pipelines.shard import ShardConfig, run_shard

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shards(tmp_path_factory, pictures):
    folder = tmp_path_factory.mktemp("safety")
    raw = folder / "raw"
    raw.mkdir()
    named = {
        "two_faces.png": pictures.faces(2)[0],
        "one_face.jpg": pictures.faces(1)[0],
        "crowd.png": pictures.faces(3)[0],
        "slide.png": pictures.text(5),
        "flat.png": pictures.plain()[0],
        "noise.jpg": pictures.plain()[2],
    }
    for name, image in named.items():
        (raw / name).write_bytes(pictures.encode(image, "JPEG" if name.endswith("jpg") else "PNG"))
        (raw / name).with_suffix(".txt").write_text(f"a picture: {name}")
    run_shard(ShardConfig(inputs=(f"photos={raw}",), output=str(folder / "shards"), run=RunSettings(executor="local")))
    (folder / "filters.yaml").write_text("filters:\n  - image_checks_v1\n")
    return folder


def run_filter(shards, out, executor="local"):
    args = ["filter", str(shards / "shards"), "-o", str(out), "--config", str(shards / "filters.yaml")]
    args += ["--nsfw-max-score", "0.9", "--max-faces", "2", "--blur-faces", "--max-text-share", "0.1"]
    result = CliRunner().invoke(cli, [*args, "--executor", executor, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_safety_flags_decide_store_scores_and_blur_the_written_images(shards, tmp_path):
    out = tmp_path / "out"
    report = run_filter(shards, out)
    assert report["inputs"] == 6 and report["kept"] == 4 and report["failed"] == 0
    assert report["reasons"] == {"safety_faces_v1:too_many_faces": 1, "safety_text_share_v1:text_heavy": 1}
    stages = [s["stage"] for s in report["filters"]]
    assert stages == ["image_checks_v1", "safety_nsfw_v1", "safety_faces_v1", "safety_text_share_v1"]
    for column in ("safety_nsfw_v1__score", "safety_faces_v1__faces", "safety_text_share_v1__text_share"):
        assert report["scores"][column]["count"] >= 4

    rejected = pq.read_table(out / "rejected").to_pylist()
    by_file = {r["input_file"].rsplit("/", 1)[-1]: r for r in rejected}
    assert by_file["crowd.png"]["safety_faces_v1__faces"] == 3
    assert by_file["slide.png"]["safety_text_share_v1__text_share"] > 0.1
    assert by_file["slide.png"]["safety_faces_v1__faces"] == 0  # scored by every stage before its drop

    cascade = load_cascade(None)
    kept = pq.read_table(out / "manifest.parquet").to_pylist()
    for row in kept:
        item = row["media"][0]
        data = read_range(str(out / item["uri"]), item["offset"], item["size"])
        assert hashlib.sha256(data).hexdigest() == item["sha256"]
        name = row["input_file"].rsplit("/", 1)[-1]
        original = (shards / "raw" / name).read_bytes()
        if row["safety_faces_v1__faces"]:
            assert row["safety_faces_v1__blurred"] == 1 and data != original
            pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            assert len(find_faces(cascade, pixels, 1024, 1.1, 5, 24)) == 0
        else:
            assert row["safety_faces_v1__blurred"] == 0 and data == original  # untouched pictures keep their bytes
    assert sorted(r["safety_faces_v1__faces"] for r in kept) == [0, 0, 1, 2]

    distributions = run_audit([str(out)])["distributions"]["filter"]
    assert distributions["kept"]["score/safety_faces_v1__faces"]["max"] == 2
    assert distributions["rejected"]["score/safety_faces_v1__faces"]["max"] == 3


@pytest.mark.ray
def test_ray_actors_write_the_same_shards(shards, tmp_path, ray_session):
    local, ray = tmp_path / "local", tmp_path / "ray"
    run_filter(shards, local)
    run_filter(shards, ray, executor="ray")
    names = sorted(p.name for p in (local / "shards").iterdir())
    assert names and names == sorted(p.name for p in (ray / "shards").iterdir())
    for name in names:
        assert (local / "shards" / name).read_bytes() == (ray / "shards" / name).read_bytes()
