"""Words as datatrove splits English text: the tokens of spaCy's blank English tokenizer, whitespace dropped.

datatrove (``utils/word_tokenizers.py: SpaCyTokenizer``) runs ``spacy.blank("en")`` plus a sentencizer
on every document and keeps every token whose text is not blank, punctuation tokens included
("end." is the two words "end" and "."). spaCy cuts a text at whitespace first and tokenises each
whitespace-free chunk on its own (prefixes, suffixes, infixes, special cases), so the tokens of a
text are the tokens of its chunks in order, with one exception: special cases made of several
affix tokens ("(:") are matched over the whole text, across spaces too, and a match across two
chunks, never applied, can block one inside a chunk next to it (``_learn_special_edges``).

Here each distinct chunk is tokenised once per process and its token ids are remembered (up to
``CACHE_LIMIT`` chunks, then the memory starts again): simple chunks (words, numbers, hyphenated
words, up to two marks each side: ``simple_tokens``) by rule, the others by spaCy, the misses of a batch
in one call. A document is its chunks' token ids concatenated, except the lines whose chunks could
meet in a special case, which spaCy tokenises as they stand; every count is a numpy reduction over
the batch. spaCy, the slow part (tens of microseconds per distinct chunk), is skipped for every
chunk seen before. spaCy is imported on first use; without it the stage raises ``MissingDependency``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from fusionforge.pipelines.core.errors import MissingDependency

# datatrove.utils.text.PUNCTUATION_SET: its PUNCTUATION string (ASCII and CJK marks, C0/C1 controls
# other than tab, newline and carriage return... as listed there) and TERMINAL_PUNCTUATION below.
DATATROVE_PUNCTUATION = (
    "!/—”:％１〈&(、━\\【#%「」，】；+^]~“《„';’{|∶´[=-`*．（–？！：$～«〉,><》)?）。…@_.\"}►»"
    + "".join(map(chr, (x for a, b in ((0, 9), (11, 13), (13, 32), (127, 160)) for x in range(a, b))))
)
# datatrove.utils.text.TERMINAL_PUNCTUATION (Unicode sentence terminals), as code point ranges.
_TERMINAL_RANGES = (
    (33, 33), (46, 46), (63, 63), (1417, 1417), (1565, 1567), (1748, 1748), (1792, 1794), (2041, 2041),
    (2103, 2103), (2105, 2105), (2109, 2110), (2404, 2405), (4170, 4171), (4962, 4962), (4967, 4968),
    (5742, 5742), (5941, 5942), (6100, 6102), (6105, 6106), (6147, 6147), (6153, 6153), (6468, 6469),
    (6824, 6827), (7002, 7003), (7006, 7007), (7037, 7038), (7227, 7228), (7294, 7295), (8252, 8253),
    (8263, 8265), (11822, 11822), (11836, 11836), (11859, 11860), (12290, 12290), (42239, 42239),
    (42510, 42511), (42739, 42739), (42743, 42743), (43126, 43127), (43214, 43215), (43311, 43311),
    (43464, 43465), (43613, 43615), (43760, 43761), (44011, 44011), (65106, 65106), (65110, 65111),
    (65281, 65281), (65294, 65294), (65311, 65311), (65377, 65377), (68182, 68183), (69461, 69465),
    (69510, 69513), (69703, 69704), (69822, 69825), (69953, 69955), (70085, 70086), (70093, 70093),
    (70110, 70111), (70200, 70201), (70203, 70204), (70313, 70313), (70731, 70732), (71106, 71107),
    (71113, 71127), (71233, 71234), (71484, 71486), (72004, 72004), (72006, 72006), (72258, 72259),
    (72347, 72348), (72769, 72770), (73463, 73464), (73539, 73540), (92782, 92783), (92917, 92917),
    (92983, 92984), (92996, 92996), (93848, 93848), (113823, 113823), (121480, 121480),
)  # fmt: skip
DATATROVE_TERMINAL_PUNCTUATION = "".join(chr(c) for a, b in _TERMINAL_RANGES for c in range(a, b + 1))
PUNCTUATION_SET = frozenset(DATATROVE_PUNCTUATION) | frozenset(DATATROVE_TERMINAL_PUNCTUATION)
CACHE_LIMIT = 2_000_000  # distinct chunks remembered by the process
WHITESPACE_RUN = re.compile(r"(\s+)")  # str.isspace() characters, as spaCy splits on
SEPARATOR = " \x00 "  # a token between two chunks that no special case contains

CLOSING_MARKS = ",;:!?)]}\"'`"
SIMPLE_CHUNK = re.compile(
    r"([(\[\"`]{0,2})"  # opening marks
    r"([A-Za-z][A-Za-z0-9_]*|[A-Za-z]+(?:-[A-Za-z]+)+|[+-]?[0-9]+(?:\.[0-9]+)*(?:[eE][+-]?[0-9]+)?)"  # the core
    r"([,;:!?)\]}\"'`]{0,2}\.?)"  # closing marks
)
HYPHENATED = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)+")
UNIT_END = re.compile(r"[0-9][A-Za-z]+$")  # "10km": spaCy may cut a unit off a number
# spaCy's English suffix matches, with their look-behind, span at most 7 characters (a 5-letter unit
# after a digit; "°F." and "AB." look 2 back), except runs of dots: the search looks at the last 16
# and trusts a match that starts 8 or more characters into them.
_SUFFIX_TAIL = 16
_SUFFIX_REACH = 8

_nlp = None


def english_tokenizer():
    """spaCy's blank English pipeline, set up to tokenise faster with the same tokens (loaded once per
    process, no model download): lexemes are made without the attributes the tokenizer never reads,
    and the end-anchored suffix search looks at a word's last characters instead of scanning it all."""
    global _nlp
    if _nlp is None:
        try:
            import spacy
        except ImportError as exc:
            raise MissingDependency("spacy", "reference", "reference: datatrove splits words with spaCy") from exc
        nlp = spacy.blank("en")
        nlp.vocab.lex_attr_getters = {}
        nlp.tokenizer.suffix_search = _tail_search(nlp.tokenizer.suffix_search)
        _nlp = nlp
        _learn_special_edges(nlp)
    return _nlp


