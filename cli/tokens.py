"""``fusionforge tokens``: vision-token counts of image and video sizes under a preset."""

from __future__ import annotations

import json
import re

import click

from fusionforge.cli.options import library_errors
from fusionforge.mixers.tokens.vision import PRESETS
from fusionforge.pipelines.core.errors import ConfigError

_ITEM = re.compile(r"^(\d+)x(\d+)(?:x(\d+))?$")


@click.command()
@click.argument("items", nargs=-1)
@click.option(
    "--preset",
    default="kimi-k25",
    show_default=True,
    type=click.Choice(PRESETS),
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a preset parameter (max_patches=4096, max_pixels=..., fit=pad, ...).",
)
@click.option(
    "--presets",
    "show_presets",
    is_flag=True,
    help="Print every preset's parameters and their defaults instead of counting items.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@library_errors
def tokens(items, preset, overrides, show_presets, as_json):
    """Print the resized size, the patch grid and the LLM tokens of each WxH image or WxHxF video.

    \b
    Example:
      fusionforge tokens --preset kimi-k25 1920x1080 640x480x96 --json
      fusionforge tokens --presets
    """
    if show_presets:
        _print_presets(as_json)
        return
    if not items:
        raise click.UsageError("give at least one WxH or WxHxF item (or --presets)")
    from fusionforge.mixers.tokens.vision import get_preset, parse_override

    try:
        params = dict(parse_override(override) for override in overrides)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from exc
    chosen = get_preset(preset, **params)
    rows = []
    for item in items:
        match = _ITEM.match(item)
        if not match:
            raise click.BadParameter(f"{item!r} is not WxH or WxHxF", param_hint="ITEMS")
        width, height, frames = int(match[1]), int(match[2]), match[3]
        try:
            count = chosen.video(width, height, int(frames)) if frames else chosen.image(width, height)
        except ValueError as exc:
            rows.append({"item": item, "error": str(exc)})
            continue
        rows.append(
            {
                "item": item,
                "kind": "video" if frames else "image",
                "resized": [count.resized_width, count.resized_height],
                "grid": list(count.grid),
                "tokens": count.tokens,
                "wrapper_tokens": count.wrapper_tokens,
                "total": count.total,
                **({"chunks": count.chunks} if frames else {}),
            }
        )
    if as_json:
        click.echo(json.dumps({"preset": preset, "overrides": params, "items": rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"vision tokens, preset {preset}", header_style="bold")
    for column in ("item", "resized", "grid (t,h,w)", "tokens", "wrapper", "total"):
        table.add_column(column, justify="left" if column == "item" else "right")
    for row in rows:
        if "error" in row:
            table.add_row(row["item"], "error", row["error"], "", "", "")
        else:
            table.add_row(
                row["item"],
                "x".join(map(str, row["resized"])),
                ",".join(map(str, row["grid"])),
                f"{row['tokens']:,}",
                str(row["wrapper_tokens"]),
                f"{row['total']:,}",
            )
    Console().print(table)


def _print_presets(as_json: bool) -> None:
    from fusionforge.mixers.tokens.preset_table import MEANING, format_value, preset_rows

    rows = preset_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    for name, params in rows.items():
        table = Table(title=f"preset {name}", header_style="bold")
        for column in ("parameter", "default", "meaning"):
            table.add_column(column)
        for key, value in params.items():
            table.add_row(key, Text(format_value(value)), MEANING[key])
        console.print(table)
