"""The citizen's side of escalation: handing a question to staff, further messages joining
the open ticket, reopening a recently closed one, and /operator.

The ticket row is written in the same transaction as the "передал ваш вопрос сотрудникам"
reply, so the citizen is never told about a ticket that does not exist."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bots.core.model import ChatRef
from handlers.conversation import Conversation
from handlers.escalation import cards
from handlers.escalation.sla import WorkingCalendar
from handlers.escalation.urgent import is_urgent
from handlers.institution import Institution
from storage.tickets import ACTIVE, Ticket

log = logging.getLogger(__name__)

#: a citizen's follow-ups are forwarded at most this often; the rest wait on the card
FORWARD_INTERVAL = timedelta(seconds=60)
WAITING_FOR_QUESTION = "awaiting_operator_question"


def calendar(inst: Institution) -> WorkingCalendar:
    return WorkingCalendar(inst.working_hours, inst.config.holidays, inst.zone)


def citizen_chat(ticket: Ticket) -> ChatRef:
    return ChatRef(ticket.platform, ticket.chat_id)


async def escalate(
    conv: Conversation, *, reason: str, question: str | None = None, urgent: bool = False
) -> Ticket | None:
    """Hand the citizen's question to staff: a new ticket, or the open/recent one."""
    inst = conv.institution
    event = conv.event
    text = (question if question is not None else event.text or "").strip()
    if inst.staff_chat is None:
        await conv.reply(conv.render("not_understood"))
        return None
    tickets = conv.storage.tickets
    latest = await tickets.latest_for_citizen(inst.id, event.platform, event.user.id)
    if latest is not None and latest.status in ACTIVE:
        await join(conv, latest, text, urgent=urgent)
        return latest
    window = inst.config.staff.reopen_window
    if (
        latest is not None
        and latest.closed_at is not None
        and conv.now - latest.closed_at <= window
        and reason != "operator"
    ):
        return await reopen(conv, latest, text, urgent=urgent)
    cal = calendar(inst)
    due = cal.add(conv.now, inst.config.staff.first_response)
    ticket = await tickets.create(
        institution=inst.id,
        platform=event.platform,
        chat_id=event.chat.chat_id,
        user_id=event.user.id,
        citizen_name=event.user.display_name,
        question=text or "—",
        reason=reason,
        urgent=urgent,
        due_at=due,
        now=conv.now,
    )
    await tickets.add_message(
        ticket.id,
        author="citizen",
        author_id=event.user.id,
        author_name=event.user.display_name,
        text=text or "—",
        now=conv.now,
    )
    await post_card(conv, ticket)
    await tell_citizen_escalated(conv, ticket, cal)
    log.info("ticket %s #%s created (%s) for %s", inst.id, ticket.number, reason, event.chat.key)
    return ticket


async def post_card(conv: Conversation, ticket: Ticket) -> None:
    inst = conv.institution
    assert inst.staff_chat is not None
    chat = inst.staff_chat
    staff_chat_config = inst.config.staff.chat
    if staff_chat_config is not None and staff_chat_config.topics:
        title = conv.texts.render("topic_title", ticket=cards.ticket_view(ticket, inst, conv.now))
        chat = await conv.create_topic(chat, title, ref_id=str(ticket.id))
    recent = await conv.storage.tickets.messages(ticket.id, limit=5)
    text, buttons = cards.card(inst, ticket, recent, conv.now)
    await conv.send(chat, text, buttons, ref_kind=cards.CARD, ref_id=str(ticket.id))


async def refresh_card(conv: Conversation, ticket_id: int, answered_by: str | None = None) -> None:
    ticket = await conv.storage.tickets.get(ticket_id)
    if ticket is None:
        return
    recent = await conv.storage.tickets.messages(ticket.id, limit=5)
    text, buttons = cards.card(conv.institution, ticket, recent, conv.now, answered_by=answered_by)
    await conv.edit(cards.CARD, str(ticket.id), text, buttons)


async def tell_citizen_escalated(conv: Conversation, ticket: Ticket, cal: WorkingCalendar) -> None:
    inst = conv.institution
    out_of_hours = cal.has_hours and not cal.is_working(conv.now)
    expect_at = cal.next_working_moment(conv.now)
    await conv.reply(
        conv.render(
            "escalated",
            ticket=ticket.number,
            out_of_hours=out_of_hours,
            expect_at=inst.local_time(expect_at),
            due=inst.local_time(ticket.due_at) if ticket.due_at else None,
        )
    )


