"""Staff hear about a refused OK token: an app feature (listed in runtime/features.py).
It also masks each group's webhook path secret in the logs (the server's access log
would show it), since a derived one is not in the config's secrets.

This module is runtime, not adapter: it wires the OK group's ``token_hooks`` to the
outbox, queueing the ``ok_token_refused.j2`` notice into the institution's staff chat (which
is on Telegram, VK or MAX: OK has no staff chats). One notice a day at most per
institution: the dedup key carries the date.
"""

from __future__ import annotations

import logging

from handlers.feature import Host
from handlers.notify import queue_message
from runtime import logs
from storage.times import iso

log = logging.getLogger(__name__)


def install(app: Host) -> None:
    async def on_start(_: Host) -> None:
        group = app.groups.get("ok")
        hooks = getattr(group, "token_hooks", None)
        if hooks is None:
            return
        logs.add_secrets(p.hook for p in getattr(group, "ok", {}).values())

        async def tell_staff(institution_id: str, reason: str) -> None:
            institution = app.institutions.get(institution_id)
            storage = app.storage
            if institution is None or institution.staff_chat is None or storage is None:
                return
            now = app.clock.now()
            text = institution.texts.render("ok_token_refused")
            async with storage.transaction():
                await queue_message(
                    storage,
                    institution_id,
                    institution.staff_chat,
                    text,
                    dedup_key=f"ok-token:{institution_id}:{iso(now)[:10]}",
                    now=now,
                )
            if app.sender is not None:
                app.sender.wake()

        hooks.append(tell_staff)

    app.on_start.append(on_start)
