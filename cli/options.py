"""Option decorators shared by every command, so each option is spelled the same everywhere.

``executor_options`` and ``run_options`` are the options of ``RunSettings``; ``build_config``
(``pipelines/core/settings.py``) turns a command's options into its config, each field taking the
option of its name and ``run`` those of the run settings, so a command names only the options it
converts.

Every number an option takes has a range (``ranged``: the ``Bound`` its config field declares), so
a bad value is a usage error before any work.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from fusionforge.pipelines.core.bounds import COUNT, SEED, Bound
from fusionforge.pipelines.core.config import DEFAULT_SEED
from fusionforge.pipelines.core.errors import FusionforgeError
from fusionforge.pipelines.core.runner import EXECUTORS

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


@functools.cache
def ranged(bound: Bound) -> click.ParamType:
    """The click type of an option whose values ``bound`` holds (a config field's bound, so both refuse alike)."""
    kind = click.IntRange if bound.integer else click.FloatRange
    return kind(min=bound.min, max=bound.max, min_open=bound.min_open, max_open=bound.max_open)


def executor_options(func: Callable) -> Callable:
    """``--executor``, ``--ray-address`` and ``--num-cpus``."""
    func = click.option("--num-cpus", type=ranged(COUNT), default=None, help="CPUs for a local Ray (default: all).")(
        func
    )
    func = click.option(
        "--ray-address",
        envvar="FUSIONFORGE_RAY_ADDRESS",
        default=None,
        show_envvar=True,
        help="Join this Ray cluster (host:port) instead of starting a local Ray.",
    )(func)
    return click.option(
        "--executor",
        type=click.Choice(EXECUTORS),
        default="ray",
        show_default=True,
        help="'ray': Ray Data (local or --ray-address); 'local': in this process.",
    )(func)


def run_options(func: Callable) -> Callable:
    """``--seed``, ``--resume``, ``--strict`` and ``--json``."""
    func = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")(func)
    func = click.option("--strict", is_flag=True, help="Stop at the first bad record (file and position).")(func)
    func = click.option("--resume", is_flag=True, help="Continue a killed run in the same -o; finished work is kept.")(
        func
    )
    return click.option(
        "--seed", type=ranged(SEED), default=DEFAULT_SEED, show_default=True, help="Seed for every random choice."
    )(func)


def library_errors(func: Callable) -> Callable:
    """Turn fusionforge errors (also when Ray wraps them) into clean CLI errors."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FusionforgeError as exc:
            raise click.ClickException(str(exc)) from exc
        except click.ClickException:
            raise  # already a clean CLI error (a usage error keeps its exit status 2)
        except Exception as exc:
            cause = _fusionforge_cause(exc)
            if cause is None:
                raise
            raise click.ClickException(str(cause)) from exc

    return wrapper


def _fusionforge_cause(exc: BaseException) -> FusionforgeError | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, FusionforgeError):
            return exc
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
    return None
