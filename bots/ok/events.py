"""OK webhook bodies translated into neutral Events.

- ``MESSAGE_CREATED``: a citizen's text. The reply goes to ``recipient.chat_id`` (the
  citizen↔group dialog, ``chat:…``), which is the ChatRef's id; ``message.reply_to`` names
  the message replied to.
- ``MESSAGE_CALLBACK``: a pressed CALLBACK button; its ``payload`` string goes through
  bots.core.payloads (long ones are stored), ``callbackId`` lets the adapter answer it.
- ``CHAT_SYSTEM`` with ``type: CHAT_STARTED`` (a chat opened by a generated link [CODE, one
  client]) is ``/start`` with the link's payload; other system messages are ignored.

Every group-message chat is a dialog between one person and the group: the webhook has no
chat type [CODE comment], so every Event is PRIVATE, and an OK chat cannot be a staff chat.

``update_key`` comes from what identifies the update itself, so a redelivery (OK retries
a webhook that was not answered 200 within 5 s) gets the same key and the inbox skips it:
``message.mid`` for messages, ``callbackId`` for presses.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from bots.core.model import Callback, ChatKind, ChatRef, Event, User
from bots.core.payloads import PayloadStore, decode_payload
from bots.ok.models import Update

PLATFORM = "ok"
#: the event types asked for, explicitly, in every subscription
EVENT_TYPES = ("MESSAGE_CREATED", "MESSAGE_CALLBACK", "CHAT_SYSTEM")


def parse_update(raw: dict[str, Any]) -> Update | None:
    try:
        return Update.model_validate(raw)
    except ValidationError:
        return None


def kind_of(update: Update) -> str | None:
    """``webhookType``, or what the body shows when it is missing (the old docs' examples)."""
    if update.webhook_type:
        return update.webhook_type.upper()
    if update.callback_id:
        return "MESSAGE_CALLBACK"
    if update.message is not None:
        return "MESSAGE_CREATED"
    return None


def person(update: Update) -> User:
    sender = update.sender
    if sender is None:
        return User(id="")
    first, _, last = sender.name.strip().partition(" ")
    return User(id=sender.user_id, first_name=first, last_name=last.strip())


class Translator:
    """Turns one parsed update into an Event, or None (ignored)."""

    def __init__(self, institution: str, store: PayloadStore) -> None:
        self.institution = institution
        self._store = store
        #: ``group:…`` from me/info: a message signed by the group itself is not a citizen's
        self.group_id: str | None = None

    async def translate(self, update: Update) -> Event | None:
        chat_id = update.recipient.chat_id if update.recipient is not None else ""
        user = person(update)
        if not chat_id or not user.id or user.id.startswith("group:"):
            return None  # no dialog to answer in, or written by the group (a moderator)
        chat = ChatRef(PLATFORM, chat_id)
        common: dict[str, Any] = {
            "institution": self.institution,
            "platform": PLATFORM,
            "chat": chat,
            "user": user,
            "chat_kind": ChatKind.PRIVATE,
        }
        kind = kind_of(update)
        if kind == "MESSAGE_CREATED" and update.message is not None and update.message.mid:
            message = update.message
            return Event(
                **common,
                update_key=f"message:{message.mid}",
                text=message.text or "",
                message_id=message.mid,
                reply_to=message.reply_to or None,
            )
        if kind == "MESSAGE_CALLBACK" and update.callback_id:
            raw = update.payload if isinstance(update.payload, str) else ""
            data = await decode_payload(raw, self._store)
            return Event(
                **common,
                update_key=f"callback:{update.callback_id}",
                callback=Callback(id=update.callback_id, data=data or ""),
                message_id=update.mid or None,
            )
        if kind == "CHAT_SYSTEM" and (update.type or "").upper() == "CHAT_STARTED":
            payload = update.payload if isinstance(update.payload, str) else None
            return Event(
                **common,
                update_key=f"started:{chat_id}:{update.timestamp}",
                text="/start",
                start_payload=payload or None,
            )
        return None
