"""``fusionforge dedupe``: the hash dedupe (``run.py``), or the semantic one (``semantic.py``) with ``semantic``."""

from __future__ import annotations

from typing import Any

from fusionforge.pipelines.core.progress import Progress, quiet
from fusionforge.pipelines.dedupe.config import DedupeConfig
from fusionforge.pipelines.dedupe.run import run_hash_dedupe
from fusionforge.pipelines.dedupe.semantic import run_semantic_dedupe


def run_dedupe(cfg: DedupeConfig, progress: Progress = quiet) -> dict[str, Any]:
    """Run (or finish) a dedupe; return the report, also written to ``report.json``."""
    if cfg.semantic:
        return run_semantic_dedupe(cfg, progress)
    return run_hash_dedupe(cfg, progress)
