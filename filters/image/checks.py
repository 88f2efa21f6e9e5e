"""Image checks: decode validity, side lengths, aspect ratio, byte size, pixel count.

Size facts come from the media entries (filled at ingest) and are aggregated per record with Arrow
and numpy over the whole batch; a record with several images (an interleaved document) is judged by
its worst image. With ``decode`` on, every image is decoded again (bounded by ``max_pixels``, the
decompression-bomb guard, checked from the header before any pixel is decoded), so a file damaged
after ingest, or an input that skipped ingest checks, is caught.

Reasons, in order: ``undecodable_image`` (or the decoder's own code, e.g. ``decompression_bomb``),
``too_many_pixels``, ``too_small`` (shorter side < ``min_side``), ``too_large`` (longer side >
``max_side``), ``aspect_ratio`` (long / short side > ``max_aspect_ratio``), ``too_few_bytes``,
``too_many_bytes``. Defaults: min_side 64, max_aspect_ratio 3.0 (DataComp's basic filter uses 200 and
3.0 on web pools), max_bytes 50 MB, max_pixels = Pillow's limit; max_side and min_bytes off.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.filters.media import item_bytes, items_of_kind
from fusionforge.filters.rules import below, check_limits, exceeds, first_failing
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.bounds import Bound
from fusionforge.pipelines.core.errors import BadMedia
from fusionforge.pipelines.core.images import DEFAULT_MAX_PIXELS, inspect_image
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, ScoringStage

ASPECT_RATIO = Bound(integer=False, min=1)  # long side / short side
FACTS = ("images", "min_side", "max_side", "max_aspect_ratio", "max_pixels", "min_bytes", "max_bytes")


def image_facts(media: pa.Array) -> dict[str, np.ndarray]:
    """Per record: image count and the worst side, aspect ratio, pixel count and byte size of its images."""
    media = media.combine_chunks() if isinstance(media, pa.ChunkedArray) else media
    n = len(media)
    flat = pc.list_flatten(media)
    records = pc.list_parent_indices(media).to_numpy(zero_copy_only=False)
    is_image = pc.fill_null(pc.equal(pc.struct_field(flat, "kind"), "image"), False).to_numpy(zero_copy_only=False)
    records = records[is_image]

    def field(name: str) -> np.ndarray:
        values = pc.struct_field(flat, name).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=np.float64)[is_image]

    width, height, size = field("width"), field("height"), field("size")
    short, long = np.fmin(width, height), np.fmax(width, height)
    with np.errstate(divide="ignore", invalid="ignore"):
        aspect = np.where(short > 0, long / short, np.inf)
    return {
        "images": np.bincount(records, minlength=n).astype(np.int64),
        "min_side": _reduce(np.fmin, records, short, n),
        "max_side": _reduce(np.fmax, records, long, n),
        "max_aspect_ratio": _reduce(np.fmax, records, aspect, n),
        "max_pixels": _reduce(np.fmax, records, width * height, n),
        "min_bytes": _reduce(np.fmin, records, size, n),
        "max_bytes": _reduce(np.fmax, records, size, n),
    }


def _reduce(op: np.ufunc, records: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    op.at(out, records, values)
    return out


def decode_problem(items: list[dict], max_pixels: int) -> tuple[str | None, str | None]:
    """(drop reason, error) after decoding each image: a bad image is a reason, unreadable bytes an error."""
    for item in items:
        try:
            inspect_image(item_bytes(item), max_pixels)
        except BadMedia as exc:
            return exc.reason, None
        except OSError as exc:
            return None, f"unreadable_media: {exc}"
    return None, None


@register
class ImageChecks(ScoringStage):
    """``image_checks_v1``: decode, size, aspect-ratio and byte checks (see the module docstring)."""

    name: ClassVar[str] = "image_checks_v1"
    resources: ClassVar[Resources] = Resources(batch_size=256)

    def __init__(
        self,
        min_side: int | None = 64,
        max_side: int | None = None,
        max_aspect_ratio: float | None = 3.0,
        min_bytes: int | None = None,
        max_bytes: int | None = 50 * 1024**2,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        decode: bool = True,
    ) -> None:
        ASPECT_RATIO.require(f"{self.name}: max_aspect_ratio", max_aspect_ratio, ValueError)
        self.limits = {
            "min_side": min_side,
            "max_side": max_side,
            "max_aspect_ratio": max_aspect_ratio,
            "min_bytes": min_bytes,
            "max_bytes": max_bytes,
        }
        check_limits(self.name, self.limits)
        self.max_pixels = max_pixels
        self.decode = decode

    def applies(self, batch: pa.Table) -> pa.Array:
        kinds = pc.list_flatten(batch.column(S.MEDIA).combine_chunks())
        parents = pc.list_parent_indices(batch.column(S.MEDIA).combine_chunks()).to_numpy(zero_copy_only=False)
        is_image = pc.fill_null(pc.equal(pc.struct_field(kinds, "kind"), "image"), False).to_numpy(zero_copy_only=False)
        return pa.array(np.bincount(parents[is_image], minlength=batch.num_rows) > 0)

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        facts = image_facts(batch.column(S.MEDIA))
        scores: dict[str, pa.Array] = {k: pa.array(v, pa.float64(), mask=np.isnan(v)) for k, v in facts.items()}
        scores["images"] = pa.array(facts["images"], pa.int64())
        bad: list[str | None] = [None] * batch.num_rows
        errors: list[str | None] = [None] * batch.num_rows
        if self.decode:
            for row, media in enumerate(batch.column(S.MEDIA).to_pylist()):
                bad[row], errors[row] = decode_problem(items_of_kind(media, "image"), self.max_pixels)
        scores["bad_image"] = pa.array(bad, pa.string())
        scores["error"] = pa.array(errors, pa.string())
        return scores

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        s = {k: scores[k].to_numpy(zero_copy_only=False).astype(np.float64) for k in FACTS}
        bad = scores["bad_image"].to_pylist()
        lim = self.limits
        reasons = first_failing(
            len(bad),
            [
                ("too_many_pixels", exceeds(s["max_pixels"], self.max_pixels)),
                ("too_small", below(s["min_side"], lim["min_side"])),
                ("too_large", exceeds(s["max_side"], lim["max_side"])),
                ("aspect_ratio", exceeds(s["max_aspect_ratio"], lim["max_aspect_ratio"])),
                ("too_few_bytes", below(s["min_bytes"], lim["min_bytes"])),
                ("too_many_bytes", exceeds(s["max_bytes"], lim["max_bytes"])),
            ],
        )
        return [b or r for b, r in zip(bad, reasons)]
