"""What a handler gets for one update: the event, the institution, storage, the clock, and
ways to answer. Everything a handler says is queued in the outbox inside the update's
transaction (see storage/queues.py), so a crash either loses the whole handling (and the
update is handled again) or nothing. Callback answers are the exception: they are
ephemeral, so they are sent right after the commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bots.core.model import Button, ChatRef, Event
from handlers.institution import Institution
from handlers.notify import queue_edit, queue_message, queue_topic, topic_thread
from storage import Storage

#: hook(storage, institution, platform, user_id, chat_id), run inside /forget's transaction:
#: a feature anonymises what it keeps about the citizen (the escalation feature: tickets)
ForgetHook = Callable[[Storage, str, str, str, str], Awaitable[None]]


@dataclass(slots=True)
class Conversation:
    event: Event
    institution: Institution
    storage: Storage
    now: datetime
    #: the text of the callback answer to send after commit ("" = silent answer)
    callback_answer: str | None = None
    _counter: int = 0
    #: message_log id of the citizen's message, when it was logged
    logged_id: int | None = None
    #: the router found this update to be the citizen's first with the institution
    first_contact: bool = False
    extras: dict[str, Any] = field(default_factory=dict)
    #: the app's features' forget hooks (handlers/feature.py), for /forget
    forget_hooks: tuple[ForgetHook, ...] = ()

    @property
    def texts(self) -> Any:
        return self.institution.texts

    @property
    def user_name(self) -> str:
        return self.event.user.first_name

    def render(self, name: str, **context: Any) -> str:
        return self.institution.texts.render(
            name, user=self.user_name, now=self.institution.local_time(self.now), **context
        )

    def label(self, name: str) -> str:
        return str(self.institution.texts.label(name))

    def _dedup(self) -> str:
        self._counter += 1
        e = self.event
        return f"{e.institution}:{e.platform}:{e.update_key}:{self._counter}"

    async def reply(
        self,
        text: str,
        buttons: list[list[Button]] | None = None,
        *,
        ref_kind: str | None = None,
        ref_id: str | None = None,
        log: bool = True,
    ) -> None:
        """Answer in the chat the event came from (and its forum topic, if any)."""
        await self.send(self.event.chat, text, buttons, ref_kind=ref_kind, ref_id=ref_id, log=log)

    async def send(
        self,
        chat: ChatRef,
        text: str,
        buttons: list[list[Button]] | None = None,
        *,
        reply_to: str | None = None,
        ref_kind: str | None = None,
        ref_id: str | None = None,
        log: bool = False,
    ) -> None:
        """Queue a message to any chat of this institution, on any of its platforms."""
        await queue_message(
            self.storage,
            self.institution.id,
            chat,
            text,
            buttons,
            dedup_key=self._dedup(),
            now=self.now,
            reply_to=reply_to,
            ref_kind=ref_kind,
            ref_id=ref_id,
        )
        # the log is the citizens' conversation (reports, retention, export, /forget): what
        # the bot says in the staff chat (/ticket N, /tickets quote citizens) is not logged
        if log and chat == self.event.chat and not self.institution.is_staff_chat(chat):
            await self.storage.log.add(
                institution=self.institution.id,
                platform=chat.platform,
                chat_id=chat.chat_id,
                user_id=None,
                direction="out",
                text=text,
                now=self.now,
            )

    async def edit(
        self, ref_kind: str, ref_id: str, text: str, buttons: list[list[Button]] | None = None
    ) -> None:
        """Queue an edit of the latest message sent under (ref_kind, ref_id)."""
        await queue_edit(
            self.storage,
            self.institution.id,
            ref_kind,
            ref_id,
            text,
            buttons,
            dedup_key=self._dedup(),
            now=self.now,
        )

    async def create_topic(self, chat: ChatRef, title: str, ref_id: str) -> ChatRef:
        """Queue a forum topic and return the chat address of messages that go into it."""
        await queue_topic(
            self.storage,
            self.institution.id,
            chat,
            title,
            ref_id=ref_id,
            dedup_key=self._dedup(),
            now=self.now,
        )
        return ChatRef(chat.platform, chat.chat_id, topic_thread(ref_id))

    def answer_callback(self, text: str | None = None) -> None:
        self.callback_answer = text or ""
