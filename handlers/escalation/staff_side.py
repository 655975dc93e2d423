"""The staff's side: answering a ticket (a reply to its card or to a forwarded message, a
message inside its forum topic, or /reply N), Take and Close, and the staff commands.

Only members reach this module: handlers/staff.py drops everyone else first."""

from __future__ import annotations

import logging
import re
import statistics
from datetime import datetime, timedelta

from handlers.conversation import Conversation
from handlers.escalation import cards
from handlers.escalation.citizen import (
    ANSWER,
    NOTICE,
    answer_buttons,
    citizen_chat,
    refresh_card,
)
from handlers.staff import member_name
from storage.tickets import ACTIVE, Ticket

log = logging.getLogger(__name__)


#: "Обращение № 12", "обращению № 12": how every card, forward and reminder names its ticket
_TICKET_NUMBER = re.compile(r"[Оо]бращени\w*\s*№\s*(\d+)")


async def _ticket_of_message(conv: Conversation) -> Ticket | None:
    """The ticket a staff message answers: by the message it replies to, or its topic.

    A reply to a bot message the bot has no record of (a card posted again after a crash
    left the first copy unrecorded, an old reminder) is mapped by the ticket number the
    replied-to text carries; the adapters give that text only for the bot's own messages,
    so nobody can steer an answer by quoting a number."""
    event = conv.event
    outbox = conv.storage.outbox
    for message_id in (event.reply_to, event.chat.thread_id):
        if not message_id:
            continue
        record = await outbox.find_sent(
            conv.institution.id, event.platform, event.chat.chat_id, message_id
        )
        if record is None and message_id == event.reply_to and event.replied_bot_text:
            found = _TICKET_NUMBER.search(event.replied_bot_text)
            if found is not None:
                number = int(found.group(1))
                return await conv.storage.tickets.by_number(conv.institution.id, number)
        if record is not None and record.ref_kind in cards.ANSWERABLE_REFS and record.ref_id:
            ticket = await conv.storage.tickets.get(int(record.ref_id))
            if ticket is not None and ticket.institution == conv.institution.id:
                return ticket
    return None


async def _by_number(conv: Conversation, text: str) -> Ticket | None:
    number = text.strip().lstrip("№#").strip()
    if not number.isdigit():
        await conv.reply(conv.render("staff_bad_number", text=text[:20]))
        return None
    ticket = await conv.storage.tickets.by_number(conv.institution.id, int(number))
    if ticket is None:
        await conv.reply(conv.render("staff_bad_number", text=number))
    return ticket


async def answer_by_reply(conv: Conversation) -> bool:
    ticket = await _ticket_of_message(conv)
    if ticket is None:
        return False
    await deliver_answer(conv, ticket, conv.event.text or "")
    return True


async def reply_command(conv: Conversation, args: str) -> None:
    number, _, text = args.partition(" ")
    if not text.strip():
        await conv.reply(conv.render("staff_usage", command="/reply N текст ответа"))
        return
    ticket = await _by_number(conv, number)
    if ticket is not None:
        await deliver_answer(conv, ticket, text.strip())


async def deliver_answer(conv: Conversation, ticket: Ticket, text: str) -> None:
    """The staff member's words reach the citizen on the citizen's platform."""
    text = text.strip()
    if not text:
        return
    name = member_name(conv)
    if ticket.status == "closed":
        await conv.reply(conv.render("staff_ticket_closed", number=ticket.number))
        return
    await conv.send(
        citizen_chat(ticket),
        conv.institution.texts.render(
            "staff_answer",
            user=ticket.citizen_name,
            now=conv.institution.local_time(conv.now),
            staff=name,
            text=text,
            number=ticket.number,
        ),
        answer_buttons(conv, ticket),
        ref_kind=ANSWER,
        ref_id=str(ticket.id),
    )
    tickets = conv.storage.tickets
    await tickets.add_message(
        ticket.id,
        author="staff",
        author_id=conv.event.user.id,
        author_name=name,
        text=text,
        now=conv.now,
    )
    changes: dict[str, object] = {"status": "answered", "answered_at": conv.now}
    if ticket.first_response_at is None:
        changes["first_response_at"] = conv.now
    if ticket.assignee_id is None:
        changes["assignee_id"] = conv.event.user.id
        changes["assignee_name"] = name
    await tickets.update(ticket.id, conv.now, **changes)
    await refresh_card(conv, ticket.id, answered_by=name)
    log.info(
        "ticket %s #%s answered by staff %s", ticket.institution, ticket.number, conv.event.user.id
    )


