"""Training a supervised fastText classifier (a DCLM-style quality model, or a language-ID model).

Labelled JSONL in, a ``.bin`` model out, with a held-out split to report precision and recall. The
training runs in a fresh child process with a timeout (see ``_train_in_child`` for why).
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusionforge.filters.text.fasttext_model import LABEL_PREFIX, one_line
from fusionforge.pipelines.core.bounds import (
    COUNT,
    NON_NEGATIVE_INT,
    POSITIVE,
    PROPER_FRACTION,
    SEED,
    check_bounds,
    within,
)
from fusionforge.pipelines.core.errors import ConfigError, FusionforgeError, MissingDependency, RunError
from fusionforge.pipelines.core.io import atomic_path, open_text

LOSSES = ("softmax", "ova", "hs", "ns")  # fastText's losses


@dataclass(frozen=True)
class TrainConfig:
    """``fusionforge filters train-fasttext``: labelled JSONL in, a supervised fastText model out.

    Each input is ``PATH`` (every row has ``label_field``: a label or a list of labels) or
    ``LABEL=PATH`` (every row of PATH gets LABEL, e.g. ``hq=wiki.jsonl lq=crawl.jsonl`` for a DCLM-style
    quality classifier). The defaults make a small model: ``bucket`` 200k (fastText's 2M default gives
    a 256 MB file), 64 dimensions, word bigrams; ``quantize`` shrinks it further (a .ftz-style model).
    """

    inputs: tuple[str, ...]
    output: str
    text_field: str = "text"
    label_field: str = "label"
    dim: int = within(COUNT, 64)
    epoch: int = within(COUNT, 10)
    lr: float = within(POSITIVE, 0.1)
    word_ngrams: int = within(COUNT, 2)
    min_count: int = within(COUNT, 1)
    bucket: int = within(NON_NEGATIVE_INT, 200_000)  # 0: no n-gram buckets (with word_ngrams 1)
    loss: str = "softmax"
    threads: int = within(COUNT, 1)
    valid_fraction: float = within(PROPER_FRACTION, 0.1)
    seed: int = within(SEED, 0)
    quantize: bool = False
    max_chars: int = within(COUNT, 100_000)
    timeout_s: float = within(POSITIVE, 6 * 3600.0)

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("give at least one labelled JSONL file")
        check_bounds(self)
        if self.quantize and self.dim % 2:
            raise ConfigError("quantize needs an even dim (fastText's product quantiser splits vectors in pairs)")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be softmax, ova, hs or ns, got {self.loss!r}")
        missing = [path for _, path in self.sources() if not Path(path).is_file()]
        if missing:
            raise ConfigError(f"labelled input {missing[0]} does not exist")

    def sources(self) -> list[tuple[str, str]]:
        """(the label every row gets, or "" to read each row's ``label_field``; path) per input."""
        found = []
        for spec in self.inputs:
            fixed, sep, path = spec.partition("=")
            found.append(("", spec) if not sep or Path(spec).exists() else (fixed, path))
        return found


def labelled_rows(cfg: TrainConfig) -> Iterator[tuple[list[str], str] | None]:
    """(labels, text) per usable input row; None for a row without text or label (counted, skipped)."""
    for fixed, path in cfg.sources():
        with open_text(path) as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    yield None
                    continue
                labels = [fixed] if fixed else row.get(cfg.label_field) if isinstance(row, dict) else None
                labels = [labels] if isinstance(labels, (str, int)) else labels
                text = row.get(cfg.text_field) if isinstance(row, dict) else None
                if not labels or not isinstance(text, str) or not text.strip():
                    yield None
                    continue
                yield [str(label).strip().replace(" ", "_") for label in labels], text


def train_fasttext(cfg: TrainConfig) -> dict[str, Any]:
    """Write the training files, train in a child process, save atomically; return what was done and how well."""
    started = time.monotonic()
    rng = np.random.default_rng(cfg.seed)
    counts: dict[str, int] = {}
    skipped = n_train = n_valid = 0
    with tempfile.TemporaryDirectory(prefix="ff-fasttext-") as work:
        train_path, valid_path = Path(work) / "train.txt", Path(work) / "valid.txt"
        with open(train_path, "w", encoding="utf-8") as train, open(valid_path, "w", encoding="utf-8") as valid:
            for item in labelled_rows(cfg):
                if item is None:
                    skipped += 1
                    continue
                labels, text = item
                for label in labels:
                    counts[label] = counts.get(label, 0) + 1
                line = " ".join(LABEL_PREFIX + label for label in labels) + " " + one_line(text, cfg.max_chars) + "\n"
                held_out = rng.random() < cfg.valid_fraction
                (valid if held_out else train).write(line)
                n_valid += held_out
                n_train += not held_out
        if len(counts) < 2 or n_train == 0:
            raise RunError(f"need rows of at least two labels to train a classifier; found {counts or 'none'}")
        with atomic_path(cfg.output) as tmp:
            report = _train_in_child(cfg, train_path, valid_path if n_valid else None, tmp)
    report["valid_rows"] = n_valid
    return {
        "output": cfg.output,
        "bytes": Path(cfg.output).stat().st_size,
        "train_rows": n_train,
        "skipped_rows": skipped,
        "labels": dict(sorted(counts.items())),
        "quantized": cfg.quantize,
        "seconds": round(time.monotonic() - started, 3),
        **report,
    }


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def _train_in_child(cfg: TrainConfig, train_path: Path, valid_path: Path | None, output: Path) -> dict[str, Any]:
    """Train in a fresh Python process (this module run as a script), with a timeout.

    fastText 0.9.x reads memory it never initialised while training (a freed buffer holding NaNs in
    this process makes the next training diverge; measured), so a model trained in a long-lived
    process depends on what that process did before. A fresh process starts from zeroed pages:
    the same data and seed give the same model every time. A subprocess (not multiprocessing's
    spawn) also works when the caller's ``__main__`` is stdin or a notebook.
    """
    job = {
        "config": dataclasses.asdict(cfg),
        "train": str(train_path),
        "valid": str(valid_path) if valid_path else None,
        "output": str(output),
    }
    args = [sys.executable, "-m", "fusionforge.filters.text.fasttext_train", json.dumps(job)]
    try:
        done = subprocess.run(args, capture_output=True, timeout=cfg.timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise RunError(
            f"fastText training took longer than {cfg.timeout_s:.0f} s; raise the timeout or train on a sample"
        ) from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise RunError(message[-1] if message else f"the fastText training process exited with {done.returncode}")
    return json.loads(done.stdout)


def _fit(job: dict[str, Any]) -> dict[str, Any]:
    """The child's work: train, quantise, evaluate, save; raises ``RunError`` with the fix."""
    try:
        import fasttext
    except ImportError as exc:
        raise MissingDependency("fasttext", "dev") from exc
    cfg = TrainConfig(**{**job["config"], "inputs": tuple(job["config"]["inputs"])})
    try:
        model = fasttext.train_supervised(
            input=job["train"],
            dim=cfg.dim,
            epoch=cfg.epoch,
            lr=cfg.lr,
            wordNgrams=cfg.word_ngrams,
            minCount=cfg.min_count,
            bucket=cfg.bucket,
            loss=cfg.loss,
            thread=cfg.threads,
            seed=cfg.seed,
            verbose=0,
        )
        if cfg.quantize:
            model.quantize(input=job["train"], qnorm=True, retrain=True, thread=cfg.threads)
    except RuntimeError as exc:  # fastText's "Encountered NaN": the training diverged
        raise RunError(f"fastText training failed ({exc}); lower --lr or --epoch, or give more data") from exc
    report: dict[str, Any] = {}
    if job["valid"]:
        _, precision, recall = model.test(job["valid"])
        report.update(
            precision_at_1=_finite(precision),
            recall_at_1=_finite(recall),
            per_label={
                k.removeprefix(LABEL_PREFIX): {m: _finite(v) for m, v in scores.items()}
                for k, scores in sorted(model.test_label(job["valid"]).items())
            },
        )
    model.save_model(job["output"])
    return report


if __name__ == "__main__":
    try:
        print(json.dumps(_fit(json.loads(sys.argv[1]))))
    except FusionforgeError as error:  # the parent raises it again as a RunError
        sys.exit(str(error))
