"""``pack --materialize --energon``: the materialized shards as a Megatron-Energon dataset.

Energon's own preparation code (``BaseWebdatasetFactory.prepare_dataset``, what ``energon prepare``
runs) indexes ``packed/*.tar`` and writes ``packed/.nv-meta/``: ``.info.json`` (samples per shard),
``index.sqlite``, ``index.uuid``, a ``.tar.idx`` beside each shard and ``split.yaml`` (every shard in
``train``; ``val`` and ``test`` empty: the plan is one training stream, validation is another pack).
``energon prepare`` writes a ``dataset.yaml`` only for energon's own sample types, so ours is written
here in the form energon documents for a custom one: ``sample_type`` (``PackedSequenceSample``,
defined with its loader beside the training loader in ``fusionforge.mixers.training.energon``),
``sample_loader.py`` next to it, and ``decoder: null``: the media stay encoded bytes, since the
model's processors resize them to the size the plan recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fusionforge.pipelines.core.errors import MissingDependency

META = ".nv-meta"
SAMPLE_MODULE = "fusionforge.mixers.training.energon"  # named, not imported: it sits in a layer above this one
SAMPLE_LOADER = f'''"""Written by fusionforge pack --energon: the loader of {SAMPLE_MODULE}.PackedSequenceSample."""

from {SAMPLE_MODULE} import part_filter, sample_loader  # noqa: F401
'''


def check_energon() -> None:
    """Fail before any work when megatron-energon (the ``energon`` extra) is not installed."""
    try:
        import megatron.energon  # noqa: F401
    except ImportError as exc:
        raise MissingDependency("megatron.energon", "energon", "pack --energon") from exc


def prepare_energon(packed: Path, workers: int = 2) -> dict[str, Any]:
    """Write ``packed/.nv-meta`` for the shards in ``packed`` (a pack output's ``packed/`` folder); return a summary."""
    check_energon()
    from megatron.energon.flavors.webdataset.base_webdataset import BaseWebdatasetFactory

    shards = sorted(p.name for p in packed.glob("packed-*.tar"))
    BaseWebdatasetFactory.prepare_dataset(
        packed,
        shards,
        # regexes, brace-expanded (so no backslashes); val and test stay empty: `energon lint` skips them
        split_parts_patterns=[("train", "packed-[0-9]+[.]tar$"), ("val", "^$"), ("test", "^$")],
        workers=max(1, min(workers, len(shards))),
    )
    definition = {
        "sample_type": {"__module__": SAMPLE_MODULE, "__class__": "PackedSequenceSample"},
        "sample_loader": "sample_loader.py:sample_loader",
        "part_filter": "sample_loader.py:part_filter",
        "decoder": None,
    }
    (packed / META / "sample_loader.py").write_text(SAMPLE_LOADER, encoding="utf-8")
    (packed / META / "dataset.yaml").write_text(yaml.safe_dump(definition, sort_keys=False), encoding="utf-8")
    return {"folder": f"{packed.name}/", "shards": len(shards), "sample_type": f"{SAMPLE_MODULE}.PackedSequenceSample"}
