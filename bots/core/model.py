"""Neutral message types shared by the adapters and the platform-free handlers.

Adapters translate a platform update into an :class:`Event` and a :class:`Reply` into the
platform's call; nothing else in the code base knows what Telegram, VK or MAX look like.
Identifiers are strings: every platform's ids (numbers, ``@channel`` names) fit, and so do
the local platform's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ChatKind(StrEnum):
    """What kind of chat an event came from: a citizen's private chat or a group."""

    PRIVATE = "private"
    GROUP = "group"
    CHANNEL = "channel"


@dataclass(frozen=True, slots=True)
class ChatRef:
    """Where a message goes: a chat on one platform, optionally a forum topic inside it."""

    platform: str
    chat_id: str
    thread_id: str | None = None

    @property
    def key(self) -> str:
        """A stable text form, used as a storage key and in logs."""
        return f"{self.platform}:{self.chat_id}"


@dataclass(frozen=True, slots=True)
class User:
    """The person behind an event. ``name`` is what staff see on a ticket card."""

    id: str
    first_name: str = ""
    last_name: str = ""
    username: str | None = None

    @property
    def display_name(self) -> str:
        full = " ".join(p for p in (self.first_name, self.last_name) if p)
        if full:
            return full
        return f"@{self.username}" if self.username else self.id


@dataclass(frozen=True, slots=True)
class Callback:
    """A pressed inline button: the platform's query id (to answer it) and our payload."""

    id: str
    data: str


@dataclass(frozen=True, slots=True)
class Event:
    """One incoming update, already tied to the institution whose account received it.

    ``update_key`` identifies the update on its account so that a redelivered update is
    handled once; ``reply_to`` is the platform message id the user replied to, and
    ``replied_bot_text`` the text of that message when the bot itself wrote it (as the
    platform shows it in the reply), so a reply to a message the bot never recorded (sent
    just before a crash) can still be understood.
    """

    institution: str
    platform: str
    chat: ChatRef
    user: User
    update_key: str
    chat_kind: ChatKind = ChatKind.PRIVATE
    text: str | None = None
    callback: Callback | None = None
    message_id: str | None = None
    reply_to: str | None = None
    replied_bot_text: str | None = None
    start_payload: str | None = None
    #: set instead of text/callback when the user's relation to the bot changed:
    #: "blocked" (blocked or kicked the bot, deleted the chat) or "unblocked"
    membership: str | None = None

    @property
    def thread_id(self) -> str | None:
        return self.chat.thread_id


@dataclass(frozen=True, slots=True)
class Button:
    """An inline button: exactly one of ``callback`` (our payload) or ``url``."""

    text: str
    callback: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if (self.callback is None) == (self.url is None):
            raise ValueError("a button has either a callback payload or a url")


@dataclass(frozen=True, slots=True)
class Reply:
    """What the bot says. ``text`` is a small HTML subset (b, i, u, s, a, code, pre) whose
    variable parts were escaped by the template engine; adapters of platforms without HTML
    turn it into plain text with :func:`bots.core.text.html_to_plain`.
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    reply_to: str | None = None
    silent: bool = False

    @staticmethod
    def of(text: str, rows: list[list[Button]] | None = None, **kw: object) -> Reply:
        return Reply(text=text, buttons=tuple(tuple(r) for r in (rows or [])), **kw)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A reference to a message the bot sent, enough to edit it or recognise a reply to it."""

    chat: ChatRef
    message_id: str


@dataclass(frozen=True, slots=True)
class PlatformLimits:
    """What a platform accepts in one message; the sender splits and pages to fit."""

    max_text: int
    max_buttons_per_row: int
    max_rows: int
    max_callback_bytes: int
    supports_html: bool = True
    supports_edit: bool = True
    supports_threads: bool = False


@dataclass(slots=True)
class Delivery:
    """The outcome of a send: the sent messages, in order (a long text gives several)."""

    messages: list[SentMessage] = field(default_factory=list)
