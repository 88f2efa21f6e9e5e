"""Option decorators shared by every command, so each option is spelled the same everywhere.

``executor_options`` and ``run_options`` are the options of ``RunSettings``; ``build_config``
(``pipelines/core/settings.py``) turns a command's options into its config, each field taking the
option of its name and ``run`` those of the run settings, so a command names only the options it
converts.

Every number an option takes has a range (``ranged``: the ``Bound`` its config field declares), so
a bad value is a usage error before any work. Exit status: 0 done, 1 the run failed, 2 a usage or
configuration error (click's convention, also for a ``ConfigError`` the library raises), 3 a
command's own check failed (``pack --fail-on-tolerance``, ``audit --fail-on-deviation``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from fusionforge.pipelines.core.bounds import COUNT, SEED, Bound
from fusionforge.pipelines.core.config import DEFAULT_SEED
from fusionforge.pipelines.core.errors import ConfigError, FusionforgeError
from fusionforge.pipelines.core.executor_choice import AUTO, CHOICES

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 110}
USAGE_EXIT_CODE = 2  # click's status for a usage error; a configuration error is one too


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
        type=click.Choice(CHOICES),
        default=AUTO,
        show_default=True,
        help="'auto': in this process when the input is small for this machine's CPUs and no --ray-address "
        "is given, else Ray (the choice and its reason are in the report); 'ray': Ray Data (local or "
        "--ray-address); 'local': in this process.",
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


class ConfigurationError(click.ClickException):
    """A ``ConfigError`` at the command line: the user's to fix, so it exits like a usage error."""

    exit_code = USAGE_EXIT_CODE


def library_errors(func: Callable) -> Callable:
    """Turn fusionforge errors (also when Ray wraps them) into clean CLI errors: ``cli_error`` picks the status."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise  # already a clean CLI error (a usage error keeps its exit status 2)
        except Exception as exc:
            cause = _fusionforge_cause(exc)
            if cause is None:
                raise
            raise cli_error(cause) from exc

    return wrapper


def cli_error(error: FusionforgeError) -> click.ClickException:
    """The CLI error of a library error: exit 2 for a ``ConfigError`` (``MissingDependency`` included: the
    fix is the user's, a pip install, and nothing ran), exit 1 for a run that failed (``RunError`` and the rest)."""
    if isinstance(error, ConfigError):
        return ConfigurationError(str(error))
    return click.ClickException(str(error))


def _fusionforge_cause(exc: BaseException) -> FusionforgeError | None:
    """The fusionforge error ``exc`` is or wraps. Ray's ``RayTaskError`` keeps the task's own exception in
    ``cause`` (and may itself be an instance of its class, with Ray's traceback as its text): the walk
    goes down to that exception, so the message and the exit status are the task's."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "cause", None)
        if isinstance(exc, FusionforgeError) and not isinstance(inner, BaseException):
            return exc
        exc = inner if isinstance(inner, BaseException) else (exc.__cause__ or exc.__context__)
    return None
