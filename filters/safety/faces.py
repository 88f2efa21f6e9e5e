"""Face count of images and video keyframes with OpenCV's Haar cascade (shipped in opencv-python 4.x).

Each picture is searched in gray, scaled so its longer side is at most ``detect_side``, with
``cv2.CascadeClassifier.detectMultiScale`` (``scale_factor``, ``min_neighbors``, faces of at least
``min_face_side`` px at that scale). Per record: ``faces`` is the most faces one picture holds (a
video's faces repeat over its keyframes), ``face_share`` the largest share of one picture covered by
faces, ``boxes`` the faces found in its images (``media_index``, x, y, w, h in the image's pixels).
Drop by ``max_faces`` (reason ``too_many_faces``).

With ``blur`` the faces of every kept record's images are blurred in the output (``blur.py``): the
image's bytes are rewritten, so they travel inline and the writer stores the new bytes in the shard;
``blurred`` counts the images rewritten. Video keyframes are counted, never blurred (that would mean
re-encoding the video).

Defaults: the frontal-face cascade ``haarcascade_frontalface_default.xml``, ``scale_factor`` 1.1,
``min_neighbors`` 5, ``min_face_side`` 24, ``detect_side`` 1024, ``max_faces`` None (count only),
``blur`` off, 8 keyframes per video at most 640 px. ``cascade_path`` takes another cascade file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from fusionforge.filters.safety.base import PictureStage, over_limit, require_bounds
from fusionforge.filters.safety.blur import blur_batch
from fusionforge.filters.safety.pictures import Picture
from fusionforge.pipelines.core.bounds import COUNT, NON_NEGATIVE_INT, Bound
from fusionforge.pipelines.core.errors import ConfigError, MissingDependency
from fusionforge.pipelines.core.images import DEFAULT_MAX_PIXELS
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
SCALE_FACTOR = Bound(integer=False, min=1, min_open=True)  # the image pyramid's step
BOX_FIELDS = ("media_index", "x", "y", "w", "h")
BOX_TYPE = pa.struct([(k, pa.int32()) for k in BOX_FIELDS])


def load_cascade(cascade_path: str | None) -> Any:
    """OpenCV's cascade classifier from ``cascade_path`` or the frontal-face cascade opencv-python ships."""
    try:
        import cv2
    except ImportError as exc:
        raise MissingDependency("cv2", "safety") from exc
    if not hasattr(cv2, "CascadeClassifier"):
        raise ConfigError(f"OpenCV {cv2.__version__} has no CascadeClassifier (OpenCV 5 dropped it); install 4.x")
    path = cascade_path or str(Path(cv2.data.haarcascades) / DEFAULT_CASCADE)
    try:
        cascade = cv2.CascadeClassifier(path)
    except (cv2.error, SystemError) as exc:  # OpenCV raises inside the constructor for a malformed file
        raise ConfigError(f"{path} is not a cascade OpenCV can load: {exc}") from exc
    if cascade.empty():
        raise ConfigError(f"{path} is not a cascade OpenCV can load")
    return cascade


def find_faces(cascade: Any, rgb: np.ndarray, detect_side: int, scale_factor: float, min_neighbors: int, min_side: int):
    """Face boxes (x, y, w, h) in ``rgb``'s own pixels, found on a gray copy scaled to ``detect_side``."""
    import cv2

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, detect_side / max(gray.shape))
    if scale < 1.0:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    found = cascade.detectMultiScale(
        gray, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(min_side, min_side)
    )
    boxes = np.asarray(found, dtype=np.float64).reshape(-1, 4) / scale
    height, width = rgb.shape[:2]
    x, y = np.clip(boxes[:, 0], 0, width), np.clip(boxes[:, 1], 0, height)
    w, h = np.minimum(boxes[:, 2], width - x), np.minimum(boxes[:, 3], height - y)
    return np.stack([x, y, w, h], axis=1).round().astype(np.int64)


def covered_share(boxes: np.ndarray, height: int, width: int) -> float:
    """The share of a ``height`` x ``width`` picture that the union of ``boxes`` covers."""
    mask = np.zeros((height, width), dtype=bool)
    for x, y, w, h in boxes:
        mask[y : y + h, x : x + w] = True
    return float(mask.mean()) if mask.size else 0.0


@register
class SafetyFaces(PictureStage):
    """``safety_faces_v1``: faces per record, optionally blurred in the output (see the module docstring)."""

    name: ClassVar[str] = "safety_faces_v1"
    resources: ClassVar[Resources] = Resources(batch_size=32)
    fields: ClassVar[dict[str, pa.DataType]] = {
        "faces": pa.int64(),
        "face_share": pa.float64(),
        "boxes": pa.list_(BOX_TYPE),
    }

    def __init__(
        self,
        cascade_path: str | None = None,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_face_side: int = 24,
        detect_side: int = 1024,
        max_faces: int | None = None,
        blur: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_keyframes: int = 8,
        keyframe_side: int = 640,
        timeout_s: float = 300.0,
    ) -> None:
        self.check(cascade_path, scale_factor, min_neighbors, min_face_side, detect_side, max_faces)
        self.init_pictures(max_pixels, max_keyframes, keyframe_side, timeout_s)
        self.search = {
            "detect_side": detect_side,
            "scale_factor": scale_factor,
            "min_neighbors": min_neighbors,
            "min_side": min_face_side,
        }
        self.max_faces, self.blur = max_faces, blur
        self.cascade = load_cascade(cascade_path)

    @classmethod
    def check(
        cls,
        cascade_path: str | None = None,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_face_side: int = 24,
        detect_side: int = 1024,
        max_faces: int | None = None,
        **_: object,
    ) -> None:
        """Cheap checks before a run (building the stage loads the cascade)."""
        require_bounds(
            cls.name,
            scale_factor=(scale_factor, SCALE_FACTOR),
            min_neighbors=(min_neighbors, NON_NEGATIVE_INT),
            min_face_side=(min_face_side, COUNT),
            detect_side=(detect_side, COUNT),
            max_faces=(max_faces, NON_NEGATIVE_INT),
        )
        if cascade_path is not None and not Path(cascade_path).is_file():
            raise ConfigError(f"{cls.name}: cascade file {cascade_path} does not exist")

    def judge(self, pictures: list[Picture]) -> dict[str, Any]:
        counts, shares, boxes = [], [], []
        for picture in pictures:
            found = find_faces(self.cascade, picture.rgb, **self.search)
            counts.append(len(found))
            shares.append(covered_share(found, *picture.rgb.shape[:2]))
            if not picture.keyframe:
                boxes.extend(dict(zip(BOX_FIELDS, (picture.media_index, *map(int, box)))) for box in found)
        return {"faces": max(counts), "face_share": max(shares), "boxes": boxes}

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        return over_limit(scores["faces"], self.max_faces, "too_many_faces")

    def __call__(self, batch: pa.Table) -> pa.Table:
        scored = super().__call__(batch)
        return blur_batch(scored, self.name) if self.blur else scored
