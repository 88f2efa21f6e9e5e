"""The folders install as subpackages of ``fusionforge``: every package folder must be listed."""

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP = ("pipelines", "filters", "mixers", "rft", "cli")


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    on_disk = {
        "fusionforge." + ".".join(init.parent.relative_to(ROOT).parts)
        for top in TOP
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - on_disk == set(), "these listed packages have no folder with __init__.py"


def test_layout_and_console_script():
    for name in (*TOP, "tests", "bench", "docs", "pyproject.toml", "README.md", "Makefile", ".ci/run"):
        assert (ROOT / name).exists(), name
    assert _pyproject()["project"]["scripts"]["fusionforge"] == "fusionforge.cli.main:cli"


def test_wheel_contains_every_module(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("fusionforge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for top in TOP:
        for module in (ROOT / top).rglob("*.py"):
            assert f"fusionforge/{module.relative_to(ROOT)}" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "fusionforge = fusionforge.cli.main:cli" in zipfile.ZipFile(wheel).read(entry_points).decode()
