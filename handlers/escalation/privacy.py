"""/forget for tickets: the ticket stays for statistics, the citizen's words and name go,
from the database (tickets, their messages, the stored card and forward payloads) and
from the card in the staff chat (an edit is queued)."""

from __future__ import annotations

from bots.core.model import Reply
from handlers.escalation import cards
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
    await storage.outbox.replace_replies(
        institution, (cards.CARD, cards.FORWARD, cards.TOPIC), ids, Reply(text=REMOVED)
    )
    now = storage.now()
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
