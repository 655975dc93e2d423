"""/forget for tickets: the ticket stays for statistics, the citizen's words and name go,
from the database (tickets, their messages and the staff answers that quote them, the
stored card, forward, /ticket N and /tickets payloads) and from the card in the staff chat
(an edit is queued). The citizen's tickets end for good:
each is closed as forgotten and never reopened, so a question written after /forget starts
a new ticket instead of joining an anonymised one."""

from __future__ import annotations

from bots.core.model import Reply
from handlers.escalation import cards
from handlers.escalation.citizen import FORGOTTEN
from handlers.notify import queue_edit
from storage import Storage

REMOVED = "[удалено по просьбе гражданина]"


async def anonymise_tickets(
    storage: Storage, institution: str, platform: str, user_id: str, chat_id: str
) -> None:
    ids = await storage.tickets.ids_of_citizen(institution, platform, user_id)
    if not ids:
        return
    await storage.tickets.anonymise_citizen(institution, platform, user_id)
    now = storage.now()
    for ticket_id in ids:
        ticket = await storage.tickets.get(int(ticket_id))
        if ticket is not None:
            await storage.tickets.update(
                ticket.id,
                now,
                status="closed",
                closed_at=ticket.closed_at or now,
                closed_by=FORGOTTEN,
            )
    removed = Reply(text=REMOVED)
    refs = (cards.CARD, cards.FORWARD, cards.TOPIC, cards.HISTORY)
    await storage.outbox.replace_replies(institution, refs, ids, removed)
    # a /tickets answer lists several citizens' tickets: its stored copy goes whole (the
    # staff chat still shows the message; nothing reads the copy once it is sent)
    await storage.outbox.replace_replies(institution, (cards.LIST,), None, removed)
    for ticket_id in ids:
        await queue_edit(
            storage,
            institution,
            cards.CARD,
            ticket_id,
            REMOVED,
            dedup_key=f"forget:{ticket_id}:card",
            now=now,
        )
