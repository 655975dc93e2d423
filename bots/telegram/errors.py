"""Telegram's failures translated into the port's three outcomes, so that the outbox (the
one place that retries) needs no knowledge of aiogram:

- PlatformError: try again later (429 with its retry_after, 5xx, network, a misconfigured
  or revoked token, which an admin can fix without the message changing);
- RecipientUnreachable: a private chat that will not take messages (blocked the bot,
  deactivated account, chat unknown): never retry, the app marks the citizen;
- PermanentSendError: Telegram refuses this very request (bad markup, message gone, the
  bot was removed from a group): retrying the same request fails the same way.

Only the API's description goes into the new exception, never the request, which carries
the message text.
"""

from __future__ import annotations

import asyncio

from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiohttp import ClientError

from bots.core.model import ChatRef
from bots.core.platform import PermanentSendError, PlatformError, RecipientUnreachable
from bots.telegram.pacing import is_group

_UNREACHABLE_400 = ("chat not found", "user not found", "peer_id_invalid", "user is deactivated")


def translate(exc: BaseException, chat: ChatRef) -> Exception:
    """The port's exception for an aiogram (or aiohttp) failure of a call to ``chat``."""
    private = not is_group(chat.chat_id)
    if isinstance(exc, TelegramRetryAfter):
        return PlatformError(
            f"rate limited: {exc.message}", code=429, retry_after=float(exc.retry_after)
        )
    if isinstance(exc, TelegramMigrateToChat):
        return PermanentSendError(
            f"the group became supergroup {exc.migrate_to_chat_id}; update the config", code=400
        )
    if isinstance(exc, TelegramForbiddenError):
        if private:
            return RecipientUnreachable(chat, exc.message)
        return PermanentSendError(f"forbidden: {exc.message}", code=403)
    if isinstance(exc, TelegramBadRequest):
        lowered = exc.message.lower()
        if private and any(marker in lowered for marker in _UNREACHABLE_400):
            return RecipientUnreachable(chat, exc.message)
        return PermanentSendError(f"bad request: {exc.message}", code=400)
    if isinstance(exc, TelegramEntityTooLarge):
        return PermanentSendError(f"too large: {exc.message}", code=413)
    if isinstance(exc, TelegramServerError):
        return PlatformError(f"server error: {exc.message}", code=500)
    if isinstance(exc, TelegramNetworkError):
        return PlatformError(f"network error: {exc.message}")
    if isinstance(exc, TelegramUnauthorizedError):
        return PlatformError(f"the bot token was rejected: {exc.message}", code=401)
    if isinstance(exc, TelegramAPIError):
        return PlatformError(f"Telegram error: {exc.message}")
    if isinstance(exc, ClientDecodeError):
        return PlatformError("unreadable answer from the Bot API server")
    if isinstance(exc, ClientError | asyncio.TimeoutError | OSError):
        return PlatformError(f"network error: {type(exc).__name__}")
    raise exc


def is_not_modified(exc: BaseException) -> bool:
    """An edit that changes nothing: Telegram refuses it, for us it is done."""
    return isinstance(exc, TelegramBadRequest) and "message is not modified" in exc.message


def is_stale_callback(exc: BaseException) -> bool:
    """A button press answered too late (or twice): nothing left to do."""
    return isinstance(exc, TelegramBadRequest) and "query is too old" in exc.message.lower()
