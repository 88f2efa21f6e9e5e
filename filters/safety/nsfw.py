"""NSFW score of images and video keyframes from NudeNet's detector (its ONNX model ships in the wheel).

NudeNet 3 finds body parts with a label each (``FEMALE_BREAST_EXPOSED``, ``FACE_MALE``, ...); a
picture's score is the highest confidence of an *exposed* intimate part (``EXPOSED``), 0 when the
detector finds none (it reports boxes of at least 0.2). A record's ``score`` is its worst picture's;
``exposed`` lists the labels seen. Drop by ``max_score`` (reason ``nsfw``, score above it).

Defaults: the bundled ``320n.onnx`` at resolution 320, ``max_score`` None (score only), ``threads``
1 (onnxruntime threads per actor, idle threads not spinning), 8 keyframes per video at most 640 px.
``model_path`` takes another NudeNet detector file (``640m.onnx`` with
``resolution: 640``). Pictures are handed to NudeNet as BGR arrays, as ``cv2.imdecode`` gives them,
so a PNG scores exactly as ``NudeDetector().detect(png_bytes)`` (tested); a JPEG may differ by the
rounding of another JPEG decoder (Pillow's, through the bounded decoder).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from fusionforge.filters.safety.base import PictureStage, over_limit, require_bounds
from fusionforge.filters.safety.pictures import Picture
from fusionforge.pipelines.core.bounds import COUNT, FRACTION
from fusionforge.pipelines.core.errors import ConfigError, MissingDependency
from fusionforge.pipelines.core.images import DEFAULT_MAX_PIXELS
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources

BUNDLED_MODEL = "320n.onnx"
EXPOSED = (
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "BUTTOCKS_EXPOSED",
    "ANUS_EXPOSED",
)
NUDENET_HINT = (
    "and NudeNet itself without its dependencies: pip install --no-deps nudenet==3.4.2 "
    "(it asks for opencv-python-headless, which clashes with the opencv-python that [safety] installs)"
)


def load_nudenet(model_path: str | None, resolution: int, threads: int) -> Any:
    """NudeNet's detector on its bundled model, or on ``model_path``, running on ``threads`` threads.

    NudeNet builds its ONNX session with onnxruntime's defaults: a thread per core that spins while
    idle, which doubled the CPU time per picture on a loaded 2-core machine (0.185 s against 0.09 s)
    and fights the other actors Ray packs on the node. The session is built again with ``threads``
    and spinning off; pre- and post-processing stay NudeNet's.
    """
    try:
        import onnxruntime
        from nudenet import NudeDetector
    except ImportError as exc:
        raise MissingDependency("nudenet", "safety", NUDENET_HINT) from exc
    detector = NudeDetector(model_path=model_path, inference_resolution=resolution)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    path = model_path or str(Path(inspect.getfile(NudeDetector)).parent / BUNDLED_MODEL)
    detector.onnx_session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return detector


def picture_score(detections: list[dict[str, Any]]) -> tuple[float, set[str]]:
    """The highest confidence of an exposed part among one picture's detections, and their labels."""
    exposed = [d for d in detections if d["class"] in EXPOSED]
    return max((float(d["score"]) for d in exposed), default=0.0), {d["class"] for d in exposed}


@register
class SafetyNsfw(PictureStage):
    """``safety_nsfw_v1``: NudeNet's NSFW score per record (see the module docstring)."""

    name: ClassVar[str] = "safety_nsfw_v1"
    resources: ClassVar[Resources] = Resources(batch_size=32)
    fields: ClassVar[dict[str, pa.DataType]] = {
        "score": pa.float64(),
        "exposed": pa.list_(pa.string()),
        "pictures": pa.int64(),
    }

    def __init__(
        self,
        model_path: str | None = None,
        resolution: int = 320,
        max_score: float | None = None,
        threads: int = 1,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_keyframes: int = 8,
        keyframe_side: int = 640,
        timeout_s: float = 300.0,
    ) -> None:
        self.check(model_path=model_path, resolution=resolution, max_score=max_score, threads=threads)
        self.init_pictures(max_pixels, max_keyframes, keyframe_side, timeout_s)
        self.max_score = max_score
        self.detector = load_nudenet(model_path, resolution, threads)

    @classmethod
    def check(
        cls,
        model_path: str | None = None,
        resolution: int = 320,
        max_score: float | None = None,
        threads: int = 1,
        **_: object,
    ) -> None:
        """Cheap checks before a run (building the stage loads the model)."""
        require_bounds(
            cls.name, max_score=(max_score, FRACTION), resolution=(resolution, COUNT), threads=(threads, COUNT)
        )
        if model_path is not None and not Path(model_path).is_file():
            raise ConfigError(f"{cls.name}: NudeNet model {model_path} does not exist")

    def judge(self, pictures: list[Picture]) -> dict[str, Any]:
        scored = [picture_score(self.detector.detect(np.ascontiguousarray(p.rgb[:, :, ::-1]))) for p in pictures]
        return {
            "score": max(score for score, _ in scored),
            "exposed": sorted(set().union(*(labels for _, labels in scored))),
            "pictures": len(pictures),
        }

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        return over_limit(scores["score"], self.max_score, "nsfw")
