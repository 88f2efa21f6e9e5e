"""Versioned stage names -> classes, so configs and recipes can name stages.

A registered name never changes behaviour: a change makes ``_v2``. Stage modules register
themselves on import; ``get`` imports the packages that hold stages the first time a name is
unknown, so heavy optional dependencies are still only imported inside stage constructors.

Which packages hold stages is declared in ``pyproject.toml`` (entry points of the group
``fusionforge.stages``), not here: this bottom layer never names the layers above it, and a
plug-in package can add stages the same way.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.stage import Stage

STAGE_ENTRY_POINTS = "fusionforge.stages"  # each entry point names a package whose modules define stages
_REGISTRY: dict[str, type[Stage]] = {}
_scanned = False


def register(cls: type[Stage]) -> type[Stage]:
    """Class decorator: register a stage under its ``name`` class attribute."""
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise ConfigError(f"stage name {cls.name!r} is registered twice ({existing.__module__}, {cls.__module__})")
    _REGISTRY[cls.name] = cls
    return cls


def get(name: str) -> type[Stage]:
    """The stage class registered as ``name``; an unknown name lists the known ones."""
    if name not in _REGISTRY:
        _import_stage_modules()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown stage {name!r}; known stages: {', '.join(sorted(_REGISTRY))}") from None


def names() -> list[str]:
    """Every registered stage name."""
    _import_stage_modules()
    return sorted(_REGISTRY)


def _import_stage_modules() -> None:
    global _scanned
    if _scanned:
        return
    for point in entry_points(group=STAGE_ENTRY_POINTS):
        package = importlib.import_module(point.value)
        for module in pkgutil.walk_packages(package.__path__, prefix=point.value + "."):
            importlib.import_module(module.name)
    _scanned = True
