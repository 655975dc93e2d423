"""The announcements feature as the app runs it: the scheduler and the broadcaster.

Scheduling has two drivers that call the same ``tick`` (create every occurrence that is
due, per the misfire policy in schedule.py):

- with the system clock, APScheduler 3's AsyncIOScheduler and its in-memory job store, one
  job per announcement with a stable id (``announce:<institution>/<id>``),
  ``replace_existing=True``, ``coalesce=True`` and ``misfire_grace_time`` = the entry's
  grace; rebuilt from the config at start and by :meth:`Announcements.reschedule`;
- with any other clock (ManualClock in tests), a loop that sleeps on that clock until the
  next fire time, so moving the clock fires announcements without real waiting.

Downtime is covered by ``tick`` at start: it looks from the stored cursor to now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bots.core.clock import SystemClock
from bots.core.model import ChatRef
from handlers.announcements.broadcast import Broadcaster
from handlers.announcements.schedule import (
    after_quiet_hours,
    due,
    next_fire,
    trigger_for,
)
from handlers.config import AnnouncementConfig, LoadedConfig
from handlers.render_budget import budget
from storage import Storage
from storage.announcements import Audience, BroadcastRepo, SubscriptionRepo
from storage.times import iso, parse

log = logging.getLogger(__name__)

CURSOR_SCOPE = "announce.cursor"
#: with the system clock, look for broadcasts queued by another process (the CLI) this often
POLL_SECONDS = 5.0


def audience_of(ann: AnnouncementConfig) -> Audience:
    targets = [ann.to] if isinstance(ann.to, str) else list(ann.to)
    channels = tuple((t.platform, str(t.id)) for t in targets if not isinstance(t, str))
    return Audience(
        subscribers="subscribers" in targets, topics=tuple(ann.topics), channels=channels
    )


def render_announcement(institution: Any, ann: AnnouncementConfig, moment: datetime) -> str:
    """The announcement's text: its template file or its inline ``text``, both rendered in
    the institution's sandboxed, autoescaping environment with ``data``."""
    texts = institution.texts
    local = institution.local_time(moment)
    if ann.template is not None:
        return str(texts.render(ann.template, now=local, data=ann.data))
    assert ann.text is not None
    template = texts.env.from_string(ann.text)
    with budget():
        rendered = template.render(
            institution=texts.institution, user="", now=local, labels=texts.labels, data=ann.data
        )
    return "\n".join(line.rstrip() for line in rendered.strip().splitlines())


