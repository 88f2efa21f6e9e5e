"""``fusionforge run``: the whole chain from a YAML recipe, one Ray runtime for every step."""

from __future__ import annotations

import time
from pathlib import Path

import click
import yaml

from fusionforge.cli.options import cli_error, ranged
from fusionforge.cli.recipe import load_recipe
from fusionforge.cli.render import console
from fusionforge.pipelines.core.bounds import COUNT
from fusionforge.pipelines.core.errors import FusionforgeError
from fusionforge.pipelines.core.executor_choice import CHOICES
from fusionforge.pipelines.core.io import atomic_path


@click.command()
@click.argument("recipe_file", metavar="RECIPE", type=click.Path(exists=True, dir_okay=False))
@click.option("--executor", type=click.Choice(CHOICES), default=None, help="Override every step's executor.")
@click.option(
    "--ray-address",
    envvar="FUSIONFORGE_RAY_ADDRESS",
    default=None,
    show_envvar=True,
    help="Run every step on this Ray cluster (host:port).",
)
@click.option("--num-cpus", type=ranged(COUNT), default=None, help="CPUs for a local Ray (default: all).")
@click.option(
    "--resume", is_flag=True, default=None, help="Resume every step that can: finished steps and partitions are kept."
)
@click.option("--dry-run", is_flag=True, help="Check the recipe and print each step's command; run nothing.")
@click.pass_context
def run(ctx: click.Context, recipe_file, executor, ray_address, num_cpus, resume, dry_run):
    """Run a recipe: a YAML list of fusionforge commands, each reading the previous step's output.

    A step is `COMMAND: {option: value}` with the command's own option names (underscores or
    dashes); `inputs` (default: the previous step's output; the audit gets every earlier output),
    `output` (default: OUTPUT/NAME) and `name` (default: the command) are the step's own keys.
    `defaults` applies to every step that has the option. The whole recipe is checked before the
    first step starts; the resolved commands are saved as OUTPUT/recipe.yaml. Relative paths are
    relative to the current directory.

    \b
    Example:
      fusionforge run recipe.yaml --ray-address 10.0.0.1:6379
    \b
    recipe.yaml:
      output: runs/exp1
      defaults: {seed: 0}
      steps:
        - shard: {inputs: {web: raw/web.jsonl.gz, photos: raw/photos/}}
        - dedupe: {text_threshold: 0.8, keep: longest}
        - filter: {config: filters.yaml}
        - pack: {seq_len: 8192, vision_ratio: 0.1, vision_preset: kimi-k25}
        - audit: {html: runs/exp1/report.html}
    """
    overrides = {"executor": executor, "ray_address": ray_address, "num_cpus": num_cpus, "resume": resume}
    try:
        recipe = load_recipe(recipe_file, ctx.find_root().command, overrides)
    except FusionforgeError as exc:
        raise cli_error(exc) from exc  # a recipe that does not hold together is a configuration error: exit 2
    for index, step in enumerate(recipe.steps, start=1):
        console.print(f"[bold]{index}/{len(recipe.steps)} {step.name}[/]: {step.line()}", soft_wrap=True)
    if dry_run:
        return
    root = Path(recipe.output)
    root.mkdir(parents=True, exist_ok=True)
    with atomic_path(root / "recipe.yaml") as tmp:
        tmp.write_text(
            yaml.safe_dump(
                {
                    "recipe": str(Path(recipe_file).resolve()),
                    "steps": [{"name": s.name, "command": s.line()} for s in recipe.steps],
                },
                sort_keys=False,
            )
        )
    started = time.monotonic()
    for index, step in enumerate(recipe.steps, start=1):
        console.rule(f"{index}/{len(recipe.steps)} {step.name}")
        try:
            code = ctx.find_root().command.main(list(step.argv), prog_name="fusionforge", standalone_mode=False)
        except click.ClickException as exc:
            failed = click.ClickException(f"step {index} ({step.name}) failed: {exc.format_message()}")
            failed.exit_code = exc.exit_code  # 2 for a step's usage or configuration error, 1 for a failed run
            raise failed from exc
        except SystemExit as exc:  # a command that ends with sys.exit (e.g. audit --fail-on-deviation)
            code = exc.code
        if isinstance(code, int) and code != 0:
            console.print(f"[red]step {index} ({step.name}) exited with status {code}; later steps not run[/]")
            ctx.exit(code)
    console.print(
        f"[bold]recipe finished[/]: {len(recipe.steps)} steps in {time.monotonic() - started:.1f} s; "
        f"outputs under {root}/"
    )
