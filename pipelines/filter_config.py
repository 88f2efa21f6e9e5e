"""The filter list of ``fusionforge filter``: parsed from YAML, adjusted by flags, checked before any work.

A config file holds ``filters:``, a list run in order; each entry is a stage name, or a mapping with
``stage`` (a registered name), the stage's parameters, and optionally ``resources`` (``num_cpus``,
``num_gpus``, ``concurrency``, ``batch_size``)::

    filters:
      - text_lang_id_v1
      - stage: text_gopher_quality_v1
        languages: [en]
      - stage: image_clip_score_v1
        model: ViT-B-32
        pretrained: /models/clip-b32.safetensors
        top_fraction: 0.3
        resources: {num_gpus: 1, batch_size: 256}

A flag (``--min-words 30``) or an override (``--set text_gopher_quality_v1.min_words=30``) changes the
stage's parameter, adding the stage at its usual place in the order when the list lacks it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from fusionforge.pipelines.core import registry
from fusionforge.pipelines.core.config import load_yaml
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.stage import Resources, StageSpec

ORDER = (
    "web_blocklist_v1",
    "interleaved_nodes_v1",
    "interleaved_doc_v1",
    "text_lang_id_v1",
    "decontaminate_v1",
    "text_gopher_quality_v1",
    "text_gopher_repetition_v1",
    "text_c4_lines_v2",
    "text_fineweb_quality_v1",
    "text_fasttext_v1",
    "text_pii_v1",
    "image_checks_v1",
    "image_clip_score_v1",
    "video_probe_v1",
    "video_scenes_v1",
    "video_motion_v1",
    "video_frames_v1",
    "video_clip_score_v1",
)
DEFAULT_FILTERS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("text_lang_id_v1", {}),
    ("text_gopher_quality_v1", {"languages": ["en"]}),
    ("text_gopher_repetition_v1", {}),
    ("text_fineweb_quality_v1", {}),
    ("image_checks_v1", {}),
    ("video_probe_v1", {}),
)
RESOURCE_KEYS = ("num_cpus", "num_gpus", "concurrency", "batch_size")
PIPELINE_PARAMS = ("resolved_threshold", "reuse_scores")  # set by the score pass, not by users
# The CLIP-scored stages, by what they score: image-text pairs, video keyframes against the caption, or both.
CLIP_STAGES = {
    "image": ("image_clip_score_v1",),
    "video": ("video_clip_score_v1",),
    "both": ("image_clip_score_v1", "video_clip_score_v1"),
}


@dataclass(frozen=True)
class FilterEntry:
    """One stage of the filter list."""

    stage: str
    params: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"stage": self.stage, **self.params}
        if self.resources:
            entry["resources"] = dict(self.resources)
        return entry


def default_filters() -> list[FilterEntry]:
    """The list used without a config file: language ID, text heuristics, image checks, video probe."""
    return [FilterEntry(name, dict(params)) for name, params in DEFAULT_FILTERS]


def parse_filters(data: Any, where: str = "config") -> list[FilterEntry]:
    """Entries from the parsed YAML (a mapping with ``filters:``, or the list itself)."""
    items = data.get("filters") if isinstance(data, Mapping) else data
    if isinstance(data, Mapping) and set(data) - {"filters"}:
        raise ConfigError(f"{where}: unknown top-level keys {sorted(set(data) - {'filters'})}; only 'filters:'")
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: 'filters' must be a non-empty list of stages")
    entries = []
    for position, item in enumerate(items, 1):
        if isinstance(item, str):
            entries.append(FilterEntry(item))
            continue
        if not isinstance(item, Mapping) or not isinstance(item.get("stage"), str):
            raise ConfigError(f"{where}: filter #{position} must be a stage name or a mapping with 'stage:'")
        params = {k: v for k, v in item.items() if k not in ("stage", "resources")}
        resources = item.get("resources")
        if resources is not None and (not isinstance(resources, Mapping) or set(resources) - set(RESOURCE_KEYS)):
            raise ConfigError(f"{where}: filter #{position} resources may only set {list(RESOURCE_KEYS)}")
        entries.append(FilterEntry(item["stage"], params, dict(resources) if resources else None))
    return entries


def load_filters(path: str) -> list[FilterEntry]:
    """The filter list of a YAML file."""
    return parse_filters(load_yaml(path), where=str(path))


def with_setting(entries: list[FilterEntry], stage: str, **params: Any) -> list[FilterEntry]:
    """``entries`` with ``params`` set on ``stage`` (added at its place in ``ORDER`` when missing)."""
    for i, entry in enumerate(entries):
        if entry.stage == stage:
            return [*entries[:i], FilterEntry(stage, {**entry.params, **params}, entry.resources), *entries[i + 1 :]]
    rank = ORDER.index(stage) if stage in ORDER else len(ORDER)
    at = next((i for i, e in enumerate(entries) if e.stage in ORDER and ORDER.index(e.stage) > rank), len(entries))
    return [*entries[:at], FilterEntry(stage, dict(params)), *entries[at:]]


def with_resources(entries: list[FilterEntry], stage: str, **resources: Any) -> list[FilterEntry]:
    """``entries`` with resource settings on ``stage`` (which must be in the list)."""
    found = [e for e in entries if e.stage == stage]
    if not found:
        raise ConfigError(f"{stage} is not in the filter list; add it before setting its resources")
    return [
        FilterEntry(e.stage, e.params, {**(e.resources or {}), **resources}) if e.stage == stage else e for e in entries
    ]


def apply_overrides(entries: list[FilterEntry], overrides: Iterable[str]) -> list[FilterEntry]:
    """``STAGE.PARAM=VALUE`` overrides (values parsed as YAML: ``30``, ``[en, de]``, ``null``)."""
    for override in overrides:
        key, sep, value = override.partition("=")
        stage, dot, param = key.partition(".")
        if not sep or not dot or not param:
            raise ConfigError(f"override {override!r} must look like STAGE.PARAM=VALUE")
        entries = with_setting(entries, stage, **{param: yaml.safe_load(value)})
    return entries


def build_specs(entries: list[FilterEntry]) -> list[StageSpec]:
    """Stage specs for the executors, after checking every name, parameter and the list's order."""
    specs, seen = [], []
    for entry in entries:
        stage = registry.get(entry.stage)
        if entry.params.get("languages") and entry.stage != "text_lang_id_v1" and "text_lang_id_v1" not in seen:
            raise ConfigError(
                f"{entry.stage}: languages= judges only records of those languages, so "
                "text_lang_id_v1 must come before it in the filter list"
            )
        if entry.params.get("top_fraction") is not None and any(registry.get(s).expands for s in seen):
            raise ConfigError(
                f"{entry.stage}: top_fraction cannot follow a stage that derives records "
                f"({', '.join(s for s in seen if registry.get(s).expands)}); use threshold"
            )
        _check_params(stage, entry)
        resources = Resources(**{**_as_dict(stage.resources), **entry.resources}) if entry.resources else None
        specs.append(StageSpec(stage, dict(entry.params), resources))
        seen.append(entry.stage)
    return specs


def _check_params(stage: type, entry: FilterEntry) -> None:
    signature = inspect.signature(stage.__init__)
    allowed = [n for n in signature.parameters if n != "self" and n not in PIPELINE_PARAMS]
    unknown = [k for k in entry.params if k not in allowed]
    if unknown:
        raise ConfigError(f"{entry.stage}: unknown parameter(s) {unknown}; it takes {allowed}")
    try:
        signature.bind(None, **entry.params)
        if getattr(stage, "stateful", False):
            check = getattr(stage, "check", None)
            if check is not None:
                check(**entry.params)
        else:
            stage(**entry.params)  # cheap to build; its own checks run here
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{entry.stage}: {exc}") from exc


def _as_dict(resources: Resources) -> dict[str, Any]:
    return {k: getattr(resources, k) for k in RESOURCE_KEYS}
