"""Shard-writing throughput: ``fusionforge shard`` versus ``webdataset.ShardWriter`` on the same samples.

The reference is what a user would write by hand: read each image and caption, hand them to
``ShardWriter``. fusionforge does more per sample (it decodes every image to catch corrupt files,
hashes it, writes the manifest and the ledger), so the ratio says what that safety costs.

    python bench/shard_throughput.py --images 10000 --size 256
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from fusionforge.pipelines.core.settings import RunSettings


def make_images(folder: Path, n: int, size: int, seed: int = 0) -> int:
    """``n`` JPEGs (smooth gradients plus noise, about 30-60 KB at 256 px) with .txt captions."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    y, x = np.mgrid[0:size, 0:size]
    for i in range(n):
        base = (np.sin(x / rng.uniform(5, 40)) + np.cos(y / rng.uniform(5, 40))) * 60 + 128
        pixels = np.stack([base + rng.normal(0, 12, base.shape) for _ in range(3)], axis=-1)
        buffer = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
        (folder / f"{i:06d}.jpg").write_bytes(buffer.getvalue())
        (folder / f"{i:06d}.txt").write_text(f"synthetic picture number {i}")
        total += len(buffer.getvalue())
    return total


def reference_webdataset(folder: Path, out: Path, per_shard: int) -> float:
    import webdataset as wds

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with wds.ShardWriter(str(out / "ref-%06d.tar"), maxcount=per_shard, verbose=0) as sink:
        for image in sorted(folder.glob("*.jpg")):
            sink.write(
                {
                    "__key__": image.stem,
                    "jpg": image.read_bytes(),
                    "txt": image.with_suffix(".txt").read_text(),
                    "json": json.dumps({"id": image.stem}),
                }
            )
    return time.perf_counter() - started


def fusionforge_shard(folder: Path, out: Path, per_shard: int, executor: str) -> float:
    from fusionforge.pipelines.shard import ShardConfig, run_shard

    started = time.perf_counter()
    run_shard(
        ShardConfig(
            inputs=(f"bench={folder}",),
            output=str(out),
            shard_count=per_shard,
            shard_size_mb=None,
            run=RunSettings(executor=executor),
            partition_mb=64,
        )
    )
    return time.perf_counter() - started


def shard_bytes(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*.tar"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--per-shard", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    work = Path(tempfile.mkdtemp(prefix="ff-bench-shard-"))
    try:
        media = make_images(work / "images", args.images, args.size)
        print(f"{args.images} JPEGs of {args.size}px, {media / 1e6:.1f} MB of media, {args.per_shard} per shard")
        rows = []
        ref_s = reference_webdataset(work / "images", work / "ref", args.per_shard)
        ref_mb = shard_bytes(work / "ref") / 1e6
        rows.append(("webdataset.ShardWriter (reference)", ref_s, ref_mb))
        for executor in ("local", "ray"):
            from fusionforge.pipelines.core.ray_env import init_ray

            if executor == "ray":
                started = time.perf_counter()
                init_ray()
                print(f"(ray start-up, not counted below: {time.perf_counter() - started:.1f} s)")
            seconds = fusionforge_shard(work / "images", work / f"ff-{executor}", args.per_shard, executor)
            written = shard_bytes(work / f"ff-{executor}") / 1e6
            rows.append((f"fusionforge shard --executor {executor}", seconds, written))
        media_mb = media / 1e6
        print(
            f"\n{'writer':42} {'seconds':>8} {'MB out':>8} {'out MB/s':>9} {'ratio':>6} {'media MB/s':>11} {'ratio':>6}"
        )
        ref_rate, ref_media_rate = ref_mb / ref_s, media_mb / ref_s
        for name, seconds, mb in rows:
            rate, media_rate = mb / seconds, media_mb / seconds
            print(
                f"{name:42} {seconds:8.2f} {mb:8.1f} {rate:9.1f} {rate / ref_rate:6.2f} {media_rate:11.1f} "
                f"{media_rate / ref_media_rate:6.2f}"
            )
        print("\nout MB/s = bytes each writer wrote / its seconds (the tar layouts differ in size);")
        print(
            f"media MB/s = the same {media_mb:.1f} MB of input media / its seconds: that ratio compares like with "
            "like (= the ratio of times)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
