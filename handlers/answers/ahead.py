"""The FAQ's decision on a citizen's text, made before the update's unit of work.

Inside a unit of work the handlers run on the database's thread (storage/aio.py), where
every institution's storage waits its turn: the lexical ranking (a few ms) and, when the
decision needs it, the message's embedding (tens of ms) made there would hold all of them.
So the app matches a plain citizen text before the unit and hands the result to it: a
short text (the usual question, about a millisecond of lexical ranking) on the event loop,
its embedding, when the decision needs one, on a worker thread; a long one wholly on a
worker thread. Hopping to a thread for every text cost more CPU than the ranking itself
(bench/scale.py at N=200: 0.8 ms per update on the worker threads for 0.4 ms of matching,
plus the hop's wake-up on the loop). The router takes the result when the text it
matches is the same and the institution's matcher has not been replaced by a reload
meanwhile, and matches itself otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from handlers.conversation import Conversation
from handlers.faq.matcher import FaqMatcher, MatchResult

log = logging.getLogger(__name__)

#: at most this many characters of a citizen's message are matched (the rest is kept)
MATCH_LIMIT = 2000
#: texts up to this many characters are ranked on the event loop (lexical ranking of a
#: short question: ~1 ms; of 300 characters ~5 ms, of 2000 ~20 ms on a worker thread)
INLINE_LIMIT = 200
#: ...and only against an FAQ of at most this many entries: ranking grows with the FAQ (a
#: 1,000-entry one takes tens of ms a query, bench/faq_match.py), which on the loop would
#: hold every institution's polls and answers
INLINE_ENTRIES = 150
#: Conversation.extras key of the decision made ahead
EXTRA = "matched_ahead"


@dataclass(frozen=True, slots=True)
class MatchedAhead:
    matcher: FaqMatcher
    text: str
    result: MatchResult


def worth_matching(text: str | None) -> bool:
    """Whether a citizen's text will most likely be matched against the FAQ: not a
    command, not a number (a press of a numbered button)."""
    if not text:
        return False
    stripped = text.strip()
    return bool(stripped) and not stripped.startswith("/") and not stripped.isdigit()


async def match_ahead(matcher: FaqMatcher, text: str) -> MatchedAhead | None:
    """The decision on ``text``: a short text against a small FAQ ranked here and embedded
    (when needed) on a worker thread, otherwise matched wholly on a worker thread; None if matching failed (the
    unit of work then matches again and deals with the failure as it always has)."""
    text = text[:MATCH_LIMIT]
    try:
        if len(text) <= INLINE_LIMIT and len(matcher.faq.entries) <= INLINE_ENTRIES:
            result = await matcher.amatch(text)
        else:
            result = await asyncio.to_thread(matcher.match, text)
    except Exception:
        log.warning("matching ahead failed; the update is matched in its unit", exc_info=True)
        return None
    return MatchedAhead(matcher, text, result)


async def match(conv: Conversation, text: str) -> MatchResult:
    """The decision on a citizen's ``text``: the one made ahead for this update if it is
    for this text and matcher, else made now."""
    text = text[:MATCH_LIMIT]
    matcher = conv.institution.matcher
    ahead = conv.extras.pop(EXTRA, None)
    if isinstance(ahead, MatchedAhead) and ahead.matcher is matcher and ahead.text == text:
        return ahead.result
    return await matcher.amatch(text)
