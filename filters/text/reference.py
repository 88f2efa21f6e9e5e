"""Whose rules a text heuristic follows: the ``reference`` parameter of the Gopher, C4 and FineWeb stages.

- ``fusionforge`` (the default): the definitions in each stage's module docstring;
- ``c4``: TensorFlow Datasets' ``c4_utils.clean_page`` and ``is_valid_length`` (C4 stage only);
- ``datatrove``: datatrove's filters of today (0.10.1), words split by spaCy's English tokenizer as
  datatrove splits them (every stage; needs ``pip install 'fusionforge[reference]'``);
- ``fineweb-2024``: datatrove's ``FineWebQualityFilter`` as FineWeb was built with it in April 2024
  (FineWeb stage only).

The differences between the modes are in one table in ``docs/architecture.md`` ("Reference modes").
A stage's thresholds default to the values its mode publishes; a threshold given explicitly wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from fusionforge.pipelines.core.errors import ConfigError

FUSIONFORGE: Final = "fusionforge"
C4: Final = "c4"
DATATROVE: Final = "datatrove"
FINEWEB_2024: Final = "fineweb-2024"


class _ModeDefault:
    """The default of a threshold: the value the stage's ``reference`` mode publishes."""

    def __repr__(self) -> str:
        return "<the reference mode's value>"


MODE_DEFAULT: Final = _ModeDefault()


def check_reference(stage: str, reference: str, known: Sequence[str]) -> str:
    """``reference`` if ``known`` lists it, else a ConfigError naming the stage and its modes."""
    if reference not in known:
        raise ConfigError(f"{stage}: reference must be one of {list(known)}, got {reference!r}")
    return reference


def resolve(given: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Each parameter as given, or the mode's default where it was left at ``MODE_DEFAULT``."""
    return {k: defaults[k] if v is MODE_DEFAULT else v for k, v in given.items()}