_merged_specials: dict[str, list[str]] = {}  # special case -> the affix tokens spaCy merges into it
_edge_pairs: frozenset[tuple[str, str]] = frozenset()  # neighbouring affix tokens inside a special case
_edge_chars: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())  # last / first characters of those


def _learn_special_edges(nlp) -> None:
    """The special cases spaCy merges from several affix tokens ("(:" from "(" and ":"), and the pairs
    of affix tokens that stand side by side in one (":" then "(").

    spaCy looks for those special cases over a whole text's tokens, across whitespace too: a match
    that spans two chunks (": (" in "x): (y") is never applied, yet it blocks the matches it overlaps,
    so "(:" in "(:y" may stay "(" ":" next to "x):". A text whose chunks could meet like that is
    tokenised whole (``SpacyWords.tokens``)."""
    global _merged_specials, _edge_pairs
    from spacy.tokenizer import Tokenizer

    t = nlp.tokenizer
    bare = Tokenizer(
        nlp.vocab,
        rules={},
        prefix_search=t.prefix_search,
        suffix_search=t.suffix_search,
        infix_finditer=t.infix_finditer,
        token_match=t.token_match,
        url_match=t.url_match,
    )
    merged, pairs = {}, set()
    for special in t.rules:
        pieces = [token.text for token in bare(special)]
        if len(pieces) > 1:
            merged[special] = pieces
            pairs.update(zip(pieces, pieces[1:]))
    global _edge_chars
    _merged_specials, _edge_pairs = merged, frozenset(pairs)
    _edge_chars = (frozenset(a[-1] for a, _ in pairs), frozenset(b[0] for _, b in pairs))


