"""Audit reports as a single self-contained HTML page with inline matplotlib plots."""

from fusionforge.mixers.report.html import render_html, write_html

__all__ = ["render_html", "write_html"]
