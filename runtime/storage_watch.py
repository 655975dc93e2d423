"""Whether storage takes writes, and waiting until it does again.

Storage is the source of truth: an update is acknowledged to its platform only once it is
stored, and a message is sent only when its result can be recorded. So when a write fails
because the storage is unavailable (disk full, read-only, database unreachable:
``storage.StorageUnavailable``), the update path and the sender do not skip, drop or repeat
anything: they report the failure here and wait. While storage is down a probe retries a
small write with capped backoff on the app's clock; its first success wakes every waiter,
which then resumes where it stopped. /healthz reports the state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from bots.core.clock import Clock
from storage import StorageUnavailable

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[object]]


class StorageWatch:
    """One per app. ``failed`` when a write hit StorageUnavailable; ``wait`` until healthy."""

    def __init__(
        self, probe: Probe, clock: Clock, *, first: float = 0.5, cap: float = 10.0
    ) -> None:
        self._probe = probe
        self._clock = clock
        self.first = first
        #: the longest pause between probes: storage back means resuming within this
        self.cap = cap
        self.healthy = True
        #: when the current outage began (None while healthy)
        self.since: datetime | None = None
        self.last_error = ""
        #: probes run during the current outage (tests wait on it instead of sleeping)
        self.probes = 0
        self._up = asyncio.Event()
        self._up.set()
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def failed(self, exc: BaseException) -> None:
        """A write failed because storage is unavailable: stop and start probing."""
        self.last_error = str(exc)[:300]
        if self.healthy:
            self.healthy = False
            self.since = self._clock.now()
            self.probes = 0
            self._up.clear()
            log.error(
                "storage unavailable (%s): not taking updates and not sending until it"
                " takes writes again",
                self.last_error,
            )
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._probe_until_up(), name="storage-probe")

    async def wait(self, stopping: asyncio.Event) -> bool:
        """Wait until storage is healthy (True) or ``stopping`` is set (False)."""
        if self.healthy:
            return True
        up = asyncio.ensure_future(self._up.wait())
        stop = asyncio.ensure_future(stopping.wait())
        try:
            await asyncio.wait({up, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            up.cancel()
            stop.cancel()
        return self.healthy

    async def wait_probes(self, count: int, timeout: float = 30.0) -> None:
        """Until ``count`` probes ran in this outage (tests)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.probes >= count), timeout)

    async def _probe_until_up(self) -> None:
        delay = self.first
        while not self.healthy:
            await self._clock.sleep(delay)
            try:
                await self._probe()
            except StorageUnavailable as exc:
                self.last_error = str(exc)[:300]
                delay = min(self.cap, delay * 2)
            except Exception:
                log.exception("storage probe failed unexpectedly")
                delay = min(self.cap, delay * 2)
            else:
                self._recovered()
            async with self._changed:
                self.probes += 1
                self._changed.notify_all()

    def _recovered(self) -> None:
        down = (self._clock.now() - self.since).total_seconds() if self.since else 0.0
        log.warning("storage takes writes again after %.0f s; resuming", down)
        self.healthy = True
        self.since = None
        self._up.set()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
