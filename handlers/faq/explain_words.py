"""The Russian words of ``priemnaya faq ask``: admins read its account of a match, and
Russian is their language. The matcher's own codes (decisions, reasons, question types)
stay English in code and logs; these only name them for people."""

from __future__ import annotations

from collections.abc import Iterable

DECISIONS = {
    "answer": "ответить статьёй",
    "clarify": "уточнить: предложить статьи на выбор",
    "escalate": "передать сотрудникам",
    "smalltalk": "вежливо ответить на приветствие или благодарность",
}
REASONS = {
    "confident": "уверен в лучшей статье",
    "not confident enough": "не уверен, что лучшая статья та",
    "runner-up too close": "вторая статья подходит почти так же",
    "nothing fits": "ни одна статья не подходит",
    "complaint": "это жалоба",
    "no content words": "в сообщении нет значимых слов",
    "small talk only": "только приветствие, благодарность или прощание",
    "a topic word is not explained by the best entry": "слова темы сообщения нет в лучшей статье",
    "the best entry does not state the figure asked": "в ответе лучшей статьи нет спрошенной цифры",
    "the FAQ may not cover the question": "похоже, в FAQ нет ответа на этот вопрос",
}
SMALLTALK = {"greeting": "приветствие", "thanks": "благодарность", "goodbye": "прощание"}
ASKS = {
    "when": "когда",
    "cost": "сколько стоит",
    "where": "где",
    "documents": "какие документы",
    "may": "можно ли",
    "how": "как",
}
FIGURES = {"amount": "сумма", "duration": "срок"}


def named(words: dict[str, str], codes: Iterable[object]) -> str:
    """``codes`` (enum values) in Russian, sorted; "-" for none."""
    return ", ".join(sorted(words.get(str(c), str(c)) for c in codes)) or "-"
