"""From text to matching terms: tokens, lemmas, colloquial forms, the FAQ's synonyms.

The same analysis runs over the FAQ (questions and answers) and over citizens' messages,
so a colloquialism or synonym on either side meets the same canonical term.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from functools import lru_cache

from handlers.faq.matching.lexicon import COLLOQUIAL, GOODBYES, GREETINGS, STOP_WORDS, THANKS
from handlers.faq.matching.morph import lemma, lemma_options
from handlers.faq.matching.text import tokenize

Phrase = tuple[str, ...]


def lemmas(text: str) -> list[str]:
    """Lemmas of the tokens of ``text`` but stop words (numbers and Latin words stay as is)."""
    return [lemma(tok) for tok in tokenize(text) if tok not in STOP_WORDS]


class PhraseTable:
    """Longest-match replacement of lemma sequences (colloquialisms, synonyms)."""

    def __init__(self, pairs: Iterable[tuple[Phrase, Phrase]]):
        self._map: dict[Phrase, Phrase] = {}
        for key, value in pairs:
            if key and key != value:
                self._map.setdefault(key, value)
        self._longest = max((len(k) for k in self._map), default=0)
        self._firsts = {k[0] for k in self._map}

    def apply(self, seq: Sequence[str]) -> list[str]:
        if not self._map:
            return list(seq)
        out: list[str] = []
        i = 0
        n = len(seq)
        while i < n:
            if seq[i] in self._firsts:
                for size in range(min(self._longest, n - i), 0, -1):
                    repl = self._map.get(tuple(seq[i : i + size]))
                    if repl is not None:
                        out.extend(repl)
                        i += size
                        break
                else:
                    out.append(seq[i])
                    i += 1
            else:
                out.append(seq[i])
                i += 1
        return out


@lru_cache(maxsize=1)
def colloquial_table() -> PhraseTable:
    """The generic colloquial table, lemmatised once per process."""
    return PhraseTable((tuple(lemmas(k)), tuple(lemmas(v))) for k, v in COLLOQUIAL.items())


@lru_cache(maxsize=1)
def smalltalk_table() -> PhraseTable:
    """Greetings, thanks and goodbyes, removed before matching ("добрый день" is no topic)."""
    phrases = [*GREETINGS, *THANKS, *GOODBYES]
    return PhraseTable((tuple(lemmas(p)), ()) for p in phrases if len(p.split()) > 1)


class TextAnalyzer:
    """Turns text into content terms for one FAQ (its synonyms included)."""

    def __init__(self, synonyms: Mapping[str, Sequence[str]] | None = None):
        self._colloquial = colloquial_table()
        pairs: list[tuple[Phrase, Phrase]] = []
        for canonical, variants in (synonyms or {}).items():
            target = tuple(self._colloquial.apply(lemmas(canonical)))
            for variant in variants:
                for key in {tuple(lemmas(variant)), tuple(self._colloquial.apply(lemmas(variant)))}:
                    pairs.append((key, target))
        # Longer variants first, so "1 класс" wins over "класс" when both are variants.
        pairs.sort(key=lambda kv: -len(kv[0]))
        self._synonyms = PhraseTable(pairs)
        self._has_synonyms = bool(pairs)

    def terms(self, text: str, vocabulary: Container[str] | None = None) -> list[str]:
        """Content lemmas in order (repeats kept), stop words removed.

        With ``vocabulary`` (the FAQ's terms), an ambiguous word takes the reading the FAQ
        uses when its most likely reading is not there ("мочи": "моча", not "мочить").
        """
        seq = [_pick(tok, vocabulary) for tok in tokenize(text) if tok not in STOP_WORDS]
        seq = smalltalk_table().apply(seq)
        if self._has_synonyms:
            seq = self._synonyms.apply(seq)
        seq = self._colloquial.apply(seq)
        if self._has_synonyms:
            seq = self._synonyms.apply(seq)
        return [t for t in seq if t not in STOP_WORDS and _informative(t)]


def _pick(token: str, vocabulary: Container[str] | None) -> str:
    options = lemma_options(token)
    if vocabulary is None or len(options) == 1 or options[0] in vocabulary:
        return options[0]
    for option in options[1:]:
        if option in vocabulary:
            return option
    return options[0]


def _informative(term: str) -> bool:
    """Single letters and 1-2 digit numbers carry no topic on their own."""
    if term.isdigit():
        return len(term) >= 3
    return len(term) >= 2
