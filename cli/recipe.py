"""Recipes: a YAML list of fusionforge commands, each reading the previous one's output.

A step's keys are exactly its command's options (``text_threshold: 0.8`` is ``--text-threshold 0.8``),
so a recipe never drifts from the CLI and every option a command gains is usable in recipes at once.
Everything is checked before the first step runs: a typo in step 4 must not cost the hours of steps 1-3.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from fusionforge.pipelines.core.errors import ConfigError

STEP_KEYS = ("inputs", "output", "name")
NOT_IN_RECIPES = {("demo",), ("run",)}
OVERRIDABLE = ("executor", "ray_address", "num_cpus", "resume")
CHECKED_TYPES = (click.types.IntParamType, click.types.FloatParamType, click.Choice)  # ranges subclass the first two


@dataclass(frozen=True)
class Step:
    """One resolved step: the command path, its arguments, and where it writes."""

    name: str
    command: tuple[str, ...]
    argv: tuple[str, ...]
    output: str | None

    def line(self) -> str:
        return shlex.join(("fusionforge", *self.argv))


@dataclass
class Recipe:
    """The steps of a recipe file, in order."""

    path: str
    output: str
    steps: list[Step] = field(default_factory=list)


def load_recipe(path: str, group: click.Group, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read and check ``path``; ``overrides`` (e.g. ``ray_address``) win over every step's own value."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the recipe: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list) or not data["steps"]:
        raise ConfigError(f"{path}: a recipe is a mapping with a non-empty 'steps' list")
    unknown = set(data) - {"output", "defaults", "steps"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level keys {sorted(unknown)} (allowed: output, defaults, steps)")
    if not data.get("output"):
        raise ConfigError(f"{path}: 'output' (the folder every step writes into) is required")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}: 'defaults' must be a mapping of option: value")
    recipe = Recipe(path=path, output=str(data["output"]))
    outputs: list[str] = []
    for index, entry in enumerate(data["steps"], start=1):
        where = f"{path}: step {index}"
        step = resolve_step(entry, where, group, recipe.output, outputs, defaults, overrides or {})
        if step.name in {s.name for s in recipe.steps}:
            raise ConfigError(f"{where}: a second step named {step.name!r}; give one of them a 'name'")
        recipe.steps.append(step)
        if step.output:
            outputs.append(step.output)
    return recipe


def resolve_step(
    entry: Any,
    where: str,
    group: click.Group,
    root: str,
    outputs: list[str],
    defaults: dict[str, Any],
    overrides: dict[str, Any],
) -> Step:
    """One ``{command: {option: value}}`` entry -> the argv that runs it."""
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ConfigError(f"{where}: a step is a mapping with one key, the command (e.g. 'dedupe: {{...}}')")
    ((spelled, options),) = entry.items()
    path = tuple(str(spelled).split())
    command = find_command(group, path, where)
    options = dict(options or {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: the options of {spelled!r} must be a mapping")
    name = str(options.pop("name", None) or path[-1])
    inputs = options.pop("inputs", None)
    output = options.pop("output", None)
    writes = any(isinstance(p, click.Option) and "--output" in p.opts for p in command.params)
    if writes:
        output = str(output or Path(root) / name)
    elif output is not None:
        raise ConfigError(f"{where}: {spelled!r} writes no output folder; drop 'output'")
    argv = [*path, *input_args(inputs, outputs, path, where)]
    if output:
        argv += ["--output", output]
    settings = {k: v for k, v in defaults.items() if has_param(command, k)}
    settings.update(options)
    settings.update({k: v for k, v in overrides.items() if v is not None and has_param(command, k)})
    for key, value in settings.items():
        argv += option_args(command, str(key), value, f"{where} ({spelled})")
    return Step(name=name, command=path, argv=tuple(argv), output=output)


def find_command(group: click.Group, path: tuple[str, ...], where: str) -> click.Command:
    command: click.Command = group
    for part in path:
        sub = command.commands.get(part) if isinstance(command, click.Group) else None
        if sub is None:
            known = sorted(" ".join(p) for p in leaf_paths(group) if p not in NOT_IN_RECIPES)
            raise ConfigError(f"{where}: unknown command {' '.join(path)!r}; recipes can run: {', '.join(known)}")
        command = sub
    if isinstance(command, click.Group) or path in NOT_IN_RECIPES:
        raise ConfigError(f"{where}: {' '.join(path)!r} cannot be a recipe step; name a command, e.g. 'sft build'")
    return command


def leaf_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            paths += leaf_paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


def input_args(inputs: Any, outputs: list[str], path: tuple[str, ...], where: str) -> list[str]:
    """Given inputs, else the previous step's output (the audit gets every earlier output: the whole funnel)."""
    if inputs is None:
        if not outputs:
            raise ConfigError(f"{where}: the first step needs 'inputs'")
        return list(outputs) if path == ("audit",) else [outputs[-1]]
    if isinstance(inputs, dict):  # shard's NAME=PATH sources
        return [f"{name}={value}" for name, value in inputs.items()]
    return [str(value) for value in (inputs if isinstance(inputs, list) else [inputs])]


