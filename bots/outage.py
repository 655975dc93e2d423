"""After an outage of a messenger, the staff get one summary of what was delayed.

The sender (bots/sender.py) notices when an account's sends work again after failing for a
while and calls the hook installed here. Citizens' replies and ticket cards the outage held
back go out on their own (nothing is given up); this only tells the staff that they were
late, once per outage, so that nobody wonders why a card from an hour ago arrives now.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from handlers.notify import queue_message
from storage.times import iso

if TYPE_CHECKING:
    from bots.app import App

log = logging.getLogger(__name__)

#: how the platforms are called in the staff's messages
PLATFORM_NAMES = {"telegram": "Telegram", "vk": "ВКонтакте", "max": "MAX", "ok": "Одноклассники"}


def install(app: App) -> None:
    async def hook(institution_id: str, platform: str, since: datetime, until: datetime) -> None:
        await tell_staff(app, institution_id, platform, since, until)

    def on_start(app: App) -> None:
        if app.sender is not None:
            app.sender.recovery_hooks.append(hook)

    app.on_start.append(on_start)


async def tell_staff(
    app: App, institution_id: str, platform: str, since: datetime, until: datetime
) -> None:
    """Queue the summary of one account's outage to its institution's staff chat."""
    storage = app.storage
    institution = app.institutions.get(institution_id)
    if storage is None or institution is None or institution.staff_chat is None:
        return
    staff = institution.staff_chat
    counts = await storage.outbox.delayed_by_chat(institution_id, platform, since)
    staff_messages = counts.pop(staff.chat_id, 0) if staff.platform == platform else 0
    text = institution.texts.render(
        "delivery_resumed",
        now=institution.local_time(until),
        platform=PLATFORM_NAMES.get(platform, platform),
        since=institution.local_time(since),
        until=institution.local_time(until),
        minutes=max(1, round((until - since).total_seconds() / 60)),
        citizen_messages=sum(counts.values()),
        citizen_chats=len(counts),
        staff_messages=staff_messages,
    )
    await queue_message(
        storage,
        institution_id,
        staff,
        text,
        dedup_key=f"outage:{institution_id}:{platform}:{iso(since)}",
        now=until,
    )
    log.warning(
        "%s of %s was out since %s: %d delayed message(s); staff told",
        platform,
        institution_id,
        iso(since),
        sum(counts.values()) + staff_messages,
    )
    if app.sender is not None:
        app.sender.wake()
