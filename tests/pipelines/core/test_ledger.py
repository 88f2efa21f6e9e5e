import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.ledger import (
    LEDGER_SCHEMA,
    kept_mask,
    ledger_rows,
    ledger_summary,
    reason_kinds,
    status_of,
)


def _batch():
    rows = [
        {S.ID: "web/a", S.SOURCE: "web", S.MODALITY: "text"},
        {S.ID: "web/b", S.SOURCE: "web", S.MODALITY: "text", S.DROP_REASON: "text_gopher_quality_v1:too_short"},
        {S.ID: "web/c", S.SOURCE: "web", S.MODALITY: "text", S.ERROR: "read:malformed_json: bad (line 3)"},
        {
            S.ID: "pics/d",
            S.SOURCE: "pics",
            S.MODALITY: "image",
            S.DROP_REASON: "dedupe:exact_dup_of:pics/e",
            S.ERROR: "probe:undecodable_image: truncated (d.png)",
        },
        {S.ID: "pics/e", S.SOURCE: "pics", S.MODALITY: "image"},
        {
            S.ID: "pics/e#t=0.000,1.000",
            S.SOURCE: "pics",
            S.MODALITY: "video",
            S.PARENT_ID: "pics/e",
            S.DROP_REASON: "text_gopher_quality_v1:too_short",
        },
    ]
    for n, row in enumerate(rows):
        row.update({S.INPUT_FILE: "f", S.INPUT_POSITION: n})
    return pa.Table.from_pylist(rows, schema=S.RECORD_SCHEMA)


def test_status_failed_wins_over_dropped_and_kept_mask_follows():
    batch = _batch()
    assert status_of(batch).to_pylist() == ["kept", "dropped", "failed", "failed", "kept", "dropped"]
    assert kept_mask(batch).to_pylist() == [True, False, False, False, True, False]


def test_ledger_rows_give_the_error_before_the_drop_reason():
    ledger = ledger_rows(_batch(), "shard")
    assert ledger.schema == LEDGER_SCHEMA
    assert ledger.column("reason").to_pylist()[1:4] == [
        "text_gopher_quality_v1:too_short",
        "read:malformed_json: bad (line 3)",
        "probe:undecodable_image: truncated (d.png)",
    ]
    assert set(ledger.column("step").to_pylist()) == {"shard"}
    assert ledger.column(S.PARENT_ID).to_pylist()[-1] == "pics/e"


def test_summary_counts_inputs_derived_and_reasons(tmp_path):
    path = tmp_path / "ledger.parquet"
    pq.write_table(ledger_rows(_batch(), "filter"), path)
    summary = ledger_summary(path)
    assert (summary["inputs"], summary["derived"]) == (5, 1)
    assert (summary["kept"], summary["dropped"], summary["failed"]) == (2, 2, 2)
    assert summary["inputs"] + summary["derived"] == summary["kept"] + summary["dropped"] + summary["failed"]
    assert summary["reasons"] == {
        "text_gopher_quality_v1:too_short": 2,
        "probe:undecodable_image": 1,
        "read:malformed_json": 1,
    }
    assert list(summary["reasons"])[0] == "text_gopher_quality_v1:too_short"  # most frequent first
    assert summary["reasons_by_source"]["pics"] == {"probe:undecodable_image": 1, "text_gopher_quality_v1:too_short": 1}
    assert summary["by_source_modality"]["pics/image"] == {"kept": 1, "dropped": 0, "failed": 1}


def test_reason_kinds_drop_the_detail_and_the_id_a_reason_points_at():
    reasons = pa.array(
        [
            "dedupe:near_dup_of:text/t00729167",
            "dedupe:exact_dup_of:clips/v00000.mp4#0",
            "dedupe:semantic_dup_of:photos/p1.png#0",
            "read:malformed_json: Expecting value: line 1 column 1",
            "exact_dup_of: conv-17",  # a reason without a stage, with its detail
            "pack:surplus",
            "decontaminate_v1:ngram:mmlu",  # a benchmark's name is a kind, not a pointer
            "video_probe_v1:unreadable_video: moov atom not found\n/data/v.mp4: Invalid data found",  # ffprobe's
            "fetch:http_error: 500\n",
            None,
        ]
    )
    assert reason_kinds(reasons).to_pylist() == [
        "dedupe:near_dup_of",
        "dedupe:exact_dup_of",
        "dedupe:semantic_dup_of",
        "read:malformed_json",
        "exact_dup_of",
        "pack:surplus",
        "decontaminate_v1:ngram:mmlu",
        "video_probe_v1:unreadable_video",
        "fetch:http_error",
        None,
    ]


def test_summary_counts_one_reason_per_kind_however_many_copies_are_kept(tmp_path):
    rows = [
        {S.ID: f"web/{n}", S.SOURCE: "web", S.MODALITY: "text", S.INPUT_FILE: "f", S.INPUT_POSITION: n}
        for n in range(40)
    ]
    for n, row in enumerate(rows[10:], start=10):  # 30 copies of 10 different kept documents
        row[S.DROP_REASON] = f"dedupe:{'near' if n % 3 else 'exact'}_dup_of:web/{n % 10}"
    path = tmp_path / "ledger.parquet"
    pq.write_table(ledger_rows(pa.Table.from_pylist(rows, schema=S.RECORD_SCHEMA), "dedupe"), path)
    summary = ledger_summary(path)
    assert summary["reasons"] == {"dedupe:near_dup_of": 20, "dedupe:exact_dup_of": 10}
    assert summary["reasons_by_source"] == {"web": summary["reasons"]}
    assert summary["dropped"] == 30
