"""One Telegram bot as a Platform: sending, editing and answering button presses.

Receiving is the group's job (bots/telegram/group.py): it hands each update to the platform
of the bot that received it, and gives every bot the one HTTP session (session.py). Outgoing calls wait for the
bot's pace (pacing.py) and translate failures (errors.py); they never retry, the outbox does.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.enums import ParseMode
from aiogram.types import InlineKeyboardMarkup, ReplyParameters

from bots.core.background import InFlight
from bots.core.model import ChatRef, Event, PlatformLimits, Reply, SentMessage
from bots.core.payloads import PayloadStore
from bots.core.platform import EventHandler, PermanentSendError, Platform, PlatformError
from bots.core.text import html_to_plain, split_text
from bots.telegram.convert import PLATFORM, keyboard_rows
from bots.telegram.errors import is_not_modified, is_stale_callback, translate
from bots.telegram.pacing import Pacer, TelegramRates
from bots.telegram.session import BotSession, SendWithKeyboard, make_session

log = logging.getLogger(__name__)

TELEGRAM_LIMITS = PlatformLimits(
    max_text=4096,
    max_buttons_per_row=8,
    max_rows=100,
    max_callback_bytes=64,
    supports_html=True,
    supports_edit=True,
    supports_threads=True,
)
#: how long ``stop`` lets in-flight sends finish before closing the session anyway
STOP_GRACE = 10.0


def make_bot(
    token: str,
    api_server: str | None,
    *,
    timeout: float = 60.0,
    session: AiohttpSession | None = None,
) -> Bot:
    """An aiogram Bot talking to ``api_server`` when given (a self-hosted Bot API server, a
    proxy, or an emulator in tests), through ``session`` (shared by the group's bots) or a
    session of its own."""
    if session is None:
        session = make_session(api_server, timeout=timeout)
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


class TelegramPlatform(Platform):
    """One institution's Telegram bot."""

    name = PLATFORM
    limits = TELEGRAM_LIMITS

    def __init__(
        self,
        institution: str,
        bot: Bot,
        *,
        payloads: PayloadStore,
        rates: TelegramRates | None = None,
        mode: str = "polling",
        webhook_secret: str | None = None,
        owns_session: bool = True,
    ) -> None:
        """``owns_session=False``: the session is shared and its owner (the group) closes
        it; ``stop`` leaves it open."""
        self.institution = institution
        self.owns_session = owns_session
        self.bot = bot
        #: read per update; aiogram's ``Bot.id`` parses the token through an lru_cache of
        #: 128 tokens, so with more bots than that each read costs ~2 µs instead of ~0.1
        self.bot_id: int = bot.id
        self.mode = mode
        self.webhook_secret = webhook_secret
        self.pacer = Pacer(rates or TelegramRates())
        self.payloads = payloads
        self._in_flight = InFlight()
        self._closed = False
        self.on_event: EventHandler | None = None

    # -- the port ----------------------------------------------------------------------
    async def start(self, on_event: EventHandler) -> None:
        """Receiving is started by the group; a platform only remembers where events go."""
        self.on_event = on_event

    async def stop(self) -> None:
        """Refuse new calls, let the ones in flight finish, close the HTTP session (when
        it is the bot's own)."""
        self._closed = True
        self.on_event = None
        if not await self._in_flight.drain(STOP_GRACE):
            log.warning(
                "telegram bot %s: closing with %d calls in flight",
                self.bot_id,
                self._in_flight.count,
            )
        if self.owns_session:
            await self.bot.session.close()

    async def send(self, chat: ChatRef, reply: Reply, *, dedup_key: str) -> list[SentMessage]:
        """Send ``reply``, split at paragraph or sentence boundaries to 4096 characters;
        buttons go on the last part, the reply-to on the first.

        A failure after some parts went out carries them in ``exc.delivered`` so the
        caller can resume after them instead of sending them twice."""
        if not reply.text.strip():
            raise PermanentSendError("message text is empty")
        rows = await self._rows(reply)
        markup = None
        if rows is not None and not isinstance(self.bot.session, BotSession):
            markup = InlineKeyboardMarkup.model_validate({"inline_keyboard": rows})
        parts = split_text(reply.text, self.limits.max_text)
        sent: list[SentMessage] = []
        async with self._call():
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                await self.pacer.wait(chat.chat_id)
                try:
                    message = await self.bot(
                        SendWithKeyboard(
                            keyboard=rows if last and markup is None else None,
                            chat_id=_chat_id(chat),
                            text=part,
                            parse_mode=ParseMode.HTML,
                            message_thread_id=_int(chat.thread_id),
                            reply_parameters=_reply_to(reply.reply_to) if index == 0 else None,
                            reply_markup=markup if last else None,
                            disable_notification=reply.silent or None,
                        )
                    )
                except Exception as exc:
                    error = translate(exc, chat)
                    error.delivered = list(sent)  # type: ignore[attr-defined]
                    log.info(
                        "telegram bot %s: send to %s failed (part %d/%d): %s",
                        self.bot_id,
                        chat.key,
                        index + 1,
                        len(parts),
                        error,
                    )
                    raise error from exc
                sent.append(SentMessage(chat, str(message.message_id)))
        return sent

    async def edit(self, message: SentMessage, reply: Reply) -> None:
        """Replace text and buttons; a text over the limit keeps its first part. An edit
        that changes nothing is done already."""
        text = split_text(reply.text, self.limits.max_text)[0] if reply.text.strip() else ""
        if not text:
            raise PermanentSendError("message text is empty")
        markup = await self._markup(reply) or InlineKeyboardMarkup(inline_keyboard=[])
        async with self._call():
            await self.pacer.wait(message.chat.chat_id)
            try:
                await self.bot.edit_message_text(
                    text=text,
                    chat_id=_chat_id(message.chat),
                    message_id=int(message.message_id),
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                )
            except Exception as exc:
                if is_not_modified(exc):
                    return
                raise translate(exc, message.chat) from exc

    async def answer_callback(self, event: Event, text: str | None = None) -> None:
        """Stop the button's spinner, with ``text`` as a short notice. A press answered
        too late is ignored: the user has moved on."""
        if event.callback is None:
            raise ValueError("answer_callback needs an event with a callback")
        async with self._call():
            try:
                await self.bot.answer_callback_query(event.callback.id, text=text)
            except Exception as exc:
                if is_stale_callback(exc):
                    log.info("telegram bot %s: callback answered too late", self.bot_id)
                    return
                raise translate(exc, event.chat) from exc

    async def create_topic(self, chat: ChatRef, title: str) -> str:
        """A new forum topic in a forum supergroup (one per ticket); its thread id. Topic
        names are plain text, so the title's markup and entities are undone."""
        async with self._call():
            await self.pacer.wait(chat.chat_id)
            try:
                topic = await self.bot.create_forum_topic(
                    chat_id=_chat_id(chat), name=html_to_plain(title)[:128]
                )
            except Exception as exc:
                raise translate(exc, chat) from exc
        return str(topic.message_thread_id)

    # -- internals ---------------------------------------------------------------------
    @asynccontextmanager
    async def _call(self) -> AsyncIterator[None]:
        """Count a call in flight so that ``stop`` can wait for it."""
        if self._closed:
            raise PlatformError("the Telegram adapter is stopping")
        async with self._in_flight.track():
            yield

    async def _rows(self, reply: Reply) -> list[list[dict[str, str]]] | None:
        """The reply's inline keyboard as Bot API JSON rows (sent as they are through the
        group's BotSession, see session.py)."""
        rows = await keyboard_rows(
            reply.buttons,
            per_row=self.limits.max_buttons_per_row,
            max_callback_bytes=self.limits.max_callback_bytes,
            store=self.payloads,
        )
        if rows is not None and len(rows) > self.limits.max_rows:
            raise PermanentSendError(f"{len(rows)} rows of buttons, limit 100")
        return rows

    async def _markup(self, reply: Reply) -> InlineKeyboardMarkup | None:
        rows = await self._rows(reply)
        return (
            None if rows is None else InlineKeyboardMarkup.model_validate({"inline_keyboard": rows})
        )


def _chat_id(chat: ChatRef) -> int | str:
    """Numeric ids as numbers; a channel's @username as it is."""
    try:
        return int(chat.chat_id)
    except ValueError:
        return chat.chat_id


def _int(value: str | None) -> int | None:
    return int(value) if value is not None else None


def _reply_to(message_id: str | None) -> ReplyParameters | None:
    """Reply to ``message_id``, but still send when it was deleted meanwhile."""
    if message_id is None:
        return None
    return ReplyParameters(message_id=int(message_id), allow_sending_without_reply=True)