def _tail_search(search):
    """``search`` (an end-anchored regex search) run on the last ``_SUFFIX_TAIL`` characters, and on the
    whole string when the match starts so near the cut that a longer match or a lookbehind could differ;
    not run at all on a string whose last character ends no match (``_last_characters``)."""
    pattern = getattr(search, "__self__", None)
    ends = _last_characters(pattern) if isinstance(pattern, re.Pattern) else None

    def tail_search(text: str):
        if ends is not None and (not text or text[-1] not in ends):
            return None
        if len(text) <= _SUFFIX_TAIL:
            return search(text)
        match = search(text[-_SUFFIX_TAIL:])
        return search(text) if match is not None and match.start() < _SUFFIX_REACH else match

    return tail_search


def _last_characters(pattern: re.Pattern) -> frozenset[str] | None:
    """Every character a match of ``pattern`` can end with (each match consumes one), read from the
    parsed pattern; None when the pattern is beyond this reading (a class by category, an optional end,
    case folding)."""
    from re import _constants as C
    from re import _parser

    def of_sequence(items) -> list | None:
        for op, av in reversed(items):
            if op not in (C.ASSERT, C.ASSERT_NOT, C.AT):  # zero-width: the character before decides
                return of_item(op, av)
        return None

    def of_item(op, av) -> list | None:
        if op is C.LITERAL:
            return [(av, av)]
        if op is C.IN:
            pairs = [(a, a) if o is C.LITERAL else a for o, a in av if o in (C.LITERAL, C.RANGE)]
            return pairs if len(pairs) == len(av) else None
        if op is C.SUBPATTERN:
            return of_sequence(av[-1].data)
        if op is C.BRANCH:
            branches = [of_sequence(branch.data) for branch in av[1]]
            return None if None in branches else [pair for b in branches for pair in b]
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT) and av[0] > 0:
            return of_sequence(av[2].data)
        return None

    if pattern.flags & re.IGNORECASE:
        return None
    ranges = of_sequence(_parser.parse(pattern.pattern, pattern.flags).data)
    return None if ranges is None else frozenset(chr(c) for lo, hi in ranges for c in range(lo, hi + 1))


@dataclass(frozen=True)
class TokenFacts:
    """What the rules need to know of each distinct token (arrays indexed by token id)."""

    length: np.ndarray  # characters
    blank: np.ndarray  # whitespace only: not a word (datatrove's strip_strings drops it)
    symbol: np.ndarray  # every character is datatrove punctuation
    alpha: np.ndarray  # a character is a letter (str.isalpha)
    punct: np.ndarray  # spaCy's is_punct
    sentence_punct: np.ndarray  # in the sentencizer's punct_chars
    stop: np.ndarray  # index in the stop-word list, -1 if none


@dataclass(frozen=True)
class Tokens:
    """Flattened spaCy tokens of ``n_docs`` texts: ``ids[i]`` (a token id of ``facts``) belongs to ``docs[i]``."""

    ids: np.ndarray
    docs: np.ndarray
    n_docs: int
    facts: TokenFacts

    def words(self) -> Tokens:
        """The tokens datatrove counts as words (whitespace tokens dropped)."""
        keep = ~self.facts.blank[self.ids]
        return Tokens(self.ids[keep], self.docs[keep], self.n_docs, self.facts)

    def count(self, mask: np.ndarray | None = None) -> np.ndarray:
        docs = self.docs if mask is None else self.docs[mask]
        return np.bincount(docs, minlength=self.n_docs).astype(np.int64)

    def total(self, weights: np.ndarray) -> np.ndarray:
        return np.bincount(self.docs, weights=weights, minlength=self.n_docs)


