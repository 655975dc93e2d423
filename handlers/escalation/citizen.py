"""The citizen's side of escalation: handing a question to staff, follow-ups joining their
ticket, reopening an answered one, urgent messages, and /operator.

One ticket is one question. A message joins a ticket only as a follow-up: a reply to one
of the ticket's messages in the citizen's chat (the "передал" notice, the staff answer), a
press of its buttons, or a question the FAQ cannot answer sent while the ticket still waits
for a staff answer. After staff have answered, a new unanswerable question opens a new
ticket; the answered one is reopened only by a reply to it (or "Не помогло" under the
answer). Tickets ended by /forget are never reopened.

The ticket row is written in the same transaction as the "передал ваш вопрос сотрудникам"
reply, so the citizen is never told about a ticket that does not exist."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bots.core.model import Button, ChatRef
from handlers.conversation import Conversation
from handlers.escalation import cards
from handlers.escalation.person import asks_for_person
from handlers.escalation.sla import WorkingCalendar
from handlers.institution import Institution
from handlers.urgency import detector
from storage.tickets import Ticket

log = logging.getLogger(__name__)

#: a citizen's follow-ups are forwarded at most this often; the rest wait on the card
FORWARD_INTERVAL = timedelta(seconds=60)
WAITING_FOR_QUESTION = "awaiting_operator_question"
#: references of messages in the citizen's chat that belong to a ticket: replying to one is
#: a follow-up of that ticket
NOTICE = "ticket_notice"
ANSWER = "ticket_answer"
CITIZEN_REFS = (NOTICE, ANSWER)
#: a ticket in these states still waits for a staff answer
AWAITING = ("open", "in_progress")
#: closed_by of the tickets /forget ended: they are never reopened
FORGOTTEN = "forget"


def calendar(inst: Institution) -> WorkingCalendar:
    return WorkingCalendar(inst.working_hours, inst.config.holidays, inst.zone)


def citizen_chat(ticket: Ticket) -> ChatRef:
    return ChatRef(ticket.platform, ticket.chat_id)


def is_urgent(conv: Conversation, text: str) -> bool:
    """Whether the message means danger to life or health, by the institution's rules."""
    urgent = conv.institution.config.urgent
    return detector(tuple(urgent.add), tuple(urgent.remove)).is_urgent(text)


async def awaiting_ticket(conv: Conversation, *, urgent: bool) -> Ticket | None:
    """The citizen's newest ticket that still waits for a staff answer. An urgent ticket is
    about its emergency: only urgent messages join it, never an unrelated question."""
    event = conv.event
    return await conv.storage.tickets.latest_for_citizen(
        conv.institution.id, event.platform, event.user.id, AWAITING, urgent=urgent
    )


async def escalate(
    conv: Conversation, *, reason: str, question: str | None = None, urgent: bool = False
) -> Ticket | None:
    """Hand a question the FAQ cannot answer to staff: it joins the citizen's ticket that
    still waits for a staff answer, or opens a new ticket."""
    inst = conv.institution
    text = (question if question is not None else conv.event.text or "").strip()
    if inst.staff_chat is None:
        if not urgent:  # the urgent notice already gave the numbers to call
            await conv.reply(conv.render("not_understood"))
        return None
    waiting = await awaiting_ticket(conv, urgent=urgent)
    if waiting is not None:
        await join(conv, waiting, text, urgent=urgent)
        return waiting
    return await open_ticket(conv, reason=reason, text=text, urgent=urgent)


def due_at(inst: Institution, now: datetime, *, urgent: bool) -> datetime:
    """An urgent ticket is due in minutes of clock time; any other in working hours."""
    if urgent:
        return now + inst.config.staff.urgent_response
    return calendar(inst).add(now, inst.config.staff.first_response)