async def on_ticket_button(conv: Conversation, data: str) -> None:
    """``tk:take:<id>`` and ``tk:close:<id>`` from a card's buttons."""
    parts = data.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        conv.answer_callback()
        return
    ticket = await conv.storage.tickets.get(int(parts[2]))
    if ticket is None or ticket.institution != conv.institution.id:
        conv.answer_callback(conv.render("staff_bad_number", text=parts[2]))
        return
    if parts[1] == "take":
        await take(conv, ticket)
    elif parts[1] == "close":
        await close(conv, ticket)
    else:
        conv.answer_callback()


async def take(conv: Conversation, ticket: Ticket) -> None:
    name = member_name(conv)
    if ticket.status == "open":
        await conv.storage.tickets.update(
            ticket.id,
            conv.now,
            status="in_progress",
            assignee_id=conv.event.user.id,
            assignee_name=name,
        )
        await refresh_card(conv, ticket.id)
    conv.answer_callback(
        conv.render("staff_took", number=ticket.number, staff=ticket.assignee_name or name)
    )


async def close(conv: Conversation, ticket: Ticket, *, notify_citizen: bool = True) -> None:
    name = member_name(conv)
    if ticket.status != "closed":
        await conv.storage.tickets.update(
            ticket.id, conv.now, status="closed", closed_at=conv.now, closed_by=name
        )
        await refresh_card(conv, ticket.id)
        if notify_citizen:
            await conv.send(
                citizen_chat(ticket),
                conv.institution.texts.render(
                    "ticket_closed",
                    user=ticket.citizen_name,
                    now=conv.institution.local_time(conv.now),
                    number=ticket.number,
                ),
                ref_kind=NOTICE,
                ref_id=str(ticket.id),
            )
    conv.answer_callback(conv.render("staff_closed", number=ticket.number))


async def close_command(conv: Conversation, args: str) -> None:
    ticket = await _by_number(conv, args)
    if ticket is not None:
        await close(conv, ticket)
        await conv.reply(conv.render("staff_closed", number=ticket.number))


async def list_command(conv: Conversation, args: str) -> None:
    tickets = await conv.storage.tickets.find(conv.institution.id, ACTIVE, limit=30)
    # what still needs an answer before what was answered (a stable sort keeps urgent
    # first and then the oldest first, as the storage gives them)
    tickets.sort(key=lambda t: (not t.urgent, t.status == "answered"))
    views = [cards.ticket_view(t, conv.institution, conv.now) for t in tickets]
    await conv.reply(conv.render("tickets_list", tickets=views), ref_kind=cards.LIST)


async def show_command(conv: Conversation, args: str) -> None:
    if not args.strip():
        await conv.reply(conv.render("staff_usage", command="/ticket N (N — номер обращения)"))
        return
    ticket = await _by_number(conv, args)
    if ticket is None:
        return
    history = await conv.storage.tickets.messages(ticket.id, limit=50)
    await conv.reply(
        conv.render(
            "ticket_history",
            ticket=cards.ticket_view(ticket, conv.institution, conv.now),
            history=[
                {
                    "author": m.author,
                    "name": m.author_name,
                    "text": m.text,
                    "at": conv.institution.local_time(m.created_at),
                }
                for m in history
            ],
        ),
        ref_kind=cards.HISTORY,
        ref_id=str(ticket.id),
    )


async def stats_command(conv: Conversation, args: str) -> None:
    inst = conv.institution
    local_now = inst.local_time(conv.now)
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    since: datetime = midnight
    outcomes = await conv.storage.log.outcome_counts(inst.id, since)
    tickets = await conv.storage.tickets.counts_since(inst.id, since)
    minutes = tickets["response_minutes"]
    median = statistics.median(minutes) if minutes else None
    await conv.reply(
        conv.render(
            "staff_stats",
            questions=sum(v for k, v in outcomes.items() if k != "command"),
            answered=outcomes.get("answer", 0),
            clarified=outcomes.get("clarify", 0),
            escalated=tickets["created"],
            breached=tickets["breached"],
            median_response=timedelta(minutes=median) if median is not None else None,
        )
    )
