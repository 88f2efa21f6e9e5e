"""The audit on what real ``dedupe`` and ``pack`` runs wrote: its sections checked against those files."""

import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from fusionforge.mixers.audit import Target, run_audit

QUANTILES = {"p5": 5, "p50": 50, "p95": 95}


@pytest.fixture(scope="module")
def audited(real_chain):
    return run_audit([real_chain[s] for s in ("shard", "dedupe", "pack")], target=Target(vision_ratio=0.1))


def _report(folder: str) -> dict:
    return json.loads((Path(folder) / "report.json").read_text())


def test_duplicates_match_the_clusters_file_and_the_ledger(real_chain, audited):
    clusters = pq.read_table(Path(real_chain["dedupe"]) / "clusters.parquet").to_pandas()
    assert {"cluster", "space", "member_media", "kept_media", "duplicate", "dropped"} <= set(clusters.columns)
    sizes = clusters.groupby("cluster").size()
    stats = _report(real_chain["dedupe"])["dedupe"]
    duplicates = audited["duplicates"]
    assert duplicates["steps"] == ["dedupe"]
    assert duplicates["clusters"] == len(sizes) == stats["clusters"] > 0
    assert duplicates["size_distribution"] == [
        {"size": size, "clusters": n} for size, n in sorted(sizes.value_counts().items())
    ]
    assert duplicates["size_quantiles"]["max"] == sizes.max()
    assert duplicates["members_listed"] == duplicates["records_in_clusters"] == len(clusters)  # kept ones listed too
    dropped = int(clusters["dropped"].sum())
    spaces = ("text", "image", "video")
    assert (
        duplicates["duplicates"] == dropped == sum(stats[f"{s}_{k}_dropped"] for s in spaces for k in ("exact", "near"))
    )
    ledger = pq.read_table(Path(real_chain["dedupe"]) / "ledger.parquet")
    assert dropped == pc.sum(pc.equal(ledger.column("status"), "dropped").cast("int64")).as_py()
    similarity = clusters.loc[clusters["duplicate"].notna(), "similarity"].to_numpy()  # every member but the kept one
    histogram = duplicates["similarity"]
    assert histogram["count"] == len(similarity) and histogram["quantiles_exact"] is True
    assert (histogram["min"], histogram["max"]) == pytest.approx((similarity.min(), similarity.max()))
    assert histogram["quantiles"]["p50"] == pytest.approx(np.percentile(similarity, 50, method="inverted_cdf"))
    funnel = {r["stage"]: r["removed"] for r in audited["funnel"]["all"] if r["step"] == "dedupe"}
    assert funnel == {
        "dedupe:exact_dup_of": sum(stats[f"{s}_exact_dropped"] for s in spaces),
        "dedupe:near_dup_of": sum(stats[f"{s}_near_dropped"] for s in spaces),
    }


def test_packing_matches_the_plan_and_the_packers_report(real_chain, audited):
    plan = pq.read_table(Path(real_chain["pack"]) / "plan.parquet").to_pandas()
    packer = _report(real_chain["pack"])
    packing = audited["packing"]
    assert packing["steps"] == ["pack"]
    assert packing["sequences"] == len(plan) == packer["sequences"]
    assert packing["tokens"] == plan["tokens"].sum() == packer["tokens"]
    assert (packing["text_tokens"], packing["vision_tokens"]) == (packer["text_tokens"], packer["vision_tokens"])
    assert packing["capacity_tokens"] == 256 * len(plan)
    assert packing["padding_tokens"] == plan["padding"].sum() == packer["padding_tokens"]
    assert packing["padding_fraction"] == pytest.approx(packer["padding_fraction"])
    assert packing["vision_ratio"] == pytest.approx(packer["global_vision_ratio"])
    assert audited["vision_ratio"]["realised"] == packing["vision_ratio"] and audited["vision_ratio"]["ok"] is True
    assert packing["zero_vision_sequences"] == (plan["vision_tokens"] == 0).sum()
    assert packing["zero_vision_share"] == pytest.approx(packer["zero_vision_share"])
    assert packing["within_band_share"] == pytest.approx(packer["within_band_share"])
    assert (packing["split_documents"], packing["split_segments"]) == (
        packer["split_documents"],
        packer["split_segments"],
    )
    assert packer["split_documents"] > 0  # 256-token sequences split the longest documents
    assert {r["source"]: r["tokens"] for r in packing["tokens_by_source"]} == packer["tokens_by_source"]
    ratio = (plan["vision_tokens"] / plan["tokens"]).to_numpy()
    per_sequence = packing["per_sequence"]["vision_ratio"]
    for name, q in QUANTILES.items():
        assert per_sequence["quantiles"][name] == pytest.approx(np.percentile(ratio, q, method="inverted_cdf"))
        assert per_sequence["quantiles"][name] == pytest.approx(packer["per_sequence_ratio"][name], abs=1e-4)
    assert packing["per_sequence"]["items"]["max"] == packer["items_per_sequence"]["max"]
    packed = {r["stage"]: r for r in audited["funnel"]["all"] if r["step"] == "pack"}
    assert packed["packed"]["remaining"] == packer["kept"]
    assert {k: r["removed"] for k, r in packed.items() if r["status"]} == packer["reasons"]


def test_without_a_target_the_band_is_centred_on_the_share_the_pack_run_recorded(real_chain, audited):
    packer = _report(real_chain["pack"])
    plain = run_audit([real_chain["pack"]])
    assert plain["packing"]["band_target"] == packer["target_vision_ratio"]
    assert plain["packing"]["within_band_share"] == pytest.approx(packer["within_band_share"])
    assert audited["packing"]["band_target"] == 0.1  # a target given to the audit wins
    other = run_audit([real_chain["pack"]], target=Target(vision_ratio=0.5))
    assert other["packing"]["band_target"] == 0.5
    assert other["packing"]["within_band_share"] != plain["packing"]["within_band_share"]