async def open_ticket(conv: Conversation, *, reason: str, text: str, urgent: bool) -> Ticket:
    inst = conv.institution
    event = conv.event
    tickets = conv.storage.tickets
    ticket = await tickets.create(
        institution=inst.id,
        platform=event.platform,
        chat_id=event.chat.chat_id,
        user_id=event.user.id,
        citizen_name=event.user.display_name,
        question=text or "—",
        reason=reason,
        urgent=urgent,
        due_at=due_at(inst, conv.now, urgent=urgent),
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
    await tell_citizen_escalated(conv, ticket, calendar(inst))
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
    # urgent too: nobody may be at work to keep a promise of minutes (the template says so)
    out_of_hours = cal.has_hours and not cal.is_working(conv.now)
    expect_at = cal.next_working_moment(conv.now)
    await conv.reply(
        conv.render(
            "escalated",
            ticket=ticket.number,
            urgent=ticket.urgent,
            out_of_hours=out_of_hours,
            expect_at=inst.local_time(expect_at),
            due=inst.local_time(ticket.due_at) if ticket.due_at else None,
        ),
        ref_kind=NOTICE,
        ref_id=str(ticket.id),
    )


async def join(conv: Conversation, ticket: Ticket, text: str, *, urgent: bool = False) -> None:
    """A follow-up of a ticket that waits for staff: stored and shown on the card, and
    acknowledged to the citizen every time. Staff get it as a separate message at most once
    a minute (a flood becomes one ticket and a few staff messages, never a stream); the rest
    they read on the card."""
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
    if urgent and not ticket.urgent:
        changes["urgent"] = True
        soon = due_at(inst, conv.now, urgent=True)
        if ticket.due_at is None or soon < ticket.due_at:
            changes["due_at"] = soon
    forward = (
        ticket.last_forward_at is None or conv.now - ticket.last_forward_at >= FORWARD_INTERVAL
    )
    if forward and inst.staff_chat is not None:
        changes["last_forward_at"] = conv.now
        view = cards.ticket_view(ticket, inst, conv.now)
        view["urgent"] = urgent or ticket.urgent
        await conv.send(
            await staff_thread(conv, ticket),
            conv.render("ticket_forward", ticket=view, text=text),
            ref_kind=cards.FORWARD,
            ref_id=str(ticket.id),
        )
    await conv.reply(
        conv.render("ticket_joined", ticket=ticket.number), ref_kind=NOTICE, ref_id=str(ticket.id)
    )
    await tickets.update(ticket.id, conv.now, **changes)
    await refresh_card(conv, ticket.id)


async def reopen(conv: Conversation, ticket: Ticket, text: str, *, urgent: bool) -> Ticket:
    """An answered or closed ticket waits for staff again, with a fresh deadline."""
    inst = conv.institution
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
        due_at=due_at(inst, conv.now, urgent=urgent or ticket.urgent),
        urgent=urgent or ticket.urgent,
    )
    reopened = await conv.storage.tickets.get(ticket.id)
    assert reopened is not None
    await join(conv, reopened, text, urgent=urgent)
    log.info("ticket %s #%s reopened", inst.id, ticket.number)
    return reopened


async def resume(conv: Conversation, ticket: Ticket, text: str, *, urgent: bool = False) -> bool:
    """A follow-up of ``ticket``: joins it, reopening it when answered or recently closed.
    False when the ticket can no longer take follow-ups (ended by /forget, or closed longer
    than ``reopen_window`` ago): the message is then a question of its own."""
    if ticket.status in AWAITING:
        await join(conv, ticket, text, urgent=urgent)
        return True
    if ticket.status == "closed":
        window = conv.institution.config.staff.reopen_window
        if ticket.closed_by == FORGOTTEN or ticket.closed_at is None:
            return False
        if conv.now - ticket.closed_at > window:
            return False
    await reopen(conv, ticket, text, urgent=urgent)
    return True


async def replied_ticket(conv: Conversation) -> Ticket | None:
    """The ticket whose message in the citizen's chat this message replies to, if any."""
    event = conv.event
    if not event.reply_to:
        return None
    record = await conv.storage.outbox.find_sent(
        conv.institution.id, event.platform, event.chat.chat_id, event.reply_to
    )
    if record is None or record.ref_kind not in CITIZEN_REFS or not record.ref_id:
        return None
    ticket = await conv.storage.tickets.get(int(record.ref_id))
    if ticket is None or ticket.institution != conv.institution.id:
        return None
    if ticket.platform != event.platform or ticket.user_id != event.user.id:
        return None
    return ticket


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


