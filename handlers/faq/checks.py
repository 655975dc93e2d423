"""Checks of an FAQ that need the matcher's own reading of words (its lemmas), run where
a config is loaded (``priemnaya check``, start, hot reload).

They are not in handlers/faq/model.py because the matcher's index reads the FAQ model:
the model must not import the matcher back.
"""

from __future__ import annotations

from bots.core.yamlfile import Problem
from handlers.faq.matching.analysis import lemmas
from handlers.faq.model import LoadedFaq


def synonym_problems(loaded: LoadedFaq) -> list[Problem]:
    """A synonym whose key no question, answer or category uses in any word form points
    nowhere: the synonym «воспитатель» is used by an answer that says «воспитателя»."""
    faq, doc = loaded.faq, loaded.document
    if not faq.synonyms:
        return []
    corpus = (
        " ".join(" ".join([*e.questions, e.answer, e.category]) for e in faq.entries)
        .lower()
        .replace("ё", "е")
    )
    used = frozenset(lemmas(corpus))
    problems: list[Problem] = []
    for term, variants in faq.synonyms.items():
        if variants and not _used(term, corpus, used):
            problems.append(
                doc.problem(
                    ("synonyms", term),
                    f"synonym {term!r} points nowhere: no question or answer uses it in any word"
                    " form; use the word in a question variant, or list it under a word they use",
                )
            )
    return problems


def _used(term: str, corpus: str, used: frozenset[str]) -> bool:
    wanted = lemmas(term)
    if not wanted:  # only stop words: compare the text itself
        return term.lower().replace("ё", "е") in corpus
    return all(word in used for word in wanted)