async def join(conv: Conversation, ticket: Ticket, text: str, *, urgent: bool = False) -> None:
    """A further message on an active ticket: stored, forwarded at most once a minute (a
    flood becomes one ticket and a few staff messages, never a stream)."""
    inst = conv.institution
    event = conv.event
    tickets = conv.storage.tickets
    await tickets.add_message(
        ticket.id,
        author="citizen",
        author_id=event.user.id,
        author_name=event.user.display_name,
        text=text,
        now=conv.now,
    )
    changes: dict[str, object] = {}
    if ticket.status == "answered":
        changes["status"] = "open"
    if urgent and not ticket.urgent:
        changes["urgent"] = True
    forward = (
        ticket.last_forward_at is None or conv.now - ticket.last_forward_at >= FORWARD_INTERVAL
    )
    if forward and inst.staff_chat is not None:
        changes["last_forward_at"] = conv.now
        view = cards.ticket_view(ticket, inst, conv.now)
        await conv.send(
            await staff_thread(conv, ticket),
            conv.render("ticket_forward", ticket=view, text=text),
            ref_kind=cards.FORWARD,
            ref_id=str(ticket.id),
        )
        await conv.reply(conv.render("ticket_joined", ticket=ticket.number))
    await tickets.update(ticket.id, conv.now, **changes)
    await refresh_card(conv, ticket.id)


async def reopen(conv: Conversation, ticket: Ticket, text: str, *, urgent: bool) -> Ticket:
    inst = conv.institution
    cal = calendar(inst)
    await conv.storage.tickets.update(
        ticket.id,
        conv.now,
        status="open",
        closed_at=None,
        closed_by=None,
        first_response_at=None,
        reminded_at=None,
        breached_at=None,
        last_forward_at=None,
        due_at=cal.add(conv.now, inst.config.staff.first_response),
        urgent=urgent or ticket.urgent,
    )
    reopened = await conv.storage.tickets.get(ticket.id)
    assert reopened is not None
    await join(conv, reopened, text, urgent=urgent)
    log.info("ticket %s #%s reopened", inst.id, ticket.number)
    return reopened


async def staff_thread(conv: Conversation, ticket: Ticket) -> ChatRef:
    """Where messages about a ticket go in the staff chat: its topic, if it has one."""
    inst = conv.institution
    assert inst.staff_chat is not None
    config = inst.config.staff.chat
    if config is not None and config.topics:
        records = await conv.storage.outbox.sent_for_ref(cards.TOPIC, str(ticket.id))
        thread = records[-1].message.message_id if records else f"@topic:{ticket.id}"
        return ChatRef(inst.staff_chat.platform, inst.staff_chat.chat_id, thread)
    return inst.staff_chat


async def claim_before_matching(conv: Conversation, text: str) -> bool:
    """Urgent words and an awaited /operator question take a message before the FAQ does."""
    inst = conv.institution
    event = conv.event
    state_key = f"{inst.id}:{event.platform}:{event.user.id}"
    if is_urgent(text, inst.config.urgent_keywords):
        await conv.reply(conv.render("urgent"))
        await escalate(conv, reason="urgent", question=text, urgent=True)
        return True
    if await conv.storage.kv.get(WAITING_FOR_QUESTION, state_key):
        await conv.storage.kv.delete(WAITING_FOR_QUESTION, state_key)
        await escalate(conv, reason="operator", question=text)
        return True
    return False


async def join_active_ticket(conv: Conversation, text: str) -> bool:
    """While a ticket is active, the citizen's messages join it instead of a new question."""
    inst = conv.institution
    event = conv.event
    latest = await conv.storage.tickets.latest_for_citizen(inst.id, event.platform, event.user.id)
    if latest is not None and latest.status in ACTIVE:
        await join(conv, latest, text)
        return True
    return False


async def operator(conv: Conversation, args: str) -> None:
    """/operator [question]: straight to staff; without a question, the next message goes."""
    inst = conv.institution
    event = conv.event
    if args:
        await escalate(conv, reason="operator", question=args)
        return
    if inst.staff_chat is None:
        await conv.reply(conv.render("not_understood"))
        return
    await conv.storage.kv.set(
        WAITING_FOR_QUESTION, f"{inst.id}:{event.platform}:{event.user.id}", "1"
    )
    await conv.reply(conv.render("operator_prompt"))


async def on_callback(conv: Conversation, data: str) -> None:
    """``esc:ask[:<question log id>]`` hands a question to staff; ``esc:no`` declines."""
    conv.answer_callback()
    parts = data.split(":")
    if parts[:2] != ["esc", "ask"]:
        return
    question = None
    if len(parts) == 3 and parts[2].isdigit() and int(parts[2]):
        logged = await conv.storage.log.get(int(parts[2]))
        if logged is not None and logged.user_id == conv.event.user.id:
            question = logged.text
    if question is None:
        recent = await conv.storage.log.recent(
            conv.institution.id, conv.event.platform, conv.event.chat.chat_id, limit=10
        )
        asked = [m for m in recent if m.direction == "in" and not m.text.startswith("/")]
        question = asked[-1].text if asked else ""
    await escalate(conv, reason="asked", question=question)


def deadline_passed(ticket: Ticket, now: datetime) -> bool:
    return ticket.due_at is not None and now >= ticket.due_at
