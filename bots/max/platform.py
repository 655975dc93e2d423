"""One MAX bot as a Platform: updates in (long polling or a webhook), messages out.

Receiving. Long polling (``GET /updates``) is for development: MAX itself calls it unfit for
production. The ``marker`` of a batch is stored in the app's state only after every update
of the batch went through ``on_event``; a restart passes the stored marker again, which makes
MAX serve the unconfirmed batch again (the app's inbox skips what it already has), so a crash
neither loses nor repeats an update. In webhook mode (production) the group's route hands
each POSTed update to :meth:`MaxPlatform.take_update` and answers 200 only after ``on_event``
stored it; MAX retries anything else. Going back to polling removes the subscriptions, as
MAX serves an account one way at a time.

Sending. Texts go as ``format: html`` (the templates' markup is a subset of what MAX
renders), split to 4000 characters; buttons ride on the last part, a reply link on the
first. MAX has no client idempotency key (NewMessageBody in schema 0.0.33 has none), so a
retry after an answer lost in the network can repeat a part: the outbox sender records each
part as it goes out, which keeps the window to the one part in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bots.core.adapters import StateStore
from bots.core.background import until_stopped
from bots.core.handover import HandOver
from bots.core.model import ChatRef, Event, PlatformLimits, Reply, SentMessage
from bots.core.payloads import PayloadStore
from bots.core.platform import (
    EventHandler,
    NotStored,
    PermanentSendError,
    Platform,
    PlatformError,
    RecipientUnreachable,
)
from bots.core.text import split_text
from bots.max import keyboard as kb
from bots.max.client import MaxApiError, MaxClient
from bots.max.events import PLATFORM, UPDATE_TYPES, USER_CHAT_PREFIX, Translator, parse_update

log = logging.getLogger(__name__)

MAX_LIMITS = PlatformLimits(
    max_text=4000,
    max_buttons_per_row=kb.MAX_PER_ROW,
    max_rows=kb.MAX_ROWS,
    max_callback_bytes=kb.MAX_PAYLOAD_BYTES,
    supports_html=True,
    supports_edit=True,
    supports_threads=False,
)
#: a callback notification is a one-line toast
NOTIFICATION_MAX = 200
STOP_GRACE = 10.0
_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
#: MAX error codes that mean "this user or chat cannot be written to"
_UNREACHABLE_WORDS = ("suspended", "blocked", "denied", "not.found", "removed")


class MaxPlatform(Platform):
    name = PLATFORM
    limits = MAX_LIMITS

    def __init__(
        self,
        institution: str,
        client: MaxClient,
        *,
        payloads: PayloadStore,
        state: StateStore,
        mode: str = "polling",
        webhook_secret: str | None = None,
        poll_timeout: int = 30,
    ) -> None:
        self.institution = institution
        self.client = client
        self.mode = mode
        self.webhook_secret = webhook_secret
        self.poll_timeout = poll_timeout
        self._store = payloads
        self._state = state
        self._translator = Translator(institution, payloads)
        self.bot_id: int | None = None
        #: set when the bot is ready to receive (identified, subscribed or polling)
        self.ready = asyncio.Event()
        self.on_event: EventHandler | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._delivering = False
        self._hand_over = HandOver("max bot")

    @property
    def scope(self) -> str:
        return f"max:{self.bot_id}"

    # -- receiving ------------------------------------------------------------------------
    async def start(self, on_event: EventHandler) -> None:
        """Identify the bot and start receiving in the background: a MAX that does not
        answer yet is retried there, so one broken bot does not hold up the others."""
        self.on_event = on_event
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"max-{self.institution}")

    async def stop(self) -> None:
        """Stop receiving (an update being handed to the app is let finish; the rest of
        its batch stays unconfirmed and comes again next start), let sends finish."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            if not self._delivering:
                task.cancel()
            done, _ = await asyncio.wait({task}, timeout=STOP_GRACE)
            if not done:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.on_event = None
        await self.client.drain(5.0)
        await self.client.close()

    async def _run(self) -> None:
        if not await self._until_done("GET /me", self._identify):
            return
        if self.mode == "webhook":
            self.ready.set()  # the group subscribes once every bot knows its id
            return
        if not await self._until_done("DELETE /subscriptions", self._unsubscribe_all):
            return
        self.ready.set()
        log.info("max bot %s (%s): polling", self.bot_id, self.institution)
        await self._poll()

    async def _identify(self) -> None:
        me = await self.client.get_me()
        self.bot_id = me.user_id
        self._translator.know_bot(me.user_id, me.username)

    async def _unsubscribe_all(self) -> None:
        """Polling and webhooks exclude each other: remove any subscription left from a
        run in webhook mode, or MAX keeps delivering there."""
        for subscription in (await self.client.subscriptions()).subscriptions:
            await self.client.unsubscribe(subscription.url)
            log.info("max bot %s: removed webhook subscription", self.bot_id)

    async def subscribe(self, url: str) -> bool:
        """Register the webhook (repeated until it works or the bot stops)."""
        assert self.webhook_secret is not None

        async def call() -> None:
            await self.client.subscribe(url, self.webhook_secret or "", UPDATE_TYPES)

        done = await self._until_done("POST /subscriptions", call)
        if done:
            log.info("max bot %s (%s): webhook subscribed", self.bot_id, self.institution)
        return done

    async def _poll(self) -> None:
        stored = await self._state.get(self.scope, "marker")
        marker = int(stored) if stored else None
        failures = 0
        while not self._stopping.is_set():
            try:
                batch = await until_stopped(
                    self.client.get_updates(
                        marker=marker, timeout=self.poll_timeout, types=UPDATE_TYPES
                    ),
                    self._stopping,
                )
            except MaxApiError as exc:
                failures += 1
                log.warning("max bot %s: polling failed: %s", self.bot_id, exc)
                await self._pause(failures)
                continue
            if batch is None:
                return  # stopping
            if not await self._deliver(batch.updates):
                if self._stopping.is_set():
                    return  # the rest of the batch comes again next start
                failures += 1
                await self._pause(failures)
                continue  # the same marker: MAX serves the batch again
            failures = 0
            if batch.marker is not None and batch.marker != marker:
                marker = batch.marker
                try:
                    await self._state.set(self.scope, "marker", str(marker))
                except Exception:  # the next batch stores it; a redelivery is skipped
                    log.exception("max bot %s: could not store the marker", self.bot_id)

    async def _deliver(self, updates: list[dict[str, Any]]) -> bool:
        """Hand each update to the app, in order; True when all went through."""
        self._delivering = True
        try:
            for raw in updates:
                if self._stopping.is_set():
                    return False
                if not await self.take_update(raw):
                    return False
            return True
        finally:
            self._delivering = False

    async def take_update(self, raw: dict[str, Any]) -> bool:
        """One raw update (polled or POSTed to the webhook) to the app; False when it must
        come again. An update that keeps failing is skipped (bots/handover.py)."""
        update = parse_update(raw)
        if update is None:
            log.warning("max bot %s: an update without the schema's shape ignored", self.bot_id)
            return True
        try:
            event = await self._translator.translate(update)
        except NotStored:  # a stored payload could not be read: the update comes again
            return False
        if event is None:
            log.debug("max bot %s: ignored %s", self.bot_id, update.update_type)
            return True
        handler = self.on_event
        if handler is None:
            return False
        self._hand_over.account = f"max bot {self.bot_id}"
        return await self._hand_over(handler, event)

    # -- sending --------------------------------------------------------------------------
    async def send(self, chat: ChatRef, reply: Reply, *, dedup_key: str) -> list[SentMessage]:
        parts = self._parts(reply.text)
        keyboard = await kb.keyboard_attachment(reply.buttons, self._store)
        target = _target(chat)
        sent: list[SentMessage] = []
        for index, part in enumerate(parts):
            body: dict[str, Any] = {"text": part, "format": "html"}
            if keyboard is not None and index == len(parts) - 1:
                body["attachments"] = [keyboard]
            if reply.reply_to and index == 0:
                body["link"] = {"type": "reply", "mid": reply.reply_to}
            if reply.silent:
                body["notify"] = False
            try:
                result = await self.client.send_message(body, **target)
            except MaxApiError as exc:
                log.info(
                    "max bot %s: send to %s failed (part %d/%d): %s %s",
                    self.bot_id,
                    chat.key,
                    index + 1,
                    len(parts),
                    exc.status,
                    exc.code,
                )
                raise self._port_error(exc, chat, sending=True) from None
            sent.append(SentMessage(chat, result.message.body.mid))
        return sent

    async def edit(self, message: SentMessage, reply: Reply) -> None:
        """Replace text and buttons; an empty attachment list takes the buttons away
        (``null`` would keep them)."""
        text = self._parts(reply.text)[0]
        keyboard = await kb.keyboard_attachment(reply.buttons, self._store)
        body = {"text": text, "format": "html", "attachments": [keyboard] if keyboard else []}
        try:
            await self.client.edit_message(message.message_id, body)
        except MaxApiError as exc:
            raise self._port_error(exc, message.chat, sending=False) from None

    async def answer_callback(self, event: Event, text: str | None = None) -> None:
        """Answer a pressed button, with ``text`` as a one-time notification. Failures are
        logged only: an unanswered press costs the user nothing but a moment."""
        if event.callback is None or not event.callback.id:
            return
        body: dict[str, Any] = {}
        if text:
            short = " ".join(text.split())
            if len(short) > NOTIFICATION_MAX:
                short = short[: NOTIFICATION_MAX - 1] + "…"
            body["notification"] = short
        try:
            await self.client.answer_callback(event.callback.id, body)
        except MaxApiError as exc:
            log.warning("max bot %s: answering a button failed: %s", self.bot_id, exc)

    # -- helpers --------------------------------------------------------------------------
    def _parts(self, html_text: str) -> list[str]:
        if not html_text.strip():
            raise PermanentSendError("message text is empty")
        return split_text(html_text, self.limits.max_text)

    def _port_error(self, exc: MaxApiError, chat: ChatRef, *, sending: bool) -> Exception:
        """MAX's answers in the port's terms: retry later, unreachable, or refused."""
        status = exc.status
        if status is None or status == 429 or status >= 500:
            return PlatformError(str(exc), code=status, retry_after=exc.retry_after)
        if status == 401:
            log.error(
                "max bot %s (%s): the token was rejected; create a new one on the MAX"
                " business platform and put it in the environment",
                self.bot_id,
                self.institution,
            )
            return PlatformError(str(exc), code=status, retry_after=60.0)
        code = exc.code.lower()
        if sending and (status in (403, 404) or any(w in code for w in _UNREACHABLE_WORDS)):
            return RecipientUnreachable(chat, f"MAX {status} {exc.code}".strip())
        return PermanentSendError(str(exc), code=status)

    async def _until_done(self, what: str, call: Callable[[], Awaitable[None]]) -> bool:
        """Repeat a set-up call until it works or the bot stops; False if stopped."""
        failures = 0
        while not self._stopping.is_set():
            try:
                await call()
                return True
            except MaxApiError as exc:
                failures += 1
                log.error(
                    "max bot %s (%s): %s failed: %s", self.bot_id, self.institution, what, exc
                )
                await self._pause(failures)
        return False

    async def _pause(self, failures: int) -> None:
        delay = _BACKOFF[min(failures, len(_BACKOFF)) - 1]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)


def _target(chat: ChatRef) -> dict[str, int]:
    """``chat_id`` for chats, dialogs and channels; ``user_id`` for a ``u<id>`` ChatRef."""
    raw = chat.chat_id
    try:
        if raw.startswith(USER_CHAT_PREFIX):
            return {"user_id": int(raw[len(USER_CHAT_PREFIX) :])}
        return {"chat_id": int(raw)}
    except ValueError:
        raise PermanentSendError(f"not a MAX chat id: {raw!r}") from None
