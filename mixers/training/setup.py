"""What every reader of one pack output shares: the checked tokenizer, the preset and the model's placeholders.

``PackedDataset`` and the Megatron-Energon task encoder (``energon``) both start here, so a sample
is built the same way whichever loader reads it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from fusionforge.mixers.packing.materialize import Encoder
from fusionforge.mixers.tokens.vision import Preset, get_preset
from fusionforge.mixers.training.builder import SampleBuilder
from fusionforge.mixers.training.packed import PackedRun
from fusionforge.pipelines.core.errors import ConfigError

PLACEHOLDER_TOKENS = {  # what the transformers models look for (Kimi K2.5 tells videos apart from images)
    "qwen2-vl": ("<|image_pad|>", "<|video_pad|>"),
    "custom": ("<|image_pad|>", "<|video_pad|>"),
    "kimi-k25": ("<|media_pad|>", "<|kimi_k25_video_placeholder|>"),
}


@dataclass(frozen=True)
class LoaderSetup:
    """A pack output opened for training: its run, tokenizer (checked), preset, placeholders and masked sources."""

    run: PackedRun
    tokenizer: str
    preset: Preset
    placeholders: tuple[str, str]
    masked_sources: frozenset[str]

    @classmethod
    def open(
        cls,
        packed: str | Path,
        tokenizer: str | Path | None = None,
        masked_sources: Collection[str] = (),
        image_token: str | None = None,
        video_token: str | None = None,
    ) -> LoaderSetup:
        """Refuse another tokenizer than pack's and a preset the loader does not support, before any work."""
        run = PackedRun.open(packed)
        checked = run.check_tokenizer(tokenizer)
        preset = get_preset(run.config.vision_preset, **dict(run.config.preset_overrides))
        if preset.name not in PLACEHOLDER_TOKENS and preset.family not in PLACEHOLDER_TOKENS:
            raise ConfigError(f"the training loader does not support preset {preset.name!r}")
        defaults = PLACEHOLDER_TOKENS.get(preset.name) or PLACEHOLDER_TOKENS[preset.family]
        placeholders = (image_token or defaults[0], video_token or defaults[1])
        return cls(run, checked, preset, placeholders, frozenset(masked_sources))

    def encoder(self) -> Encoder:
        """The pack's token encoder with the checked tokenizer (loads the tokenizer: call it where it is used)."""
        return Encoder(dataclasses.replace(self.run.config, tokenizer=self.tokenizer))

    def builder(self, encoder: Encoder) -> SampleBuilder:
        """The sample builder, with the placeholders' ids from ``encoder``'s tokenizer."""
        ids = tuple(encoder.counter.token_id(t) for t in self.placeholders)
        missing = [t for t, i in zip(self.placeholders, ids) if i is None]
        if missing:
            raise ConfigError(
                f"the tokenizer has no {missing} token(s), the model's vision placeholders; "
                "use the model's own tokenizer or pass image_token= / video_token="
            )
        return SampleBuilder(self.preset, (ids[0], ids[1]), self.masked_sources)
