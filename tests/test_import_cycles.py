"""No import cycles among fusionforge modules, hidden ones included.

A cycle hidden behind a function-level import, or behind ``if TYPE_CHECKING:``, still couples the two
modules both ways; it only moves the failure from import time to whichever call comes first. So the
graph here holds every in-project import, wherever it is written, and must have no cycle.

A function-level import of a fusionforge module is there only to keep a heavy dependency off the
import path (``HEAVY_GUARDS``, each checked: the module it imports pulls that dependency in, the
importing one does not). Outside ``cli/`` (whose commands import their library modules lazily so that
``fusionforge --help`` stays fast) no other one is allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP = ("pipelines", "filters", "mixers", "rft", "cli")

# (importing module, imported module) -> the heavy third-party package the lazy import keeps out.
HEAVY_GUARDS = {
    ("fusionforge.mixers.packing.packer", "fusionforge.mixers.packing.kernels"): "numba",
    ("fusionforge.mixers.packing.plan_table", "fusionforge.mixers.packing.kernels"): "numba",
    ("fusionforge.filters.text.gopher_repetition", "fusionforge.filters.text.kernels"): "numba",
}


def _modules() -> dict[str, Path]:
    found = {}
    for top in TOP:
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(("fusionforge", *parts))] = path
    return found


MODULES = _modules()


def _targets(node: ast.Import | ast.ImportFrom, importer: str) -> set[str]:
    """The fusionforge modules an import statement names: a module, or a submodule imported by name
    (``from fusionforge.pipelines.core import schema``), or else the package it imports from."""
    if isinstance(node, ast.Import):
        named = {alias.name for alias in node.names}
    else:
        assert not node.level, f"{importer}: write imports of fusionforge modules in full (from fusionforge....)"
        submodules = {f"{node.module}.{alias.name}" for alias in node.names} & set(MODULES)
        named = submodules if len(submodules) == len(node.names) else {node.module or "", *submodules}
    return {_nearest_module(name) for name in named if name.startswith("fusionforge.")} - {""}


def _nearest_module(name: str) -> str:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _runs(importer: str, target: str) -> set[str]:
    """What importing ``target`` runs: it, and the packages above it that ``importer`` is not inside."""
    parts = target.split(".")
    above = {".".join(parts[:end]) for end in range(2, len(parts) + 1)}
    return {m for m in above if m in MODULES and importer != m and not importer.startswith(m + ".")}


def _imports(module: str, code: str | None = None) -> list[tuple[str, bool]]:
    """(imported fusionforge module, imported inside a function?) for each import in ``module``."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((target, in_function) for target in _targets(child, module))
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, inner)

    visit(ast.parse(code if code is not None else MODULES[module].read_text(encoding="utf-8")), False)
    return found


IMPORTS = {module: _imports(module) for module in MODULES}


def _graph() -> dict[str, set[str]]:
    return {
        module: {ran for target, _ in imports for ran in _runs(module, target)} for module, imports in IMPORTS.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_imports_inside_functions_and_under_type_checking_are_seen():
    code = (
        "from typing import TYPE_CHECKING\n"
        "from fusionforge.pipelines.core import schema as S\n"
        "if TYPE_CHECKING:\n"
        "    from fusionforge.mixers.sft.build import run_build\n"
        "def write(state):\n"
        "    from fusionforge.rft.loop import run_rft\n"
    )
    assert sorted(_imports("fusionforge.mixers.sft.finish", code)) == [
        ("fusionforge.mixers.sft.build", False),
        ("fusionforge.pipelines.core.schema", False),
        ("fusionforge.rft.loop", True),
    ]
    assert _runs("fusionforge.mixers.sft.finish", "fusionforge.mixers.sft.build") == {"fusionforge.mixers.sft.build"}
    assert _runs("fusionforge.mixers.sft.finish", "fusionforge.pipelines.core.schema") == {
        "fusionforge.pipelines",
        "fusionforge.pipelines.core",
        "fusionforge.pipelines.core.schema",
    }


def test_the_cycle_finder_finds_every_cycle_and_only_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"f"}, "f": {"e"}}
    assert sorted(_cycles(graph)) == [["a", "b", "c"], ["e", "f"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_among_fusionforge_modules():
    cycles = _cycles(_graph())
    assert not cycles, f"import cycles (move what the modules share into a module of its own): {cycles}"


def test_lazy_imports_only_keep_heavy_dependencies_off_the_import_path():
    lazy = {
        (module, target)
        for module, imports in IMPORTS.items()
        for target, in_function in imports
        if in_function and not module.startswith("fusionforge.cli.")
    }
    unguarded, stale = sorted(lazy - set(HEAVY_GUARDS)), sorted(set(HEAVY_GUARDS) - lazy)
    assert not unguarded, f"import these at module level (or name the heavy dependency in HEAVY_GUARDS): {unguarded}"
    assert not stale, f"these lazy imports are gone; drop them from HEAVY_GUARDS: {stale}"


def _third_party_at_import(module: str, seen: set[str] | None = None) -> set[str]:
    """Top-level names of the packages ``module`` imports at module level, through fusionforge modules."""
    seen = seen if seen is not None else set()
    if module in seen:
        return set()
    seen.add(module)
    found = set()
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    for target, in_function in IMPORTS[module]:
        for ran in _runs(module, target) if not in_function else ():
            found |= _third_party_at_import(ran, seen)
    return found - {"fusionforge"}


def test_each_heavy_guard_keeps_out_the_dependency_it_names():
    for (module, target), heavy in HEAVY_GUARDS.items():
        assert heavy in _third_party_at_import(target), f"{target} does not import {heavy}; {module} can import it"
        assert heavy not in _third_party_at_import(module), f"{module} imports {heavy} anyway; the guard is moot"
