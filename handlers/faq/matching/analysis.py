"""From text to matching terms: tokens, lemmas, colloquial forms, the FAQ's synonyms.

The same analysis runs over the FAQ (questions and answers) and over citizens' messages,
so a colloquialism or synonym on either side meets the same canonical term.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from functools import lru_cache

from rapidfuzz import fuzz, process

from handlers.faq.matching.lexicon import COLLOQUIAL, GOODBYES, GREETINGS, STOP_WORDS, THANKS
from handlers.faq.matching.morph import is_known, lemma, lemma_options
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
        self._forms: list[str] = []
        self._form_set: frozenset[str] = frozenset()
        self._fix = self._fix_typo

    def learn_forms(self, texts: Iterable[str], vocabulary: Container[str]) -> None:
        """Remember the word forms of the FAQ's own texts, to read citizens' typos by.

        A word the dictionary does not know ("клас", "поликленику") is first compared with
        the forms the FAQ itself uses ("класс", "поликлинику") and read as the closest one;
        only failing that does pymorphy3 guess a lemma for it.
        """
        forms = {tok for text in texts for tok in tokenize(text)}
        self._forms = sorted(f for f in forms if len(f) >= 4 and not f.isdigit())
        self._form_set = frozenset(self._forms)
        self._vocabulary = vocabulary
        self._fix = lru_cache(maxsize=32768)(self._fix_typo)

    def _fix_typo(self, token: str) -> str:
        if (
            len(token) < 4
            or token in self._form_set
            or not any("а" <= ch <= "я" for ch in token)
            or is_known(token)
        ):
            return token
        cutoff = 80.0 if len(token) >= 6 else 85.0
        best = process.extractOne(token, self._forms, scorer=fuzz.ratio, score_cutoff=cutoff)
        return best[0] if best else token

    def terms(
        self, text: str, vocabulary: Container[str] | None = None, *, numbers: bool = False
    ) -> list[str]:
        """Content lemmas in order (repeats kept), stop words removed.

        With ``vocabulary`` (the FAQ's terms), an ambiguous word takes the reading the FAQ
        uses when its most likely reading is not there ("лору": "лор", not "лора"), and a word
        the dictionary does not know is first read as the FAQ's closest word form. With
        ``numbers``, numbers of one or two digits are kept ("10 класс" is not "1 класс").
        """
        tokens = [tok for tok in tokenize(text) if tok not in STOP_WORDS]
        if vocabulary is not None and self._forms:
            tokens = [self._fix(tok) for tok in tokens]
        seq = [_pick(tok, vocabulary) for tok in tokens]
        seq = smalltalk_table().apply(seq)
        if self._has_synonyms:
            seq = self._synonyms.apply(seq)
        seq = self._colloquial.apply(seq)
        if self._has_synonyms:
            seq = self._synonyms.apply(seq)
        return [
            t for t in seq if t not in STOP_WORDS and (_informative(t) or (numbers and t.isdigit()))
        ]


def _pick(token: str, vocabulary: Container[str] | None) -> str:
    options = lemma_options(token)
    if vocabulary is None or len(options) == 1 or options[0] in vocabulary:
        return options[0]
    for option in options[1:]:
        if option in vocabulary:
            return option
    return options[0]


def is_number(term: str) -> bool:
    """A short number: kept for word pairs ("10 класс"), no topic on its own."""
    return term.isdigit() and len(term) < 3


def _informative(term: str) -> bool:
    """Single letters and 1-2 digit numbers carry no topic on their own."""
    if term.isdigit():
        return len(term) >= 3
    return len(term) >= 2
