"""``interleaved_nodes_v1``: image parts that are no content (logos, icons, banners) leave the document; it stays.

Node-level rules, in order, for each image part of an interleaved document (the first that fails
names the reason):

1. ``url_pattern``: the image's URL (or file path) contains one of ``url_substrings``, case
   folded [logo, icon, button, plugin, widget, avatar, banner, sprite, pixel, badge]. OBELICS removes
   images whose URL has logo, button, icon, plugin or widget (its ``URL_BAN_WORDS``, which also
   lists porn, xxx and sex: a block list's job here, ``web_blocklist_v1``); the last five are
   fusionforge's, common names of avatars, tracking pixels and site chrome;
2. ``alt_pattern``: the alt text contains one of ``alt_substrings`` [logo, icon, avatar, button], and
   ``no_alt``: an image without alt text when ``require_alt`` [False] (a rule of fusionforge's own);
3. ``format``: a media format outside ``formats`` [jpeg, png, webp: OBELICS' valid formats];
4. ``too_small``: shorter side < ``min_side`` [150 px], which takes most icon- and logo-sized images
   out; ``too_large``: longer side > ``max_side`` [20,000];
5. ``aspect_ratio``: long / short side > ``max_aspect_ratio`` [2].

The formats, sizes and aspect ratio are OBELICS' ``config_filter_web_documents.yaml`` (``valid_formats``,
``original_width/height_min/max_cutoff``, ``aspect_ratio_max_cutoff``).

Size rules judge the media item's ``width`` / ``height`` as ingest recorded them (an image of unknown
size passes them); an ``image_url`` part (no bytes) is judged by its URL and alt text only. A failing
image part is removed from the segments (its media item too, when no other part shows it), the
``content_hash`` follows and ``meta.images`` notes ``removed`` on its entry; the document is dropped
only when nothing is left (``empty_document``). Scores: ``removed_<rule>`` per rule, ``removed`` (all)
and ``images`` (the image parts kept), so the node counts are in every row and in ``report.json``.
Every list and limit can be turned off with None.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.filters.interleaved.parts import ImageNode, has_content, image_nodes, load_meta, without_parts
from fusionforge.filters.rules import check_limits
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.bounds import Bound
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, ScoringStage, set_column

ASPECT_RATIO = Bound(integer=False, min=1)
NODE_RULES = ("url_pattern", "alt_pattern", "no_alt", "format", "too_small", "too_large", "aspect_ratio")
URL_SUBSTRINGS = ("logo", "icon", "button", "plugin", "widget", "avatar", "banner", "sprite", "pixel", "badge")
ALT_SUBSTRINGS = ("logo", "icon", "avatar", "button")
FORMATS = ("jpeg", "png", "webp")


@register
class InterleavedNodes(ScoringStage):
    """``interleaved_nodes_v1``: removes image parts that fail a node rule (see the module docstring)."""

    name: ClassVar[str] = "interleaved_nodes_v1"
    resources: ClassVar[Resources] = Resources(batch_size=512)

    def __init__(
        self,
        url_substrings: Sequence[str] | None = URL_SUBSTRINGS,
        alt_substrings: Sequence[str] | None = ALT_SUBSTRINGS,
        require_alt: bool = False,
        formats: Sequence[str] | None = FORMATS,
        min_side: int | None = 150,
        max_side: int | None = 20_000,
        max_aspect_ratio: float | None = 2.0,
    ) -> None:
        check_limits(self.name, {"min_side": min_side, "max_side": max_side})
        ASPECT_RATIO.require(f"{self.name}: max_aspect_ratio", max_aspect_ratio, ValueError)
        self.url_substrings = tuple(s.casefold() for s in url_substrings or ())
        self.alt_substrings = tuple(s.casefold() for s in alt_substrings or ())
        self.require_alt = require_alt
        self.formats = None if formats is None else frozenset(f.lower() for f in formats)
        self.min_side, self.max_side, self.max_aspect_ratio = min_side, max_side, max_aspect_ratio
        self._rewritten: dict[str, tuple[list[dict], list[dict], dict[str, Any]]] = {}

    def applies(self, batch: pa.Table) -> pa.Array:
        return pc.equal(batch.column(S.MODALITY), S.Modality.INTERLEAVED.value)

    def node_reason(self, node: ImageNode) -> str | None:
        """The first node rule this image part fails, or None."""
        url, alt = (node.url or "").casefold(), (node.alt or "").casefold()
        if any(s in url for s in self.url_substrings):
            return "url_pattern"
        if alt and any(s in alt for s in self.alt_substrings):
            return "alt_pattern"
        if self.require_alt and not alt.strip():
            return "no_alt"
        if node.media_index is None:
            return None
        if self.formats is not None and node.format and node.format.lower() not in self.formats:
            return "format"
        if not node.width or not node.height:
            return None
        short, long = min(node.width, node.height), max(node.width, node.height)
        if self.min_side is not None and short < self.min_side:
            return "too_small"
        if self.max_side is not None and long > self.max_side:
            return "too_large"
        if self.max_aspect_ratio is not None and long / short > self.max_aspect_ratio:
            return "aspect_ratio"
        return None

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        self._rewritten = {}
        counts = {rule: np.zeros(batch.num_rows, np.int64) for rule in NODE_RULES}
        kept_images = np.zeros(batch.num_rows, np.int64)
        empty = np.zeros(batch.num_rows, bool)
        columns = zip(
            batch.column(S.ID).to_pylist(),
            batch.column(S.SEGMENTS).to_pylist(),
            batch.column(S.MEDIA).to_pylist(),
            batch.column(S.META).to_pylist(),
        )
        for row, (rid, segments, media, meta_json) in enumerate(columns):
            meta = load_meta(meta_json)
            nodes = image_nodes(segments, media, meta)
            failed = {node.position: reason for node in nodes if (reason := self.node_reason(node))}
            for reason in failed.values():
                counts[reason][row] += 1
            kept_images[row] = len(nodes) - len(failed)
            if not failed:
                continue
            new_segments, new_media, remap = without_parts(segments or [], media or [], set(failed))
            empty[row] = not has_content(new_segments)
            self._rewritten[rid] = (new_segments, new_media, _noted_meta(meta, nodes, failed, remap))
        scores = {f"removed_{rule}": pa.array(counts[rule], pa.int64()) for rule in NODE_RULES}
        scores["removed"] = pa.array(sum(counts.values()), pa.int64())
        scores["images"] = pa.array(kept_images, pa.int64())
        scores["empty"] = pa.array(empty, pa.bool_())
        return scores

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        return ["empty_document" if flag else None for flag in scores["empty"].to_pylist()]

    def __call__(self, batch: pa.Table) -> pa.Table:
        self._rewritten = {}
        out = super().__call__(batch)
        return self._rewrite(out) if self._rewritten else out

    def _rewrite(self, batch: pa.Table) -> pa.Table:
        """Documents still kept get their parts without the removed images, and a content hash to match."""
        columns = {c: batch.column(c).to_pylist() for c in (S.SEGMENTS, S.MEDIA, S.META, S.CONTENT_HASH)}
        columns[S.VISION_TOKENS] = batch.column(S.VISION_TOKENS).to_pylist()
        alive = pc.and_(batch.column(S.DROP_REASON).is_null(), batch.column(S.ERROR).is_null()).to_pylist()
        ids, texts, modalities = (batch.column(c).to_pylist() for c in (S.ID, S.TEXT, S.MODALITY))
        for row, rid in enumerate(ids):
            if not alive[row] or rid not in self._rewritten:
                continue
            segments, media, meta = self._rewritten[rid]
            columns[S.SEGMENTS][row], columns[S.MEDIA][row] = segments, media
            columns[S.META][row] = json.dumps(meta, ensure_ascii=False)
            hashes = [m.get("sha256") for m in media]
            columns[S.CONTENT_HASH][row] = S.content_hash(modalities[row], texts[row], hashes, segments)
            columns[S.VISION_TOKENS][row] = None  # counted again by whoever needs it
        for name, values in columns.items():
            batch = set_column(batch, name, pa.array(values, S.RECORD_SCHEMA.field(name).type))
        return batch


def _noted_meta(
    meta: dict[str, Any], nodes: list[ImageNode], failed: dict[int, str], remap: dict[int, int]
) -> dict[str, Any]:
    """``meta`` with ``removed`` on the entries of removed images and media indices renumbered."""
    images = meta.get("images")
    if not isinstance(images, list):
        return {**meta, "removed_images": len(failed)}
    removed_index = {
        n.media_index: failed[n.position] for n in nodes if n.position in failed and n.media_index is not None
    }
    removed_url = {n.url: failed[n.position] for n in nodes if n.position in failed and n.media_index is None}
    noted = []
    for image in images:
        image = dict(image)
        index = image.get("media_index")
        reason = removed_index.get(index) if index is not None else removed_url.get(image.get("url"))
        if reason is not None:
            image["removed"] = reason
        image["media_index"] = remap.get(index) if index is not None else None
        noted.append(image)
    return {**meta, "images": noted, "removed_images": len(failed)}
