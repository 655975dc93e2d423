"""Answering a citizen from the FAQ: match, then answer, clarify or escalate; topic
navigation (categories -> questions -> answer) and the "Помогло / Не помогло" feedback.

Callback payloads this module issues (never trusted: each is looked up again):
``faq:a:<entry>`` show an entry; ``faq:c:<n>`` show category number n;
``faq:top`` the list of categories; ``fb:<1|0>:<log id>:<entry>`` feedback.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bots.core import metrics
from bots.core.model import Button
from handlers import escalation
from handlers.answers import ahead
from handlers.conversation import Conversation
from handlers.faq.matcher import Decision, MatchResult
from handlers.faq.model import FaqEntry
from handlers.texts import RenderFailed

log = logging.getLogger(__name__)


async def on_text(conv: Conversation, text: str, result: MatchResult | None = None) -> MatchResult:
    """Answer a citizen's message from the FAQ: an answer, a clarifying question, a short
    reply to small talk, or a hand-over to staff. Urgent words and follow-ups of tickets
    were dealt with before (handlers/router.py); ``result`` is the match if already made."""
    inst = conv.institution
    if result is None:
        result = await ahead.match(conv, text)
    best = result.candidates[0] if result.candidates else None
    await _set_outcome(
        conv,
        str(result.decision),
        best.entry_id if best else None,
        round(best.score, 4) if best else None,
    )
    metrics.OUTCOMES.inc(institution=inst.id, outcome=str(result.decision))
    if result.encoder_busy:
        metrics.ENCODER_BUSY.inc(institution=inst.id)
    log.info(
        "faq decision=%s entry=%s score=%.3f institution=%s chat=%s",
        result.decision,
        best.entry_id if best else "-",
        best.score if best else 0.0,
        inst.id,
        conv.event.chat.key,
    )
    if result.decision == Decision.ANSWER and best is not None:
        entry = inst.faq.entry(best.entry_id)
        if entry is not None:
            await send_answer(conv, entry)
            return result
    if result.decision == Decision.SMALLTALK:
        kind = str(result.smalltalk or "greeting")
        await conv.reply(conv.render("smalltalk", kind=kind))
        return result
    if result.decision == Decision.CLARIFY and result.candidates:
        await clarify(conv, [c.entry_id for c in result.candidates])
        return result
    await escalate(conv, reason="no_match")
    return result


async def _set_outcome(
    conv: Conversation, outcome: str, entry_id: str | None, score: float | None
) -> None:
    await conv.set_outcome(outcome, entry_id, score)


async def send_answer(conv: Conversation, entry: FaqEntry) -> None:
    """The entry's answer, or, when its template fails (over the render budget, a forbidden
    attribute...: ``check`` refuses those, but one may fail only for some names or dates),
    the question goes to staff, so the citizen still gets a reply and a person."""
    texts = conv.institution.texts
    try:
        body = texts.answer(
            entry.id,
            entry.answer,
            user=conv.user_name,
            now=conv.institution.local_time(conv.now),
        )
    except RenderFailed as exc:
        log.warning(
            "faq answer %s of %s cannot be rendered (%s): escalated",
            entry.id,
            conv.institution.id,
            exc,
        )
        metrics.ESCALATIONS.inc(institution=conv.institution.id, reason="answer_failed")
        await escalation.escalate(
            conv, reason="answer_failed", question=conv.event.text or entry.title
        )
        return
    rows: list[list[Button]] = []
    for button in entry.buttons:
        if button.url is not None:
            rows.append([Button(button.text, url=button.url)])
        elif button.entry is not None:
            rows.append([Button(button.text, callback=f"faq:a:{button.entry}")])
    # the feedback buttons name the question's log id: the question, its outcome and this
    # answer are logged together now (one statement), and the answer is queued unlogged
    conv.log_reply(body)
    question = await conv.question_id() or 0
    rows.append(
        [
            Button(conv.label("helpful"), callback=f"fb:1:{question}:{entry.id}"),
            Button(conv.label("not_helpful"), callback=f"fb:0:{question}:{entry.id}"),
        ]
    )
    await conv.reply(body, rows, ref_kind="faq_answer", ref_id=entry.id, log=False)


async def clarify(conv: Conversation, entry_ids: list[str]) -> None:
    faq = conv.institution.faq
    rows = [
        [Button(e.title, callback=f"faq:a:{e.id}")]
        for e in (faq.entry(i) for i in entry_ids)
        if e is not None
    ]
    rows.append([Button(conv.label("none_of_these"), callback="esc:ask")])
    await conv.reply(conv.render("clarify"), rows)


async def show_categories(
    conv: Conversation, template: str = "start", *, lead: Sequence[str] = ()
) -> None:
    """The topics as buttons under ``template``; ``lead``: paragraphs said first in the same
    message (one message, not several, where each costs a slot of the bot's pace)."""
    faq = conv.institution.faq
    categories = faq.categories
    rows = [
        [Button(name or conv.label("other_topics"), callback=f"faq:c:{i}")]
        for i, name in enumerate(categories)
    ]
    text = conv.render(template, categories=categories)
    if lead:
        text = "\n\n".join(part.strip() for part in (*lead, text) if part.strip())
    await conv.reply(text, rows)


async def on_callback(conv: Conversation, data: str) -> None:
    faq = conv.institution.faq
    parts = data.split(":", 2)
    if parts[:2] == ["faq", "a"] and len(parts) == 3:
        entry = faq.entry(parts[2])
        conv.answer_callback()
        if entry is None:  # an old button after the FAQ changed
            await show_categories(conv)
            return
        await send_answer(conv, entry)
    elif parts[:2] == ["faq", "c"] and len(parts) == 3 and parts[2].isdigit():
        conv.answer_callback()
        categories = faq.categories
        index = int(parts[2])
        if index >= len(categories):
            await show_categories(conv)
            return
        category = categories[index]
        entries = [e for e in faq.entries if e.category == category]
        rows = [[Button(e.title, callback=f"faq:a:{e.id}")] for e in entries]
        rows.append([Button(conv.label("all_topics"), callback="faq:top")])
        title = category or conv.label("other_topics")
        await conv.reply(conv.render("category", category=title, entries=entries), rows)
    elif data == "faq:top":
        conv.answer_callback()
        await show_categories(conv)
    else:
        conv.answer_callback()


async def on_feedback(conv: Conversation, data: str) -> None:
    """``fb:<1|0>:<question log id>:<entry id>``: stored for reports; "no" offers staff."""
    parts = data.split(":", 3)
    if len(parts) != 4 or parts[1] not in {"0", "1"} or not parts[2].isdigit():
        conv.answer_callback()
        return
    helpful = parts[1] == "1"
    entry_id = parts[3]
    question_id = int(parts[2]) or None
    if question_id is not None:
        logged = await conv.storage.log.get(question_id)
        # a payload for someone else's question is forged or stale: keep the vote, drop the link
        if logged is None or logged.user_id != conv.event.user.id:
            question_id = None
    if conv.institution.faq.entry(entry_id) is None:
        conv.answer_callback()
        return
    await conv.storage.log.add_feedback(
        institution=conv.institution.id,
        platform=conv.event.platform,
        user_id=conv.event.user.id,
        entry_id=entry_id,
        question_id=question_id,
        helpful=helpful,
        now=conv.now,
    )
    conv.answer_callback(conv.render("feedback_thanks", helpful=helpful))
    if not helpful:
        rows = [
            [
                Button(conv.label("contact_staff"), callback=f"esc:ask:{question_id or 0}"),
                Button(conv.label("no_thanks"), callback="esc:no"),
            ]
        ]
        await conv.reply(conv.render("not_helpful"), rows)


async def escalate(conv: Conversation, reason: str) -> None:
    """Hand the question to staff (a ticket), or tell how to reach the institution when it
    has no staff chat."""
    metrics.ESCALATIONS.inc(institution=conv.institution.id, reason=reason)
    await escalation.escalate(conv, reason=reason)


async def start_command(conv: Conversation, args: str) -> None:
    """/start: the list of topics."""
    await show_categories(conv, "start")


async def help_command(conv: Conversation, args: str) -> None:
    await conv.reply(conv.render("help"))