class _Memory:
    """The process's distinct chunks (their token ids) and distinct tokens (their facts)."""

    def __init__(self) -> None:
        self.chunks: dict[str, tuple[int, ...]] = {}
        # chunks that start or end with a merged special case ("(:"): their first and last affix tokens
        self.touchy: dict[str, tuple[str, str]] = {}
        self.token_ids: dict[str, int] = {}
        self.strings: list[str] = []
        self._columns: list[list] = [[] for _ in range(6)]
        self._arrays: tuple[np.ndarray, ...] | None = None

    def token(self, text: str) -> int:
        tid = self.token_ids.get(text)
        if tid is None:
            tid = self.token_ids[text] = len(self.strings)
            self.strings.append(text)
        return tid

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The facts of every token (``TokenFacts`` order, less the stop words), worked out once per token."""
        done = len(self._columns[0])
        if self._arrays is None or done != len(self.strings):
            from spacy.lang.lex_attrs import is_punct
            from spacy.pipeline import Sentencizer

            sentence_punct = frozenset(Sentencizer.default_punct_chars)
            new = self.strings[done:]
            for column, values in zip(
                self._columns,
                (
                    [len(t) for t in new],
                    [not t.strip() for t in new],
                    [PUNCTUATION_SET.issuperset(t) for t in new],
                    [any(ch.isalpha() for ch in t) for t in new],
                    [is_punct(t) for t in new],
                    [t in sentence_punct for t in new],
                ),
            ):
                column.extend(values)
            types = (np.int64, bool, bool, bool, bool, bool)
            self._arrays = tuple(np.array(c, dtype=t) for c, t in zip(self._columns, types))
        return self._arrays

    def learn(self, chunks: list[str]) -> None:
        """Tokenise chunks not seen yet: the simple ones (``simple_tokens``) by rule, the others in one
        spaCy call over them joined by single spaces."""
        nlp = english_tokenizer()
        specials = nlp.tokenizer.rules
        known, token = self.chunks, self.token
        hard = []
        for chunk in chunks:
            if chunk.isalpha() and chunk not in specials:  # simple_tokens' commonest case
                known[chunk] = (token(chunk),)
                continue
            simple = simple_tokens(chunk, specials)
            if simple is None:
                hard.append(chunk)
            else:
                known[chunk] = tuple([token(t) for t in simple])
        if not hard:
            return
        # Between two chunks whose edges could stand in one special case a NUL token keeps them apart,
        # so that no chunk's tokens depend on its neighbours here (see _learn_special_edges). The
        # memory zone keeps spaCy's vocabulary from growing.
        ends, begins = _edge_chars
        gaps = [SEPARATOR if a[-1] in ends and b[0] in begins else " " for a, b in zip(hard, hard[1:])]
        joined = "".join(chain.from_iterable(zip(hard, [*gaps, ""])))
        with nlp.memory_zone():
            spans = nlp.tokenizer(joined).to_array(["IDX", "LENGTH"]).astype(np.int64)
        widths = np.fromiter(map(len, hard), np.int64, len(hard))
        starts = np.concatenate([[0], np.cumsum(widths[:-1] + np.fromiter(map(len, gaps), np.int64, len(gaps)))])
        owners = np.searchsorted(starts, spans[:, 0], side="right") - 1
        counts = np.bincount(owners, minlength=len(hard))
        firsts = np.searchsorted(owners, np.arange(len(hard)))  # every chunk has a token
        whole = (counts == 1) & (spans[firsts, 1] == widths)  # left whole by spaCy: its own token, no slicing
        pieces: list[tuple[int, ...]] = [()] * len(hard)
        for k in np.flatnonzero(whole).tolist():
            pieces[k] = (token(hard[k]),)
        for k in np.flatnonzero(~whole).tolist():
            cut = [joined[a : a + n] for a, n in spans[firsts[k] : firsts[k] + counts[k]].tolist()]
            pieces[k] = tuple([token(t) for t in cut if t != "\x00"])
        for chunk, ids in zip(hard, pieces):
            known[chunk] = ids
            first, last = self.strings[ids[0]], self.strings[ids[-1]]
            if first in _merged_specials or last in _merged_specials:
                self.touchy[chunk] = (_merged_specials.get(first, [first])[0], _merged_specials.get(last, [last])[-1])


def simple_tokens(chunk: str, specials) -> list[str] | None:
    """spaCy's English tokens of a simple chunk, found without spaCy; None for any other chunk.

    Simple: a word of letters of any script (``str.isalpha``: no English prefix, suffix or infix rule
    cuts between letters), or at most two opening marks ``( [ " ` ``, then a core, then at most two
    closing marks ``, ; : ! ? ) ] } " ' ` `` and a last ".". The core is a word of ASCII letters, digits and inner
    underscores that does not end in digits-then-letters ("10km": a unit), letters joined by hyphens,
    or a number (a sign, digits, dotted groups, an exponent: "-1.5e+10", "3.10.0"). spaCy's English
    prefix, suffix and URL rules cut no such core, its only infix rule that applies is the hyphen
    between two letters, every mark is a one-character prefix or suffix of its own, and the last "."
    is a suffix only after a lower-case letter, a digit, a closing mark or two capitals. Where a
    special case (``Tokenizer.rules``: "cannot", "Mr.", "(:" ...) could apply to any part, the chunk
    is left to spaCy. ``tests/filters/text/test_reference_modes.py`` holds this to spaCy's own output.
    """
    if chunk.isalpha():  # the commonest case: one word of letters (any script), one token
        return None if chunk in specials else [chunk]
    match = SIMPLE_CHUNK.fullmatch(chunk)
    if match is None:
        return None
    before, core, after = match.groups()
    if HYPHENATED.fullmatch(core):
        pieces = re.split("(-)", core)
    elif core.endswith("_") or UNIT_END.search(core):
        return None
    else:
        pieces = [core]
    if after.endswith("."):
        mark = (core + after[:-1])[-1]
        capitals = not after[:-1] and len(core) >= 2 and core[-2:].isalpha() and core[-2:].isupper()
        if not (mark.islower() or mark.isdigit() or mark in CLOSING_MARKS or capitals):
            return None
    tokens = [*before, *pieces, *after]
    # spaCy merges any run of tokens that spells a special case ("z." in "a-z."): none may.
    if any("".join(tokens[i:j]) in specials for i in range(len(tokens)) for j in range(i + 1, len(tokens) + 1)):
        return None
    return tokens


_memory = _Memory()
_WHITESPACE_TOKEN = " \t"  # stands for any whitespace token (its facts are all that matter)


def forget() -> None:
    """Drop what the process remembers of chunks and tokens (benchmarks time a cold start with it)."""
    global _memory
    _memory = _Memory()


class SpacyWords:
    """Tokenises batches of texts as spaCy's English tokenizer does; see the module docstring."""

    def __init__(self, stop_words: Sequence[str] = ()) -> None:
        self.stop_words = tuple(dict.fromkeys(stop_words))

    def tokens(self, texts: Sequence[str], whitespace: bool = False) -> Tokens:
        """The tokens of every text; with ``whitespace``, spaCy's whitespace tokens too (a run of
        whitespace other than one space between two chunks is a token of its own)."""
        memory = _memory
        if len(memory.chunks) > CACHE_LIMIT:
            forget()
            memory = _memory
        if whitespace:
            space = memory.token(_WHITESPACE_TOKEN)
            parts = [WHITESPACE_RUN.split(t) for t in texts]
            chunks_of = [[p for p in ps[::2] if p] for ps in parts]
        else:
            chunks_of = [t.split() for t in texts]
        known = memory.chunks
        flat = list(chain.from_iterable(chunks_of))
        distinct = dict.fromkeys(flat)
        missing = [c for c in distinct if c not in known]
        if missing:
            memory.learn(missing)
        if whitespace:
            per_doc = [_with_whitespace(ps, known, space) for ps in parts]
            lengths = np.fromiter(map(len, per_doc), np.int64, len(per_doc))
            ids = np.fromiter(chain.from_iterable(per_doc), np.int64, int(lengths.sum()))
        else:  # the chunks' token ids one after another, counted per document with numpy
            per_chunk = [known[c] for c in flat]
            counts = np.fromiter(map(len, per_chunk), np.int64, len(per_chunk))
            ids = np.fromiter(chain.from_iterable(per_chunk), np.int64, int(counts.sum()))
            chunk_docs = np.repeat(np.arange(len(texts)), np.fromiter(map(len, chunks_of), np.int64, len(texts)))
            lengths = np.bincount(chunk_docs, weights=counts, minlength=len(texts)).astype(np.int64)
        touchy = memory.touchy
        if touchy and not touchy.keys().isdisjoint(distinct):
            own = {
                i: _in_context(texts[i], memory, touchy, space if whitespace else None)
                for i, cs in enumerate(chunks_of)
                if any(c in touchy for c in cs) and _chunks_may_meet(cs, touchy, memory)
            }
            if own:
                parts_of = np.split(ids, np.cumsum(lengths)[:-1])
                for i, doc_ids in own.items():
                    parts_of[i], lengths[i] = np.array(doc_ids, np.int64), len(doc_ids)
                ids = np.concatenate(parts_of)
        arrays = memory.arrays()
        stop = np.full(len(arrays[0]), -1, dtype=np.int64)
        for i, word in enumerate(self.stop_words):
            tid = memory.token_ids.get(word)
            if tid is not None:
                stop[tid] = i
        facts = TokenFacts(*arrays, stop)
        return Tokens(ids, np.repeat(np.arange(len(texts)), lengths), len(texts), facts)


