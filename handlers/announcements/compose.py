"""An ad-hoc announcement from the staff chat.

``/announce`` -> the bot asks for the text -> the member's next message is the text -> a
preview with "Отправить" / "Отмена" -> the broadcast, whose progress and final report go to
the staff chat. The draft lives in storage.kv (scope ``announce.draft``, one per member and
chat), so a restart between the steps loses nothing; the buttons carry the draft's token and
are honoured only for the member who wrote that draft.
"""

from __future__ import annotations

import json
import logging
import secrets

from bots.core.model import Button
from handlers.announcements.labels import label
from handlers.announcements.schedule import DEFAULT_QUIET_HOURS, after_quiet_hours
from handlers.announcements.wakeup import wake
from handlers.conversation import Conversation
from handlers.texts import escape
from storage.announcements import Audience, BroadcastRepo, SubscriptionRepo

log = logging.getLogger(__name__)

DRAFT_SCOPE = "announce.draft"


def _draft_key(conv: Conversation) -> str:
    e = conv.event
    return f"{e.institution}:{e.platform}:{e.chat.chat_id}:{e.user.id}"


async def _draft(conv: Conversation) -> dict[str, str] | None:
    raw = await conv.storage.kv.get(DRAFT_SCOPE, _draft_key(conv))
    return json.loads(raw) if raw else None


async def announce(conv: Conversation, args: str) -> None:
    draft = {"step": "text", "token": secrets.token_hex(6)}
    await conv.storage.kv.set(DRAFT_SCOPE, _draft_key(conv), json.dumps(draft))
    await conv.reply(conv.render("announce_ask"), log=False)


def _send_at(conv: Conversation) -> str | None:
    """Local time the broadcast would start, when quiet hours hold it back."""
    start = after_quiet_hours(conv.now, DEFAULT_QUIET_HOURS, conv.institution.zone)
    if start == conv.now:
        return None
    return conv.institution.local_time(start).strftime("%H:%M")


async def take_text(conv: Conversation) -> bool:
    """The member's message after /announce is the announcement's text."""
    draft = await _draft(conv)
    if draft is None or draft.get("step") != "text":
        return False
    text = (conv.event.text or "").strip()
    if not text:
        return False
    draft = {"step": "preview", "token": draft["token"], "text": str(escape(text))}
    await conv.storage.kv.set(DRAFT_SCOPE, _draft_key(conv), json.dumps(draft, ensure_ascii=False))
    inst = conv.institution
    subscribers = await SubscriptionRepo(conv.storage.db).count(inst.id)
    texts = inst.texts
    buttons = [
        [
            Button(label(texts, "send"), callback=f"ann:send:{draft['token']}"),
            Button(label(texts, "cancel"), callback=f"ann:cancel:{draft['token']}"),
        ]
    ]
    preview = conv.render(
        "announce_preview", text=escape(text), subscribers=subscribers, send_at=_send_at(conv)
    )
    await conv.reply(preview, buttons, log=False)
    return True


async def on_button(conv: Conversation, data: str) -> None:
    parts = data.split(":")
    action, token = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
    draft = await _draft(conv)
    if draft is None or draft.get("step") != "preview" or draft.get("token") != token:
        conv.answer_callback(conv.render("announce_expired"))
        return
    conv.answer_callback()
    await conv.storage.kv.delete(DRAFT_SCOPE, _draft_key(conv))
    if action != "send":
        await conv.reply(conv.render("announce_cancelled"), log=False)
        return
    inst = conv.institution
    chat = conv.event.chat
    new_id = await BroadcastRepo(conv.storage.db).create(
        institution=inst.id,
        announcement_id=f"staff-{token}",
        scheduled_for=conv.now,
        send_after=after_quiet_hours(conv.now, DEFAULT_QUIET_HOURS, inst.zone),
        text=draft["text"],
        audience=Audience(subscribers=True),
        origin="staff",
        now=conv.now,
        report_to=(chat.platform, chat.chat_id, chat.thread_id),
    )
    log.info("staff %s queued broadcast %s for %s", conv.event.user.id, new_id, inst.id)
    await conv.reply(conv.render("announce_started", send_at=_send_at(conv)), log=False)
    storage = conv.storage

    async def wake_broadcaster() -> None:  # after the commit, on the event loop
        wake(storage)

    conv.extras.setdefault("after_commit", []).append(wake_broadcaster)
