"""One OK group as a Platform: group messages in (webhook or long polling), messages out.

Start (in the background, so one broken group does not hold up the others): ``me/info``
checks the token (repeated until it works); the group's subscriptions are listed and our
own stale ones (an old webhook address of this installation) removed; then the webhook is
subscribed with the event types listed explicitly, or, with ``mode: polling``, a
long-polling subscription is made and ``me/updates`` polled. A keep-alive ``me/info`` runs
every day on the app's clock, because a group token dies 30 days after its last use [DOC].
A refused token gives one clear ERROR line and one staff-chat notice (through the group's
``token_hooks``) per episode.

Stop: a subscription call in progress is let finish (a webhook is either registered or
not, never half), an update being handed to the app is let finish, then the session
closes. The webhook subscription stays: while the bot restarts, OK keeps redelivering what
it could not deliver (for up to 8 hours [DOC]) and the inbox skips what was handled.

Sending: OK shows plain text (no markup is documented), split at 4000 characters (OK
publishes no limit [UNVERIFIED]; 4000 is what a 2026 client uses); buttons ride on the
last part, ``reply_to`` on the first. OK has no edit method: ``supports_edit`` is False,
the outbox sender sends an edited message anew, and :meth:`OkPlatform.edit` does the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from bots.core.adapters import StateStore
from bots.core.clock import Clock
from bots.core.handover import HandOver
from bots.core.model import ChatRef, Event, PlatformLimits, Reply, SentMessage
from bots.core.payloads import PayloadStore
from bots.core.platform import EventHandler, PermanentSendError, Platform
from bots.core.text import html_to_plain, split_text
from bots.ok import keyboard as kb
from bots.ok.client import OkApiError, OkClient
from bots.ok.errors import RESUBSCRIBE_CODE, port_error, token_refused
from bots.ok.events import EVENT_TYPES, PLATFORM, Translator, parse_update

log = logging.getLogger(__name__)

OK_LIMITS = PlatformLimits(
    max_text=4000,
    max_buttons_per_row=kb.MAX_PER_ROW,
    max_rows=kb.MAX_ROWS,
    max_callback_bytes=kb.MAX_PAYLOAD_BYTES,
    supports_html=False,
    supports_edit=False,
    supports_threads=False,
)
#: the path of our webhooks; an address of this shape is "ours" when cleaning up
WEBHOOK_PATH = "/ok/{hook}"
_OURS = re.compile(r"/ok/[A-Za-z0-9_-]{16,}/?$")
KEEPALIVE_SECONDS = 24 * 3600
#: how long handling waits for the "typing" call to go out first
TYPING_HEAD_START = 2.5
STOP_GRACE = 10.0
_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

TokenHook = Callable[[str, str], Awaitable[None]]


class OkPlatform(Platform):
    name = PLATFORM
    limits = OK_LIMITS

    def __init__(
        self,
        institution: str,
        client: OkClient,
        *,
        payloads: PayloadStore,
        state: StateStore,
        clock: Clock,
        mode: str = "webhook",
        hook: str = "",
        poll_interval: float = 3.0,
    ) -> None:
        self.institution = institution
        self.client = client
        self.mode = mode
        #: the unguessable last segment of this group's webhook path
        self.hook = hook
        #: the full webhook address, set by the group from the server's public_url
        self.webhook_url: str | None = None
        self.poll_interval = poll_interval
        self._store = payloads
        self._state = state
        self._clock = clock
        self._translator = Translator(institution, payloads)
        self.group_id: str | None = None
        #: receiving: identified and subscribed (or polling)
        self.ready = asyncio.Event()
        #: called with (institution, reason) when the token is refused (once per episode)
        self.token_hooks: list[TokenHook] = []
        self.token_ok = True
        #: successful keep-alive calls so far (tests wait on it)
        self.keepalives = 0
        self.on_event: EventHandler | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._keepalive: asyncio.Task[None] | None = None
        #: a subscription call is under way: stop lets it finish
        self._registering = False
        self._handover = HandOver(f"ok group of {institution}")
        self._handling: dict[str, asyncio.Task[bool]] = {}

    @property
    def scope(self) -> str:
        return f"ok:{self.institution}"

    def healthy(self) -> bool:
        return self.token_ok and self.ready.is_set()

    # -- receiving ------------------------------------------------------------------------
    async def start(self, on_event: EventHandler) -> None:
        self.on_event = on_event
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"ok-{self.institution}")

    async def stop(self) -> None:
        """Stop receiving: a subscription call under way is let finish (so nothing is
        left half-registered), as are updates being handed to the app; then the session
        closes."""
        self._stopping.set()
        keepalive, task = self._keepalive, self._task
        self._task = self._keepalive = None
        if keepalive is not None:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
        if task is not None:
            if not self._registering:
                task.cancel()  # polling: an update being handed over is its own task
            done, _ = await asyncio.wait({task}, timeout=STOP_GRACE)
            if not done:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._handling:  # updates still being handed to the app
            await asyncio.wait(set(self._handling.values()), timeout=STOP_GRACE)
        self.on_event = None
        await self.client.drain(5.0)
        await self.client.close()

    async def _run(self) -> None:
        if not await self._until_done("me/info", self._identify):
            return
        self._keepalive = asyncio.create_task(self._keep_alive(), name="ok-keepalive")
        if not await self._until_done("subscriptions", self._register):
            return
        self.ready.set()
        if self.mode == "polling":
            log.info("ok group %s (%s): polling", self.group_id, self.institution)
            await self._poll()
        else:
            log.info("ok group %s (%s): webhook subscribed", self.group_id, self.institution)

    async def _identify(self) -> None:
        info = await self.client.info()
        self.group_id = info.group_id
        self._translator.group_id = info.group_id
        await self._token_accepted()

    async def _register(self) -> None:
        """Remove our own stale webhooks, then subscribe. The calls run to the end even
        when stop comes meanwhile (``_registering``), so nothing is left half-registered."""
        self._registering = True
        try:
            listed = (await self.client.subscriptions()).subscriptions
            keep = self.webhook_url if self.mode == "webhook" else None
            for subscription in listed:
                if subscription.url != keep and self._ours(subscription.url):
                    await self.client.unsubscribe(subscription.url)
                    log.info("ok group %s: removed a stale webhook of ours", self.group_id)
            if self.mode == "webhook":
                assert self.webhook_url is not None
                if not any(s.url == self.webhook_url for s in listed):
                    await self.client.subscribe_webhook(self.webhook_url, EVENT_TYPES)
            else:
                await self.client.subscribe_polling(EVENT_TYPES)
        finally:
            self._registering = False

    def _ours(self, url: str) -> bool:
        """An address this installation registered: ours by shape, and under our public
        URL when we know it (never another service's webhook on the same group)."""
        if not _OURS.search(url):
            return False
        if self.webhook_url is None:
            return True
        base = self.webhook_url[: self.webhook_url.rindex("/ok/")]
        return url.startswith(base + "/ok/")

    async def _keep_alive(self) -> None:
        """``me/info`` every day of app time: the token lives 30 days from its last use."""
        while not self._stopping.is_set():
            await self._clock.sleep(KEEPALIVE_SECONDS)
            try:
                await self.client.info()
            except OkApiError as exc:
                await self._api_failed("keep-alive me/info", exc)
                continue
            self.keepalives += 1
            await self._token_accepted()

    async def _poll(self) -> None:
        """``me/updates`` every ``poll_interval`` seconds. Whether OK confirms what it
        handed out is [UNVERIFIED]: an update whose handling fails is retried here."""
        failures = 0
        while not self._stopping.is_set():
            try:
                batch = await self.client.updates()
            except OkApiError as exc:
                failures += 1
                if exc.code == RESUBSCRIBE_CODE:
                    await self._until_done("me/subscribe", self._register)
                else:
                    await self._api_failed("me/updates", exc)
                await self._pause(failures)
                continue
            failures = 0
            for raw in batch.updates:
                while not await self.take_update(raw):
                    if self._stopping.is_set():
                        return
                    failures += 1
                    await self._pause(failures)
            if not batch.updates:
                await self._wait_stopping(self.poll_interval)

    async def take_update(self, raw: dict[str, Any]) -> bool:
        """One update (POSTed or polled) to the app; False when it must come again. A
        redelivery arriving while the first copy is still being handled waits for it."""
        update = parse_update(raw)
        if update is None:
            log.warning("ok group %s: an update of unknown shape ignored", self.group_id)
            return True
        event = await self._translator.translate(update)
        if event is None:
            return True
        running = self._handling.get(event.update_key)
        if running is not None:
            return await asyncio.shield(running)
        task = asyncio.create_task(self._hand_over(event))
        self._handling[event.update_key] = task
        task.add_done_callback(lambda _: self._handling.pop(event.update_key, None))
        return await asyncio.shield(task)

    async def _hand_over(self, event: Event) -> bool:
        handler = self.on_event
        if handler is None:
            return False
        if event.text is not None and event.callback is None:
            await self._typing_first(event.chat.chat_id)
        return await self._handover(handler, event)

    async def _typing_first(self, chat_id: str) -> None:
        """Show "typing" while the answer is prepared. It must reach OK before the answer
        (or the citizen sees "typing" after it), so handling waits for it, but never more
        than TYPING_HEAD_START: a slow OK must not hold the answer up."""

        async def typing() -> None:
            try:
                await self.client.typing(chat_id)
            except OkApiError as exc:
                log.debug("ok group %s: typing failed: %s", self.group_id, exc)

        await asyncio.wait({asyncio.create_task(typing())}, timeout=TYPING_HEAD_START)

    # -- sending --------------------------------------------------------------------------
    async def send(self, chat: ChatRef, reply: Reply, *, dedup_key: str) -> list[SentMessage]:
        parts = self._parts(reply.text)
        keyboard = await kb.keyboard_attachment(reply.buttons, self._store)
        sent: list[SentMessage] = []
        for index, part in enumerate(parts):
            message: dict[str, Any] = {"text": part}
            if keyboard is not None and index == len(parts) - 1:
                message["attachments"] = [keyboard]
            if reply.reply_to and index == 0:
                message["reply_to"] = reply.reply_to
            try:
                result = await self.client.send(chat.chat_id, message)
            except OkApiError as exc:
                log.info(
                    "ok group %s: send to %s failed (part %d/%d): HTTP %s error_code %s",
                    self.group_id,
                    chat.key,
                    index + 1,
                    len(parts),
                    exc.status,
                    exc.code,
                )
                await self._api_failed("send", exc, quiet=True)
                raise port_error(exc, chat, sending=True) from None
            mid = result.message_id or result.mid
            if not mid:
                raise PermanentSendError("OK answered a send without a message id")
            sent.append(SentMessage(chat, mid))
        return sent

    async def edit(self, message: SentMessage, reply: Reply) -> None:
        """No edit method is known [UNVERIFIED / likely absent]: the new version is sent
        as a new message (``limits.supports_edit`` is False, so the sender does this
        itself and records the new message)."""
        await self.send(message.chat, reply, dedup_key=f"edit:{message.message_id}")

    async def answer_callback(self, event: Event, text: str | None = None) -> None:
        """A notice goes as ``chat:ID/answer`` with a message, as the docs ask; a silent
        answer shows "typing" until the reply (a normal message) arrives, as clients do.
        Failures are logged only: the reply message is the real answer. (The app calls
        this after handling, so "typing" may follow the reply; it is dropped by OK's
        client once the next message arrives, and shows for a moment at worst.)"""
        if event.callback is None:
            return
        try:
            if text:
                plain = " ".join(html_to_plain(text).split())
                await self.client.answer(
                    event.chat.chat_id, event.callback.id, {"text": plain[: self.limits.max_text]}
                )
            else:
                await self.client.typing(event.chat.chat_id)
        except OkApiError as exc:
            log.warning("ok group %s: answering a press failed: %s", self.group_id, exc)

    # -- helpers --------------------------------------------------------------------------
    def _parts(self, html_text: str) -> list[str]:
        plain = html_to_plain(html_text).strip()
        if not plain:
            raise PermanentSendError("message text is empty")
        return split_text(plain, self.limits.max_text, html_markup=False)

    async def _token_accepted(self) -> None:
        if not self.token_ok:
            log.warning("ok group %s (%s): the token works again", self.group_id, self.institution)
        self.token_ok = True

    async def _api_failed(self, what: str, exc: OkApiError, *, quiet: bool = False) -> None:
        """Log a failed call; a refused token is announced once (log and staff)."""
        if not token_refused(exc):
            if not quiet:
                log.warning("ok group %s: %s failed: %s", self.group_id, what, exc)
            return
        if not self.token_ok:
            return
        self.token_ok = False
        log.error(
            "ok group %s (%s): OK refused the group's token (%s). The group's administrator"
            " gets a new key in the group's settings (Управление → Сообщения → Работа с API"
            " → Получить ключ доступа) and puts it into the environment variable of the config",
            self.group_id or "?",
            self.institution,
            exc,
        )
        for hook in self.token_hooks:
            try:
                await hook(self.institution, str(exc))
            except Exception:
                log.exception("ok: telling staff about the refused token failed")

    async def _until_done(self, what: str, call: Callable[[], Awaitable[None]]) -> bool:
        failures = 0
        while not self._stopping.is_set():
            try:
                await call()
                return True
            except OkApiError as exc:
                failures += 1
                await self._api_failed(what, exc)
                if token_refused(exc):
                    await self._wait_stopping(60.0)
                else:
                    await self._pause(failures)
        return False

    async def _pause(self, failures: int) -> None:
        await self._wait_stopping(_BACKOFF[min(failures, len(_BACKOFF)) - 1])

    async def _wait_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
