"""The broadcast engine: one occurrence to every recipient, once, at the platforms' pace.

Why a dedicated table and worker instead of the outbox (one outbox row per recipient):

- VK takes up to 100 peer_ids in one messages.send. The outbox sends chat by chat; only a
  worker that sees the whole broadcast can batch it (20 requests/s x 100 peers).
- A broadcast of thousands would fill the outbox's lanes and make a citizen's answer to a
  question wait behind an announcement; here it runs beside the conversations, and both
  share the adapter's limiter (the one place that sets the pace).
- Progress, the final report and ``announce status`` read one table, per broadcast.

What is kept from the outbox: the retry policy (bots/core/retry.py), the error kinds of
the Platform port, and the rule that a row exists before its message is sent.

Exactly once, as far as each platform allows: every (broadcast, recipient) row is written
before the first send, and a row is marked sent right after the platform answered for it
(not batched), so a restart resends only what was in flight at the kill. The dedup key of a
delivery is derived from the occurrence (institution, announcement, scheduled time) and the
recipient, so a resend carries the same key: VK's random_id drops it, so on VK nobody gets
two copies; Telegram has no such key, so a message sent but not yet recorded when the process
died is sent again: at most one duplicate per send in flight (``lanes``) at the kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from markupsafe import Markup

from bots.core.background import Pulse
from bots.core.clock import Clock
from bots.core.model import Button, ChatRef, Reply, SentMessage
from bots.core.platform import (
    BatchSending,
    PermanentSendError,
    Platform,
    PlatformError,
    RecipientUnreachable,
)
from bots.core.retry import RetryPolicy
from handlers.announcements.labels import label
from storage import Storage
from storage.announcements import Broadcast, BroadcastRepo, Counts, Delivery, SubscriptionRepo

log = logging.getLogger(__name__)

#: VK's messages.send limit of peer_ids per call
BATCH = 100
#: rows fetched from storage per round
CHUNK = 2000
#: progress edits in the staff chat at these fractions
PROGRESS_STEPS = 4


class Host(Protocol):
    """What the engine needs from the app (runtime.app.App provides it; the bench a stub)."""

    storage: Storage | None
    clock: Clock
    institutions: dict[str, Any]
    groups: dict[str, Any]
    sender: Any

    def platform(self, institution: str, kind: str) -> Platform | None: ...


class Broadcaster:
    def __init__(
        self,
        host: Host,
        *,
        policy: RetryPolicy | None = None,
        lanes: int = 32,
        poll: float | None = None,
    ) -> None:
        """``lanes``: sends in flight per platform when it cannot batch (the limiter inside
        the adapter sets the pace; lanes only hide the network's latency). ``poll``: also
        look at the table this often, for broadcasts another process queued (the CLI)."""
        self.host = host
        self.policy = policy or RetryPolicy()
        self.lanes = lanes
        self.poll = poll
        self._wake = asyncio.Event()
        self._progress = Pulse()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._reported: dict[int, int] = {}
        #: called with (institution, ChatRef) when a recipient turned out unreachable
        self.unreachable_hooks: list[Callable[[str, ChatRef], Awaitable[None]]] = []

    @property
    def storage(self) -> Storage:
        assert self.host.storage is not None
        return self.host.storage

    @property
    def repo(self) -> BroadcastRepo:
        return BroadcastRepo(self.storage.db)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="broadcaster")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the sends in flight (no new ones start); the rest resumes at next start."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._tasks:
            _, late = await asyncio.wait(list(self._tasks.values()), timeout=timeout)
            for task in late:
                task.cancel()

    async def wait_progress(self, timeout: float) -> None:
        await self._progress.wait(timeout)

    async def _notify(self) -> None:
        await self._progress.notify()

    async def idle(self) -> bool:
        """Nothing is being sent and nothing is due now (tests and ``settle``)."""
        if self._tasks:
            return False
        now = self.host.clock.now()
        for b in await self.repo.open():
            if b.status == "waiting" and b.send_after <= now:
                return False
            if b.status == "sending":
                moment = await self.repo.next_attempt(b.id)
                if moment is None or moment <= now:
                    return False
        return True

    # -- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        clock = self.host.clock
        while not self._stopping:
            self._wake.clear()
            try:
                delay = await self._launch()
            except Exception:
                log.exception("broadcaster loop failed; trying again in 1 s")
                delay = 1.0
            await self._notify()
            waiter = asyncio.create_task(self._wake.wait())
            sleeper = asyncio.create_task(clock.sleep(delay)) if delay is not None else None
            tasks = {t for t in (waiter, sleeper) if t is not None}
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in tasks:
                    t.cancel()

    async def _launch(self) -> float | None:
        """Start a task for each broadcast with work due; seconds until the next one."""
        now = self.host.clock.now()
        soonest: datetime | None = None
        for b in await self.repo.open():
            if b.id in self._tasks:
                continue
            moment: datetime | None = b.send_after
            if b.status == "sending":
                moment = await self.repo.next_attempt(b.id)
            if moment is not None and moment > now:
                soonest = moment if soonest is None else min(soonest, moment)
                continue
            task = asyncio.create_task(self._broadcast(b), name=f"broadcast-{b.id}")
            self._tasks[b.id] = task
            task.add_done_callback(functools.partial(self._on_done, b.id))
        delay = None if soonest is None else max(0.0, (soonest - now).total_seconds())
        if self.poll is not None:
            delay = self.poll if delay is None else min(delay, self.poll)
        return delay

    def _on_done(self, broadcast_id: int, _task: asyncio.Task[Any]) -> None:
        self._done(broadcast_id)

    def _done(self, broadcast_id: int) -> None:
        self._tasks.pop(broadcast_id, None)
        self._wake.set()

    # -- one broadcast ---------------------------------------------------------------------
    async def _broadcast(self, b: Broadcast) -> None:
        try:
            if b.status == "waiting":
                recipients = await self._recipients(b)
                await self.repo.start(b.id, recipients, self.host.clock.now())
                log.info(
                    "broadcast %s (%s/%s): %d recipient(s)",
                    b.id,
                    b.institution,
                    b.announcement_id,
                    len(recipients),
                )
                await self._report(b, "start")
            while not self._stopping:
                rows = await self.repo.due_deliveries(b.id, self.host.clock.now(), CHUNK)
                if not rows:
                    break
                by_platform: dict[str, list[Delivery]] = {}
                for row in rows:
                    by_platform.setdefault(row.platform, []).append(row)
                await asyncio.gather(
                    *(self._send_platform(b, kind, part) for kind, part in by_platform.items())
                )
                await self._report(b, "progress")
                await self._notify()
            counts = await self.repo.counts(b.id)  # also when stopping: the last batch
            if counts.pending == 0 and await self.repo.finish(b.id, self.host.clock.now()):
                log.info(
                    "broadcast %s done: %d sent, %d unreachable, %d failed",
                    b.id,
                    counts.sent,
                    counts.unreachable,
                    counts.failed,
                )
                await self._report(b, "final", counts)
        except Exception:
            log.exception("broadcast %s failed; it resumes on the next wake", b.id)
        finally:
            await self._notify()

    async def _recipients(self, b: Broadcast) -> list[tuple[str, str, str]]:
        found: list[tuple[str, str, str]] = []
        if b.audience.subscribers:
            kinds = [k for k in self.host.groups if self.host.platform(b.institution, k)]
            subs = await SubscriptionRepo(self.storage.db).reachable(b.institution, kinds)
            found += [
                (s.platform, s.chat_id, "subscriber") for s in subs if s.wants(b.audience.topics)
            ]
        for platform, chat_id in b.audience.channels:
            kind = "local" if getattr(self.host, "local", False) else platform
            found.append((kind, chat_id, "channel"))
        return list(dict.fromkeys(found))

    def _reply(self, b: Broadcast, kind: str, platform: str = "") -> Reply:
        """``kind``: subscriber or channel; ``platform``: the account's kind."""
        if kind == "channel":
            return Reply(text=b.text)
        institution = self.host.institutions.get(b.institution)
        if institution is None:
            return Reply(text=b.text)
        # the institution in the payload: in a shared bot the chat may be bound elsewhere
        button = Button(
            label(institution.texts, "unsubscribe"), callback=f"sub:off:{b.institution}"
        )
        text = b.text
        if self._shared(b.institution, platform):  # say whose: a citizen may follow several
            text = institution.texts.render(
                "announce_from", text=Markup(b.text)
            )  # already rendered HTML
        return Reply(text=text, buttons=((button,),))

    def _shared(self, institution: str, kind: str) -> bool:
        """Whether ``institution``'s account on ``kind`` serves other institutions too."""
        group = self.host.groups.get(kind)
        mine = self.host.platform(institution, kind)
        if group is None or mine is None:
            return False
        return any(p is mine for i, p in group.platforms.items() if i != institution)

    async def _send_platform(self, b: Broadcast, kind: str, rows: list[Delivery]) -> None:
        platform = self.host.platform(b.institution, kind)
        if platform is None:
            for row in rows:
                await self.repo.mark_final(
                    b.id, row.platform, row.chat_id, "failed", f"no {kind} account"
                )
            log.error("broadcast %s: %s has no %s account", b.id, b.institution, kind)
            return
        for recipient_kind in ("subscriber", "channel"):
            group = [r for r in rows if r.kind == recipient_kind]
            if not group:
                continue
            reply = self._reply(b, recipient_kind, kind)
            if isinstance(platform, BatchSending):
                await self._send_batches(b, platform, group, reply)
            else:
                await self._send_each(b, platform, group, reply)

    async def _send_batches(
        self, b: Broadcast, platform: BatchSending, rows: list[Delivery], reply: Reply
    ) -> None:
        """Up to 100 peers a call; the dedup key is the occurrence's, so VK's random_id is
        the same for every peer and every retry (VK deduplicates per peer)."""
        for start in range(0, len(rows), BATCH):
            if self._stopping:
                return
            chunk = rows[start : start + BATCH]
            try:
                outcome = await platform.send_many(
                    [r.chat_id for r in chunk], reply, dedup_key=b.key
                )
            except Exception as exc:  # the whole call failed: each peer retries
                outcome = {r.chat_id: exc for r in chunk}
            async with self.storage.transaction():
                for row in chunk:
                    result = outcome.get(row.chat_id)
                    if result is None:
                        result = PlatformError("no answer for this peer")
                    await self._record(b, row, result)

    async def _send_each(
        self, b: Broadcast, platform: Platform, rows: list[Delivery], reply: Reply
    ) -> None:
        queue: asyncio.Queue[Delivery] = asyncio.Queue()
        for row in rows:
            queue.put_nowait(row)

        async def lane() -> None:
            while not self._stopping:
                try:
                    row = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                chat = ChatRef(row.platform, row.chat_id)
                result: SentMessage | Exception
                try:
                    sent = await platform.send(chat, reply, dedup_key=f"{b.key}:{row.chat_id}")
                    result = sent[-1] if sent else PlatformError("nothing sent")
                except Exception as exc:
                    result = exc
                if isinstance(result, SentMessage):
                    await commit.add((row.platform, row.chat_id, result.message_id))
                else:
                    await self._record(b, row, result)

        async def flush(items: list[tuple[str, str, str]]) -> None:
            await self.repo.mark_sent_many(b.id, items, self.host.clock.now())

        commit = _GroupCommit(flush)
        await asyncio.gather(*(lane() for _ in range(min(self.lanes, len(rows)))))

    async def _record(self, b: Broadcast, row: Delivery, result: object) -> None:
        now = self.host.clock.now()
        repo = self.repo
        if isinstance(result, SentMessage):
            await repo.mark_sent(b.id, row.platform, row.chat_id, result.message_id, now)
            return
        if isinstance(result, RecipientUnreachable):
            await repo.mark_final(b.id, row.platform, row.chat_id, "unreachable", result.reason)
            chat = ChatRef(row.platform, row.chat_id)
            if row.kind == "subscriber":
                await SubscriptionRepo(self.storage.db).unsubscribe(
                    b.institution, row.platform, row.chat_id
                )
                await self.storage.citizens.mark_unreachable(
                    b.institution, row.platform, row.chat_id, result.reason or "unreachable", now
                )
            log.info("broadcast %s: %s unreachable", b.id, chat.key)
            for hook in self.unreachable_hooks:
                await hook(b.institution, chat)
            return
        if isinstance(result, PermanentSendError):
            await repo.mark_final(b.id, row.platform, row.chat_id, "failed", str(result))
            log.error("broadcast %s to %s:%s refused: %s", b.id, row.platform, row.chat_id, result)
            return
        error = result if isinstance(result, Exception) else PlatformError(repr(result))
        if row.attempts + 1 >= self.policy.max_attempts:
            await repo.mark_final(b.id, row.platform, row.chat_id, "failed", f"gave up: {error}")
            log.error("broadcast %s to %s:%s: gave up", b.id, row.platform, row.chat_id)
            return
        retry_after = error.retry_after if isinstance(error, PlatformError) else None
        delay = self.policy.delay(row.attempts, retry_after)
        await repo.mark_retry(
            b.id, row.platform, row.chat_id, str(error), now + timedelta(seconds=delay)
        )
        log.warning(
            "broadcast %s to %s:%s: %s; retry in %.1f s",
            b.id,
            row.platform,
            row.chat_id,
            type(error).__name__,
            delay,
        )

    # -- the staff chat hears how it went --------------------------------------------------
    async def _report(self, b: Broadcast, stage: str, counts: Counts | None = None) -> None:
        if b.report_chat_id is None or b.report_platform is None:
            return
        institution = self.host.institutions.get(b.institution)
        if institution is None:
            return
        counts = counts or await self.repo.counts(b.id)
        now = self.host.clock.now()
        chat = ChatRef(b.report_platform, b.report_chat_id, b.report_thread_id)
        outbox = self.storage.outbox
        progress = {"ref_kind": "broadcast", "ref_id": str(b.id)}
        context = {
            "total": counts.total,
            "finished": counts.finished,
            "delivered": counts.sent,
            "unreachable": counts.unreachable,
            "failed": counts.failed,
        }
        if stage == "start":
            text = institution.texts.render("broadcast_progress", **context)
            await outbox.enqueue(
                institution=b.institution,
                chat=chat,
                reply=Reply(text=text),
                dedup_key=f"{b.key}:progress",
                now=now,
                **progress,
            )
        elif stage == "progress":
            step = counts.finished * PROGRESS_STEPS // counts.total if counts.total else 0
            if step <= self._reported.get(b.id, 0) or step >= PROGRESS_STEPS:
                return
            self._reported[b.id] = step
            text = institution.texts.render("broadcast_progress", **context)
            await outbox.enqueue(
                institution=b.institution,
                chat=chat,
                reply=Reply(text=text),
                dedup_key=f"{b.key}:progress:{step}",
                now=now,
                kind="edit",
                **progress,
            )
        else:
            self._reported.pop(b.id, None)
            done = institution.texts.render("broadcast_progress", **context)
            await outbox.enqueue(
                institution=b.institution,
                chat=chat,
                reply=Reply(text=done),
                dedup_key=f"{b.key}:progress:done",
                now=now,
                kind="edit",
                **progress,
            )
            text = institution.texts.render(
                "broadcast_report", announcement=b.announcement_id, **context
            )
            await outbox.enqueue(
                institution=b.institution,
                chat=chat,
                reply=Reply(text=text),
                dedup_key=f"{b.key}:report",
                now=now,
            )
        sender = getattr(self.host, "sender", None)
        if sender is not None:
            sender.wake()


class _GroupCommit:
    """Records sends as they complete, many per statement: each lane waits until its row
    is durable before it sends again, so what a kill can leave unrecorded is still only the
    sends in flight, while the database sees one write per group instead of one per send."""

    def __init__(self, flush: Callable[[list[Any]], Awaitable[None]]) -> None:
        self._flush = flush
        self._items: list[tuple[Any, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def add(self, item: Any) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._items.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        await future

    async def _run(self) -> None:
        while self._items:
            batch, self._items = self._items, []
            try:
                await self._flush([item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
