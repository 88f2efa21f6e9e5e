"""The demo's last step: the pretraining chain's outputs audited, the HTML report written."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from fusionforge.pipelines.core.settings import RunSettings

DEMO_VISION_RATIO = 0.10
CHAIN = ("shards", "dedup", "filtered", "packed")  # the folders the pretraining steps write


def audit_step(out: Path, console: Console, run: RunSettings) -> Path:
    """Last step: audit the pretraining chain's outputs under ``out`` and write the HTML report; return its path.

    The SFT and RFT outputs are a separate (post-training) chain and are left out, so the funnel
    follows one corpus from ingestion to packed sequences.

    The target is Kimi K2.5's vision-token share of about 10%, so the report shows how far each
    stage's output is from it.
    """
    from fusionforge.mixers.audit import AuditOptions, Target, run_audit
    from fusionforge.mixers.audit.discover import is_output
    from fusionforge.mixers.audit.html import write_html
    from fusionforge.mixers.audit.terminal import short_summary

    outputs = [str(out / name) for name in CHAIN if is_output(out / name)]
    options = AuditOptions(run=run)
    report = run_audit(outputs, options, Target(vision_ratio=DEMO_VISION_RATIO))
    console.print(short_summary(report))
    path = write_html(report, out / "audit.html").resolve()
    console.print(f"[bold]audit report[/] {path}")
    return path
