"""Configs: YAML files with dotted overrides in, the resolved config out next to every output."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.io import atomic_path

DEFAULT_SEED = 0  # every command's --seed and every library default that the CLI passes it to


def load_yaml(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """A YAML mapping with ``a.b=value`` overrides applied (values parsed as YAML scalars)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level")
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep:
            raise ConfigError(f"override {override!r} must look like key.sub=value")
        target = data
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
            if not isinstance(target, dict):
                raise ConfigError(f"override {override!r}: {parent!r} is not a mapping")
        target[leaf] = yaml.safe_load(value)
    return data


def to_plain(value: Any) -> Any:
    """Dataclasses, tuples and paths as plain YAML-able data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: to_plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def dump_config(path: str | Path, config: Any) -> None:
    """Write the resolved config as YAML, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(to_plain(config), sort_keys=False, allow_unicode=True), encoding="utf-8")
