"""Bots Long Poll: fetch events, hand each to the app, then acknowledge by storing ``ts``.

groups.getLongPollServer gives a server URL, a key and the current ``ts``; then
``GET server?act=a_check&key&ts&wait`` returns ``{"ts", "updates"}`` or ``{"failed": n}``:
1 the history is outdated (take the new ts), 2 the key expired (get a new key, keep ts),
3 the information is lost (get a new key and ts). Network errors back off and retry.

The last ``ts`` lives in the app's state store and is written only after every event of
a batch went through the handler, so a crash makes VK send the batch again (the app's
inbox skips events it already has) instead of losing it. A first start stores the
server's ts at once, so that a crash before the first batch loses nothing either.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import requests

from bots.core.adapters import StateStore
from bots.vk.api import VkCallError, VkClient, get_json, in_daemon_thread
from bots.vk.sessions import make_poll_session

log = logging.getLogger(__name__)

UpdateHandler = Callable[[dict[str, Any]], Awaitable[None]]
BatchHook = Callable[[list[dict[str, Any]]], Awaitable[None]]


class Backoff:
    """Exponential pause after failures: 0.5 s, 1 s, 2 s ... up to ``cap``."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first, self.cap = first, cap
        self.current = 0.0

    def reset(self) -> None:
        self.current = 0.0

    async def pause(self) -> None:
        self.current = self.first if self.current == 0 else min(self.cap, self.current * 2)
        await asyncio.sleep(self.current)


class LongPoll:
    """One community's Bots Long Poll over ``session`` (shared by every community's long
    poll and closed by the group; without one the poll makes its own and closes it)."""

    def __init__(
        self,
        client: VkClient,
        group_id: int,
        wait: int,
        state: StateStore,
        session: requests.Session | None = None,
    ) -> None:
        self.client = client
        self.group_id = group_id
        self.wait = wait
        self.state = state
        self.scope = f"vk:{group_id}"
        self.server: str | None = None
        self.key: str | None = None
        self.ts: str | None = None
        self._owns_session = session is None
        self._session = session or make_poll_session(1)
        self._backoff = Backoff()
        #: set by stop(): finish the event in hand, acknowledge nothing more, return
        self.stopping = False
        #: True while events are being handed to the app (stop waits instead of cancelling)
        self.delivering = False

    async def connect(self) -> None:
        """Get a key (and, unless we have one, a ts); raises VkCallError."""
        if self.ts is None:
            self.ts = await self.state.get(self.scope, "ts") or None
        info = await self.client.call("groups.getLongPollServer", group_id=self.group_id)
        self.server, self.key = str(info["server"]), str(info["key"])
        if self.ts is None:
            self.ts = str(info["ts"])
            await self.state.set(self.scope, "ts", self.ts)

    async def run(self, handle: UpdateHandler, prepare: BatchHook | None = None) -> None:
        """Poll until ``stopping`` is set (or the task is cancelled while waiting).
        ``prepare`` sees each batch before its updates are handled one by one."""
        while not self.stopping:
            try:
                if self.key is None:
                    await self.connect()
                answer = await self._check()
            except VkCallError as exc:
                log.warning("vk group %s: long poll: %s; retrying", self.group_id, exc)
                await self._backoff.pause()
                continue
            if "failed" in answer:
                await self._recover(answer)
                continue
            updates = answer.get("updates")
            if "ts" not in answer or not isinstance(updates, list):
                log.warning("vk group %s: long poll answer without ts/updates", self.group_id)
                await self._backoff.pause()
                continue
            if updates and prepare is not None:
                await prepare(updates)
            if not await self._deliver(updates, handle):
                if self.stopping:
                    return  # the rest of the batch comes again next start
                await self._backoff.pause()  # the same batch comes again: ts not advanced
                continue
            self._backoff.reset()
            await self._acknowledge(str(answer["ts"]))

    async def _check(self) -> dict[str, Any]:
        assert self.server is not None
        params = {"act": "a_check", "key": self.key, "ts": self.ts, "wait": self.wait}
        answer = await in_daemon_thread(
            get_json, self._session, self.server, params, self.wait + 10.0
        )
        if not isinstance(answer, dict):
            raise VkCallError(None, "long-poll answer is not an object")
        return answer

    async def _deliver(self, updates: list[dict[str, Any]], handle: UpdateHandler) -> bool:
        """Hand every update to ``handle``; True when all went through."""
        self.delivering = True
        try:
            for raw in updates:
                if self.stopping:
                    return False
                try:
                    await handle(raw)
                except Exception:
                    log.exception(
                        "vk group %s: handling event %s failed; the batch will be fetched again",
                        self.group_id,
                        raw.get("event_id"),
                    )
                    return False
            return True
        finally:
            self.delivering = False

    async def _recover(self, answer: dict[str, Any]) -> None:
        failed = answer.get("failed")
        if failed == 1 and "ts" in answer:
            log.warning(
                "vk group %s: long poll history outdated; events may be lost", self.group_id
            )
            await self._acknowledge(str(answer["ts"]))
        elif failed == 2:
            log.info("vk group %s: long poll key expired; getting a new one", self.group_id)
            self.key = None
        else:
            log.warning("vk group %s: long poll failed %s; reconnecting", self.group_id, failed)
            self.key = None
            self.ts = None
            await self.state.set(self.scope, "ts", "")  # forget it: connect takes the new one

    async def _acknowledge(self, ts: str) -> None:
        self.ts = ts
        try:
            await self.state.set(self.scope, "ts", ts)
        except Exception:  # the next batch stores it; a redelivery is skipped by the inbox
            log.exception("vk group %s: could not store long-poll ts", self.group_id)

    def close(self) -> None:
        if self._owns_session:
            self._session.close()
