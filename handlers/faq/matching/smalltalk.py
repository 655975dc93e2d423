"""Recognising messages that are only a greeting, a thanks or a goodbye.

Such messages get a polite reply, never a ticket for staff. A greeting followed by a
question is a question: the matcher strips greetings before matching.
"""

from __future__ import annotations

from enum import StrEnum

from handlers.faq.matching.lexicon import (
    GOODBYES,
    GREETINGS,
    SMALLTALK_FILLERS,
    THANKS,
    THANKS_EMOJI,
)


class SmallTalk(StrEnum):
    GREETING = "greeting"
    THANKS = "thanks"
    GOODBYE = "goodbye"


_KINDS: tuple[tuple[SmallTalk, tuple[tuple[str, ...], ...]], ...] = (
    (SmallTalk.THANKS, tuple(tuple(p.split()) for p in THANKS)),
    (SmallTalk.GOODBYE, tuple(tuple(p.split()) for p in GOODBYES)),
    (SmallTalk.GREETING, tuple(tuple(p.split()) for p in GREETINGS)),
)


#: the phrases by their first word, in the order detect tries them (kinds, then phrases):
#: a word that begins none is passed over with one lookup instead of a comparison per phrase
_BY_FIRST: dict[str, list[tuple[SmallTalk, tuple[str, ...]]]] = {}
for _kind, _phrases in _KINDS:
    for _phrase in _phrases:
        _BY_FIRST.setdefault(_phrase[0], []).append((_kind, _phrase))


def detect(tokens: list[str], raw: str) -> SmallTalk | None:
    """The kind of small talk when the message holds nothing else, else None.

    ``tokens`` are the normalised words of the message; ``raw`` is the text as typed (a lone
    👍 or 🙏 is a thanks). Every message is asked this first, most of them questions: the
    first word that is neither small talk nor a filler ends the look.
    """
    if not tokens:
        return SmallTalk.THANKS if any(ch in THANKS_EMOJI for ch in raw) else None
    found: set[SmallTalk] = set()
    i = 0
    while i < len(tokens):
        for kind, phrase in _BY_FIRST.get(tokens[i], ()):
            if tuple(tokens[i : i + len(phrase)]) == phrase:
                found.add(kind)
                i += len(phrase)
                break
        else:
            if tokens[i] not in SMALLTALK_FILLERS:
                return None
            i += 1
    for kind, _ in _KINDS:  # "спасибо, до свидания" is a thanks first of all
        if kind in found:
            return kind
    return None