class Announcements:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.loaded: LoadedConfig = app.loaded
        poll = POLL_SECONDS if isinstance(app.clock, SystemClock) else None
        self.broadcaster = Broadcaster(app, poll=poll)
        self._lock = asyncio.Lock()
        self._scheduler: AsyncIOScheduler | None = None
        self._loop: asyncio.Task[None] | None = None
        self._rescheduled = asyncio.Event()

    @property
    def storage(self) -> Storage:
        assert self.app.storage is not None
        return self.app.storage

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self.broadcaster.unreachable_hooks.clear()
        self.broadcaster.start()
        await self.tick()
        if isinstance(self.app.clock, SystemClock):
            self._scheduler = AsyncIOScheduler(timezone=UTC)
            self._build_jobs()
            self._scheduler.start()
        else:
            self._loop = asyncio.create_task(self._clock_loop(), name="announcements-clock")

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        await self.broadcaster.stop()

    def reschedule(self, loaded: LoadedConfig) -> None:
        """Take a reloaded config: jobs are replaced by id, removed ones dropped."""
        self.loaded = loaded
        if self._scheduler is not None:
            self._build_jobs()
        self._rescheduled.set()

    def job_ids(self) -> list[str]:
        if self._scheduler is None:
            return []
        return sorted(job.id for job in self._scheduler.get_jobs())

    def _build_jobs(self) -> None:
        assert self._scheduler is not None
        wanted: set[str] = set()
        for inst_id, inst in self.loaded.config.institutions.items():
            zone = self.loaded.zone(inst_id)
            for ann in inst.announcements:
                job_id = f"announce:{inst_id}/{ann.id}"
                wanted.add(job_id)
                self._scheduler.add_job(
                    self.tick,
                    trigger=trigger_for(ann, zone),
                    id=job_id,
                    name=job_id,
                    replace_existing=True,
                    coalesce=True,
                    max_instances=1,
                    misfire_grace_time=max(1, int(ann.grace.total_seconds())),
                )
        for job in self._scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()

    async def _clock_loop(self) -> None:
        clock = self.app.clock
        while True:
            self._rescheduled.clear()
            try:
                await self.tick()
                delay = self._until_next()
            except Exception:
                log.exception("announcement schedule failed; trying again in 60 s")
                delay = 60.0
            waiter = asyncio.create_task(self._rescheduled.wait())
            sleeper = asyncio.create_task(clock.sleep(delay)) if delay is not None else None
            tasks = {t for t in (waiter, sleeper) if t is not None}
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in tasks:
                    t.cancel()

    def _until_next(self) -> float | None:
        now = self.app.clock.now()
        soonest: datetime | None = None
        for inst_id, inst in self.loaded.config.institutions.items():
            zone = self.loaded.zone(inst_id)
            for ann in inst.announcements:
                t = next_fire(trigger_for(ann, zone), now)
                if t is not None and (soonest is None or t < soonest):
                    soonest = t
        return None if soonest is None else max(0.001, (soonest - now).total_seconds())

    # -- occurrences -----------------------------------------------------------------------
    async def tick(self) -> None:
        """Create every occurrence that is due (see the misfire policy in schedule.py)."""
        async with self._lock:
            now = self.app.clock.now()
            for inst_id, inst in self.loaded.config.institutions.items():
                zone = self.loaded.zone(inst_id)
                for ann in inst.announcements:
                    try:
                        await self._look(inst_id, ann, trigger_for(ann, zone), now)
                    except Exception:
                        log.exception("announcement %s/%s: schedule failed", inst_id, ann.id)
        self.broadcaster.wake()

    async def _look(
        self, inst_id: str, ann: AnnouncementConfig, trigger: Any, now: datetime
    ) -> None:
        kv = self.storage.kv
        key = f"{inst_id}/{ann.id}"
        cursor = await kv.get(CURSOR_SCOPE, key)
        after = parse(cursor) if cursor else now - ann.grace
        if after >= now:
            return
        found = due(trigger, after, now, ann.grace)
        if found.missed:
            log.warning(
                "announcement %s: %d occurrence(s) older than the grace of %s skipped",
                key,
                found.missed,
                ann.grace,
            )
        if found.coalesced:
            log.info("announcement %s: %d missed occurrence(s) coalesced", key, found.coalesced)
        if found.send is None:
            await kv.set(CURSOR_SCOPE, key, iso(now))
            return
        await self.fire(inst_id, ann, found.send, cursor=now)

    async def fire(
        self,
        inst_id: str,
        ann: AnnouncementConfig,
        scheduled_for: datetime,
        *,
        origin: str = "schedule",
        cursor: datetime | None = None,
    ) -> int | None:
        """Create the occurrence (once: UNIQUE) and wake the broadcaster; its id, or None
        when it existed already."""
        institution = self.app.institutions[inst_id]
        now = self.app.clock.now()
        repo = BroadcastRepo(self.storage.db)
        try:
            text, error, status = (
                render_announcement(institution, ann, scheduled_for),
                None,
                "waiting",
            )
        except Exception as exc:
            log.error("announcement %s/%s: template failed: %s", inst_id, ann.id, exc)
            text, error, status = "", f"template failed: {exc}", "failed"
        async with self.storage.transaction():
            new_id = await repo.create(
                institution=inst_id,
                announcement_id=ann.id,
                scheduled_for=scheduled_for,
                send_after=after_quiet_hours(scheduled_for, ann.quiet_hours, institution.zone),
                text=text,
                audience=audience_of(ann),
                origin=origin,
                now=now,
                status=status,
                error=error,
            )
            if cursor is not None:
                await self.storage.kv.set(CURSOR_SCOPE, f"{inst_id}/{ann.id}", iso(cursor))
        if new_id is not None:
            log.info(
                "announcement %s/%s: occurrence %s for %s created",
                inst_id,
                ann.id,
                new_id,
                iso(scheduled_for),
            )
        self.broadcaster.wake()
        return new_id

    # -- waiting (tests, shell) ------------------------------------------------------------
    async def settle(self, timeout: float = 30.0) -> None:
        """Create what is due, wait until nothing due is left unsent, then let the app's
        outbox settle (reports to staff)."""
        await self.tick()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await self.broadcaster.idle():
            if loop.time() >= deadline:
                raise TimeoutError(f"broadcasts not settled after {timeout} s")
            self.broadcaster.wake()
            await self.broadcaster.wait_progress(min(0.5, max(0.01, deadline - loop.time())))
        await self.app.settle(max(1.0, deadline - loop.time()))

    async def on_unreachable(self, institution: str, chat: ChatRef, reason: str) -> None:
        """Sender hook: a chat that blocked the bot gets no more announcements."""
        if await SubscriptionRepo(self.storage.db).unsubscribe(
            institution, chat.platform, chat.chat_id
        ):
            log.info("unsubscribed unreachable %s from %s", chat.key, institution)