def has_param(command: click.Command, key: str) -> bool:
    return find_param(command, key) is not None


def find_param(command: click.Command, key: str) -> tuple[click.Option, str | None] | None:
    """The option a recipe key names: by its option string (``no_verify``) or its parameter name (``verify``)."""
    dashed = "--" + key.replace("_", "-")
    options = [p for p in command.params if isinstance(p, click.Option)]
    for param in options:
        if dashed in param.opts or dashed in param.secondary_opts:
            return param, dashed
    for param in options:
        if param.name == key.replace("-", "_"):
            return param, None
    return None


def option_args(command: click.Command, key: str, value: Any, where: str) -> list[str]:
    """``key: value`` -> the command-line words that set it."""
    found = find_param(command, key)
    if found is None:
        known = sorted(
            max(p.opts, key=len).lstrip("-").replace("-", "_")
            for p in command.params
            if isinstance(p, click.Option) and p.name != "help"
        )
        raise ConfigError(f"{where}: unknown option {key!r}; known: {', '.join(known)}")
    param, spelled = found
    flag = spelled or long_option(param)
    if value is None:
        return []
    if param.is_flag:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key!r} is a flag: write true or false")
        if spelled is not None:
            return [spelled] if value else []
        if value == param.flag_value:
            return [flag]
        if value == param.default:
            return []
        raise ConfigError(f"{where}: {key!r} cannot be set to {value!r} from a recipe")
    if param.multiple or param.nargs != 1:
        values = value if isinstance(value, list) else [value]
        words: list[str] = []
        for item in values:
            given = list(map(str, item if isinstance(item, list) else [item]))
            check_words(command, param, given, f"{where}: {key!r}")
            words += [flag, *given]
        return words
    if isinstance(value, (dict, list)):
        raise ConfigError(f"{where}: {key!r} takes one value, not {type(value).__name__}")
    word = str(value).lower() if isinstance(value, bool) else str(value)
    check_words(command, param, [word], f"{where}: {key!r}")
    return [flag, word]


def check_words(command: click.Command, param: click.Option, words: list[str], where: str) -> None:
    """Convert ``words`` as the command line will, so a number out of range or a choice not offered fails
    when the recipe is loaded, not when its step starts. Paths are not checked: an earlier step may make them."""
    if not isinstance(param.type, CHECKED_TYPES):
        return
    context = click.Context(command)
    for word in words:
        try:
            param.type.convert(word, param, context)
        except click.BadParameter as exc:
            raise ConfigError(f"{where}: {exc.format_message()}") from exc


def long_option(param: click.Option) -> str:
    return max(param.opts, key=len)
