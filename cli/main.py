"""The ``fusionforge`` command group."""

from __future__ import annotations

import click

from fusionforge.cli.audit import audit
from fusionforge.cli.dedupe import dedupe
from fusionforge.cli.demo import demo
from fusionforge.cli.fetch import fetch
from fusionforge.cli.filter import filter_command
from fusionforge.cli.filters import filters
from fusionforge.cli.options import CONTEXT_SETTINGS
from fusionforge.cli.pack import pack
from fusionforge.cli.rft import rft
from fusionforge.cli.run import run
from fusionforge.cli.sft import sft
from fusionforge.cli.shard import shard
from fusionforge.cli.show import show
from fusionforge.cli.tokens import tokens


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="fusionforge")
def cli() -> None:
    """Turn raw text, image and video collections into early-fusion training data.

    \b
    Example:
      fusionforge shard raw/docs.jsonl raw/images/ -o out/
      fusionforge demo -o demo-out/

    \b
    Exit status: 0 done, 1 the run failed, 2 a usage or configuration error (the message names the
    option), 3 a check asked for failed (pack --fail-on-tolerance, audit --fail-on-deviation).
    """


cli.add_command(fetch)
cli.add_command(shard)
cli.add_command(demo)
cli.add_command(tokens)
cli.add_command(pack)
cli.add_command(rft)
cli.add_command(audit)
cli.add_command(sft)
cli.add_command(filter_command)
cli.add_command(filters)
cli.add_command(dedupe)
cli.add_command(run)
cli.add_command(show)
