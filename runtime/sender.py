"""The outbox sender: delivers queued messages through the platforms, and is the one place
where sending is retried.

Messages to one chat go out in order, one at a time; different chats go out concurrently
(each platform's limiter sets the pace). A part that went out is recorded before the next is
tried, so a restart resumes where it stopped. Retries back off exponentially, honour a
platform's retry_after, and give up after ``max_attempts``; an unreachable recipient is
never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bots.core import metrics
from bots.core.background import Pulse
from bots.core.clock import Clock
from bots.core.model import ChatRef, Reply, SentMessage
from bots.core.platform import PermanentSendError, Platform, PlatformError, RecipientUnreachable
from bots.core.retry import RetryPolicy
from bots.core.text import split_text
from storage import Storage
from storage.queues import OutboxItem

log = logging.getLogger(__name__)

PlatformLookup = Callable[[str, str], Platform | None]
UnreachableHook = Callable[[str, ChatRef, str], Awaitable[None]]


class _LeaseLost(Exception):
    """The fence said no between two parts of a long message."""


class Sender:
    def __init__(
        self,
        storage: Storage,
        platforms: PlatformLookup,
        clock: Clock,
        *,
        policy: RetryPolicy | None = None,
        max_lanes: int = 256,
    ) -> None:
        self._storage = storage
        self._platforms = platforms
        self._clock = clock
        self.policy = policy or RetryPolicy()
        self._max_lanes = max_lanes
        self._lanes: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._progress = Pulse()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        #: called when a chat turned out unreachable (subscriptions drop it, citizens mark it)
        self.unreachable_hooks: list[UnreachableHook] = []
        #: asked right before every platform call: may this process still send for the
        #: institution? Several workers (runtime/workers.py) answer from their leases, so a
        #: worker whose lease ran out mid-lane leaves the row to the new holder instead of
        #: sending it a second time. None: always.
        self.fence: Callable[[str], bool] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-sender")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Let messages being sent finish, then stop (the rest stays queued for next start)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._lanes:
            await asyncio.gather(*self._lanes.values(), return_exceptions=True)

    @property
    def busy(self) -> bool:
        return bool(self._lanes)

    async def wait_progress(self, timeout: float) -> None:
        await self._progress.wait(timeout)

    async def _notify(self) -> None:
        await self._progress.notify()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self._launch_due()
                delay = await self._until_next()
            except Exception:
                log.exception("outbox sender loop failed; retrying in 1 s")
                delay = 1.0
            await self._notify()
            if self._stopping:
                break
            waiter = asyncio.create_task(self._wake.wait())
            sleeper = asyncio.create_task(self._clock.sleep(delay)) if delay is not None else None
            tasks = {t for t in (waiter, sleeper) if t is not None}
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in tasks:
                    t.cancel()

    async def _launch_due(self) -> None:
        now = self._clock.now()
        items = await self._storage.outbox.due_all(now, limit=1000)
        by_chat: dict[tuple[str, str, str], list[OutboxItem]] = {}
        for item in items:
            key = (item.institution, item.platform, item.chat.chat_id)
            if key in self._lanes:
                continue
            by_chat.setdefault(key, []).append(item)
        for key, chat_items in by_chat.items():
            if len(self._lanes) >= self._max_lanes:
                break
            self._lanes[key] = asyncio.create_task(self._lane(key, chat_items))

    async def _until_next(self) -> float | None:
        if self._lanes:
            return None  # a finishing lane wakes us
        moment = await self._storage.outbox.next_attempt_any()
        if moment is None:
            return None
        return max(0.0, (moment - self._clock.now()).total_seconds())

    async def _lane(self, key: tuple[str, str, str], items: list[OutboxItem]) -> None:
        try:
            for item in items:
                if not await self._deliver(item):
                    break  # keep this chat's order: later messages wait for the retry
        except Exception:
            log.exception("outbox lane %s:%s failed", key[1], key[2])
        finally:
            self._lanes.pop(key, None)
            self._wake.set()
            await self._notify()

    async def _deliver(self, item: OutboxItem) -> bool:
        """Send one item; True when done with it (sent, unreachable or failed for good)."""
        outbox = self._storage.outbox
        # The row as it is now: the list this lane got may be stale (a lane of the same chat
        # that finished while the list was being read has sent it already; so may another
        # worker have), and parts_sent may have moved on.
        fresh = await outbox.get(item.id)
        if fresh is None or fresh.status != "pending":
            return True
        item = fresh
        platform = self._platforms(item.institution, item.platform)
        if not self._may_send(item):
            return False
        if platform is None:
            await outbox.mark_failed(item.id, f"no {item.platform} account for {item.institution}")
            log.error("outbox %s: no %s account for %s", item.id, item.platform, item.institution)
            return True
        try:
            if item.kind == "edit":
                await self._edit(platform, item)
            elif item.kind == "topic":
                await self._create_topic(platform, item)
            else:
                await self._send(platform, item)
        except _LeaseLost:
            return False
        except RecipientUnreachable as exc:
            metrics.SEND_ERRORS.inc(platform=item.platform, code="unreachable")
            await outbox.mark_unreachable(item, exc.reason or "unreachable")
            log.info("outbox %s: %s unreachable (%s)", item.id, item.chat.key, exc.reason)
            for hook in self.unreachable_hooks:
                await hook(item.institution, item.chat, exc.reason)
            return True
        except PermanentSendError as exc:
            metrics.SEND_ERRORS.inc(platform=item.platform, code=metrics.error_code(exc))
            await outbox.mark_failed(item.id, str(exc))
            log.error("outbox %s to %s refused: %s", item.id, item.chat.key, exc)
            return True
        except PlatformError as exc:
            metrics.SEND_ERRORS.inc(platform=item.platform, code=metrics.error_code(exc))
            return await self._retry_later(item, exc, exc.retry_after)
        except Exception as exc:  # an adapter bug or an unexpected network error
            log.exception("outbox %s to %s: unexpected error", item.id, item.chat.key)
            metrics.SEND_ERRORS.inc(platform=item.platform, code=type(exc).__name__)
            return await self._retry_later(item, exc, None)
        await outbox.mark_sent(item.id, self._clock.now())
        metrics.REPLIES.inc(institution=item.institution, platform=item.platform)
        return True

    async def _retry_later(
        self, item: OutboxItem, exc: Exception, retry_after: float | None
    ) -> bool:
        outbox = self._storage.outbox
        if item.attempts + 1 >= self.policy.max_attempts:
            await outbox.mark_failed(item.id, f"gave up after {item.attempts + 1} attempts: {exc}")
            log.error("outbox %s to %s: gave up: %s", item.id, item.chat.key, exc)
            return True
        delay = self.policy.delay(item.attempts, retry_after)
        await outbox.mark_retry(item.id, str(exc), self._clock.now() + timedelta(seconds=delay))
        log.warning(
            "outbox %s to %s: %s; retry in %.1f s",
            item.id,
            item.chat.key,
            type(exc).__name__,
            delay,
        )
        return False

    def _may_send(self, item: OutboxItem) -> bool:
        if self.fence is None or self.fence(item.institution):
            return True
        log.info(
            "outbox %s: this worker no longer holds %s; left to its new holder",
            item.id,
            item.institution,
        )
        return False

    async def _create_topic(self, platform: Platform, item: OutboxItem) -> None:
        thread_id = await platform.create_topic(item.chat, item.reply.text)
        await self._storage.outbox.record_part(
            item, 0, SentMessage(item.chat, thread_id), self._clock.now()
        )

    async def _resolve_thread(self, chat: ChatRef) -> ChatRef:
        """Messages queued for a topic that did not exist yet name it ``@topic:<ref>``; a
        topic the platform could not create leaves them in the chat's main thread."""
        if chat.thread_id is None or not chat.thread_id.startswith("@"):
            return chat
        ref_kind, _, ref_id = chat.thread_id[1:].partition(":")
        records = await self._storage.outbox.sent_for_ref(ref_kind, ref_id)
        thread = records[-1].message.message_id if records else None
        return ChatRef(chat.platform, chat.chat_id, thread)

    async def _send(self, platform: Platform, item: OutboxItem) -> None:
        reply = item.reply
        chat = await self._resolve_thread(item.chat)
        parts = split_text(reply.text, platform.limits.max_text)
        for index in range(item.parts_sent, len(parts)):
            last = index == len(parts) - 1
            part = Reply(
                text=parts[index],
                buttons=reply.buttons if last else (),
                reply_to=reply.reply_to if index == 0 else None,
                silent=reply.silent,
            )
            if not self._may_send(item):
                raise _LeaseLost
            sent = await platform.send(chat, part, dedup_key=f"{item.dedup_key}#{index}")
            for message in sent:
                await self._storage.outbox.record_part(item, index, message, self._clock.now())

    async def _edit(self, platform: Platform, item: OutboxItem) -> None:
        assert item.ref_kind is not None and item.ref_id is not None
        records = await self._storage.outbox.sent_for_ref(item.ref_kind, item.ref_id)
        if not records:
            raise PermanentSendError(f"nothing sent under {item.ref_kind}:{item.ref_id} to edit")
        target = records[-1].message
        await platform.edit(target, item.reply)
