"""A fastText classifier as a filter: DCLM-style quality scores (or any supervised fastText model).

The model is loaded from a local path once per Ray actor and predicts a whole batch in one call.
Stored per record: ``label`` (the top label) and ``score`` (the probability of ``label`` when one is
named, e.g. ``hq``; else of the top label). Records are kept by a fixed ``threshold`` on ``score`` or
by ``top_fraction`` (DCLM kept the top 10%), see ``filters/policy.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa

from fusionforge.filters.policy import ScorePolicy, check_policy
from fusionforge.filters.text.base import DEFAULT_MODALITIES, LANG_COLUMN, TextFilter, texts_of
from fusionforge.filters.text.fasttext_model import LABEL_PREFIX, label_probability, load_fasttext, predict_batch
from fusionforge.pipelines.core.bounds import FRACTION
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources


@register
class FastTextScore(ScorePolicy, TextFilter):
    """``text_fasttext_v1``: score records with a supervised fastText model from ``model_path``."""

    name: ClassVar[str] = "text_fasttext_v1"
    resources: ClassVar[Resources] = Resources(batch_size=1024)
    stateful: ClassVar[bool] = True
    scores = FRACTION  # the model's probability of the label

    def __init__(
        self,
        model_path: str,
        label: str | None = None,
        threshold: float | None = None,
        top_fraction: float | None = None,
        max_chars: int = 100_000,
        modalities: Sequence[str] = DEFAULT_MODALITIES,
        languages: Sequence[str] | None = None,
        lang_column: str = LANG_COLUMN,
        resolved_threshold: float | None = None,
        reuse_scores: bool = False,
    ) -> None:
        super().__init__(modalities, languages, lang_column)
        self.init_policy(threshold, top_fraction, resolved_threshold, reuse_scores)
        self.model_path = model_path
        self.label = label.removeprefix(LABEL_PREFIX) if label else None
        self.max_chars = max_chars
        self.model = None if reuse_scores else load_fasttext(model_path)
        if self.model is not None and self.label is not None:
            known = [name.removeprefix(LABEL_PREFIX) for name in self.model.get_labels()]
            if self.label not in known:
                raise ValueError(f"{self.name}: label {self.label!r} is not one of the model's labels {known}")

    @classmethod
    def check(
        cls, model_path: str, threshold: float | None = None, top_fraction: float | None = None, **_: object
    ) -> None:
        """Cheap checks before a run (building the stage loads the model)."""
        check_policy(cls.name, threshold, top_fraction, cls.scores)
        if not Path(model_path).is_file():
            raise ConfigError(f"{cls.name}: fastText model {model_path} does not exist")

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        if self.reuse_scores:
            return self.stored_scores(batch)
        texts = texts_of(batch).to_pylist()
        labels, probs = predict_batch(self.model, texts, k=-1 if self.label else 1, max_chars=self.max_chars)
        top = [row[0] if row else None for row in labels]
        if self.label:
            values = label_probability(labels, probs, self.label)
        else:
            values = np.array([float(p[0]) if len(p) else np.nan for p in probs])
        return {"label": pa.array(top, pa.string()), "score": pa.array(values, pa.float64())}

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        return self.policy_reasons(scores["score"].to_numpy(zero_copy_only=False))
