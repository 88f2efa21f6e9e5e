import pyarrow as pa

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.stage import ScoringStage


class LengthScore(ScoringStage):
    name = "test_length_v1"

    def score(self, batch):
        return {"chars": pa.array([len(t) for t in batch.column(S.TEXT).to_pylist()], pa.int64())}

    def decide(self, scores):
        return ["too_short" if n < 5 else None for n in scores["chars"].to_pylist()]


def _batch():
    rows = [
        {S.ID: "a", S.TEXT: "long enough", S.DROP_REASON: None, S.ERROR: None},
        {S.ID: "b", S.TEXT: "tiny", S.DROP_REASON: None, S.ERROR: None},
        {S.ID: "c", S.TEXT: "x", S.DROP_REASON: "earlier_v1:bad", S.ERROR: None},
        {S.ID: "d", S.TEXT: None, S.DROP_REASON: None, S.ERROR: "read:malformed_json: ..."},
    ]
    schema = pa.schema(
        [(S.ID, pa.string()), (S.TEXT, pa.string()), (S.DROP_REASON, pa.string()), (S.ERROR, pa.string())]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def test_scoring_stage_scores_keeps_rows_and_keeps_the_first_reason():
    out = LengthScore()(_batch())
    assert out.num_rows == 4
    assert out.column("test_length_v1__chars").to_pylist() == [11, 4, 1, None]
    assert out.column(S.DROP_REASON).to_pylist() == [None, "test_length_v1:too_short", "earlier_v1:bad", None]
