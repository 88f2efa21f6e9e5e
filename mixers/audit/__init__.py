"""Audit any fusionforge output: the mixture, the funnel, duplicates, distributions and packing.

``run_audit`` discovers the Parquet files of the given outputs, folds them (in this process or as
Ray tasks) into small mergeable states, and builds the report; ``compare_reports`` puts two side by
side; ``fusionforge.mixers.audit.html`` renders a report as a self-contained HTML page,
``terminal`` as rich tables, ``plots`` draws the figures both use.
"""

from fusionforge.mixers.audit.api import AuditOptions, collect_state, run_audit
from fusionforge.mixers.audit.compare import compare_reports
from fusionforge.mixers.audit.target import Target, load_target

__all__ = ["AuditOptions", "Target", "collect_state", "compare_reports", "load_target", "run_audit"]
