import pyarrow as pa
import pytest

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import SchemaError


def _rows(**overrides):
    row = {
        S.ID: "src/a#1",
        S.SOURCE: "src",
        S.MODALITY: "text",
        S.TEXT: "hello",
        S.INPUT_FILE: "a.jsonl",
        S.INPUT_POSITION: 1,
    }
    row.update(overrides)
    return row


def test_validate_casts_and_adds_missing_optional_columns():
    table = pa.table(
        {
            S.ID: ["x"],
            S.SOURCE: ["s"],
            S.MODALITY: ["text"],
            S.INPUT_FILE: ["f"],
            S.INPUT_POSITION: pa.array([3], pa.int32()),
            "stage__score": [0.5],
        }
    )
    out = S.validate(table)
    assert out.schema.names[: len(S.RECORD_SCHEMA)] == S.RECORD_SCHEMA.names
    assert out.column(S.INPUT_POSITION).type == pa.int64()
    assert out.column(S.DROP_REASON).null_count == 1
    assert out.column("stage__score").to_pylist() == [0.5]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pa.table({S.SOURCE: ["s"], S.MODALITY: ["text"], S.INPUT_FILE: ["f"], S.INPUT_POSITION: [1]}), "'id'"),
        (pa.Table.from_pylist([_rows(modality="audio")]), "unknown modality"),
        (pa.Table.from_pylist([_rows(), _rows()]), "duplicate"),
        (pa.Table.from_pylist([_rows(input_position="not a number")]), "input_position"),
        (pa.Table.from_pylist([_rows(source=None)]), "'source'"),
    ],
)
def test_validate_rejects_with_a_clear_message(table, message):
    with pytest.raises(SchemaError, match=message):
        S.validate(table)


def test_stage_column_is_namespaced():
    assert S.stage_column("text_gopher_quality_v1", "word_count") == "text_gopher_quality_v1__word_count"
