"""Starting or joining Ray quietly, the same way from the CLI, tests and benchmarks."""

from __future__ import annotations

import logging
import os
from typing import Any

QUIET_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_DATA_LOG_LEVEL": "ERROR"}


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

    if ray.is_initialized():
        return ray
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
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.execution_options.preserve_order = True
    return ray
