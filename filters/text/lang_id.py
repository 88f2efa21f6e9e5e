"""Language identification: a fastText model the user gives (lid.176 or GlotLID), else py3langid.

``model_path`` names a local fastText language-ID model: lid.176 (labels like ``en``) or GlotLID
(labels like ``eng_Latn``); labels are stored as the model spells them, without ``__label__``. Without
a model, the fallback is py3langid, whose model (97 languages, ISO 639-1 codes) ships inside its PyPI
package, so it works offline. Every scored record stores ``lang``, ``score`` (the detector's
probability) and ``detector`` (which one produced ``lang``, e.g. ``py3langid-0.4.0`` or
``fasttext:lid.176.bin``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from fusionforge.filters.rules import first_failing
from fusionforge.filters.text.base import DEFAULT_MODALITIES, TextFilter, texts_of
from fusionforge.filters.text.fasttext_model import load_fasttext, predict_batch
from fusionforge.pipelines.core.errors import ConfigError, MissingDependency
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources


class FastTextDetector:
    """A fastText language-ID model from a local file."""

    def __init__(self, path: str, max_chars: int) -> None:
        self.model = load_fasttext(path)
        self.max_chars = max_chars
        self.name = f"fasttext:{Path(path).name}"

    def detect(self, texts: list[str]) -> tuple[list[str | None], list[float | None]]:
        labels, probs = predict_batch(self.model, texts, k=1, max_chars=self.max_chars)
        return [row[0] if row else None for row in labels], [float(p[0]) if len(p) else None for p in probs]


class Py3LangidDetector:
    """py3langid's bundled naive-Bayes model, with normalised probabilities."""

    def __init__(self, max_chars: int) -> None:
        try:
            import py3langid
            from py3langid.langid import MODEL_FILE, LanguageIdentifier
        except ImportError as exc:
            raise MissingDependency("py3langid", "lang") from exc
        self.identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        self.max_chars = max_chars
        self.name = f"py3langid-{py3langid.__version__}"

    def detect(self, texts: list[str]) -> tuple[list[str | None], list[float | None]]:
        langs: list[str | None] = []
        scores: list[float | None] = []
        for text in texts:
            lang, prob = self.identifier.classify(text[: self.max_chars])
            langs.append(lang)
            scores.append(float(prob))
        return langs, scores


@register
class LanguageId(TextFilter):
    """``text_lang_id_v1``: detect each record's language; optionally keep only ``languages``."""

    name: ClassVar[str] = "text_lang_id_v1"
    resources: ClassVar[Resources] = Resources(batch_size=1024)
    stateful: ClassVar[bool] = True

    def __init__(
        self,
        model_path: str | None = None,
        languages: Sequence[str] | None = None,
        min_score: float | None = None,
        max_chars: int = 2000,
        modalities: Sequence[str] = DEFAULT_MODALITIES,
    ) -> None:
        super().__init__(modalities)
        self.keep_languages = frozenset(languages) if languages else None
        self.min_score = min_score
        self.detector = FastTextDetector(model_path, max_chars) if model_path else Py3LangidDetector(max_chars)

    @classmethod
    def check(cls, model_path: str | None = None, **_: object) -> None:
        """Cheap checks before a run (building the stage loads the model)."""
        if model_path and not Path(model_path).is_file():
            raise ConfigError(f"{cls.name}: language-ID model {model_path} does not exist")

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        texts = texts_of(batch).to_pylist()
        present = [i for i, text in enumerate(texts) if text.strip()]
        langs: list[str | None] = [None] * len(texts)
        scores: list[float | None] = [None] * len(texts)
        found_langs, found_scores = self.detector.detect([texts[i] for i in present])
        for i, lang, score in zip(present, found_langs, found_scores):
            langs[i], scores[i] = lang, score
        return {
            "lang": pa.array(langs, pa.string()),
            "score": pa.array(scores, pa.float64()),
            "detector": pa.array([self.detector.name] * len(texts), pa.string()),
        }

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        langs = scores["lang"].to_pylist()
        values = [s if s is not None else 0.0 for s in scores["score"].to_pylist()]
        keep = self.keep_languages
        return first_failing(
            len(langs),
            [
                ("undetermined_language", [keep is not None and lang is None for lang in langs]),
                ("other_language", [keep is not None and lang not in keep for lang in langs]),
                ("low_confidence", [self.min_score is not None and v < self.min_score for v in values]),
            ],
        )
