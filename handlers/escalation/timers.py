"""Time-driven escalation work: SLA reminders before the deadline, a breach notice that
mentions the supervisors after it, and closing answered tickets after a quiet period.

:func:`tick` does one pass and is what tests call under a ManualClock; :func:`install`
runs it every minute on the app's clock. Each notice has a deterministic dedup key and the
ticket row records it, so a pass repeated after a crash sends nothing twice."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from bots.core.background import Periodic
from handlers.escalation import cards
from handlers.feature import Host
from handlers.institution import Institution
from handlers.notify import queue_edit, queue_message
from storage import Storage
from storage.tickets import Ticket

log = logging.getLogger(__name__)

TICK_SECONDS = 60.0


async def tick(storage: Storage, institutions: dict[str, Institution], now: datetime) -> int:
    """One pass over every institution; returns how many notices were queued."""
    queued = 0
    longest = max(
        (i.config.staff.remind_before for i in institutions.values()), default=timedelta(0)
    )
    async with storage.transaction():
        for ticket in await storage.tickets.needing_sla_action(now + longest):
            inst = institutions.get(ticket.institution)
            if inst is None or inst.staff_chat is None or ticket.due_at is None:
                continue
            if now >= ticket.due_at:
                await _breach(storage, inst, ticket, now)
                queued += 1
            elif ticket.reminded_at is None and now >= ticket.due_at - _remind_before(inst, ticket):
                await _remind(storage, inst, ticket, now)
                queued += 1
        for inst in institutions.values():
            cutoff = now - inst.config.staff.auto_close
            for ticket in await storage.tickets.quiet_answered(cutoff):
                if ticket.institution == inst.id:
                    await _auto_close(storage, inst, ticket, now)
                    queued += 1
    return queued


def _remind_before(inst: Institution, ticket: Ticket) -> timedelta:
    """How long before its deadline a ticket is reminded of: an urgent ticket, due in
    minutes, halfway through its time rather than at once."""
    staff = inst.config.staff
    if ticket.urgent:
        return min(staff.remind_before, staff.urgent_response / 2)
    return staff.remind_before


def _render(inst: Institution, name: str, now: datetime, **context: Any) -> str:
    return inst.texts.render(name, now=inst.local_time(now), **context)


async def _remind(storage: Storage, inst: Institution, ticket: Ticket, now: datetime) -> None:
    assert inst.staff_chat is not None
    await queue_message(
        storage,
        inst.id,
        inst.staff_chat,
        _render(inst, "sla_reminder", now, ticket=cards.ticket_view(ticket, inst, now)),
        dedup_key=f"sla:{ticket.id}:{ticket.due_at}:remind",
        now=now,
        ref_kind=cards.FORWARD,
        ref_id=str(ticket.id),
    )
    await storage.tickets.update(ticket.id, now, reminded_at=now)
    log.info("ticket %s #%s: SLA reminder", inst.id, ticket.number)


async def _breach(storage: Storage, inst: Institution, ticket: Ticket, now: datetime) -> None:
    assert inst.staff_chat is not None
    supervisors = [
        {"name": m.name, "id": m.id, "platform": m.platform}
        for m in inst.config.staff.members
        if m.supervisor
    ]
    await queue_message(
        storage,
        inst.id,
        inst.staff_chat,
        _render(
            inst,
            "sla_breach",
            now,
            ticket=cards.ticket_view(ticket, inst, now),
            supervisors=supervisors,
            chat_platform=inst.staff_chat.platform,
        ),
        dedup_key=f"sla:{ticket.id}:{ticket.due_at}:breach",
        now=now,
        ref_kind=cards.FORWARD,
        ref_id=str(ticket.id),
    )
    await storage.tickets.update(
        ticket.id, now, breached_at=now, reminded_at=ticket.reminded_at or now
    )
    log.warning("ticket %s #%s: first response deadline passed", inst.id, ticket.number)


async def _auto_close(storage: Storage, inst: Institution, ticket: Ticket, now: datetime) -> None:
    await storage.tickets.update(ticket.id, now, status="closed", closed_at=now, closed_by="auto")
    closed = await storage.tickets.get(ticket.id)
    assert closed is not None
    recent = await storage.tickets.messages(ticket.id, limit=5)
    text, buttons = cards.card(inst, closed, recent, now)
    await queue_edit(
        storage,
        inst.id,
        cards.CARD,
        str(ticket.id),
        text,
        buttons,
        dedup_key=f"autoclose:{ticket.id}:{ticket.updated_at}",
        now=now,
    )
    log.info("ticket %s #%s closed after a quiet period", inst.id, ticket.number)


def install(app: Host) -> None:
    """Run :func:`tick` every minute of the app's clock while the app runs."""

    async def run() -> None:
        assert app.storage is not None and app.sender is not None  # runs only while started
        if await tick(app.storage, app.institutions, app.clock.now()):
            app.sender.wake()

    job = Periodic("escalation-timers", run, TICK_SECONDS, app.clock)

    async def start(_: Any) -> None:
        job.start()

    async def stop(_: Any) -> None:
        await job.stop()

    app.on_start.append(start)
    app.on_stop.append(stop)
