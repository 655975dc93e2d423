"""The Platform port: what every messenger adapter (and the local platform) provides.

One Platform object serves one account: an institution's Telegram bot, VK community or MAX
bot. The app gives it a callback for incoming events at ``start`` and calls ``send``,
``edit`` and ``answer_callback`` for outgoing ones. Errors are translated into the few
exception types below so that retry and unreachable-citizen handling live in one place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from bots.core.model import ChatRef, Event, PlatformLimits, Reply, SentMessage

EventHandler = Callable[[Event], Awaitable[None]]


class NotStored(Exception):
    """The app could not store an update because its storage is unavailable (disk full,
    read-only, database unreachable). The adapter must not acknowledge the update and must
    never skip it for this reason, however often it happens: the platform keeps it."""


class PlatformError(Exception):
    """A send failed in a way the caller may retry later (network error, 5xx, rate limit)."""

    def __init__(self, message: str, *, code: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


class RecipientUnreachable(Exception):
    """The recipient cannot be written to (blocked the bot, left, deleted): never retry."""

    def __init__(self, chat: ChatRef, reason: str = ""):
        super().__init__(f"{chat.key} unreachable: {reason}")
        self.chat = chat
        self.reason = reason


class PermanentSendError(Exception):
    """The platform refused the message itself (bad markup, message not found): retrying the
    same request would fail the same way, so the caller logs it and moves on."""

    def __init__(self, message: str, *, code: int | None = None):
        super().__init__(message)
        self.code = code


class Platform(ABC):
    """One messenger account. Implementations: local, telegram, vk (and max later)."""

    #: short platform name used in ChatRef.platform and in config: "telegram", "vk", ...
    name: str
    limits: PlatformLimits
    #: the institution this account belongs to
    institution: str

    @abstractmethod
    async def start(self, on_event: EventHandler) -> None:
        """Begin receiving updates; each becomes an Event passed to ``on_event``.

        Returns once receiving has started. An update is acknowledged to the platform only
        after ``on_event`` returned, so an update is never lost by a crash in between.
        """

    @abstractmethod
    async def stop(self) -> None:
        """Stop receiving, let in-flight sends finish and release connections."""

    @abstractmethod
    async def send(self, chat: ChatRef, reply: Reply, *, dedup_key: str) -> list[SentMessage]:
        """Send one logical message, split to the platform's limits; return the parts in order.

        ``dedup_key`` is stable across retries of the same logical message; platforms that
        can deduplicate (VK's random_id, MAX) derive their idempotency key from it.
        Raises RecipientUnreachable, PlatformError (retryable) or PermanentSendError.
        """

    @abstractmethod
    async def edit(self, message: SentMessage, reply: Reply) -> None:
        """Replace the text and buttons of a message the bot sent earlier."""

    @abstractmethod
    async def answer_callback(self, event: Event, text: str | None = None) -> None:
        """Acknowledge a pressed button, optionally with a short notice (a snackbar)."""

    async def create_topic(self, chat: ChatRef, title: str) -> str:
        """Create a forum topic in a group and return its thread id. Platforms without
        topics (limits.supports_threads False) keep this default, and the staff chat then
        gets every ticket in its main thread."""
        raise PermanentSendError(f"{self.name} has no forum topics")


@runtime_checkable
class BatchSending(Protocol):
    """A platform that sends one message to many chats per call (VK: 100 peers per
    messages.send); the broadcast engine uses it when the platform has it."""

    async def send_many(
        self, chat_ids: list[str], reply: Reply, *, dedup_key: str
    ) -> dict[str, SentMessage | Exception]:
        """Per chat: its last SentMessage part, or the exception that stopped it."""
        ...
