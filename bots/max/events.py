"""MAX updates translated into neutral Events.

- ``message_created``: a text. ``recipient.chat_type`` tells a dialog (PRIVATE) from a group
  chat (GROUP) or a channel; a staff member's reply names the card it answers through
  ``link.type == "reply"`` and ``link.message.mid``. The bot's own messages and other bots'
  are ignored (in a group the bot may hear itself).
- ``message_callback``: a callback button was pressed; the payload goes through
  bots.core.payloads (long ones are stored) and the callback_id lets the adapter answer it.
- ``bot_started``: the user pressed "Start" (or followed a deep link ``?start=...``): the app
  sees ``/start`` with the link's payload as ``start_payload``.
- ``bot_stopped``: the user stopped the bot: ``membership="blocked"``.

Chats are named by MAX's ``chat_id`` everywhere, dialogs included, so that sending, a pressed
button, bot_started and bot_stopped all refer to the same ChatRef. A dialog message that
arrives without a chat_id (the schema allows it) is named ``u<user_id>`` and sent to by
user_id.

``update_key`` is built from what identifies the update itself, so the same update delivered
twice (long poll after a crash, or a webhook retry) gets the same key: the message's ``mid``,
the press's ``callback_id``, and for start/stop the chat, user and timestamp.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from bots.core.model import Callback, ChatKind, ChatRef, Event, User
from bots.core.payloads import PayloadStore, decode_payload
from bots.max.models import MaxUser, Message, Update

PLATFORM = "max"
#: the update types the adapter consumes (asked for in GET /updates and subscriptions)
UPDATE_TYPES = ("message_created", "message_callback", "bot_started", "bot_stopped")
USER_CHAT_PREFIX = "u"
_KINDS = {"dialog": ChatKind.PRIVATE, "chat": ChatKind.GROUP, "channel": ChatKind.CHANNEL}


def parse_update(raw: dict[str, Any]) -> Update | None:
    """An Update, or None when the payload does not have the schema's shape."""
    try:
        return Update.model_validate(raw)
    except ValidationError:
        return None


def person(user: MaxUser | None) -> User:
    if user is None:
        return User(id="")
    first = user.first_name or (user.name or "")
    return User(
        id=str(user.user_id),
        first_name=first,
        last_name=user.last_name or "",
        username=user.username or None,
    )


class Translator:
    """Turns one parsed update into an Event, or None (ignored)."""

    def __init__(self, institution: str, store: PayloadStore) -> None:
        self.institution = institution
        self._store = store
        self.bot_id: int | None = None
        self._mention: re.Pattern[str] | None = None

    def know_bot(self, bot_id: int, username: str | None) -> None:
        """Learn who the bot is: its own messages are skipped, "@bot вопрос" is "вопрос"."""
        self.bot_id = bot_id
        if username:
            self._mention = re.compile(rf"^\s*@{re.escape(username)}\b[\s,:]*", re.IGNORECASE)

    async def translate(self, update: Update) -> Event | None:
        kind = update.update_type
        if kind == "message_created" and update.message is not None:
            return self._message(update.message, update)
        if kind == "message_callback" and update.callback is not None:
            return await self._callback(update)
        if kind in ("bot_started", "bot_stopped") and update.user is not None:
            return self._start_stop(update)
        return None

    def _message(self, message: Message, update: Update) -> Event | None:
        sender = message.sender
        if sender is None or sender.is_bot or sender.user_id == self.bot_id:
            return None  # a channel post, another bot, or the bot itself
        chat, kind = chat_of(message, sender.user_id)
        text = message.body.text or ""
        if kind is not ChatKind.PRIVATE and self._mention is not None:
            text = self._mention.sub("", text, count=1)
        link = message.link
        reply_to = link.message.mid if link is not None and link.type == "reply" else None
        replied_bot_text = None
        if reply_to is not None and link is not None and link.sender is not None:
            if link.sender.user_id == self.bot_id:
                replied_bot_text = link.message.text
        return Event(
            institution=self.institution,
            platform=PLATFORM,
            chat=chat,
            user=person(sender),
            update_key=f"message_created:{message.body.mid}",
            chat_kind=kind,
            text=text,
            message_id=message.body.mid,
            reply_to=reply_to,
            replied_bot_text=replied_bot_text,
        )

    async def _callback(self, update: Update) -> Event | None:
        callback = update.callback
        assert callback is not None
        message = update.message
        if message is not None:
            chat, kind = chat_of(message, callback.user.user_id)
            message_id: str | None = message.body.mid
        else:  # the message was deleted meanwhile: the press came from the user's dialog
            chat, kind = (
                ChatRef(PLATFORM, f"{USER_CHAT_PREFIX}{callback.user.user_id}"),
                (ChatKind.PRIVATE),
            )
            message_id = None
        data = await decode_payload(callback.payload or "", self._store)
        return Event(
            institution=self.institution,
            platform=PLATFORM,
            chat=chat,
            user=person(callback.user),
            update_key=f"message_callback:{callback.callback_id}",
            chat_kind=kind,
            callback=Callback(id=callback.callback_id, data=data or ""),
            message_id=message_id,
        )

    def _start_stop(self, update: Update) -> Event:
        user = update.user
        assert user is not None
        chat_id = (
            str(update.chat_id)
            if update.chat_id is not None
            else f"{USER_CHAT_PREFIX}{user.user_id}"
        )
        key = f"{update.update_type}:{chat_id}:{user.user_id}:{update.timestamp}"
        common: dict[str, Any] = {
            "institution": self.institution,
            "platform": PLATFORM,
            "chat": ChatRef(PLATFORM, chat_id),
            "user": person(user),
            "update_key": key,
        }
        if update.update_type == "bot_stopped":
            return Event(**common, membership="blocked")
        return Event(**common, text="/start", start_payload=update.payload or None)


def chat_of(message: Message, user_id: int) -> tuple[ChatRef, ChatKind]:
    recipient = message.recipient
    kind = _KINDS.get(recipient.chat_type, ChatKind.GROUP)
    if recipient.chat_id is None:
        return ChatRef(PLATFORM, f"{USER_CHAT_PREFIX}{user_id}"), ChatKind.PRIVATE
    return ChatRef(PLATFORM, str(recipient.chat_id)), kind
