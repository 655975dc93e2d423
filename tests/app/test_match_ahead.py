"""A citizen's question whose matching is slow (the message's embedding, tens of ms on a
loaded machine) must not hold the database's thread, where every institution's storage
waits its turn: the app matches a plain text on a worker thread before the update's unit
of work (handlers/answers/ahead.py). Here one school question's embedding hangs until the
test releases it; meanwhile another institution's citizen asks and is answered. Before
the change the embedding ran inside the school's unit on SQLite's thread, and the
polyclinic's answer could not come until the release."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from bots.core.model import ChatRef, Reply, SentMessage
from handlers.answers import ahead
from handlers.faq.matcher import Decision, FaqMatcher, MatcherSettings, MatchResult
from handlers.faq.model import Faq, FaqEntry
from handlers.faq.semantic.index import SemanticIndex
from runtime.app import App

SLOW_QUESTION = "скоро ли у ребенка каникулы"  # the school's FAQ needs its vector
CLINIC_QUESTION = "как вызвать врача на дом"  # a clear answer by words


async def test_a_slow_match_does_not_hold_other_institutions(
    local_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    school_matcher = local_app.institutions["school-17"].matcher
    assert school_matcher.semantic is not None, "the example FAQs match by meaning too"
    assert school_matcher.needs_vector(school_matcher.begin(SLOW_QUESTION))
    embedding, release = threading.Event(), threading.Event()
    embed = SemanticIndex.embed_query

    def slow_embed(self: SemanticIndex, text: str, deadline: float) -> np.ndarray | None:
        if text == SLOW_QUESTION and not release.is_set():
            embedding.set()
            release.wait(120)  # the encoder on a loaded machine, held by the test
        return embed(self, text)

    monkeypatch.setattr(SemanticIndex, "embed_query_by", slow_embed)
    school = local_app.local_platform("school-17")
    clinic = local_app.local_platform("polyclinic-3")
    answered = asyncio.Event()
    clinic_send = clinic.send

    async def send(chat: ChatRef, reply: Reply, *, dedup_key: str) -> list[SentMessage]:
        sent = await clinic_send(chat, reply, dedup_key=dedup_key)
        if chat.chat_id == "200" and "на дом" in reply.text:
            answered.set()  # the answer itself (a first contact's notice comes before it)
        return sent

    monkeypatch.setattr(clinic, "send", send)
    try:
        asked = asyncio.create_task(school.user_says("100", SLOW_QUESTION))
        assert await asyncio.to_thread(embedding.wait, 120), "the school's match began"
        await clinic.user_says("200", CLINIC_QUESTION)
        await asyncio.wait_for(answered.wait(), 120)
        assert not asked.done(), "the school's question is still being matched"
    finally:
        release.set()
    await asyncio.wait_for(asked, 120)
    await local_app.settle()
    assert school.messages("100"), "the school's citizen is answered once it is matched"
    assert school_matcher.match(SLOW_QUESTION).decision is Decision.ANSWER


async def test_a_large_faq_is_ranked_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A short question is ranked on the loop only against a small FAQ: against a regional
    FAQ of hundreds of entries its ranking takes tens of ms, which on the loop would hold
    every institution's polls and answers. Here that ranking hangs until released, and the
    loop still runs other work meanwhile."""
    faq = Faq(
        entries=[
            FaqEntry(id=f"e{i}", questions=[f"вопрос номер {i} про услугу {i}"], answer="ответ")
            for i in range(ahead.INLINE_ENTRIES + 1)
        ]
    )
    matcher = FaqMatcher(faq, MatcherSettings(semantic="off"))
    ranking, release = threading.Event(), threading.Event()
    match = FaqMatcher.match

    def slow_match(self: FaqMatcher, text: str) -> MatchResult:
        ranking.set()
        release.wait(120)  # a large FAQ ranked on a loaded machine, held by the test
        return match(self, text)

    monkeypatch.setattr(FaqMatcher, "match", slow_match)

    async def on_the_loop(self: FaqMatcher, text: str) -> MatchResult:
        raise AssertionError("a large FAQ ranked on the event loop")  # match_ahead -> None

    monkeypatch.setattr(FaqMatcher, "amatch", on_the_loop)
    asked = asyncio.create_task(ahead.match_ahead(matcher, "вопрос про услугу"))
    began = asyncio.create_task(asyncio.to_thread(ranking.wait, 120))
    try:
        await asyncio.wait({asked, began}, return_when=asyncio.FIRST_COMPLETED)
        assert not asked.done(), "the ranking is held on a worker thread, not done on the loop"
        assert await began, "the ranking began"
    finally:
        release.set()
    assert await asyncio.wait_for(asked, 120) is not None
