"""Which part of a citizen's message is the question, and which is the story around it.

Citizens often write a few sentences of context before (or after) the question: "Для суда
нужна копия амбулаторной карты. Сколько её делают?". A noun of the story that the FAQ never
uses (the court, the funeral, a fever) says why they ask, not what: the matcher does not
take it for a topic the best entry fails to explain. It still counts in the score: weighting
story words down there was measured and answered more questions wrongly than rightly.
"""

from __future__ import annotations

import re

from handlers.faq.matching.text import clip, strip_markup

_SPLIT = re.compile(r"(?<=[.!?…\n])\s+|\n+")
_INTERROGATIVES = frozenset(
    "как где когда куда кто что сколько почему зачем какой какая какое какие каким можно "
    "ли нужно надо подскажите скажите".split()
)
_WORD = re.compile(r"[а-яёa-z]+", re.I)
#: more words that ask (and requests to be told), counted by :func:`is_question` only: the
#: story split above was measured with its own list
_ASKING = _INTERROGATIVES | frozenset(
    "кому кого каким какую чем че чо скольки скока могу может подскажи расскажите объясните "
    "уточните".split()
)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (markup dropped), empty ones left out."""
    parts = _SPLIT.split(strip_markup(clip(text)))
    return [p.strip() for p in parts if p and _WORD.search(p)]


def question_sentences(sentences: list[str]) -> list[bool]:
    """Which sentences ask: those ending in '?'; failing any, those with a question word."""
    marked = [s.rstrip().endswith("?") or "?" in s for s in sentences]
    if any(marked):
        return marked
    return [
        bool(_INTERROGATIVES.intersection(w.lower() for w in _WORD.findall(s))) for s in sentences
    ]


def is_question(text: str) -> bool:
    """Whether ``text`` asks something: a '?' or a question word anywhere ("куда жаловаться",
    "подскажите адрес прокуратуры"); citizens often leave out the '?'."""
    if "?" in text:
        return True
    return not _ASKING.isdisjoint(w.lower().replace("ё", "е") for w in _WORD.findall(text))
