"""All Telegram bots of the process: one polling loop per bot or a webhook route per bot on
the app's web server, and one HTTP session per Bot API server shared by all bots.

Updates go straight from aiogram's parsed ``Update`` to the translation into an Event
(convert.py), not through aiogram's Dispatcher: it only routed three kinds of update to
three translators, and its middlewares, router propagation and ``Update.event_type`` (an
``lru_cache`` keyed on the update, which compares pydantic models field by field) cost a
tenth of the app's CPU per update at 100 bots. A text message (most updates), from a
webhook or a poll, skips even aiogram's Update: it is read from the JSON into its Event
directly (convert.plain_text_event, ~8 µs instead of ~40 µs); everything else is validated
into an Update as before.

Why not ``Dispatcher.start_polling``: aiogram moves the getUpdates offset past an update as
soon as its handler was *started* (by default as a background task) and logs and forgets a
handler's exception, so an update whose handling failed or was cut short by a crash is
confirmed to Telegram and lost. Here each bot has its own loop that feeds a batch through
to the app and confirms it (the next getUpdates ``offset``) only after
``on_event`` returned for every update in it. Within a batch, updates of different chats are
handled concurrently and those of one chat in order. A failed update is fetched again after
a pause, with everything after it (the app's inbox skips what it already has); the pauses
grow while the same batch keeps failing. While the app's storage is unavailable
``on_event`` waits for it instead of returning, so nothing more is fetched and nothing is
confirmed; an update that could not be stored (NotStored) is never skipped.

One loop for a shared bot (a district's thousand institutions) is not what limits it: in
bench/scale.py at N=1000 its 1,000 queued /start were all handled 5.6 s after the first
(load average 10), while their answers took 16.2 s, the floor of the bot's sending pace.
Fetching the next batch before the last is handled would need the update confirmed at its
inbox row rather than at its handling; not worth it while the pace is the floor.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram.methods import GetUpdates
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from bots.core.adapters import AccountSpec, Services
from bots.core.background import until_stopped
from bots.core.model import Event
from bots.core.platform import EventHandler, NotStored, Platform
from bots.telegram.convert import (
    callback_event,
    membership_event,
    message_event,
    plain_text_event,
)
from bots.telegram.pacing import TelegramRates
from bots.telegram.platform import TelegramPlatform, make_bot
from bots.telegram.session import BotSession, GetRawUpdates, make_session

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_PATH = "/telegram/{bot_id}"
#: attempts at an update whose handling keeps failing before it is skipped (logged as ERROR)
MAX_ATTEMPTS = 10
_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class TelegramGroup:
    """Owns every Telegram account; ``platforms`` maps institution id to its bot (several
    institutions to one bot when they share its token)."""

    def __init__(
        self,
        platforms: list[TelegramPlatform],
        *,
        public_url: str | None = None,
        poll_timeout: int = 25,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.platforms: dict[str, Platform] = {p.institution: p for p in platforms}
        self._bots: dict[int, TelegramPlatform] = {p.bot_id: p for p in platforms}
        self.public_url = public_url.rstrip("/") if public_url else None
        self.poll_timeout = poll_timeout
        self.max_attempts = max_attempts
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._skipped: set[tuple[int, int]] = set()
        self._attempts: Counter[tuple[int, int]] = Counter()
        #: HTTP sessions shared by the bots (one per Bot API server), closed by ``stop``
        self.sessions: list[BotSession] = []

    # -- the group protocol ----------------------------------------------------------------
    async def start(self, on_event: EventHandler) -> None:
        """Start every bot: pollers fetch in the background (retrying while the Bot API is
        unreachable), webhook bots register their URL."""
        self._stopping.clear()
        for platform in self._bots.values():
            await platform.start(on_event)
            if platform.mode == "webhook":
                job = self._register_webhook(platform)
            else:
                job = self._poll(platform)
            self._tasks.append(asyncio.create_task(job, name=f"telegram-{platform.bot_id}"))

    async def stop(self) -> None:
        """Stop fetching (a batch being handled is finished and confirmed), then let every
        bot finish its in-flight sends and close its session."""
        self._stopping.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await asyncio.gather(*(p.stop() for p in self._bots.values()))
        for session in self.sessions:
            await session.close()

    def attach(self, app: web.Application) -> None:
        """Add the webhook route; must happen before the web server starts."""
        app.router.add_post(WEBHOOK_PATH, self._webhook)

    # -- polling -----------------------------------------------------------------------
    async def _poll(self, platform: TelegramPlatform) -> None:
        bot_id = platform.bot_id
        if not await self._until_done(
            platform, lambda: platform.bot.delete_webhook(drop_pending_updates=False)
        ):
            return
        log.info("telegram bot %s (%s): polling", bot_id, platform.institution)
        offset: int | None = None
        failures = 0  # getUpdates calls failing in a row
        batch_failures = 0  # attempts at a batch that keeps failing: reset only once it works
        while not self._stopping.is_set():
            request = GetRawUpdates(
                offset=offset, timeout=self.poll_timeout, allowed_updates=ALLOWED_UPDATES
            )
            try:
                polled = await until_stopped(
                    platform.bot(request, request_timeout=self.poll_timeout + 15), self._stopping
                )
                # JSON objects through BotSession; a malformed update fails the whole call,
                # as it did inside aiogram
                updates = None if polled is None else [_read(platform, u) for u in polled]
            except Exception as exc:
                failures += 1
                log.warning(
                    "telegram bot %s: getUpdates failed (%s: %s)",
                    bot_id,
                    type(exc).__name__,
                    getattr(exc, "message", ""),
                )
                await self._pause(failures)
                continue
            if updates is None:  # stopping
                break
            failures = 0
            if updates:
                offset, ok = await self._handle_batch(platform, updates)
                if ok:
                    batch_failures = 0
                else:
                    batch_failures += 1
                    await self._pause(batch_failures)
        if offset is not None:
            # confirm the last batch now rather than making the next run handle it again
            with contextlib.suppress(Exception):
                await platform.bot(GetUpdates(offset=offset, limit=1, timeout=0))
        log.info("telegram bot %s: polling stopped", bot_id)

    async def _handle_batch(
        self, platform: TelegramPlatform, updates: list[Update | Event]
    ) -> tuple[int, bool]:
        """Handle a batch; returns the offset to confirm and whether everything went well.
        The offset stops at the first update that failed, so it is fetched again."""
        by_chat: dict[Any, list[Update | Event]] = defaultdict(list)
        for update in updates:
            by_chat[_chat_key(update)].append(update)
        failed: list[int] = []

        async def run(chat_updates: list[Update | Event]) -> None:
            for number, update in enumerate(chat_updates):
                if not await self._feed(platform, update):
                    failed.extend(_update_id(u) for u in chat_updates[number:])
                    return

        await asyncio.gather(*(run(items) for items in by_chat.values()))
        if not failed:
            return max(_update_id(u) for u in updates) + 1, True
        first = min(failed)
        return first, False

    async def _feed(self, platform: TelegramPlatform, update: Update | Event) -> bool:
        """Hand one update (or the Event a text message already became) to the app; False
        when it must be fetched again."""
        update_id = _update_id(update)
        key = (platform.bot_id, update_id)
        if key in self._skipped:
            return True
        try:
            if isinstance(update, Event):
                await _deliver(platform, update)
            else:
                await _deliver(platform, await _translate(platform, update))
        except NotStored:
            log.warning(
                "telegram bot %s: update %s not stored; it will be fetched again",
                platform.bot_id,
                update_id,
            )
            return False
        except Exception:
            self._attempts[key] += 1
            if self._attempts[key] >= self.max_attempts:
                log.exception(
                    "telegram bot %s: update %s failed %d times; skipping it",
                    platform.bot_id,
                    update_id,
                    self._attempts[key],
                )
                self._skipped.add(key)
                del self._attempts[key]
                return True
            log.exception(
                "telegram bot %s: update %s failed; it will be fetched again",
                platform.bot_id,
                update_id,
            )
            return False
        self._attempts.pop(key, None)
        return True

    # -- webhooks ------------------------------------------------------------------------
    async def _register_webhook(self, platform: TelegramPlatform) -> None:
        if self.public_url is None:
            raise RuntimeError("webhook mode needs server.public_url")
        url = self.public_url + WEBHOOK_PATH.format(bot_id=platform.bot_id)
        if await self._until_done(
            platform,
            lambda: platform.bot.set_webhook(
                url, secret_token=platform.webhook_secret, allowed_updates=ALLOWED_UPDATES
            ),
        ):
            log.info("telegram bot %s (%s): webhook set", platform.bot_id, platform.institution)

    async def _webhook(self, request: web.Request) -> web.Response:
        """One update from Telegram. 200 only after the app took it; an error status makes
        Telegram deliver it again."""
        bot_id = request.match_info["bot_id"]
        platform = self._bots.get(int(bot_id)) if bot_id.lstrip("-").isdigit() else None
        if platform is None or platform.mode != "webhook" or platform.webhook_secret is None:
            return web.Response(status=404)
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            log.warning("telegram bot %s: webhook call without a secret", bot_id)
            return web.Response(status=401)
        if not hmac.compare_digest(given.encode(), platform.webhook_secret.encode()):
            log.warning("telegram bot %s: webhook call with a wrong secret", bot_id)
            return web.Response(status=403)
        if platform.on_event is None or self._stopping.is_set():
            return web.Response(status=503)
        try:
            update = _read(platform, await request.json())
        except (ValueError, ValidationError):
            return web.Response(status=400)
        ok = await self._feed(platform, update)
        return web.Response(status=200 if ok else 500)

    # -- helpers -----------------------------------------------------------------------
    async def _until_done(
        self, platform: TelegramPlatform, call: Callable[[], Awaitable[Any]]
    ) -> bool:
        """Repeat a set-up call until it works or the group stops; False if stopped."""
        failures = 0
        while not self._stopping.is_set():
            try:
                await call()
                return True
            except Exception as exc:
                failures += 1
                log.error(
                    "telegram bot %s: set-up failed (%s: %s)",
                    platform.bot_id,
                    type(exc).__name__,
                    getattr(exc, "message", ""),
                )
                await self._pause(failures)
        return False

    async def _pause(self, failures: int) -> None:
        delay = _BACKOFF[min(failures, len(_BACKOFF)) - 1]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)


def _read(platform: TelegramPlatform, update: Any) -> Update | Event:
    """An update as the Bot API's JSON object: a text message as its Event at once
    (convert.plain_text_event), anything else as aiogram's Update (ValidationError when it
    is not one)."""
    if isinstance(update, Update):  # polled through a session other than BotSession
        return update
    event = plain_text_event(platform.institution, update)
    if event is not None:
        return event
    return Update.model_validate(update, context={"bot": platform.bot})


def _update_id(update: Update | Event) -> int:
    return update.update_id if isinstance(update, Update) else int(update.update_key)


def _chat_key(update: Update | Event) -> Any:
    """Updates of one chat are handled in order; of different chats, concurrently (a
    chat's key is the same whether its update was read as an Event or an Update)."""
    if isinstance(update, Event):
        return int(update.chat.chat_id)
    if update.message is not None:
        return update.message.chat.id
    if update.callback_query is not None and update.callback_query.message is not None:
        return update.callback_query.message.chat.id
    if update.my_chat_member is not None:
        return update.my_chat_member.chat.id
    return ("update", update.update_id)


async def _translate(platform: TelegramPlatform, update: Update) -> Event | None:
    """The update as an Event for the app; None for kinds the bot does not handle."""
    if update.message is not None:
        return message_event(platform.institution, update.update_id, update.message)
    if update.callback_query is not None:
        return await callback_event(
            platform.institution, update.update_id, update.callback_query, platform.payloads
        )
    if update.my_chat_member is not None:
        return membership_event(platform.institution, update.update_id, update.my_chat_member)
    return None


async def _deliver(platform: TelegramPlatform, event: Event | None) -> None:
    if event is None:
        return
    handler = platform.on_event
    if handler is None:
        raise RuntimeError("the Telegram adapter is stopping")
    await handler(event)


def webhook_secret_for(token: str) -> str:
    """A stable secret for setWebhook when the config names none: derived from the token,
    so it survives restarts and differs per bot without being the token itself."""
    return hmac.new(token.encode(), b"priemnaya-telegram-webhook", hashlib.sha256).hexdigest()


async def create_group(accounts: list[AccountSpec], services: Services) -> TelegramGroup:
    """Build the bots of every institution with a Telegram account.

    Tuning for tests and benchmarks comes from ``services.extra["telegram"]``:
    ``rates`` (TelegramRates) and ``poll_timeout`` (seconds)."""
    options: dict[str, Any] = dict(services.extra.get("telegram") or {})
    rates: TelegramRates | None = options.get("rates")
    platforms: list[TelegramPlatform] = []
    #: bot id -> the platform of the first institution naming that bot (config order)
    first: dict[str, TelegramPlatform] = {}
    shared: dict[str, TelegramPlatform] = {}
    sessions = _sessions(accounts)
    for spec in accounts:
        account = spec.account
        token = account.token.get_secret_value()
        bot_id = token.split(":", 1)[0]
        if bot_id in first:
            # one bot for several institutions: run it once; its updates carry the first
            # institution, and the app finds which one each is for (handlers/places/)
            shared[spec.institution] = first[bot_id]
            continue
        secret = (
            account.webhook_secret.get_secret_value()
            if account.webhook_secret is not None
            else webhook_secret_for(token)
        )
        platform = TelegramPlatform(
            spec.institution,
            make_bot(token, account.api_server, session=sessions[account.api_server]),
            payloads=services.payloads,
            rates=rates,
            mode=account.mode,
            webhook_secret=secret,
            owns_session=False,
        )
        first[bot_id] = platform
        platforms.append(platform)
    group = TelegramGroup(
        platforms,
        public_url=services.public_url,
        poll_timeout=int(options.get("poll_timeout", 25)),
    )
    group.platforms.update(shared)  # every institution of a shared bot sends through it
    group.sessions = list(sessions.values())
    if any(p.mode == "webhook" for p in platforms):
        if services.web_app is None or not services.public_url:
            raise ValueError(
                "a Telegram account in webhook mode needs the config's server with a public_url"
            )
        group.attach(services.web_app)
    return group


def _sessions(accounts: list[AccountSpec]) -> dict[str | None, BotSession]:
    """One HTTP session per Bot API server, its pool sized for the bots polling through it
    (a long poll holds a connection); a shared token polls once."""
    polls: dict[str | None, set[str]] = {}
    for spec in accounts:
        account = spec.account
        bots = polls.setdefault(account.api_server, set())
        if account.mode == "polling":
            bots.add(account.token.get_secret_value().split(":", 1)[0])
    return {server: make_session(server, long_polls=len(ids)) for server, ids in polls.items()}
