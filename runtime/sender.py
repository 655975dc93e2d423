"""The outbox sender: delivers queued messages through the platforms, and is the one place
where sending is retried.

Messages to one chat go out in order, one at a time; different chats go out concurrently
(each platform's limiter sets the pace). A part that went out is recorded before the next is
tried, so a restart resumes where it stopped. Retries back off exponentially up to a cap and
honour a platform's retry_after, without a final give-up: a transient failure (network,
5xx, an outage of an hour) is retried until it works, and "failed" means only that the
platform refused the message itself. An unreachable recipient is never retried. One timer
serves every retry, whether or not other chats' sends are in flight.

Storage is the source of truth. A row is written before every send (nothing leaves while
storage cannot record it), and when recording a delivery fails because storage is
unavailable, the sender keeps that write in memory, stops sending altogether and waits for
storage (runtime/storage_watch.py); the first thing it does when storage is back is to write
what it kept. So a full or read-only disk never makes it send one message again and again;
after a kill in that state the row's result is unknown and it is sent once more (VK drops
the copy by its random_id).

On SQLite a delivery's record (sent_messages and the row marked sent) costs no hop to the
database's thread and no transaction of its own: it waits in memory and goes first in the
next unit of work, usually the next update's (Storage.write_soon, storage/aio.py), so
under load several records share that unit's commit. Nothing reads the outbox or
sent_messages before it: every hop writes what waits first. When no unit comes within
``record_within`` seconds (50 ms) the sender writes what waits in one hop of its own, and
at stop before storage closes. So the window in which a kill -9 finds a delivery made but
not recorded (that message goes once more after the restart, as any send in flight does)
grows from the hop after the send to at most ``record_within`` plus that hop (and the work
queued on the database's thread before it); a failing write keeps waiting, and the sender
stops as described above until storage takes it. A lane now ends before its record is
written, so a look that was out meanwhile may have read the row as still due: a lane
started from such a look claims its first row afresh (:meth:`Sender._launch`). PostgreSQL
records each delivery at once (several workers read the outbox).

After an account's sends failed for ``summary_after`` seconds or more, the first send that
works again calls ``recovery_hooks`` (the staff get one summary of what was delayed) and
makes every row the outage held back due at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Set
from datetime import datetime, timedelta
from functools import partial
from typing import Literal

from bots.core import metrics
from bots.core.background import Pulse
from bots.core.clock import Clock
from bots.core.model import ChatRef, Reply, SentMessage
from bots.core.platform import PermanentSendError, Platform, PlatformError, RecipientUnreachable
from bots.core.retry import RetryPolicy
from bots.core.text import split_text
from runtime.storage_watch import StorageWatch
from storage import Storage, StorageUnavailable
from storage.queues import OutboxItem

log = logging.getLogger(__name__)

PlatformLookup = Callable[[str, str], Platform | None]
UnreachableHook = Callable[[str, ChatRef, str], Awaitable[None]]
#: (institution, platform, outage began, outage ended)
RecoveryHook = Callable[[str, str, datetime, datetime], Awaitable[None]]
Write = Callable[[], Awaitable[object]]
#: a row claimed for sending (Sender._claim): it and its platform; None: done with it;
#: False: not this worker's to send now
Claim = tuple[OutboxItem, Platform] | Literal[False] | None
#: a lane's chat: (institution, platform, chat id)
Chat = tuple[str, str, str]
#: the lanes to start: (chat, its due rows, the first one claimed)
Plan = list[tuple[Chat, list[OutboxItem], Claim]]
#: a look at the due rows: the plan, the chats left to their busy lanes, whether some
#: were left for lack of room, the next retry
Look = tuple[Plan, set[Chat], bool, datetime | None]
#: a look made in a unit of work (look_in_unit), with the count of lanes ended when it
#: was handed out (Sender._launch)
UnitLook = tuple[Plan, set[Chat], bool, datetime | None, int]


class _Interrupted(Exception):
    """Between two parts of a long message: the fence said no, or the sender is stopping."""


class Sender:
    def __init__(
        self,
        storage: Storage,
        platforms: PlatformLookup,
        clock: Clock,
        *,
        policy: RetryPolicy | None = None,
        max_lanes: int = 256,
        watch: StorageWatch | None = None,
    ) -> None:
        self._storage = storage
        self._platforms = platforms
        self._clock = clock
        self.policy = policy or RetryPolicy()
        self._max_lanes = max_lanes
        self.watch = watch or StorageWatch(lambda: storage.kv.set("health", "probe", "ok"), clock)
        self._lanes: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        #: the rows each lane in flight carries (a look leaves no chat for later for them)
        self._carrying: dict[Chat, frozenset[int]] = {}
        self._wake = asyncio.Event()
        self._progress = Pulse()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop = asyncio.Event()
        #: the last look at the due rows left a chat for later (its lane busy, no room)
        self._skipped = False
        #: deliveries that happened but could not be recorded yet (storage unavailable),
        #: written first when storage is back
        self._unrecorded: list[Write] = []
        #: (institution, platform) -> when its sends began failing (transient errors)
        self._failing: dict[tuple[str, str], datetime] = {}
        #: an account failing at least this long gets a summary when it works again
        self.summary_after = 120.0
        #: called when a chat turned out unreachable (subscriptions drop it, citizens mark it)
        self.unreachable_hooks: list[UnreachableHook] = []
        #: called when an account's outage of ``summary_after`` or more is over
        self.recovery_hooks: list[RecoveryHook] = []
        #: asked right before every platform call: may this process still send for the
        #: institution? Several workers (runtime/workers.py) answer from their leases, so a
        #: worker whose lease ran out mid-lane leaves the row to the new holder instead of
        #: sending it a second time. None: always.
        self.fence: Callable[[str], bool] | None = None
        #: the look handed to a unit of work (look_in_unit) until that unit is over
        self._unit_look: object | None = None
        #: lanes ended so far; while looks are out (the loop's, a unit's), the count when
        #: each chat's lane last ended (a look begun before it may be stale, see _launch)
        self._ended = 0
        self._looks_out = 0
        self._chat_ended: dict[Chat, int] = {}
        #: a delivery's record waits at most this long (seconds on the app's clock) for a
        #: unit of work to go first in (SQLite, Storage.write_soon); then the sender writes
        #: it in a hop of its own. The window of a kill -9 repeating a delivered message.
        self.record_within = 0.05
        #: the timer that writes the waiting records once record_within has passed; armed
        #: until it rings (a record that comes while it writes arms the next one)
        self._records_due: asyncio.Task[None] | None = None
        self._records_armed = False

    def start(self) -> None:
        self._stopping = False
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="outbox-sender")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self, timeout: float = 10.0) -> None:
        """Launch nothing more; give the sends in flight (one per chat) ``timeout`` seconds
        to finish, then cancel them. Everything not sent stays queued for the next start;
        a send cut short has an unknown result and goes once more then."""
        self._stopping = True
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        lanes = list(self._lanes.values())
        if lanes:
            _, late = await asyncio.wait(lanes, timeout=max(0.0, timeout))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            if late:
                log.warning("outbox: %d send(s) cut short by the shutdown deadline", len(late))
        if self._records_due is not None:
            self._records_due.cancel()
            await asyncio.gather(self._records_due, return_exceptions=True)
            self._records_due = None
        try:
            await self._storage.write_waiting()  # the records of the last deliveries
        except StorageUnavailable:
            log.warning(
                "outbox: %d delivery record(s) could not be written (storage unavailable);"
                " those messages go once more after the next start",
                self._storage.writes_waiting,
            )
        if self._unrecorded:
            log.warning(
                "outbox: %d delivery record(s) could not be written (storage unavailable);"
                " those messages go once more after the next start",
                len(self._unrecorded),
            )

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
            due: datetime | None = None
            try:
                if not self.watch.healthy or self._unrecorded:
                    if not await self.watch.wait(self._stop):
                        break
                    await self._write_unrecorded()
                due = await self._launch_due()
            except StorageUnavailable as exc:
                self.watch.failed(exc)  # the next round waits for storage
                continue
            except Exception:
                log.exception("outbox sender loop failed; retrying in 1 s")
                due = self._clock.now() + timedelta(seconds=1)
            await self._notify()
            if self._stopping:
                break
            await self._until_woken(due)

    async def _until_woken(self, due: datetime | None) -> None:
        """Until a wake, or ``due`` (the retry timer wakes the loop then). Without a retry
        to time, no task is made: the loop runs a round per update it is woken for."""
        if due is None:
            await self._wake.wait()
            return
        sleeper = asyncio.create_task(self._sleep_until(due))
        sleeper.add_done_callback(self._timer_rang)
        try:
            await self._wake.wait()
        finally:
            sleeper.cancel()

    def _timer_rang(self, sleeper: asyncio.Task[None]) -> None:
        if not sleeper.cancelled():
            self._wake.set()

    async def _write_unrecorded(self) -> None:
        await self._storage.write_waiting()  # records that waited (see write_soon) go first
        while self._unrecorded:
            await self._unrecorded[0]()
            self._unrecorded.pop(0)
        log.info("outbox: deliveries made while storage was unavailable are recorded")

    async def _launch_due(self) -> datetime | None:
        """Start a lane for each chat with due rows and none in flight; returns when the
        next retry is due. What storage has to say is one unit of work (one hop to
        SQLite's thread, one statement when rows are due): the due rows with their
        attempts written, the next retry."""
        now = self._clock.now()
        busy = dict(self._carrying)
        begun = self._ended
        self._looks_out += 1
        try:
            plan, left, no_room, due = await self._storage.unit(
                partial(self._look, now, busy, self._max_lanes - len(busy)),
                "outbox.due",
                atomic=False,
            )
        finally:
            self._looks_out -= 1
        self._skipped = bool(left) or no_room
        self._launch(plan, left, begun)
        return due

    def _launch(self, plan: Plan, left: set[Chat], begun: int) -> None:
        """Start the lanes of a look begun when ``begun`` lanes had ended. A chat whose
        lane began while storage was asked (a look made in an update's unit, see
        :meth:`look_in_unit`, or this loop's) is left to that lane: its first row may be
        the one that lane sends. A chat whose lane ended meanwhile gets its lane, but the
        first row is claimed afresh: the look may have read it before that lane's record
        of sending it was written (records wait for the next unit, see write_soon)."""
        for key, chat_items, first in plan:
            if key in self._lanes:
                left.add(key)
                self._skipped = True
                continue
            stale = self._chat_ended.get(key, -1) > begun
            self._carrying[key] = frozenset(item.id for item in chat_items)
            self._lanes[key] = asyncio.create_task(
                self._lane(key, chat_items, None if stale else (first,))
            )
        if not self._looks_out:
            self._chat_ended.clear()  # no look out that began before those lanes ended
        if any(key not in self._lanes for key in left):
            self._wake.set()  # a lane that was busy finished while storage was asked

    def look_in_unit(self) -> Callable[[], Awaitable[UnitLook]] | None:
        """The look at the due rows for a unit of work that queues messages (an update's,
        App._handle) to make last, before it commits; :meth:`launch` then starts the
        lanes instead of waking this loop for a look of its own. That spares a hop to
        SQLite's thread and a transaction per update (bench/scale.py). Only while the
        sender is idle: no send in flight, no row left for later, no look coming, and no
        other unit's look under way (until :meth:`look_over`). A look claims every due
        row, so one per update under a backlog or a burst (a thousand bots' webhooks at
        once) would cost in proportion to it and fall further behind (measured: 18 ms of
        CPU per update at load average 10); the loop's own look, woken instead, takes a
        burst of updates at once. None
        also when the sender is stopping or waiting for storage, and on PostgreSQL, where
        looks skip rows other transactions hold (workers)."""
        if not self.idle or self._storage.dialect != "sqlite":
            return None
        busy: dict[Chat, Set[int]] = {}
        room = self._max_lanes
        begun = self._ended

        async def look() -> UnitLook:
            # now, after the unit queued its rows (stamped with the clock of its start)
            return (*await self._look(self._clock.now(), busy, room), begun)

        self._unit_look = look
        self._looks_out += 1
        return look

    @property
    def idle(self) -> bool:
        """Running, healthy, nothing in flight, nothing left for later, no look coming or
        under way in a unit: an update's unit may make the look (:meth:`look_in_unit`)."""
        return not (
            self._lanes
            or self._unit_look is not None
            or self._skipped
            or self._wake.is_set()
            or self._stopping
            or self._task is None
            or not self.watch.healthy
            or self._unrecorded
        )

    def look_over(self, look: object) -> None:
        """The unit given ``look`` (by :meth:`look_in_unit`) is over, committed or not:
        another unit may look."""
        if look is not None and look is self._unit_look:
            self._unit_look = None
            self._looks_out -= 1

    def launch(self, looked: UnitLook) -> None:
        """Start the lanes of a look made by :meth:`look_in_unit`'s unit (committed)."""
        plan, left, no_room, due, begun = looked
        if self._stopping or not self.watch.healthy or self._unrecorded:
            # a delivery may wait to be recorded: its row still looks due; the loop's own
            # look comes once that is written
            self._wake.set()
            return
        self._skipped = self._skipped or bool(left) or no_room
        self._launch(plan, left, begun)
        if due is not None:
            self._wake.set()  # a retry to time: the loop's own look sets its timer

    async def _look(self, now: datetime, busy: Mapping[Chat, Set[int]], room: int) -> Look:
        """The lanes to start (chat, its due rows, the first one claimed), the chats with
        due rows left to their busy lanes, whether some were left for lack of room, the
        next retry. ``busy``: the chats with a lane in flight and the rows it carries; a
        row a lane carries is not left for later (it is that lane's to send), unless it
        is an edit, whose text a newer edit may replace in flight."""
        items, due = await self._storage.outbox.claim_due(now, limit=1000)
        by_chat: dict[Chat, list[OutboxItem]] = {}
        left: set[Chat] = set()
        for item in items:
            key = (item.institution, item.platform, item.chat.chat_id)
            if key in busy:
                if item.kind == "edit" or item.id not in busy[key]:
                    left.add(key)
                continue
            by_chat.setdefault(key, []).append(item)
        plan: Plan = []
        for key, chat_items in by_chat.items():
            if len(plan) >= room:
                return plan, left, True, due
            plan.append((key, chat_items, await self._claim(chat_items[0], claimed=True)))
        return plan, left, False, due

    async def _sleep_until(self, moment: datetime) -> None:
        """The one retry timer: it runs whatever lanes are in flight (a hung send must not
        hold up other chats' retries); rows due already are in a lane or wait for one to
        finish, which wakes the loop. The pause is measured when the timer starts, so time
        that passed meanwhile is not slept twice."""
        await self._clock.sleep(max(0.0, (moment - self._clock.now()).total_seconds()))

    async def _lane(
        self, key: tuple[str, str, str], items: list[OutboxItem], first: tuple[Claim] | None
    ) -> None:
        """Deliver a chat's due rows in order (the first was claimed when it was launched,
        unless ``first`` is None: see _launch).
        When it ends the loop looks again only if something may wait: a row of this chat
        that came while it ran, a row left for lack of room, a retry to time, a failure
        (a lane that ends while a look is under way: see _launch_due).
        Otherwise new rows wake the loop themselves (App._handle), and a quiet lane costs
        no further look."""
        finished = False
        try:
            for number, item in enumerate(items):
                if self._stopping or not self.watch.healthy:
                    break
                if not await self._deliver(item, first if number == 0 else None):
                    break  # keep this chat's order: later messages wait for the retry
            else:
                finished = True
        except StorageUnavailable as exc:
            self.watch.failed(exc)  # the sender stops and resumes when storage is back
        except Exception:
            log.exception("outbox lane %s:%s failed", key[1], key[2])
        finally:
            self._lanes.pop(key, None)
            self._carrying.pop(key, None)
            self._ended += 1
            if self._looks_out:
                self._chat_ended[key] = self._ended
            if self._skipped or not finished:
                self._wake.set()
            await self._notify()

    async def _deliver(self, item: OutboxItem, claimed_first: tuple[Claim] | None = None) -> bool:
        """Send one item; True when done with it (sent, unreachable or failed for good).
        StorageUnavailable propagates: the lane stops and so does the sender."""
        outbox = self._storage.outbox
        if claimed_first is not None:
            claimed = claimed_first[0]
        else:
            claimed = await self._storage.unit(
                partial(self._claim, item), "outbox.claim", owner=item.institution
            )
        if claimed is None:
            return True
        if claimed is False:
            return False
        item, platform = claimed
        try:
            if item.kind == "edit":
                marked = await self._edit(platform, item)
            elif item.kind == "topic":
                await self._create_topic(platform, item)
                marked = False
            else:
                marked = await self._send(platform, item)
        except _Interrupted:
            return False
        except StorageUnavailable:
            raise
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
            if exc.code != 429 and exc.retry_after is None:
                self._failing.setdefault((item.institution, item.platform), self._clock.now())
            return await self._retry_later(item, exc, exc.retry_after)
        except Exception as exc:  # an adapter bug or an unexpected network error
            log.exception("outbox %s to %s: unexpected error", item.id, item.chat.key)
            metrics.SEND_ERRORS.inc(platform=item.platform, code=type(exc).__name__)
            self._failing.setdefault((item.institution, item.platform), self._clock.now())
            return await self._retry_later(item, exc, None)
        now = self._clock.now()
        if not marked:
            # an edit whose row got a newer text while this one was in flight stays pending
            newer = None if item.kind != "edit" else item.stored_reply
            await self._record([partial(outbox.mark_sent, item.id, now, newer)])
        metrics.REPLIES.inc(institution=item.institution, platform=item.platform)
        await self._account_works(item.institution, item.platform, now)
        return True

    async def _claim(self, item: OutboxItem, claimed: bool = False) -> Claim:
        """One unit of work before a send: the row as it is now, and the attempt written
        (nothing leaves while storage cannot record it). The row as it is now, since the
        list this lane got may be stale (a lane of the same chat that finished while the
        list was being read has sent it already; so may another worker have), and
        parts_sent may have moved on. ``claimed``: the row was read and its attempt
        written in this unit (Outbox.claim_due). None: done with the row (sent meanwhile,
        no longer pending, no account for it); False: not this worker's to send now."""
        outbox = self._storage.outbox
        fresh = item if claimed else await outbox.get(item.id)
        if fresh is None or fresh.status != "pending":
            return None
        platform = self._platforms(fresh.institution, fresh.platform)
        if not self._may_send(fresh):
            return False
        if platform is None:
            await outbox.mark_failed(
                fresh.id, f"no {fresh.platform} account for {fresh.institution}"
            )
            log.error(
                "outbox %s: no %s account for %s", fresh.id, fresh.platform, fresh.institution
            )
            return None
        if not claimed and not await outbox.begin_attempt(fresh.id, self._clock.now()):
            return None
        return fresh, platform

    async def _record(self, writes: list[Write]) -> None:
        """Write what a delivery changed; when storage refuses, keep the rest in memory
        (written first when it is back) and stop."""
        for number, write in enumerate(writes):
            try:
                await write()
            except StorageUnavailable:
                self._unrecorded.extend(writes[number:])
                raise

    def _write_records_soon(self) -> None:
        """Bound the wait of the records Storage.write_soon keeps (see the module
        docstring): if no unit of work writes them first, a timer does once the oldest
        has waited ``record_within``. One timer serves every record that waits
        meanwhile; under a steady flow it only sleeps, as each record rides along with
        a later update's unit before its time is up."""
        if not self._records_armed and self._storage.writes_waiting:
            self._records_armed = True
            self._records_due = asyncio.create_task(
                self._write_records_when_due(), name="outbox-records"
            )

    async def _write_records_when_due(self) -> None:
        try:
            while True:
                since = self._storage.waiting_since
                if since is None:
                    return  # written by units of work meanwhile
                left = self.record_within - (self._clock.now() - since).total_seconds()
                if left <= 0:
                    break
                await self._clock.sleep(left)
        finally:
            self._records_armed = False  # a record that comes while this one writes: a new timer
        try:
            await self._storage.write_waiting()
        except StorageUnavailable as exc:
            self.watch.failed(exc)  # the records keep waiting; sending stops until written
        except Exception:
            log.exception("outbox: writing the delivery records failed")
        await self._notify()

    async def _account_works(self, institution: str, platform: str, now: datetime) -> None:
        since = self._failing.pop((institution, platform), None)
        if since is None:
            return
        held = await self._storage.outbox.retry_now(institution, platform, now)
        if held:
            self._wake.set()
        if (now - since).total_seconds() < self.summary_after:
            return
        log.warning(
            "%s of %s: sending works again after %.0f s; %d held-back message(s) due now",
            platform,
            institution,
            (now - since).total_seconds(),
            held,
        )
        for hook in self.recovery_hooks:
            try:
                await hook(institution, platform, since, now)
            except Exception:
                log.exception("outbox: a recovery hook failed")

    async def _retry_later(
        self, item: OutboxItem, exc: Exception, retry_after: float | None
    ) -> bool:
        delay = self.policy.delay(item.attempts, retry_after)
        await self._storage.outbox.mark_retry(
            item.id, str(exc), self._clock.now() + timedelta(seconds=delay)
        )
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
        await self._record(
            [
                partial(
                    self._storage.outbox.record_part,
                    item,
                    0,
                    SentMessage(item.chat, thread_id),
                    self._clock.now(),
                )
            ]
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

    async def _send(self, platform: Platform, item: OutboxItem) -> bool:
        """Send the parts not sent yet; True: the row is marked sent (with the last part's
        record, in one unit of work)."""
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
            if self._stopping or not self._may_send(item):
                raise _Interrupted
            sent = await platform.send(chat, part, dedup_key=f"{item.dedup_key}#{index}")
            now = self._clock.now()
            if last:
                finish = partial(self._storage.outbox.finish, item, index, list(sent), now)
                await self._record(
                    [
                        partial(
                            self._storage.write_soon,
                            finish,
                            "outbox.record",
                            owner=item.institution,
                        )
                    ]
                )
                self._write_records_soon()
                return True
            await self._record(
                [partial(self._storage.outbox.record_part, item, index, m, now) for m in sent]
            )
        return False

    async def _edit(self, platform: Platform, item: OutboxItem) -> bool:
        """True: marked sent already (see _send)."""
        assert item.ref_kind is not None and item.ref_id is not None
        if not platform.limits.supports_edit:  # OK: the new version goes as a new message,
            return await self._send(platform, item)  # recorded under the ref (replies, edits)
        records = await self._storage.outbox.sent_for_ref(item.ref_kind, item.ref_id)
        if not records:
            raise PermanentSendError(f"nothing sent under {item.ref_kind}:{item.ref_id} to edit")
        target = records[-1].message
        await platform.edit(target, item.reply)
        return False
