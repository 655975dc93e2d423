"""Bots Long Poll events (API 5.199) translated into neutral Events.

- ``message_new``: a text (or a text-button press, whose payload makes it a callback);
  in a conversation (peer_id >= 2000000000) it is a GROUP event and a reply to one of the
  bot's messages names that message by its conversation_message_id.
- ``message_event``: a callback button was pressed; answered with sendMessageEventAnswer.
- ``message_deny`` / ``message_allow``: the user forbade / allowed messages from the
  community, i.e. blocked / unblocked the bot.

Message ids are conversation_message_ids everywhere (sent messages, edits, replies,
pressed buttons): they exist in private chats and conversations alike, while a community
gets no global message id for messages in a conversation.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bots.core.model import Callback, ChatKind, ChatRef, Event, User
from bots.core.payloads import PayloadStore, decode_payload
from bots.vk.keyboard import parse_payload

PLATFORM = "vk"
#: peer ids of conversations (multi-user chats) start here
CONVERSATION_PEER_BASE = 2_000_000_000


@dataclass(frozen=True, slots=True)
class PageTurn:
    """A press on "Ещё ›" / "‹ Назад": the adapter shows another page of a keyboard."""

    peer_id: int
    user_id: int
    event_id: str
    conversation_message_id: int
    pages_key: str
    page: int


NameLookup = Callable[[int], Awaitable[User]]


def chat_kind(peer_id: int) -> ChatKind:
    return ChatKind.GROUP if peer_id >= CONVERSATION_PEER_BASE else ChatKind.PRIVATE


class Translator:
    """Turns one raw long-poll update into an Event, a PageTurn, or None (ignored)."""

    def __init__(
        self, institution: str, group_id: int, store: PayloadStore, users: NameLookup
    ) -> None:
        self.institution = institution
        self.group_id = group_id
        self._store = store
        self._users = users
        # "[club123|@school] текст": how a conversation addresses the bot
        self._mention = re.compile(rf"^\s*\[(?:club|public){group_id}\|[^\]]*\][\s,:]*")

    async def translate(self, raw: dict[str, Any]) -> Event | PageTurn | None:
        kind = raw.get("type")
        obj = raw.get("object") or {}
        key = str(raw.get("event_id") or "")
        if kind == "message_new":
            return await self._message(obj.get("message") or obj, key)
        if kind == "message_event":
            return await self._button(obj, key)
        if kind in ("message_deny", "message_allow"):
            user_id = int(obj["user_id"])
            return Event(
                institution=self.institution,
                platform=PLATFORM,
                chat=ChatRef(PLATFORM, str(user_id)),
                user=User(id=str(user_id)),
                update_key=key or f"{kind}:{user_id}:{obj.get('key', '')}",
                membership="blocked" if kind == "message_deny" else "unblocked",
            )
        return None

    async def _message(self, msg: dict[str, Any], key: str) -> Event | None:
        peer_id, from_id = int(msg["peer_id"]), int(msg.get("from_id") or 0)
        if from_id <= 0:
            return None  # another community or a bot speaking in a conversation
        cmid = msg.get("conversation_message_id")
        text = msg.get("text") or ""
        if peer_id >= CONVERSATION_PEER_BASE:
            text = self._mention.sub("", text, count=1)
        reply = msg.get("reply_message") or {}
        reply_cmid = reply.get("conversation_message_id")
        callback: Callback | None = None
        payload = parse_payload(msg.get("payload"))
        if payload is not None and payload.get("command") == "start":
            text = "/start"  # VK's own "Начать" button
        elif payload is not None and isinstance(payload.get("c"), str):
            data = await decode_payload(payload["c"], self._store)
            callback = Callback(id="", data=data or "")  # a text button: nothing to answer
        return Event(
            institution=self.institution,
            platform=PLATFORM,
            chat=ChatRef(PLATFORM, str(peer_id)),
            user=await self._users(from_id),
            update_key=key or f"message_new:{peer_id}:{cmid}",
            chat_kind=chat_kind(peer_id),
            text=None if callback is not None else text,
            callback=callback,
            message_id=None if callback is not None or cmid is None else str(cmid),
            reply_to=None if reply_cmid is None else str(reply_cmid),
            # the community's own messages have a negative from_id
            replied_bot_text=reply.get("text") if int(reply.get("from_id") or 0) < 0 else None,
            start_payload=msg.get("ref") or None,
        )

    async def _button(self, obj: dict[str, Any], key: str) -> Event | PageTurn | None:
        peer_id, user_id = int(obj["peer_id"]), int(obj["user_id"])
        cmid = obj.get("conversation_message_id")
        payload = parse_payload(obj.get("payload")) or {}
        if isinstance(payload.get("p"), str) and cmid is not None:
            return PageTurn(
                peer_id=peer_id,
                user_id=user_id,
                event_id=str(obj["event_id"]),
                conversation_message_id=int(cmid),
                pages_key=payload["p"],
                page=int(payload.get("n") or 0),
            )
        raw_data = payload.get("c")
        data = await decode_payload(raw_data, self._store) if isinstance(raw_data, str) else None
        return Event(
            institution=self.institution,
            platform=PLATFORM,
            chat=ChatRef(PLATFORM, str(peer_id)),
            user=await self._users(user_id),
            update_key=key or f"message_event:{obj['event_id']}",
            chat_kind=chat_kind(peer_id),
            callback=Callback(id=str(obj["event_id"]), data=data or ""),
            message_id=None if cmid is None else str(cmid),
        )
