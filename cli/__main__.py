"""``python -m fusionforge.cli``: the same as the ``fusionforge`` console script."""

from fusionforge.cli.main import cli

cli()
