"""Safety stages against the bare model calls they wrap, on the same pictures, in one process.

- ``safety_nsfw_v1`` versus ``NudeDetector().detect(path)``, NudeNet's own call: once with the
  package's default ONNX session (onnxruntime's threads, spinning) and once with the stage's session
  (one thread, no spinning), which isolates what the stage adds (decoding through the bounded
  decoder, Arrow columns, the per-record fold);
- ``safety_faces_v1`` versus ``cv2.imread`` + ``cvtColor`` + ``CascadeClassifier.detectMultiScale``
  with the same settings (1.1, 5, 24 px);
- ``safety_text_share_v1`` versus ``RapidOCR(...)(path)`` with the same settings (longer side at most
  960, detection + recognition, one thread).

The pictures are drawn here (cartoon faces, printed text, plain pictures; 640x480, PNG and JPEG files)
and referenced by path, so both sides read the same files. Each side runs ``--rounds`` times; the best
round counts. Rates are pictures per CPU-second (``time.process_time``: all threads of the process),
so a loaded machine changes them less than wall time; wall rates are printed too.

ratio = stage rate / bare rate (< 1: the stage costs more per picture).

    python bench/safety_signals.py --pictures 48 --rounds 2
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parents[1]


def load_test_helpers(name: str, path: Path):
    """A conftest module of the test suite, by path (both helper files are named conftest.py)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pictures(n: int, seed: int = 0) -> list[Image.Image]:
    """A third cartoon faces (the tests' drawing), a third printed text, a third blurred noise."""
    draw_face = load_test_helpers("safety_pictures", ROOT / "tests" / "filters" / "safety" / "conftest.py").draw_face
    rng = np.random.default_rng(seed)
    font = ImageFont.load_default(size=28)
    out = []
    for i in range(n):
        kind = i % 3
        image = Image.new("RGB", (640, 480), tuple(int(v) for v in rng.integers(40, 220, 3)))
        draw = ImageDraw.Draw(image)
        if kind == 0:
            for x in np.linspace(0, 640, int(rng.integers(1, 4)) + 2)[1:-1]:
                draw_face(draw, x, 240, int(rng.integers(90, 140)))
            image = image.filter(ImageFilter.GaussianBlur(1.5))
        elif kind == 1:
            image = Image.new("RGB", (640, 480), "white")
            draw = ImageDraw.Draw(image)
            for line in range(int(rng.integers(2, 9))):
                draw.text((20, 20 + line * 48), f"Line {line}: a quick brown fox, item {i}", fill="black", font=font)
        else:
            noise = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
            image = Image.fromarray(noise).filter(ImageFilter.GaussianBlur(int(rng.integers(2, 8))))
        out.append(image)
    return out


def write_files(images: list[Image.Image], folder: Path) -> list[Path]:
    paths = []
    for i, image in enumerate(images):
        path = folder / (f"p{i:04d}.png" if i % 2 else f"p{i:04d}.jpg")
        image.save(path, **({"quality": 90} if path.suffix == ".jpg" else {}))
        paths.append(path)
    return paths


def batches(paths: list[Path], size: int) -> list[pa.Table]:
    helpers = load_test_helpers("filter_records", ROOT / "tests" / "filters" / "conftest.py")
    batch_of, media_file, record = helpers.batch_of, helpers.media_file, helpers.record
    rows = [record(f"b/{i}", "a picture", "image", [media_file(p, "image")]) for i, p in enumerate(paths)]
    return [batch_of(rows[i : i + size]) for i in range(0, len(rows), size)]


def timed(run, rounds: int) -> tuple[float, float]:
    """Best (CPU seconds, wall seconds) over ``rounds`` runs."""
    best = (float("inf"), float("inf"))
    for _ in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        run()
        best = min(best, (time.process_time() - cpu, time.perf_counter() - wall))
    return best


def nsfw_sides(paths):
    import onnxruntime
    from nudenet import NudeDetector

    from fusionforge.filters.safety.nsfw import SafetyNsfw, load_nudenet

    stage = SafetyNsfw()
    default = NudeDetector()
    same = load_nudenet(None, 320, 1)
    return (
        stage,
        {
            "NudeDetector().detect (onnxruntime defaults)": lambda: [default.detect(str(p)) for p in paths],
            "NudeDetector.detect (the stage's 1-thread session)": lambda: [same.detect(str(p)) for p in paths],
        },
        onnxruntime.__version__,
    )


def faces_sides(paths):
    import cv2

    from fusionforge.filters.safety.faces import SafetyFaces

    stage = SafetyFaces()
    cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"))

    def bare():
        for p in paths:
            gray = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2GRAY)
            cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))

    return stage, {"cv2 imread + detectMultiScale": bare}, cv2.__version__


def text_sides(paths):
    from rapidocr_onnxruntime import RapidOCR

    from fusionforge.filters.safety.text_share import SafetyTextShare

    stage = SafetyTextShare()
    ocr = RapidOCR(det_limit_side_len=960, det_limit_type="max", intra_op_num_threads=1, inter_op_num_threads=1)
    return stage, {"RapidOCR()(path), det + rec": lambda: [ocr(str(p), use_cls=False) for p in paths]}, "1.4.4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pictures", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ff-safety-bench-") as tmp:
        paths = write_files(pictures(args.pictures), Path(tmp))
        tables = batches(paths, args.batch_size)
        n = len(paths)
        print(f"{n} pictures (640x480, half JPEG), best of {args.rounds} rounds; rates in pictures per CPU-second")
        print(f"{'what':58} {'pic/cpu-s':>10} {'pic/s wall':>11} {'ratio (cpu)':>12}")
        for build in (nsfw_sides, faces_sides, text_sides):
            stage, bare, _version = build(paths)
            cpu, wall = timed(lambda stage=stage: [stage(t) for t in tables], args.rounds)
            print(f"{stage.name:58} {n / cpu:10.1f} {n / wall:11.1f}")
            for label, run in bare.items():
                bare_cpu, bare_wall = timed(run, args.rounds)
                print(f"  {label:56} {n / bare_cpu:10.1f} {n / bare_wall:11.1f} {bare_cpu / cpu:12.2f}")


if __name__ == "__main__":
    main()
