"""Background work beside the update path, on the app's clock.

:class:`Periodic` runs a job at start and then every period of the injected clock until
stopped, and counts its runs so tests can wait for one instead of sleeping. :class:`Pulse`
lets a worker say "something changed" to whoever waits (``App.settle`` in tests and the
shell): the outbox sender and the broadcast worker both use it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from bots.core.clock import Clock

log = logging.getLogger(__name__)
T = TypeVar("T")


class Pulse:
    """A broadcast "something changed": waiters wake on the next :meth:`notify`."""

    def __init__(self) -> None:
        self._condition = asyncio.Condition()

    async def notify(self) -> None:
        async with self._condition:
            self._condition.notify_all()

    async def wait(self, timeout: float) -> None:
        """Wait for the next notify, at most ``timeout`` seconds (never raises on timeout)."""
        async with self._condition:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._condition.wait(), timeout)


class Periodic:
    """Runs ``work`` now and then every ``every`` seconds of ``clock`` until stopped. A
    failing run is logged and the next one happens on schedule."""

    def __init__(
        self, name: str, work: Callable[[], Awaitable[Any]], every: float, clock: Clock
    ) -> None:
        self.name = name
        self.every = every
        self.runs = 0
        self.last: Any = None
        self._work = work
        self._clock = clock
        self._ran = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> Any:
        self.last = await self._work()
        async with self._ran:
            self.runs += 1
            self._ran.notify_all()
        return self.last

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("%s failed; next run in %.0f s of app time", self.name, self.every)
            await self._clock.sleep(self.every)

    async def wait_runs(self, count: int, timeout: float = 10.0) -> None:
        """Wait until the job has run ``count`` times in total."""
        async with self._ran:
            await asyncio.wait_for(self._ran.wait_for(lambda: self.runs >= count), timeout)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class InFlight:
    """Counts work in progress (calls, updates being handled) so that ``stop`` can let it
    finish before closing what it uses."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def track(self) -> AsyncIterator[None]:
        self.count += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the count to reach zero; True if it did."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


async def until_stopped(call: Awaitable[T], stopping: asyncio.Event) -> T | None:
    """The call's result, or None as soon as ``stopping`` is set (the call is cancelled).

    Long polls use it so that a stop does not wait out the poll's timeout."""
    work = asyncio.ensure_future(call)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not work.done():  # stopping, or the caller itself was cancelled
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
    if work.cancelled():
        return None
    return work.result()
