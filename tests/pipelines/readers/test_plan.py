import json

import pytest

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.readers import read_file
from fusionforge.pipelines.readers.base import ReaderOptions
from fusionforge.pipelines.readers.plan import parse_input, plan_inputs


def plan_partitions(specs, partition_mb=512):
    return plan_inputs(specs, partition_mb).partitions


def formats_of(path):
    """The formats the planner gives the files of one input."""
    return {f.format for p in plan_partitions([parse_input(path)]) for f in p.files}


def test_large_jsonl_is_split_at_lines_and_reads_the_same(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"text": f"document number {i} " * (i % 7 + 1)}) + "\n" for i in range(500)))
    whole = plan_partitions([parse_input(str(path))], partition_mb=100)
    split = plan_partitions([parse_input(str(path))], partition_mb=0.004)
    assert len(whole) == 1 and len(split) > 5

    def rows(partitions):
        return [(r[S.ID], r[S.TEXT]) for p in partitions for f in p.files for r in read_file(f, ReaderOptions())]

    assert rows(split) == rows(whole)
    assert len(rows(whole)) == 500


def test_detect_format_and_source_names(sample_corpus):
    assert formats_of(sample_corpus["web"]) == {"text"}
    assert formats_of(sample_corpus["pairs"]) == {"pairs"}
    assert formats_of(sample_corpus["docs"]) == {"interleaved"}
    assert formats_of(sample_corpus["photos"]) == {"images"}
    assert formats_of(sample_corpus["clips"]) == {"videos"}
    assert formats_of(sample_corpus["legacy"]) == {"wds"}
    assert parse_input(sample_corpus["news"]).source == "news"
    assert parse_input(f"mine={sample_corpus['news']}").source == "mine"


def test_same_source_name_twice_is_a_config_error(sample_corpus):
    with pytest.raises(ConfigError, match="both named"):
        plan_partitions([parse_input(f"x={sample_corpus['web']}"), parse_input(f"x={sample_corpus['news']}")])
