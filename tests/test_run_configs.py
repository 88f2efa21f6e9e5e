"""Every step's config: its run settings in one ``RunSettings``, its checks in ``__post_init__``."""

import dataclasses

import pytest

from fusionforge.mixers.audit import AuditOptions
from fusionforge.mixers.packing.job import PackConfig
from fusionforge.mixers.sft.config import BuildConfig
from fusionforge.mixers.sft.synth_job import SynthConfig
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.settings import RUN_FIELDS, RunSettings
from fusionforge.pipelines.dedupe import DedupeConfig
from fusionforge.pipelines.fetch.config import FetchConfig
from fusionforge.pipelines.shard import ShardConfig
from fusionforge.pipelines.transform import TransformConfig
from fusionforge.rft.config import RFTConfig

CONFIGS = (
    ShardConfig,
    TransformConfig,
    DedupeConfig,
    FetchConfig,
    PackConfig,
    BuildConfig,
    SynthConfig,
    RFTConfig,
    AuditOptions,
)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda cls: cls.__name__)
def test_run_settings_live_in_one_field_and_checks_in_one_hook(cls):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert fields["run"].type in (RunSettings, "RunSettings")
    assert not set(fields) & set(RUN_FIELDS), "a run setting copied into the config"
    assert not hasattr(cls, "check") and not hasattr(cls, "validate"), "checks belong in __post_init__"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PackConfig(input="i", output="o", seq_len=8), "seq_len must be an integer >= 16"),
        (lambda: PackConfig(input="i", output="o", materialize=True), "needs a real tokenizer"),
        (lambda: BuildConfig(inputs=(), output="o"), "at least one chat file"),
        (lambda: BuildConfig(inputs=("a.jsonl",), output="o", max_tokens=10), "give --tokenizer PATH"),
        (lambda: SynthConfig(inputs=(), output="o"), "--generate N"),
        (lambda: SynthConfig(inputs=(), output="o", generate=1, memory_mb=1), "memory_mb must be an integer >= 64"),
        (lambda: RFTConfig(prompts="p", output="o", k=0), "k must be an integer >= 1"),
        (lambda: FetchConfig(listings=(), output="o"), "at least one listing"),
        (lambda: FetchConfig(listings=("u.jsonl",), output="o", content_types=("images",)), "type/subtype"),
        (lambda: FetchConfig(listings=("u.jsonl",), output="o", contact="a\r\nX-Evil: 1"), "line breaks"),
        (
            lambda: RFTConfig(prompts="p", output="o", verify_defaults={"code": {"max_processes": 1}}),
            "--verify-options code: .*max_processes must be an integer >= 4",
        ),
        (lambda: DedupeConfig(input="i", output="o", keep="biggest"), "--keep must be"),
        (lambda: AuditOptions(vision_presets=("qwen9",)), "qwen9"),
        (lambda: TransformConfig(input="i", output="o", run=RunSettings(executor="spark")), "unknown executor"),
    ],
)
def test_bad_settings_are_refused_when_the_config_is_made(make, message):
    with pytest.raises(ConfigError, match=message):
        make()
