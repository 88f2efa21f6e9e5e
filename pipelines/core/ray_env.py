"""Starting or joining Ray quietly, the same way from the CLI, tests and benchmarks."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

QUIET_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_DATA_LOG_LEVEL": "ERROR"}
TASK_RETRIES = 2  # times Ray retries a task (or restarts an actor) whose worker process died; its default is forever


@contextmanager
def remote_args_allowed() -> Iterator[None]:
    """Building datasets with ``max_retries`` / ``max_restarts``, without Ray 2.60's deprecation warning.

    Ray Data deprecates ``ray_remote_args`` but offers no other way yet to bound the retries of a
    task whose worker died; unbounded, it retries forever. The warning would reach every user's
    terminal, so it is silenced here. Revisit when Ray offers a way (it plans the removal for 2.64;
    requirements.txt pins 2.60).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        yield


def quiet_environment() -> None:
    """Set Ray's environment switches (before Ray is imported) unless the user set them."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


def init_ray(address: str | None = None, num_cpus: int | None = None, object_store_mb: int | None = None) -> Any:
    """Start a local Ray (default) or join the cluster at ``address``; a no-op when already up.

    Local runs get no dashboard, no driver log forwarding and ERROR-level logging, because Ray's
    per-dataset INFO lines bury the progress that matters to the user.
    """
    quiet_environment()
    import ray

    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
        if address:
            ray.init(address=address, **kwargs)
        else:
            if num_cpus:
                kwargs["num_cpus"] = num_cpus
            if object_store_mb:
                kwargs["object_store_memory"] = object_store_mb * 1024**2
            ray.init(address="local", **kwargs)  # "local": never attach to a cluster `ray start` left behind
        logging.getLogger("ray").setLevel(logging.ERROR)
    configure_data_context(ray)
    return ray


def configure_data_context(ray: Any) -> None:
    """Ray Data settings every fusionforge job relies on (also when the caller started Ray itself)."""
    from ray.data.context import ShuffleStrategy

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.execution_options.preserve_order = True
    # Sort-based shuffles: measured several times faster than Ray 2.60's default hash shuffle for the
    # groupbys fusionforge runs (regrouping rows by partition, grouping dedupe bands).
    context.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
