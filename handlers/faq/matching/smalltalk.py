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


def detect(tokens: list[str], raw: str) -> SmallTalk | None:
    """The kind of small talk when the message holds nothing else, else None.

    ``tokens`` are the normalised words of the message; ``raw`` is the text as typed (a lone
    👍 or 🙏 is a thanks).
    """
    found: set[SmallTalk] = set()
    rest: list[str] = []
    i = 0
    while i < len(tokens):
        for kind, phrases in _KINDS:
            hit = next((p for p in phrases if tuple(tokens[i : i + len(p)]) == p), None)
            if hit is not None:
                found.add(kind)
                i += len(hit)
                break
        else:
            rest.append(tokens[i])
            i += 1
    if not tokens and any(ch in THANKS_EMOJI for ch in raw):
        return SmallTalk.THANKS
    if not found or any(w not in SMALLTALK_FILLERS for w in rest):
        return None
    for kind, _ in _KINDS:  # "спасибо, до свидания" is a thanks first of all
        if kind in found:
            return kind
    return None