def _chunks_may_meet(chunks: list[str], touchy: dict[str, tuple[str, str]], memory: _Memory) -> bool:
    """Whether, next to a chunk that starts or ends with a merged special case, the neighbouring affix
    tokens of two chunks stand side by side in some special case (so spaCy's match across them may
    block the merge)."""
    for a, b in zip(chunks, chunks[1:]):
        if a in touchy or b in touchy:
            last = touchy[a][1] if a in touchy else memory.strings[memory.chunks[a][-1]]
            first = touchy[b][0] if b in touchy else memory.strings[memory.chunks[b][0]]
            if (last, first) in _edge_pairs:
                return True
    return False


def _in_context(text: str, memory: _Memory, touchy: dict[str, tuple[str, str]], space: int | None) -> list[int]:
    """A text's token ids with spaCy over each line whose chunks could meet in a special case (a line
    break is a whitespace token, which no special case spans), remembered chunks elsewhere. ``space``:
    the id of whitespace tokens, kept only when given (the text is then one line)."""
    nlp = english_tokenizer()
    out: list[int] = []
    for line in text.split("\n") if space is None else [text]:
        chunks = line.split()
        if not _chunks_may_meet(chunks, touchy, memory):
            out.extend(chain.from_iterable(memory.chunks[c] for c in chunks))
            continue
        with nlp.memory_zone():
            for token in nlp.tokenizer(line):
                if token.text.strip():
                    out.append(memory.token(token.text))
                elif space is not None:
                    out.append(space)
    return out