async def claim_before_matching(conv: Conversation, text: str) -> str | None:
    """What takes a message before the FAQ does, and the outcome to log for it: urgent
    words (the emergency numbers at once, then staff), a reply to a ticket's message
    (a follow-up), the question an /operator command asked for, and a message that only
    asks for a person (taken as /operator). None: the FAQ's turn."""
    inst = conv.institution
    event = conv.event
    state_key = f"{inst.id}:{event.platform}:{event.user.id}"
    replied = await replied_ticket(conv)
    if is_urgent(conv, text):
        await conv.reply(conv.render("urgent"))
        if replied is None or not await resume(conv, replied, text, urgent=True):
            await escalate(conv, reason="urgent", question=text, urgent=True)
        return "escalate"  # what reports count as a question handed to staff
    if await conv.storage.kv.get(WAITING_FOR_QUESTION, state_key):
        await conv.storage.kv.delete(WAITING_FOR_QUESTION, state_key)
        await escalate(conv, reason="operator", question=text)
        return "escalate"
    if replied is not None and await resume(conv, replied, text):
        return "ticket"
    asked = await ticket_that_asked(conv)
    if asked is not None and await resume(conv, asked, text):
        return "ticket"
    if inst.staff_chat is not None and asks_for_person(text):
        await operator(conv, "")
        return "command"
    return None


async def ticket_that_asked(conv: Conversation) -> Ticket | None:
    """The ticket whose staff answer is the last thing the citizen saw and asks them a
    question («Как фамилия и класс ребёнка?»), within ``reopen_window``: the citizen's next
    message is the answer to it, sent as a reply or not. Parents on a phone simply type;
    their answer got the FAQ's choices, or joined an older waiting ticket, and the staff
    member who asked never saw it."""
    event = conv.event
    # the citizen's tickets first (indexed, and rarely one qualifies), the chat's last
    # message only then
    ticket = await conv.storage.tickets.latest_for_citizen(
        conv.institution.id, event.platform, event.user.id, ("answered",)
    )
    if ticket is None:
        return None
    last = await conv.storage.tickets.messages(ticket.id, limit=1)
    if not last or last[0].author != "staff" or "?" not in last[0].text:
        return None
    if conv.now - last[0].created_at > conv.institution.config.staff.reopen_window:
        return None
    latest = await conv.storage.outbox.latest_to_chat(conv.institution.id, event.chat)
    if latest is None or latest.ref_kind != ANSWER or latest.ref_id != str(ticket.id):
        return None
    return ticket


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


def answer_buttons(conv: Conversation, ticket: Ticket) -> list[list[Button]]:
    """Under a staff answer: "Не помогло" reopens the ticket."""
    return [[Button(conv.label("not_helped"), callback=f"esc:re:{ticket.id}")]]


async def on_callback(conv: Conversation, data: str) -> None:
    """``esc:ask[:<question log id>]`` hands a question to staff; ``esc:re:<ticket id>``
    ("Не помогло" under a staff answer) reopens that ticket; ``esc:no`` declines."""
    conv.answer_callback()
    parts = data.split(":")
    if parts[:2] == ["esc", "re"] and len(parts) == 3 and parts[2].isdigit():
        await not_helped(conv, int(parts[2]))
        return
    if parts[:2] != ["esc", "ask"]:
        return
    question = None
    if len(parts) == 3 and parts[2].isdigit() and int(parts[2]):
        logged = await conv.storage.log.get(int(parts[2]))
        if logged is not None and logged.user_id == conv.event.user.id:
            question = logged.text
    if question is None:
        await conv.flush_log()  # what this update logged counts among the recent
        recent = await conv.storage.log.recent(
            conv.institution.id, conv.event.platform, conv.event.chat.chat_id, limit=10
        )
        asked = [
            m
            for m in recent
            if m.direction == "in" and not m.text.startswith("/") and m.id != conv.logged_id
        ]
        question = asked[-1].text if asked else ""
    await escalate(conv, reason="asked", question=question)


async def not_helped(conv: Conversation, ticket_id: int) -> None:
    """The staff answer did not help: the ticket waits for staff again (a new ticket with
    the same question once the old one can no longer be reopened)."""
    event = conv.event
    ticket = await conv.storage.tickets.get(ticket_id)
    if (
        ticket is None
        or ticket.institution != conv.institution.id
        or ticket.platform != event.platform
        or ticket.user_id != event.user.id
    ):
        return  # a forged or foreign payload
    if ticket.closed_by == FORGOTTEN:
        await escalate(conv, reason="asked", question=conv.render("not_helped_note"))
        return
    note = conv.render("not_helped_note")
    if not await resume(conv, ticket, note):
        await escalate(conv, reason="asked", question=ticket.question)


def deadline_passed(ticket: Ticket, now: datetime) -> bool:
    return ticket.due_at is not None and now >= ticket.due_at
