"""Several worker processes sharing one installation over PostgreSQL, with no coordinator
but the database.

Why leases per institution: a messenger account must be polled by one process (Telegram
answers a second getUpdates with 409; two VK long polls would each get every event), and a
chat's messages must leave in order, which one sender per institution guarantees. So each
institution is served by the worker holding its lease (storage/leases.py): that worker
polls its accounts and sends its outbox rows. Leases are renewed every third of their
lifetime; when a worker dies, its leases expire and the others take its institutions over.
Workers aim at a fair share, ceil(institutions / live workers), so a worker that joins gets
institutions from the others and one that leaves (or dies) hands its share on.

What is not leased, because the database already makes it happen once:
- webhook updates (any worker may receive any of them: the inbox's key and ``Inbox.claim``
  make one worker handle each; every worker registers the same webhook URL);
- scheduled announcements (every worker's scheduler fires, the occurrence's UNIQUE key
  creates it once);
- broadcasts (workers claim delivery rows with ``FOR UPDATE SKIP LOCKED`` and share a big
  broadcast; each worker has a send-only account of every institution for that).

Safety margin: a worker treats a lease as lost a little before the database would expire
it (``MARGIN``), so it stops sending before another worker can start. A worker that stalls
for longer than the lease (a frozen VM) may still finish the sends it had in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import socket
from collections.abc import Callable
from typing import Any

from bots.core.adapters import AccountSpec, AdapterGroup, GroupFactory, Services
from bots.core.platform import EventHandler, Platform
from bots.platforms import PLATFORMS
from storage.leases import LeasedOutbox, LeaseRepo

log = logging.getLogger(__name__)

#: default lease lifetime in seconds (``priemnaya run --lease``)
LEASE_SECONDS = 30.0
#: a lease counts as lost locally this share of its lifetime before it expires in storage
MARGIN = 0.15


def default_worker_id() -> str:
    """Unique per process and readable in the ``leases`` table: host and pid."""
    return f"{socket.gethostname()}-{os.getpid()}"


def is_shared(account: Any) -> bool:
    """Accounts every worker receives for (webhooks) rather than the lease holder only."""
    return getattr(account, "mode", None) == "webhook"


class CombinedGroup:
    """One platform kind as the app sees it in worker mode: a send-only group with every
    leased account (never started: receiving is per institution, below) and a group of the
    shared (webhook) accounts, which every worker starts."""

    def __init__(self, send_only: AdapterGroup | None, shared: AdapterGroup | None) -> None:
        self._send_only = send_only
        self._shared = shared
        self.platforms: dict[str, Platform] = {
            **(send_only.platforms if send_only else {}),
            **(shared.platforms if shared else {}),
        }

    async def start(self, on_event: EventHandler) -> None:
        if self._shared is not None:
            await self._shared.start(on_event)

    async def stop(self) -> None:
        for group in (self._shared, self._send_only):
            if group is not None:
                await group.stop()


class Workers:
    """The app's worker mode: leases, and starting and stopping accounts as they move."""

    def __init__(self, app: Any, worker_id: str | None, lease_seconds: float | None) -> None:
        if app.storage is None or app.storage.dialect != "postgresql":
            raise ValueError("several workers need PostgreSQL: set storage.url in the config")
        self.app = app
        self.worker_id = worker_id or default_worker_id()
        self.seconds = float(lease_seconds or LEASE_SECONDS)
        #: set in start(): on a connection of its own (see there)
        self.leases: LeaseRepo | None = None
        self._lease_db: Any = None
        app.storage.db.worker_id = self.worker_id  # broadcast claims carry it
        app.storage.outbox = LeasedOutbox(app.storage.db, self.owned)
        self._services: Services | None = None
        self._factories: dict[str, GroupFactory] = {}
        self._leased: dict[str, dict[str, AccountSpec]] = {}
        #: institution -> its receiving groups (one per platform kind), while held
        self._running: dict[str, list[AdapterGroup]] = {}
        #: institution -> loop time until which this worker may act on it
        self._valid_until: dict[str, float] = {}
        #: held, but over the fair share: stopped, then released
        self._releasing: set[str] = set()
        self._on_event: EventHandler | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        #: called after every round (tests and benchmarks wait on them)
        self.round_hooks: list[Callable[[Workers], None]] = []

    # -- what the app asks -----------------------------------------------------------------
    def may_act(self, institution: str) -> bool:
        """Whether this worker still holds the institution's lease (with the margin): the
        sender asks right before every send (Sender.fence)."""
        return self._valid_until.get(institution, 0.0) > asyncio.get_running_loop().time()

    def owned(self) -> frozenset[str]:
        """Institutions this worker may serve right now (lease held and not about to run
        out): the outbox sender sends only their rows."""
        now = asyncio.get_running_loop().time()
        return frozenset(i for i, until in self._valid_until.items() if until > now)

    @property
    def institutions(self) -> list[str]:
        return list(self.app.loaded.config.institutions)

    async def create_groups(self, services: Services) -> dict[str, AdapterGroup]:
        """The app's adapter groups: every account can send from every worker; receiving
        starts per institution as leases are taken."""
        self._services = services
        groups: dict[str, AdapterGroup] = {}
        for kind, platform_kind in PLATFORMS.items():
            specs = self.app.loaded.accounts(kind)
            if not specs:
                continue
            factory: GroupFactory = platform_kind.create_group
            leased = [s for s in specs if not is_shared(s.account)]
            shared = [s for s in specs if is_shared(s.account)]
            self._factories[kind] = factory
            self._leased[kind] = {s.institution: s for s in leased}
            groups[kind] = CombinedGroup(
                await factory(leased, services) if leased else None,
                await factory(shared, services) if shared else None,
            )
        return groups

    async def start(self, on_event: EventHandler) -> None:
        """Start the shared accounts, take a first share of leases (returns once their
        accounts receive), then keep renewing and rebalancing in the background."""
        from storage.pg import PgDatabase

        self._on_event = on_event
        # Leases get a connection of their own: behind a burst of updates the app's pool
        # can be busy for longer than a lease, and a late renewal loses the lease.
        self._lease_db = await PgDatabase.open(self.app.storage.db.url, max_size=1, migrate=False)
        self.leases = LeaseRepo(self._lease_db, self.worker_id, self.seconds)
        for group in self.app.groups.values():
            await group.start(on_event)
        await self._round()
        # renewing starts before the accounts do: starting many can take longer than a lease
        self._tasks = [asyncio.create_task(self._lease_loop(), name=f"leases-{self.worker_id}")]
        await self._apply()
        self._tasks.append(
            asyncio.create_task(self._apply_loop(), name=f"accounts-{self.worker_id}")
        )

    async def stop(self) -> None:
        """Stop receiving, then give every lease up so others take over at once (call after
        the outbox sender stopped)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._valid_until.clear()
        await asyncio.gather(*(self._stop_institution(i) for i in list(self._running)))
        if self.leases is not None:
            try:
                await asyncio.wait_for(self.leases.leave(), self.seconds)
            except Exception as exc:  # they expire by themselves
                log.warning("worker %s: releasing leases failed (%s)", self.worker_id, exc)
        if self._lease_db is not None:
            await self._lease_db.close()
            self._lease_db = None

    def wake(self) -> None:
        """Run a round now (tests)."""
        self._wake.set()

    # -- leases --------------------------------------------------------------------------
    async def _lease_loop(self) -> None:
        """Rounds every third of the lease, or sooner when a lease would run out locally.
        Kept apart from starting and stopping accounts, which can take seconds for many
        institutions and must never delay a renewal."""
        loop = asyncio.get_running_loop()
        while True:
            period = self.seconds / 3
            soonest = min(self._valid_until.values(), default=loop.time() + period)
            delay = max(0.0, min(period, soonest - loop.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._round(), self.seconds)
            except Exception as exc:
                log.warning(
                    "worker %s: lease round failed (%s: %s)",
                    self.worker_id,
                    type(exc).__name__,
                    exc,
                )
                self._changed.set()  # whatever ran out locally is stopped

    async def _round(self) -> None:
        """Renew, mark what is over the fair share for release, take what is free up to
        it; the accounts follow in :meth:`_apply`."""
        assert self.leases is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        live = await self.leases.heartbeat()
        held = await self.leases.renew() - self._releasing
        valid = started + self.seconds * (1 - MARGIN)
        everyone = self.institutions
        target = math.ceil(len(everyone) / max(1, live))
        if len(held) > target:
            extra = set(sorted(held, key=self._preference)[target:])
            self._releasing |= extra
            held -= extra
        elif len(held) < target:
            free = [i for i in await self.leases.free(everyone) if i not in self._releasing]
            free.sort(key=self._preference)
            taken = await self.leases.acquire(free[: target - len(held)])
            held |= taken
            if taken:
                log.info(
                    "worker %s: took %d institution(s); holds %d of %d, %d worker(s) live",
                    self.worker_id,
                    len(taken),
                    len(held),
                    len(everyone),
                    live,
                )
        lost = set(self._valid_until) - held - self._releasing
        if lost:
            log.warning("worker %s: lost the lease of %d institution(s)", self.worker_id, len(lost))
        self._valid_until = dict.fromkeys(held, valid)
        self._changed.set()
        if self.app.sender is not None:
            self.app.sender.wake()
        for hook in self.round_hooks:
            hook(self)

    # -- accounts --------------------------------------------------------------------------
    async def _apply_loop(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self._apply()
            except Exception:
                log.exception("worker %s: starting or stopping accounts failed", self.worker_id)

    async def _apply(self) -> None:
        """Receive for exactly the institutions held: stop the others first, hand over the
        ones marked for release once they stopped, then start the new ones."""
        assert self.leases is not None
        mine = self.owned()
        await asyncio.gather(
            *(self._stop_institution(i) for i in list(self._running) if i not in mine)
        )
        handed = [i for i in self._releasing if i not in self._running]
        if handed:
            await self.leases.release(handed)
            self._releasing -= set(handed)
            log.info("worker %s: handed %d institution(s) on", self.worker_id, len(handed))
        for institution in sorted(mine - set(self._running), key=self._preference):
            # one at a time: a worker taking hundreds must not starve its own lease renewals
            if institution in self.owned():
                await self._start_institution(institution)

    def _preference(self, institution: str) -> bytes:
        """Workers racing for free institutions try them in different orders."""
        return hashlib.blake2b(f"{self.worker_id}/{institution}".encode(), digest_size=8).digest()

    async def _start_institution(self, institution: str) -> None:
        assert self._services is not None and self._on_event is not None
        groups: list[AdapterGroup] = []
        self._running[institution] = groups
        for kind, specs in self._leased.items():
            spec = specs.get(institution)
            if spec is None:
                continue
            try:
                group = await self._factories[kind]([spec], self._services)
                await group.start(self._on_event)
            except Exception:
                log.exception(
                    "worker %s: starting %s of %s failed", self.worker_id, kind, institution
                )
                await self._stop_institution(institution)  # the next round tries again
                return
            groups.append(group)
        log.info("worker %s: serving %s", self.worker_id, institution)

    async def _stop_institution(self, institution: str) -> None:
        groups = self._running.pop(institution, [])
        for group in groups:
            try:
                await group.stop()
            except Exception:
                log.exception(
                    "worker %s: stopping an account of %s failed", self.worker_id, institution
                )
        if groups:
            log.info("worker %s: no longer serving %s", self.worker_id, institution)
