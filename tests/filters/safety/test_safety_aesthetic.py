"""A LAION-style aesthetic head over a tiny CLIP, both built here and loaded through the real paths."""

import numpy as np
import pytest

from fusionforge.filters.safety.aesthetic import SafetyAesthetic
from fusionforge.filters.safety.linear_head import LinearHead
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError

STAGE = "safety_aesthetic_v1"


def laion_mlp(width: int):
    """The improved-aesthetic-predictor's MLP: five Linear layers with dropout between, no activation."""
    import torch

    torch.manual_seed(1)
    nn = torch.nn
    return nn.Sequential(
        nn.Linear(width, 1024),
        nn.Dropout(0.2),
        nn.Linear(1024, 128),
        nn.Dropout(0.2),
        nn.Linear(128, 64),
        nn.Dropout(0.1),
        nn.Linear(64, 16),
        nn.Linear(16, 1),
    ).eval()


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    import torch

    folder = tmp_path_factory.mktemp("heads")
    mlp = laion_mlp(64)
    torch.save({f"layers.{k}": v for k, v in mlp.state_dict().items()}, folder / "mlp.pth")
    linear = torch.nn.Linear(64, 1)
    torch.save(linear.state_dict(), folder / "linear.pth")
    torch.save({"weight": torch.zeros(4, 64), "bias": torch.zeros(4)}, folder / "four.pth")
    torch.save({**linear.state_dict(), "norm.running_mean": torch.zeros(64)}, folder / "norm.pth")
    return {"mlp": (folder / "mlp.pth", mlp), "linear": (folder / "linear.pth", linear), "folder": folder}


def test_scores_equal_the_torch_head_on_clip_embeddings(tiny_clip, heads, pictures, make_batch, make_record):
    import torch

    images = [pictures.faces(2)[0], pictures.text(3), *pictures.plain()]
    rows = [make_record(f"i/{i}", "x", "image", [pictures.item(im)]) for i, im in enumerate(images)]
    rows.append(make_record("d/0", "two images", "interleaved", [pictures.item(images[0]), pictures.item(images[1])]))
    for name in ("mlp", "linear"):
        path, module = heads[name]
        stage = SafetyAesthetic(head=str(path), model=tiny_clip["config"], pretrained=tiny_clip["st"], device="cpu")
        scores = stage(make_batch(rows)).column(S.stage_column(STAGE, "score")).to_pylist()
        import open_clip

        _, _, preprocess = open_clip.create_model_and_transforms("ff-tiny-clip", pretrained=None)
        with torch.no_grad():
            pixels = torch.stack([preprocess(im.convert("RGB")) for im in images])
            embeddings = torch.nn.functional.normalize(tiny_clip["model"].encode_image(pixels), dim=-1)
            expected = module(embeddings)[:, 0].numpy()
        assert scores[:-1] == pytest.approx(expected.tolist(), abs=1e-5)
        assert scores[-1] == pytest.approx(float(expected[:2].mean()), abs=1e-5)  # a document: its images' mean
        assert len(set(np.round(scores, 6))) > 3


def test_threshold_keeps_the_better_half(tiny_clip, heads, pictures, make_batch, make_record):
    rows = [make_record(f"p/{i}", "x", "image", [pictures.item(im)]) for i, im in enumerate(pictures.plain())]
    args = {"head": str(heads["mlp"][0]), "model": tiny_clip["config"], "pretrained": tiny_clip["pt"], "device": "cpu"}
    scores = SafetyAesthetic(**args)(make_batch(rows)).column(S.stage_column(STAGE, "score")).to_pylist()
    middle = float(np.median(scores))
    reasons = SafetyAesthetic(**args, threshold=middle)(make_batch(rows)).column(S.DROP_REASON).to_pylist()
    assert reasons == [f"{STAGE}:low_score" if s < middle else None for s in scores]
    assert reasons.count(None) == 2


def test_heads_that_are_not_a_linear_chain_are_refused(tiny_clip, heads, tmp_path):
    folder = heads["folder"]
    with pytest.raises(ConfigError, match="ends in 4 outputs"):
        LinearHead(str(folder / "four.pth"))
    with pytest.raises(ConfigError, match="not a chain of linear layers"):
        LinearHead(str(folder / "norm.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read"):
        LinearHead(str(tmp_path / "junk.pth"))
    with pytest.raises(ConfigError, match="needs head"):
        SafetyAesthetic.check(model=tiny_clip["config"], pretrained=tiny_clip["st"])
    with pytest.raises(ConfigError, match="needs weights"):
        SafetyAesthetic.check(head=str(heads["mlp"][0]), model=tiny_clip["config"])
    head = LinearHead(str(heads["mlp"][0]))
    with pytest.raises(ConfigError, match="64-d embeddings"):
        head(np.zeros((1, 512)))


@pytest.mark.slow
def test_aesthetic_flags_keep_the_top_fraction_through_the_score_pass(tiny_clip, heads, pictures, tmp_path):
    import json

    import pyarrow.parquet as pq
    import yaml
    from click.testing import CliRunner

    from fusionforge.cli.main import cli
    from fusionforge.pipelines.core.settings import RunSettings
    from fusionforge.pipelines.shard import ShardConfig, run_shard

    raw = tmp_path / "raw"
    raw.mkdir()
    for i, image in enumerate([*pictures.plain(), pictures.text(3), pictures.faces(1)[0]]):
        (raw / f"p{i}.png").write_bytes(pictures.encode(image))
    run_shard(ShardConfig(inputs=(f"pics={raw}",), output=str(tmp_path / "shards"), run=RunSettings(executor="local")))
    (tmp_path / "filters.yaml").write_text("filters:\n  - image_checks_v1\n")
    args = ["filter", str(tmp_path / "shards"), "-o", str(tmp_path / "out"), "--config", str(tmp_path / "filters.yaml")]
    args += ["--aesthetic-head", str(heads["mlp"][0]), "--aesthetic-clip-model", tiny_clip["config"]]
    args += ["--aesthetic-clip-pretrained", tiny_clip["st"], "--aesthetic-top-fraction", "0.5", "--executor", "local"]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["inputs"] == 6 and report["kept"] == 3 and report["reasons"] == {f"{STAGE}:low_score": 3}
    kept = pq.read_table(tmp_path / "out" / "manifest.parquet").column(S.stage_column(STAGE, "score")).to_pylist()
    dropped = pq.read_table(tmp_path / "out" / "rejected").column(S.stage_column(STAGE, "score")).to_pylist()
    assert min(kept) > max(dropped)
    entry = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())["stages"][-1]
    assert entry["stage"] == STAGE and entry["resolved_threshold"] == min(kept) and entry["reuse_scores"] is True
