"""One pymorphy3 analyser per process, with an LRU cache in front of it.

A MorphAnalyzer costs about 29 MB, and every further instance about 20 MB more, so all
matchers (one per institution) share this one. Parsing is the slowest step of matching
(about 13k words/s uncached); citizens reuse the same few thousand words, so a cache makes
it effectively free.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import pymorphy3

from handlers.faq.matching.lexicon import FORM_LEMMAS

_lock = threading.Lock()
_analyzer: pymorphy3.MorphAnalyzer | None = None


def analyzer() -> pymorphy3.MorphAnalyzer:
    """The shared analyser, created on first use (loading takes about 0.07 s)."""
    global _analyzer
    if _analyzer is None:
        with _lock:
            if _analyzer is None:
                _analyzer = pymorphy3.MorphAnalyzer(lang="ru")
    return _analyzer


def fold(text: str) -> str:
    """Lowercase and fold ё to е: citizens write both, admins write both."""
    return text.lower().replace("ё", "е")


@lru_cache(maxsize=65536)
def lemma(word: str) -> str:
    """The dictionary form of a (lowercase, ё-folded) Cyrillic word, itself ё-folded.

    Latin words and numbers are returned unchanged: pymorphy3 would only guess at them.
    """
    if not word or not _is_cyrillic(word):
        return word
    return lemma_options(word)[0]


_NAMES = frozenset({"Name", "Surn", "Patr"})


@lru_cache(maxsize=65536)
def lemma_options(word: str) -> tuple[str, ...]:
    """Distinct dictionary forms of a word, most likely first.

    A reading as a first name or surname goes last: citizens write "к лору" (the ENT
    doctor), not to a woman called Лора.
    """
    if not word or not _is_cyrillic(word):
        return (word,)
    if word in FORM_LEMMAS:
        return (FORM_LEMMAS[word],)
    parses = analyzer().parse(word)
    common = [p for p in parses if not (_NAMES & p.tag.grammemes)]
    names = [p for p in parses if _NAMES & p.tag.grammemes]
    options = tuple(dict.fromkeys(fold(p.normal_form) for p in [*common, *names]))
    return options or (word,)


@lru_cache(maxsize=65536)
def is_known(word: str) -> bool:
    """Whether the dictionary knows this word (not merely guesses a parse for it)."""
    return bool(word) and analyzer().word_is_known(word)


def _is_cyrillic(word: str) -> bool:
    return any("а" <= ch <= "я" for ch in word)


@lru_cache(maxsize=65536)
def is_noun_like(term: str) -> bool:
    """Nouns, and words the dictionary cannot place (abbreviations, codes, Latin): the
    words that name a topic. An unexplained one means the question is about something else."""
    if not _is_cyrillic(term):
        return not term.isdigit()
    pos = analyzer().parse(term)[0].tag.POS
    return pos is None or pos == "NOUN"


@lru_cache(maxsize=65536)
def is_genitive_noun(word: str) -> bool:
    """Whether the most likely reading of a (lowercase) word form is a noun in the genitive:
    the case of a noun's attribute ("МРТ колена", "справка с места работы" is not one)."""
    if not _is_cyrillic(word):
        return False
    tag = analyzer().parse(word)[0].tag
    return tag.POS == "NOUN" and "gent" in tag


@lru_cache(maxsize=4096)
def is_imperative(word: str) -> bool:
    """Whether some reading of a (lowercase) word form is an imperative ("разберитесь")."""
    if not _is_cyrillic(word):
        return False
    return any("impr" in p.tag for p in analyzer().parse(word))