def _with_whitespace(parts: list[str], known: dict[str, tuple[int, ...]], space: int) -> list[int]:
    ids: list[int] = []
    for k, part in enumerate(parts):
        if k % 2 == 0:
            ids.extend(known[part] if part else ())
        elif part != " " or (k == 1 and not parts[0]):  # one space after a token is that token's
            ids.append(space)
    return ids


def sentences_per_piece(tokens: Tokens) -> np.ndarray:
    """Sentences the spaCy sentencizer finds in each piece (``docs`` = piece index), at least 1 per piece.

    spaCy's ``Sentencizer`` starts a sentence at a token that is neither punctuation nor one of its
    ``punct_chars`` when a ``punct_chars`` token was seen since the last sentence start; whitespace
    tokens count as such tokens. Vectorised: a word-like token starts a sentence iff a ``punct_chars``
    token lies between it and the previous word-like token of the same piece.
    """
    f = tokens.facts
    word_like = ~(f.punct[tokens.ids] | f.sentence_punct[tokens.ids])
    seen = np.cumsum(f.sentence_punct[tokens.ids])
    positions = np.flatnonzero(word_like)
    before = np.concatenate([[0], seen])[positions]  # punct_chars tokens strictly before each word-like token
    previous = np.empty_like(before)
    if len(positions):
        same_piece = np.concatenate([[False], tokens.docs[positions][1:] == tokens.docs[positions][:-1]])
        piece_start = np.searchsorted(tokens.docs, tokens.docs[positions])
        at_start = np.concatenate([[0], seen])[piece_start]
        previous_seen = np.concatenate([[0], seen[positions][:-1]])
        previous = np.where(same_piece, previous_seen, at_start)
    starts = before > previous
    return np.maximum(1, 1 + np.bincount(tokens.docs[positions][starts], minlength=tokens.n_docs)).astype(np.int64)
