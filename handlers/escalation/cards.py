"""The ticket card in the staff chat: one renderer for the first post and every edit, so
the card always shows the ticket's current state (taken by, answered by, closed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bots.core.model import Button
from handlers.institution import Institution
from storage.tickets import Ticket, TicketMessage

CARD = "ticket_card"
FORWARD = "ticket_msg"
TOPIC = "topic"
#: sent-message references that identify a ticket when staff reply to them
TICKET_REFS = (CARD, FORWARD, TOPIC)
#: the staff chat's /ticket N answer (a ticket's history) and /tickets answer (a list):
#: copies of citizens' words that /forget blanks in the outbox
HISTORY = "ticket_history"
LIST = "tickets_list"
#: what a staff member may reply to in order to answer a ticket: a ticket's history names
#: one ticket as plainly as its card does (a list names many, so it answers none)
ANSWERABLE_REFS = (*TICKET_REFS, HISTORY)


def ticket_view(ticket: Ticket, inst: Institution, now: datetime) -> dict[str, Any]:
    """What templates see as ``ticket``."""
    return {
        "id": ticket.id,
        "number": ticket.number,
        "platform": ticket.platform,
        "citizen": ticket.citizen_name or "гражданин",
        "question": ticket.question,
        "status": ticket.status,
        "urgent": ticket.urgent,
        "assignee": ticket.assignee_name,
        "closed_by": ticket.closed_by,
        "created": inst.local_time(ticket.created_at),
        "due": inst.local_time(ticket.due_at) if ticket.due_at else None,
        "age_minutes": int((now - ticket.created_at).total_seconds() // 60),
    }


def card(
    inst: Institution,
    ticket: Ticket,
    recent: list[TicketMessage],
    now: datetime,
    *,
    answered_by: str | None = None,
) -> tuple[str, list[list[Button]]]:
    text = inst.texts.render(
        "ticket_card",
        now=inst.local_time(now),
        ticket=ticket_view(ticket, inst, now),
        recent=[{"author": m.author, "name": m.author_name, "text": m.text} for m in recent],
        answered_by=answered_by,
    )
    buttons: list[list[Button]] = []
    if ticket.status != "closed":
        row = []
        if ticket.status == "open":
            row.append(Button(inst.texts.label("take"), callback=f"tk:take:{ticket.id}"))
        row.append(Button(inst.texts.label("close"), callback=f"tk:close:{ticket.id}"))
        buttons.append(row)
    return text, buttons
