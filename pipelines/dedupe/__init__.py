"""Exact and near-duplicate removal over an earlier fusionforge output (``fusionforge dedupe``)."""

from fusionforge.pipelines.dedupe.config import DedupeConfig
from fusionforge.pipelines.dedupe.step import run_dedupe

__all__ = ["DedupeConfig", "run_dedupe"]
