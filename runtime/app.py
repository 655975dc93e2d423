"""Assembly of the running product: config -> storage -> institutions -> adapters -> router.

The app receives every platform's events through :meth:`App.on_event`: the update is stored
in the inbox, handled inside one transaction together with everything it produces (log
rows, outgoing messages, tickets), marked done, and only then acknowledged to the platform.
The outbox sender delivers what was produced. A kill at any instant loses nothing: pending
inbox rows are handled again at start, pending outbox rows are sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

from aiohttp import web

from bots.core import metrics
from bots.core.adapters import AdapterGroup, Services
from bots.core.background import InFlight
from bots.core.clock import Clock, SystemClock
from bots.core.edge import clean_event
from bots.core.model import ChatKind, ChatRef, Event
from bots.core.platform import Platform
from bots.local import LocalGroup, LocalPlatform
from bots.platforms import LOCAL, PLATFORMS
from handlers.answers import ahead
from handlers.config import LoadedConfig
from handlers.conversation import Conversation
from handlers.feature import Feature, Features, Hook
from handlers.institution import Institution, build_institution
from handlers.places import EXTRA, PlaceSet, resolve, shared_accounts
from handlers.router import route
from handlers.urgency import detector as urgency_detector
from runtime import cells, observability
from runtime.features import FEATURES, templates_of
from runtime.sender import Sender
from runtime.storage_watch import StorageWatch
from runtime.workers import Workers
from storage import Storage, StorageUnavailable

log = logging.getLogger(__name__)

#: Conversation.extras key of the sender's look made in the update's unit
SENDER_LOOK = "sender_look"


class App:
    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        clock: Clock | None = None,
        local: bool = False,
        database: str | None = None,
        services_extra: dict[str, Any] | None = None,
        worker_id: str | None = None,
        lease_seconds: float | None = None,
        features: Sequence[Feature] | None = None,
        cell: tuple[int, int] = (0, 1),
        serve_http: bool = True,
    ) -> None:
        """``local=True`` runs every institution on the local platform (shell, demo, tests)
        with the staff chat there too; ``database`` overrides the configured path or URL.
        On PostgreSQL the app is one of several workers (runtime/workers.py): ``worker_id``
        names it (default host-pid), ``lease_seconds`` is how long its leases last.
        ``features`` default to the product's list (runtime/features.py).

        ``cell`` (index, count): this app runs one storage cell of a region
        (runtime/region.py), the institutions of ``loaded`` whose data is in that cell's
        file (runtime/cells.py); a reload keeps to them. With ``serve_http=False`` the app
        attaches its webhook routes to its own ``web_app`` and serves nothing: the region
        serves them, with /healthz and /metrics over every cell."""
        self.cell = cell
        self.serve_http = serve_http
        self.loaded = self.narrow(loaded)
        self.clock: Clock = clock or SystemClock()
        self.local = local
        self._database = database
        #: adapter tuning passed on as Services.extra (benchmarks scale Telegram's rates)
        self._services_extra = dict(services_extra or {})
        self.worker_id = worker_id
        self._lease_seconds = lease_seconds
        #: worker mode (PostgreSQL, not local): leases decide which accounts receive here
        self.workers: Any = None
        self.storage: Storage | None = None
        self.institutions: dict[str, Institution] = {}
        self.groups: dict[str, AdapterGroup] = {}
        #: (platform, first institution) -> the institutions sharing that account
        self.shared: dict[tuple[str, str], tuple[str, ...]] = {}
        #: (platform, institution) -> the PlaceSet of its shared account: found per update
        #: by one lookup, not a scan of a district's thousand institutions
        self._place_sets: dict[tuple[str, str], PlaceSet] = {}
        self.sender: Sender | None = None
        self.web_app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self._inflight = InFlight()
        self._started = False
        #: storage's health as the update path and the sender found it (bots/storage_watch.py)
        self.storage_watch: StorageWatch | None = None
        #: set when stop() begins: waits for storage give up, the update stays unacknowledged
        self._stopping = asyncio.Event()
        #: stop() returns within this many seconds; what is not sent by then stays queued
        self.shutdown_timeout = loaded.config.shutdown_timeout.total_seconds()
        self._deferred: asyncio.Task[None] | None = None
        #: the features' commands, buttons, hooks and templates (handlers/feature.py)
        self.features = Features(FEATURES if features is None else features)
        #: every template the bot renders, with the names each gets (check and reload)
        self.templates = templates_of(self.features.features)
        #: features hook in here when installed (scheduler, SLA timers...): called with the
        #: app at start, at stop and after each successful hot reload (runtime/reload.py)
        self.on_start: list[Hook] = []
        self.on_stop: list[Hook] = []
        self.on_reload: list[Hook] = []

    def narrow(self, loaded: LoadedConfig) -> LoadedConfig:
        """``loaded`` with only this app's cell's institutions (all of them with one cell):
        the config at start and after each reload."""
        index, count = self.cell
        if count == 1:
            return loaded
        return loaded.only(cells.members(loaded)[index])

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, *, receive: bool = True) -> None:
        """Open storage, build the institutions and adapters, start the sender and the
        features, then (``receive``) handle what the last run left pending and start
        receiving. A region starts its cells with ``receive=False``, serves their routes,
        and then calls :meth:`receive` on each."""
        path = self._database or self.loaded.database_target
        self.storage = await Storage.open(
            path, self.clock.now, sqlite=self.loaded.config.storage.sqlite
        )
        try:
            await cells.check_marker(self.storage, *self.cell, path)
        except BaseException:
            await self.storage.close()
            raise
        self._stopping.clear()
        self.storage_watch = StorageWatch(self._probe_storage, self.clock)
        if self.storage.dialect == "postgresql" and not self.local:
            self.workers = Workers(self, self.worker_id, self._lease_seconds)
        elif self.worker_id is not None and not self.local:
            await self.storage.close()
            raise ValueError("a worker id needs PostgreSQL: set storage.url in the config")
        override = "local" if self.local else None
        for inst_id in self.loaded.config.institutions:
            self.institutions[inst_id] = build_institution(
                self.loaded, inst_id, staff_platform_override=override
            )
            # the urgent phrases of its setting parsed now, once per setting (~1 s of
            # pymorphy3), not while the first citizen's question waits for it
            urgent = self.institutions[inst_id].config.urgent
            urgency_detector(tuple(urgent.add), tuple(urgent.remove))
        self.shared = {} if self.local else shared_accounts(self.loaded)
        self._place_sets = {}
        for (platform, _), ids in self.shared.items():
            place_set = PlaceSet(ids, self.institutions)  # sees a reload's swapped ones
            self._place_sets.update(((platform, inst_id), place_set) for inst_id in ids)
        server = self.loaded.config.server
        if server is not None and not self.local:
            self.web_app = web.Application()  # a region's cell: its routes, served there
        services = Services(
            payloads=self.storage.payloads,
            state=self.storage.kv,
            clock=self.clock,
            web_app=self.web_app,
            public_url=server.public_url if server else None,
            extra=self._services_extra,
        )
        self.sender = Sender(self.storage, self.platform, self.clock, watch=self.storage_watch)
        if self.workers is not None:
            self.sender.fence = self.workers.may_act
        self.sender.unreachable_hooks.append(self._mark_unreachable)
        await self._create_groups(services)
        if self.web_app is not None and server is not None and self.serve_http:
            observability.add_routes(self)  # /healthz, /metrics
            self._runner = web.AppRunner(self.web_app)
            await self._runner.setup()
            await web.TCPSite(self._runner, server.host, server.port).start()
            log.info("HTTP server listening on %s:%s", server.host, server.port)
        self.sender.start()
        self.features.install(self)
        for hook in self.on_start:
            result = hook(self)
            if asyncio.iscoroutine(result):
                await result
        if receive:
            await self.receive()

    async def receive(self) -> None:
        """Handle the updates the last run left pending, then start receiving (the last
        step of :meth:`start`)."""
        try:
            await self._recover_inbox()
        except StorageUnavailable as exc:
            # e.g. a read-only disk at start: serve /healthz (503), send nothing, and take
            # updates only once the ones left pending are handled
            assert self.storage_watch is not None
            self.storage_watch.failed(exc)
            self._deferred = asyncio.create_task(self._receive_when_storage_is_back())
        else:
            await self._start_receiving()
        self._started = True

    async def _probe_storage(self) -> None:
        """A small write; after a failure the connection is opened anew once (one opened
        on a read-only file system stays read-only after a remount)."""
        assert self.storage is not None
        try:
            await self.storage.kv.set("health", "probe", "ok")
        except StorageUnavailable:
            revive = getattr(self.storage.db, "revive", None)
            if revive is None:
                raise
            await revive()
            await self.storage.kv.set("health", "probe", "ok")

    async def _start_receiving(self) -> None:
        if self.workers is not None:
            await self.workers.start(self.on_event)  # the accounts of leased institutions
        else:
            for kind, group in self.groups.items():
                await group.start(self.on_event)
                log.info("%s: %d account(s) receiving", kind, len(group.platforms))

    async def _receive_when_storage_is_back(self) -> None:
        assert self.storage_watch is not None
        while await self.storage_watch.wait(self._stopping):
            try:
                await self._recover_inbox()
            except StorageUnavailable as exc:
                self.storage_watch.failed(exc)
                continue
            await self._start_receiving()
            return

    async def _create_groups(self, services: Services) -> None:
        institutions = self.loaded.config.institutions
        if self.local:
            self.groups[LOCAL] = LocalGroup(list(institutions), services)
            return
        if self.workers is not None:
            self.groups = await self.workers.create_groups(services)
            return
        for kind, platform_kind in PLATFORMS.items():
            accounts = self.loaded.accounts(kind)
            if not accounts:
                continue
            self.groups[kind] = await platform_kind.create_group(accounts, services)

    async def stop(self) -> None:
        """Stop within ``shutdown_timeout`` seconds (config ``shutdown_timeout``, default
        10 s, well under the service manager's stop timeout): background work stops and the
        sender finishes only the sends in flight while the adapters' sessions are still
        open; then the adapters stop receiving (an update that still arrives is stored and
        handled, its replies wait for the next start; one waiting for storage stays
        unacknowledged); then the server and storage close. Whatever is not sent by the
        deadline stays queued for the next start."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_timeout
        self._stopping.set()

        def left(reserve: float = 0.0) -> float:
            return max(0.0, deadline - loop.time() - reserve)

        if self._deferred is not None:
            self._deferred.cancel()
            await asyncio.gather(self._deferred, return_exceptions=True)
            self._deferred = None
        for hook in self.on_stop:
            result = hook(self)
            if asyncio.iscoroutine(result):
                await _bounded(result, left(), "a feature's stop")
        if self.sender is not None:
            # the adapters and storage need the rest: a quarter of the time, at most 3 s
            await self.sender.stop(left(min(3.0, self.shutdown_timeout / 4)))
        if self.workers is not None:
            await _bounded(self.workers.stop(), left(), "the workers' stop")
        for group in self.groups.values():
            await _bounded(group.stop(), left(), "stopping an adapter group")
        await self._inflight.drain(left())
        if self._runner is not None:
            await _bounded(self._runner.cleanup(), left(), "closing the HTTP server")
        if self.storage_watch is not None:
            await self.storage_watch.close()
        if self.storage is not None:
            await self.storage.close()
        self._started = False
        log.info("stopped %.1f s after the stop began", self.shutdown_timeout - left())

    @property
    def database(self) -> str | None:
        """The database path or URL given to the constructor (None: the configured one)."""
        return self._database

    def platform(self, institution: str, kind: str) -> Platform | None:
        group = self.groups.get(kind)
        return group.platforms.get(institution) if group else None

    def local_platform(self, institution: str) -> LocalPlatform:
        platform = self.platform(institution, "local")
        assert isinstance(platform, LocalPlatform), "the app was not started with local=True"
        return platform

    # -- events ----------------------------------------------------------------------------
    async def on_event(self, event: Event) -> None:
        """Handle one update exactly once. Returns after it is durably handled."""
        assert self.storage is not None and self.sender is not None
        assert self.storage_watch is not None
        event = clean_event(event)
        async with self._inflight.track():
            while True:
                try:
                    await self._handle(event)
                    return
                except StorageUnavailable as exc:
                    # not stored: wait for storage (the platform keeps the update meanwhile);
                    # when stopping, the adapter leaves it unacknowledged for the next start
                    self.storage_watch.failed(exc)
                    if not await self.storage_watch.wait(self._stopping):
                        raise

    async def _handle(self, event: Event) -> None:
        """Store the update, route it and keep everything it produced: one unit of work
        (one transaction; one hop to SQLite's thread, see storage/aio.py), so the update
        is either handled with all its effects or not stored at all (and, not being
        acknowledged, delivered again). What touches the event loop (starting the sends,
        answering the callback query, the after-commit hooks) runs after it. The unit
        ends with the sender's look at the due rows (Sender.look_in_unit), so the replies
        it queued start out without a hop and a transaction of their own."""
        assert self.storage is not None and self.sender is not None
        storage = self.storage
        places = self._places(event)
        received = self.clock.now()

        matched = await self._match_ahead(event)
        look = self.sender.look_in_unit()

        async def handle() -> Conversation | bool:
            if not await storage.inbox.take(event, received):
                return False  # handled before
            routed = event
            if places is not None:  # a shared account: which of its institutions is it for
                chosen = await resolve(event, places, storage.places)
                routed = dataclasses.replace(event, institution=chosen)
            institution = self.institutions.get(routed.institution)
            if institution is None:
                log.error("event for unknown institution %s", routed.institution)
                return True
            conv = self._conversation(routed, institution)
            if matched is not None:
                conv.extras[ahead.EXTRA] = matched
            await route(conv, self.features)
            if look is not None:  # the sender's look at what is due, in this transaction
                conv.extras[SENDER_LOOK] = await look()
            return conv

        try:
            conv = await storage.unit(handle, "update", owner=event.institution)
        except StorageUnavailable:
            raise  # nothing was stored: on_event waits for storage and handles it again
        except Exception:
            self.sender.look_over(look)
            log.exception("handling update %s from %s failed", event.update_key, event.chat.key)
            conv = await storage.unit(
                partial(self._apologise, event, received), "update", owner=event.institution
            )
        finally:
            self.sender.look_over(look)
        if conv is False:
            log.info("duplicate update %s on %s ignored", event.update_key, event.platform)
            return
        metrics.UPDATES.inc(institution=event.institution, platform=event.platform)
        if not isinstance(conv, Conversation):
            return
        looked = conv.extras.pop(SENDER_LOOK, None)
        if looked is not None:
            self.sender.launch(looked)  # at once: no await since the unit returned
        else:
            self.sender.wake()
        for after_commit in conv.extras.get("after_commit", ()):  # e.g. /forget's WAL scrub
            await after_commit()
        routed = conv.event
        if routed.callback is not None and conv.callback_answer is not None:
            platform = self.platform(routed.institution, routed.platform)
            if platform is not None:
                try:
                    await platform.answer_callback(routed, conv.callback_answer or None)
                except Exception as exc:  # the button spinner stops by itself; not worth more
                    log.warning("answering callback on %s failed: %s", routed.platform, exc)

    async def _match_ahead(self, event: Event) -> ahead.MatchedAhead | None:
        """A citizen's plain text matched against the FAQ before the unit of work, on a
        worker thread (handlers/answers/ahead.py: matching on the database's thread would
        hold every institution's storage). Not for a shared account, whose institution is
        resolved in the unit."""
        if event.chat_kind != ChatKind.PRIVATE or event.callback is not None:
            return None
        if not ahead.worth_matching(event.text) or self._places(event) is not None:
            return None
        institution = self.institutions.get(event.institution)
        if institution is None or event.text is None:
            return None
        return await ahead.match_ahead(institution.matcher, event.text)

    async def _apologise(self, event: Event, received: datetime) -> Conversation | bool:
        """After a handler failed (a bug; its unit rolled back): the update is taken and
        the citizen told that something went wrong, in a unit of its own."""
        assert self.storage is not None
        if not await self.storage.inbox.take(event, received):
            return False
        institution = self.institutions.get(event.institution)
        if institution is None:
            return True
        conv = self._conversation(event, institution)
        conv._counter = 1000  # distinct dedup keys from the failed attempt's
        if event.chat_kind == "private":
            await conv.reply(conv.render("error"), log=False)
        if event.callback is not None:
            conv.answer_callback()
        return conv

    def _conversation(self, event: Event, institution: Institution) -> Conversation:
        assert self.storage is not None
        conv = Conversation(
            event,
            institution,
            self.storage,
            self.clock.now(),
            forget_hooks=self.features.forget_hooks,
        )
        places = self._places(event)
        if places is not None:
            conv.extras[EXTRA] = places
        return conv

    def _places(self, event: Event) -> PlaceSet | None:
        """The institutions behind the account an update came through, when shared (the
        adapter stamps it with the first of them; a resolved one is found too)."""
        return self._place_sets.get((event.platform, event.institution))

    async def _recover_inbox(self) -> None:
        assert self.storage is not None
        pending = await self.storage.inbox.pending()
        if pending:
            log.info("handling %d update(s) left pending by the last run", len(pending))
        for event in pending:
            async with self._inflight.track():
                await self._handle(event)

    async def _mark_unreachable(self, institution: str, chat: ChatRef, reason: str) -> None:
        assert self.storage is not None
        await self.storage.citizens.mark_unreachable(
            institution, chat.platform, chat.chat_id, reason, self.clock.now()
        )

    # -- waiting (tests, shell) ------------------------------------------------------------
    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until every accepted update is handled and no message waits to be sent."""
        assert self.storage is not None and self.sender is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            await self._inflight.drain(max(0.0, deadline - loop.time()))
            pending = await self.storage.outbox.pending_count()
            if self._inflight.count == 0 and pending == 0 and not self.sender.busy:
                return
            if loop.time() >= deadline:
                raise TimeoutError(
                    f"not settled after {timeout} s: {self._inflight.count} update(s) in flight, "
                    f"{pending} message(s) pending"
                )
            self.sender.wake()
            await self.sender.wait_progress(min(0.5, max(0.01, deadline - loop.time())))


async def _bounded(call: Any, timeout: float, what: str) -> None:
    """Await ``call`` for at most ``timeout`` seconds; a failure or overrun is logged."""
    try:
        await asyncio.wait_for(call, max(0.01, timeout))
    except TimeoutError:
        log.warning("%s did not finish before the shutdown deadline", what)
    except Exception:
        log.exception("%s failed", what)
