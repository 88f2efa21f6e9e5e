"""The error taxonomy holds only errors that are raised, and a bad image or video is one bad record."""

import ast
import inspect
import pickle
from pathlib import Path

import pytest

from fusionforge.pipelines.core import errors
from fusionforge.pipelines.core.errors import BadMedia, BadRecord, FusionforgeError
from fusionforge.pipelines.core.images import inspect_image

ROOT = Path(__file__).resolve().parents[3]
TOP = ("pipelines", "filters", "mixers", "rft", "cli")


def _raised_names() -> set[str]:
    """Names of the classes raised anywhere in the tree (``raise Name(...)`` or ``raise Name``)."""
    names = set()
    for top in TOP:
        for path in (ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Raise) and node.exc is not None:
                    target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                    if isinstance(target, ast.Name):
                        names.add(target.id)
    return names


def test_every_error_class_is_raised_somewhere_or_is_the_base_of_one_that_is():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, FusionforgeError)]
    raised = [c for c in classes if c.__name__ in _raised_names()]
    unused = [c.__name__ for c in classes if not any(issubclass(r, c) for r in raised)]
    assert unused == [], "raise these where they belong, or remove them from pipelines/core/errors.py"


def test_a_bad_image_is_one_bad_record_with_the_ledger_reason():
    with pytest.raises(BadRecord) as caught:
        inspect_image(b"not an image at all")
    assert isinstance(caught.value, BadMedia)
    assert caught.value.reason == "undecodable_image"
    assert str(caught.value) == f"undecodable_image: {caught.value.detail}"


def test_bad_media_keeps_its_reason_and_detail_across_processes():
    error = BadMedia("corrupt_video", "Invalid NAL unit size")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.reason, copy.detail, str(copy)) == (
        BadMedia,
        "corrupt_video",
        "Invalid NAL unit size",
        "corrupt_video: Invalid NAL unit size",
    )
