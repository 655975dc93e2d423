"""/forget for tickets: the ticket stays for statistics, the citizen's words and name go,
from the database (tickets, their messages, the stored card and forward payloads) and
from the card in the staff chat (an edit is queued). The citizen's tickets end for good:
each is closed as forgotten and never reopened, so a question written after /forget starts
a new ticket instead of joining an anonymised one."""

from __future__ import annotations

import json

from handlers.escalation import cards
from handlers.escalation.citizen import FORGOTTEN
from handlers.notify import queue_edit
from storage import Storage

REMOVED = "[удалено по просьбе гражданина]"


async def anonymise_tickets(
    storage: Storage, institution: str, platform: str, user_id: str, chat_id: str
) -> None:
    db = storage.db
    rows = await db.fetchall(
        "SELECT id FROM tickets WHERE institution=? AND platform=? AND user_id=?",
        (institution, platform, user_id),
    )
    ids = [str(r["id"]) for r in rows]
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
    marks = ",".join("?" * len(ids))
    blank = json.dumps({"text": REMOVED, "buttons": [], "reply_to": None, "silent": False})
    await db.execute(
        f"UPDATE outbox SET reply=? WHERE institution=? AND ref_kind IN (?,?,?)"
        f" AND ref_id IN ({marks})",
        (blank, institution, cards.CARD, cards.FORWARD, cards.TOPIC, *ids),
    )
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
