"""The local platform: an in-process messenger for `priemnaya shell` and for tests.

It keeps every chat in memory. Test code and the shell play the citizen or the staff member
with :meth:`LocalPlatform.user_says` and :meth:`LocalPlatform.press`, and read what the bot
said with :meth:`LocalPlatform.messages`. It follows the same rules as the real adapters
(length limits, callback payload size, unreachable users), so the handlers meet no surprise
when they run on Telegram or VK.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass, field

from bots.core.model import (
    Button,
    Callback,
    ChatKind,
    ChatRef,
    Event,
    PlatformLimits,
    Reply,
    SentMessage,
    User,
)
from bots.core.payloads import MemoryPayloadStore, PayloadStore, decode_payload, encode_payload
from bots.core.platform import EventHandler, PermanentSendError, Platform, RecipientUnreachable
from bots.core.text import html_to_plain, split_text

LOCAL_LIMITS = PlatformLimits(
    max_text=4096,
    max_buttons_per_row=8,
    max_rows=100,
    max_callback_bytes=64,
    supports_html=True,
    supports_edit=True,
    supports_threads=True,
)


@dataclass(slots=True)
class LocalMessage:
    """A message as its reader sees it: plain text and button labels."""

    id: str
    chat_id: str
    text: str
    html: str
    buttons: list[list[tuple[str, str]]]  # (label, callback data or url)
    from_bot: bool
    thread_id: str | None = None
    reply_to: str | None = None
    edited: int = 0

    def button(self, label: str) -> tuple[int, int]:
        """Row and column of the first button whose label contains ``label``."""
        for r, row in enumerate(self.buttons):
            for c, (text, _) in enumerate(row):
                if label.lower() in text.lower():
                    return r, c
        raise KeyError(f"no button {label!r} in message {self.id}: {self.buttons}")


@dataclass(slots=True)
class _Chat:
    kind: ChatKind
    messages: list[LocalMessage] = field(default_factory=list)
    blocked: bool = False


class LocalPlatform(Platform):
    name = "local"
    limits = LOCAL_LIMITS

    def __init__(
        self,
        institution: str,
        *,
        payload_store: PayloadStore | None = None,
        name: str = "local",
        limits: PlatformLimits | None = None,
    ) -> None:
        self.institution = institution
        self.name = name
        if limits is not None:
            self.limits = limits
        self._store = payload_store or MemoryPayloadStore()
        self._chats: dict[str, _Chat] = {}
        self._ids = itertools.count(1)
        self._updates = itertools.count(1)
        #: update keys must not repeat across runs: the inbox remembers handled ones
        self._run = uuid.uuid4().hex[:12]
        self._on_event: EventHandler | None = None
        self.answered_callbacks: list[tuple[str, str | None]] = []
        self.topics: dict[str, str] = {}
        self.sent_count = 0
        self.delivered = asyncio.Event()  # set on every bot message; tests clear and wait

    # -- the port ----------------------------------------------------------------------
    async def start(self, on_event: EventHandler) -> None:
        self._on_event = on_event

    async def stop(self) -> None:
        self._on_event = None

    async def send(self, chat: ChatRef, reply: Reply, *, dedup_key: str) -> list[SentMessage]:
        room = self._chat(chat.chat_id)
        if room.blocked:
            raise RecipientUnreachable(chat, "blocked the bot")
        if not reply.text.strip():
            raise PermanentSendError("message text is empty")
        buttons = await self._encode_buttons(reply)
        parts = split_text(reply.text, self.limits.max_text)
        sent: list[SentMessage] = []
        for i, part in enumerate(parts):
            message = LocalMessage(
                id=str(next(self._ids)),
                chat_id=chat.chat_id,
                text=html_to_plain(part),
                html=part,
                buttons=buttons if i == len(parts) - 1 else [],
                from_bot=True,
                thread_id=chat.thread_id,
                reply_to=reply.reply_to if i == 0 else None,
            )
            room.messages.append(message)
            sent.append(SentMessage(chat, message.id))
        self.sent_count += len(sent)
        self.delivered.set()
        return sent

    async def edit(self, message: SentMessage, reply: Reply) -> None:
        for m in self._chat(message.chat.chat_id).messages:
            if m.id == message.message_id:
                m.html = reply.text[: self.limits.max_text]
                m.text = html_to_plain(m.html)
                m.buttons = await self._encode_buttons(reply)
                m.edited += 1
                self.delivered.set()
                return
        raise PermanentSendError(f"message {message.message_id} not found")

    async def answer_callback(self, event: Event, text: str | None = None) -> None:
        assert event.callback is not None
        self.answered_callbacks.append((event.callback.id, text))

    async def create_topic(self, chat: ChatRef, title: str) -> str:
        room = self._chat(chat.chat_id)
        topic_id = str(next(self._ids))
        room.messages.append(
            LocalMessage(
                id=topic_id,
                chat_id=chat.chat_id,
                text=f"[тема] {title}",
                html=title,
                buttons=[],
                from_bot=True,
                thread_id=topic_id,
            )
        )
        self.topics[topic_id] = title
        return topic_id

    def continue_numbering(self, after: int) -> None:
        """Number new messages after ``after``: a shell run on a database that remembers
        an earlier run's messages must not reuse their ids."""
        self._ids = itertools.count(after + 1)

    # -- the people on the other side --------------------------------------------------
    def open_chat(self, chat_id: str, kind: ChatKind = ChatKind.PRIVATE) -> None:
        self._chats.setdefault(chat_id, _Chat(kind))

    def block(self, chat_id: str) -> None:
        self._chat(chat_id).blocked = True

    def messages(self, chat_id: str, *, from_bot: bool | None = True) -> list[LocalMessage]:
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [m for m in chat.messages if from_bot is None or m.from_bot == from_bot]

    def last(self, chat_id: str) -> LocalMessage:
        found = self.messages(chat_id)
        if not found:
            raise AssertionError(f"the bot said nothing in chat {chat_id}")
        return found[-1]

    async def user_says(
        self,
        chat_id: str,
        text: str,
        *,
        user: User | None = None,
        reply_to: str | None = None,
        thread_id: str | None = None,
        kind: ChatKind | None = None,
    ) -> Event:
        """A person writes ``text``; the event is handed to the app and awaited."""
        room = self._chat(chat_id, kind)
        person = user or User(id=chat_id, first_name="Гражданин")
        message = LocalMessage(
            id=str(next(self._ids)),
            chat_id=chat_id,
            text=text,
            html=text,
            buttons=[],
            from_bot=False,
            thread_id=thread_id,
            reply_to=reply_to,
        )
        room.messages.append(message)
        event = Event(
            institution=self.institution,
            platform=self.name,
            chat=ChatRef(self.name, chat_id, thread_id),
            user=person,
            update_key=f"{self._run}:{next(self._updates)}",
            chat_kind=room.kind,
            text=text,
            message_id=message.id,
            reply_to=reply_to,
            replied_bot_text=self._bot_text(room, reply_to),
        )
        await self._deliver(event)
        return event

    @staticmethod
    def _bot_text(room: _Chat, message_id: str | None) -> str | None:
        """What a reply shows of the replied-to message, when the bot wrote it."""
        original = next((m for m in room.messages if m.id == message_id), None)
        return original.text if original is not None and original.from_bot else None

    async def press(
        self, chat_id: str, message_id: str, label: str, *, user: User | None = None
    ) -> Event:
        """A person presses the button labelled ``label`` (a substring) on a bot message."""
        message = next(m for m in self._chat(chat_id).messages if m.id == message_id)
        r, c = message.button(label)
        text, data = message.buttons[r][c]
        if data.startswith(("http://", "https://", "tel:")):
            raise AssertionError(f"button {text!r} is a link to {data}")
        payload = await decode_payload(data, self._store)
        event = Event(
            institution=self.institution,
            platform=self.name,
            chat=ChatRef(self.name, chat_id, message.thread_id),
            user=user or User(id=chat_id, first_name="Гражданин"),
            update_key=f"{self._run}:{next(self._updates)}",
            chat_kind=self._chat(chat_id).kind,
            callback=Callback(id=f"cb{next(self._updates)}", data=payload or ""),
            message_id=message_id,
        )
        await self._deliver(event)
        return event

    # -- internals ---------------------------------------------------------------------
    def _chat(self, chat_id: str, kind: ChatKind | None = None) -> _Chat:
        room = self._chats.get(chat_id)
        if room is None:
            room = self._chats[chat_id] = _Chat(kind or ChatKind.PRIVATE)
        elif kind is not None:
            room.kind = kind
        return room

    async def _deliver(self, event: Event) -> None:
        if self._on_event is None:
            raise RuntimeError("the local platform is not started")
        await self._on_event(event)

    async def _encode_buttons(self, reply: Reply) -> list[list[tuple[str, str]]]:
        rows: list[list[tuple[str, str]]] = []
        for row in reply.buttons:
            encoded: list[tuple[str, str]] = []
            for button in row:
                encoded.append((button.text, await self._encode(button)))
            rows.append(encoded)
        return rows

    async def _encode(self, button: Button) -> str:
        if button.url is not None:
            return button.url
        assert button.callback is not None
        return await encode_payload(button.callback, self.limits.max_callback_bytes, self._store)
