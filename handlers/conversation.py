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
from storage.messages import LogRow

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
    #: message_log id of the citizen's message, once written (see :meth:`log_question`)
    logged_id: int | None = None
    #: message_log rows not written yet: the citizen's message first, while it is
    #: pending, then the bot's replies to it (written together by :meth:`flush_log`)
    _unlogged: list[LogRow] = field(default_factory=list)
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

    # -- the message log: one statement per question where it can --------------------------
    def log_question(self, text: str) -> None:
        """Log the citizen's message; it is written with its outcome (:meth:`set_outcome`)
        and the replies logged meanwhile in one statement, when its id is first needed
        (:meth:`question_id`) or at the end of the routing (:meth:`flush_log`), instead of
        an insert, an update of its outcome and an insert per reply."""
        event = self.event
        self._unlogged = [
            LogRow(
                self.institution.id,
                event.platform,
                event.chat.chat_id,
                event.user.id,
                "in",
                text,
                self.now,
            )
        ]

    async def set_outcome(
        self, outcome: str, entry_id: str | None = None, score: float | None = None
    ) -> None:
        """What became of the citizen's message (nothing when it was not logged)."""
        if self._unlogged and self._unlogged[0].direction == "in":
            question = self._unlogged[0]
            question.outcome, question.entry_id, question.score = outcome, entry_id, score
        elif self.logged_id is not None:
            await self.storage.log.set_outcome(self.logged_id, outcome, entry_id, score)

    def log_reply(self, text: str) -> None:
        """Log what the bot says in the citizen's chat, after what was logged before; it is
        written with the citizen's message when that is pending (see :meth:`send`). The
        staff chat is not the citizens' conversation: nothing is logged there."""
        if self.institution.is_staff_chat(self.event.chat):
            return
        row = LogRow(
            self.institution.id,
            self.event.platform,
            self.event.chat.chat_id,
            None,
            "out",
            text,
            self.now,
        )
        self._unlogged.append(row)

    async def question_id(self) -> int | None:
        """The message_log id of the citizen's message (written now if it was pending)."""
        await self.flush_log()
        return self.logged_id

    async def flush_log(self) -> None:
        """Write the rows logged but not written yet, in one statement. Called before the
        log is read or erased within the update, and at the end of the routing."""
        rows, self._unlogged = self._unlogged, []
        if not rows:
            return
        first = await self.storage.log.add_rows(rows)
        if rows[0].direction == "in":
            self.logged_id = first

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
        if log and chat == self.event.chat:
            self.log_reply(text)
            if self._unlogged and self._unlogged[0].direction != "in":
                await self.flush_log()  # no citizen's message waits: written at once

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
