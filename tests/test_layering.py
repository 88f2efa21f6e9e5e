"""The layers of docs/architecture.md hold: no module imports a layer above it, siblings stay apart.

Every ``import``/``from ... import`` of a fusionforge module counts, at module level or inside a
function, because a lazy import is still a dependency. The bottom layer must not reach the stages
by name either (the registry finds them through entry points), so its string literals are checked too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("pipelines", "filters", "mixers", "rft", "cli")

# (group, rank): a module may import its own group or a lower rank; groups of equal rank stay apart
# except where ALLOWED_SIDEWAYS says so.
LAYERS = {
    "pipelines.core": 0,
    "filters": 1,
    "pipelines": 2,
    "mixers": 3,  # mixers/mixture.py: read by packing, SFT and the audit alike
    "mixers.tokens": 3,
    "mixers.packing": 4,
    "mixers.sft": 4,
    "mixers.audit": 4,
    "rft": 4,
    "mixers.training": 5,  # reads pack outputs: may import packing and tokens
    "cli": 6,
}
ALLOWED_SIDEWAYS = {("mixers", "mixers.tokens"), ("mixers.tokens", "mixers")}


def group_of(module: str) -> str | None:
    """The layer group of a dotted fusionforge module name (None for anything else)."""
    parts = module.split(".")
    if parts[0] != "fusionforge" or len(parts) < 2 or parts[1] not in PACKAGE_FOLDERS:
        return None
    if parts[1] == "pipelines" and len(parts) > 2 and parts[2] == "core":
        return "pipelines.core"
    if parts[1] == "mixers" and len(parts) > 2 and f"mixers.{parts[2]}" in LAYERS:
        return f"mixers.{parts[2]}"
    return parts[1]


def project_modules() -> dict[str, Path]:
    modules = {}
    for folder in PACKAGE_FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules["fusionforge." + dotted.removesuffix(".__init__")] = path
    return modules


def imported_names(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, relative imports resolved."""
    found = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def layering_violations(modules: dict[str, Path]) -> list[str]:
    problems = []
    for module, path in sorted(modules.items()):
        source = group_of(module)
        for line, name in imported_names(path, module):
            target = group_of(name)
            if target is None or target == source:
                continue
            sideways = LAYERS[target] == LAYERS[source] and (source, target) not in ALLOWED_SIDEWAYS
            if LAYERS[target] > LAYERS[source] or sideways:
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                problems.append(f"{where}:{line}: {source} imports {name} ({target})")
    return sorted(set(problems))


def test_every_package_module_has_a_layer():
    assert all(group_of(module) in LAYERS for module in project_modules())


def test_no_module_imports_a_layer_above_it_or_a_sibling():
    assert layering_violations(project_modules()) == []


def test_the_check_catches_an_upward_and_a_sideways_import(tmp_path):
    """The rule itself, on two made-up modules: core reaching filters, packing reaching the audit."""
    core = tmp_path / "core_mod.py"
    core.write_text("def f():\n    from fusionforge.filters.text import c4\n")
    packing = tmp_path / "packing_mod.py"
    packing.write_text("from fusionforge.mixers.audit.summary import build_report\n")
    found = layering_violations({"fusionforge.pipelines.core.fake": core, "fusionforge.mixers.packing.fake": packing})
    assert sorted(p.split(": ", 1)[1] for p in found) == [
        "mixers.packing imports fusionforge.mixers.audit.summary (mixers.audit)",
        "mixers.packing imports fusionforge.mixers.audit.summary.build_report (mixers.audit)",
        "pipelines.core imports fusionforge.filters.text (filters)",
        "pipelines.core imports fusionforge.filters.text.c4 (filters)",
    ]


@pytest.mark.parametrize("path", sorted((ROOT / "pipelines" / "core").rglob("*.py")), ids=lambda p: p.name)
def test_the_bottom_layer_names_no_stage_package(path):
    """pipelines/core reaches stages only through the registry's entry points, never by a module name."""
    upper = [f"fusionforge.{name}" for name in ("filters", "mixers", "rft", "cli")] + [
        "fusionforge.pipelines.stages",
        "fusionforge.pipelines.dedupe",
    ]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert not any(node.value.startswith(name) for name in upper), f"{path.name} names {node.value!r}"


def test_stage_packages_are_the_declared_entry_points():
    """Every module that registers a stage lies in a package the registry is told to scan."""
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["fusionforge.stages"]
    scanned = set(declared.values())
    for module, path in project_modules().items():
        if "@register" in path.read_text(encoding="utf-8"):
            assert any(module.startswith(package + ".") for package in scanned), module
