"""Checks of an FAQ that need the matcher's own reading of words (its lemmas), run where
a config is loaded (``priemnaya check``, start, hot reload).

They are not in handlers/faq/model.py because the matcher's index reads the FAQ model:
the model must not import the matcher back.
"""

from __future__ import annotations

from bots.core.yamlfile import Problem
from handlers.faq.matching.analysis import lemmas
from handlers.faq.matching.text import HEAD_CHARS
from handlers.faq.model import LoadedFaq


def synonym_problems(loaded: LoadedFaq) -> list[Problem]:
    """A synonym whose key no question, answer or category uses in any word form points
    nowhere: the synonym «воспитатель» is used by an answer that says «воспитателя»."""
    faq, doc = loaded.faq, loaded.document
    if not faq.synonyms:
        return []
    texts = [
        t.lower().replace("ё", "е")
        for e in faq.entries
        for t in (*e.questions, e.answer, e.category)
    ]
    corpus = " ".join(texts)
    # piece by piece: the tokenizer reads only the head and the tail of a long text, and
    # the whole FAQ read as one text lost its middle entries («субсидия» pointed nowhere)
    used = frozenset(word for text in texts for piece in _pieces(text) for word in lemmas(piece))
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


def _pieces(text: str, size: int = HEAD_CHARS) -> list[str]:
    """``text`` cut at spaces into pieces the tokenizer reads whole."""
    pieces: list[str] = []
    current: list[str] = []
    length = 0
    for word in text.split():
        if current and length + len(word) + 1 > size:
            pieces.append(" ".join(current))
            current, length = [], 0
        current.append(word)
        length += len(word) + 1
    if current:
        pieces.append(" ".join(current))
    return pieces
