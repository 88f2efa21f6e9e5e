"""The values a numeric setting may take, written once for the command line and the config behind it.

A config field declares its ``Bound`` with ``within`` and the config's ``__post_init__`` calls
``check_bounds``, so a library call or a recipe is refused like the command line; the CLI turns the
same ``Bound`` into its click range type (``cli/options.py``), so a bad option is a usage error
before any work. The kinds most settings share are named here; a bound only one setting has lives
beside that setting.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from fusionforge.pipelines.core.errors import ConfigError

BOUND = "bound"  # the key of a field's metadata that holds its Bound


@dataclass(frozen=True)
class Bound:
    """An interval of ints (``integer``) or of numbers; ``None`` ends are unbounded, ``*_open`` ends excluded."""

    integer: bool
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False

    def admits(self, value: Any) -> bool:
        """Whether ``value`` is a number of the right kind inside the interval (None is not: see ``problem``)."""
        kind = Integral if self.integer else Real
        if isinstance(value, bool) or not isinstance(value, kind):
            return False
        if self.min is not None and (value <= self.min if self.min_open else value < self.min):
            return False
        return self.max is None or (value < self.max if self.max_open else value <= self.max)

    def describe(self) -> str:
        """``>= 1``, ``> 0``, ``in (0, 1]``: what the message of a refused value says it must be."""
        if self.min is not None and self.max is not None:
            low, high = "(" if self.min_open else "[", ")" if self.max_open else "]"
            return f"in {low}{_number(self.min)}, {_number(self.max)}{high}"
        if self.min is not None:
            return f"{'>' if self.min_open else '>='} {_number(self.min)}"
        if self.max is not None:
            return f"{'<' if self.max_open else '<='} {_number(self.max)}"
        return "any value"

    def problem(self, name: str, value: Any) -> str | None:
        """Why ``value`` cannot be ``name`` (None when it can, or when it is None: the setting is off)."""
        if value is None or self.admits(value):
            return None
        kind = "an integer" if self.integer else "a number"
        return f"{name} must be {kind} {self.describe()}, got {value!r}"

    def require(self, name: str, value: Any, error: type[Exception] = ConfigError) -> None:
        """Raise ``error`` unless ``value`` fits: for settings that are arguments, not dataclass fields
        (a stage raises ``ValueError``, which the filter list reports as a ``ConfigError`` naming it)."""
        problem = self.problem(name, value)
        if problem:
            raise error(problem)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


COUNT = Bound(integer=True, min=1)  # how many of something, where none makes no sense
NON_NEGATIVE_INT = Bound(integer=True, min=0)  # a count or limit where 0 means none or off
# numpy's RandomState (MinHash permutations) and fastText take seeds below 2**32 and 2**31.
SEED = Bound(integer=True, min=0, max=2**31 - 1)
POSITIVE = Bound(integer=False, min=0, min_open=True)  # seconds, megabytes, rates
NON_NEGATIVE = Bound(integer=False, min=0)  # a size or tolerance where 0 means none or off
FRACTION = Bound(integer=False, min=0, max=1)
POSITIVE_FRACTION = Bound(integer=False, min=0, max=1, min_open=True)  # a share that must keep something
PROPER_FRACTION = Bound(integer=False, min=0, max=1, max_open=True)  # a held-out share that must leave some


def within(bound: Bound, default: Any = dataclasses.MISSING) -> Any:
    """A dataclass field whose values ``check_bounds`` holds to ``bound``."""
    return dataclasses.field(default=default, metadata={BOUND: bound})


def bound_problems(config: Any) -> list[str]:
    """Why the fields of ``config`` that declare a bound are out of it (empty when none is)."""
    found = []
    for f in dataclasses.fields(config):
        bound = f.metadata.get(BOUND)
        problem = bound.problem(f.name, getattr(config, f.name)) if bound else None
        if problem:
            found.append(problem)
    return found


def check_bounds(config: Any, *more: str | None) -> None:
    """Raise one ``ConfigError`` naming every field of ``config`` out of its bound, and the ``more`` problems
    a config found itself (None: no problem), so a user fixes them all in one go."""
    problems = [*bound_problems(config), *(p for p in more if p)]
    if problems:
        raise ConfigError("; ".join(problems))
