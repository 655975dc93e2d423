"""Health and metrics: ``/healthz`` and ``/metrics`` on the app's HTTP server.

Counting must not spread through the code, so the counters are module-level objects that
the update path, the sender and the FAQ answering bump in one line each
(``observability.UPDATES.inc(institution=..., platform=...)``). Values that are state,
not events (queue lengths), are read from storage when Prometheus scrapes.

The exposition is Prometheus' text format 0.0.4, written here (a few dozen lines) so the
runtime needs no client library; tests parse it with prometheus_client's parser.

``/healthz`` answers 200 with ``{"status": "ok", "checks": {...}}`` when every check
passes and 503 otherwise. Checks: the app started and its adapters report themselves
connected (an adapter group or platform may expose ``healthy() -> bool``), the database
accepts a write, and whatever features add to :data:`HEALTH_CHECKS` (the scheduler).
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from aiohttp import web

from bots.core.adapters import AdapterGroup, HealthReporting
from bots.core.metrics import (
    INBOX_PENDING,
    INSTITUTIONS,
    METRICS,
    OUTBOX_PENDING,
    SLA_BREACHED,
    TICKETS_OPEN,
)
from storage import Storage
from storage.reports import ReportQueries


class Observed(Protocol):
    """What /healthz and /metrics read of the app (runtime/app.py's App has it)."""

    @property
    def storage(self) -> Storage | None: ...

    @property
    def groups(self) -> Mapping[str, AdapterGroup]: ...

    @property
    def institutions(self) -> Mapping[str, Any]: ...

    @property
    def web_app(self) -> web.Application | None: ...


log = logging.getLogger(__name__)


#: name -> check(app) returning True when healthy; features add theirs (the scheduler)
HealthCheck = Callable[[Observed], "bool | Awaitable[bool]"]
HEALTH_CHECKS: dict[str, HealthCheck] = {}


async def _gauges(apps: Sequence[Observed]) -> None:
    """The state gauges, summed over the apps (a region's storage cells, runtime/region.py:
    their institutions and files are disjoint)."""
    outbox: dict[str, int] = {}
    inbox = institutions = 0
    tickets: dict[str, Any] = {}
    kinds: set[str] = set()
    known: set[str] = set()
    for app in apps:
        storage = app.storage
        if storage is None:
            continue
        queries = ReportQueries(storage.db)
        for platform, count in (await queries.outbox_pending_by_platform()).items():
            outbox[platform] = outbox.get(platform, 0) + count
        kinds.update(app.groups)
        inbox += await queries.inbox_pending()
        institutions += len(app.institutions)
        known.update(app.institutions)
        tickets.update(await queries.tickets_by_institution() or {})
    if not any(app.storage is not None for app in apps):
        return
    for platform in {*outbox, *kinds, *(key[0] for key in OUTBOX_PENDING._values)}:
        OUTBOX_PENDING.set(outbox.get(platform, 0), platform=platform)
    INBOX_PENDING.set(inbox)
    INSTITUTIONS.set(institutions)
    for inst_id in {*known, *tickets}:
        row = tickets.get(inst_id)
        SLA_BREACHED.set(int(row["breached"]) if row else 0, institution=inst_id)
        TICKETS_OPEN.set(int(row["open"]) if row else 0, institution=inst_id)


async def metrics_text(app: Observed | Sequence[Observed]) -> str:
    """The exposition for one scrape (of one app, or of a region's cells)."""
    await _gauges(_apps(app))
    return METRICS.render()


def _apps(app: Observed | Sequence[Observed]) -> list[Observed]:
    return list(app) if isinstance(app, Sequence) else [app]


async def _call(check: Callable[..., Any], *args: Any) -> bool:
    result = check(*args)
    if asyncio.iscoroutine(result):
        result = await result
    return bool(result)


async def _adapters_ok(app: Observed) -> dict[str, bool]:
    status: dict[str, bool] = {}
    for kind, group in app.groups.items():
        targets = [group, *getattr(group, "platforms", {}).values()]
        ok = True
        for target in targets:
            if isinstance(target, HealthReporting):
                try:
                    ok = ok and await _call(target.healthy)
                except Exception:
                    ok = False
        status[kind] = ok
    return status


#: how long /healthz waits for its database probe before answering from the last one
PROBE_WAIT = 0.02
#: a probe still unanswered after this long means the database is stalled: unhealthy
PROBE_STALLED = 5.0


class _DatabaseProbe:
    """The database check of /healthz: a small write, awaited for at most PROBE_WAIT.
    A slow disk must not make /healthz slow (storage runs off the loop, storage/aio.py),
    so a probe that takes longer keeps going in the background and /healthz answers from
    the last finished one; one still unanswered after PROBE_STALLED answers unhealthy."""

    def __init__(self) -> None:
        self.task: asyncio.Task[bool] | None = None
        self.started = 0.0
        self.last = True

    async def ok(self, storage: Storage) -> bool:
        loop = asyncio.get_running_loop()
        if self.task is None:
            self.started = loop.time()
            self.task = asyncio.create_task(self._probe(storage))
        task = self.task
        await asyncio.wait({task}, timeout=PROBE_WAIT)
        if task.done():
            self.task = None
            self.last = task.result()
            return self.last
        return self.last and loop.time() - self.started < PROBE_STALLED

    @staticmethod
    async def _probe(storage: Storage) -> bool:
        try:
            await storage.kv.set("health", "probe", "ok")
        except Exception as exc:
            log.warning("health: database write failed: %s", exc)
            return False
        return True


_probes: weakref.WeakKeyDictionary[Storage, _DatabaseProbe] = weakref.WeakKeyDictionary()


async def _database_ok(app: Observed) -> bool:
    if app.storage is None:
        return False
    probe = _probes.setdefault(app.storage, _DatabaseProbe())
    return await probe.ok(app.storage)


async def health(app: Observed) -> tuple[bool, dict[str, Any]]:
    """(healthy, the JSON body of /healthz)."""
    checks: dict[str, Any] = {"started": bool(getattr(app, "_started", False))}
    adapters = await _adapters_ok(app)
    checks["adapters"] = adapters
    checks["database"] = await _database_ok(app)
    for name, check in HEALTH_CHECKS.items():
        try:
            checks[name] = await _call(check, app)
        except Exception as exc:
            log.warning("health check %s failed: %s", name, exc)
            checks[name] = False
    ok = (
        checks["started"]
        and all(adapters.values())
        and all(v for k, v in checks.items() if k not in {"adapters"} and isinstance(v, bool))
    )
    return ok, {"status": "ok" if ok else "fail", "checks": checks}


def add_routes(app: Observed | Sequence[Observed], web_app: web.Application | None = None) -> None:
    """Add /healthz and /metrics to the app's aiohttp application (before it starts); for a
    region, over all its cells' apps (healthy when every one is)."""
    apps = _apps(app)
    target = web_app if web_app is not None else apps[0].web_app
    if target is None:
        return

    async def healthz(request: web.Request) -> web.Response:
        ok, body = await health_of(apps)
        return web.Response(
            text=json.dumps(body, ensure_ascii=False),
            status=200 if ok else 503,
            content_type="application/json",
        )

    async def metrics(request: web.Request) -> web.Response:
        text = await metrics_text(apps)
        return web.Response(
            body=text.encode("utf-8"),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    target.router.add_get("/healthz", healthz)
    target.router.add_get("/metrics", metrics)


async def health_of(apps: Sequence[Observed]) -> tuple[bool, dict[str, Any]]:
    """(healthy, the JSON body of /healthz) over several apps (a region's cells): one
    check is passed when it passes in every app; the cells are probed at once."""
    if len(apps) == 1:
        return await health(apps[0])
    found = await asyncio.gather(*(health(app) for app in apps))
    checks: dict[str, Any] = {}
    for _, body in found:
        for name, value in body["checks"].items():
            if isinstance(value, dict):
                merged = checks.setdefault(name, {})
                for key, passed in value.items():
                    merged[key] = merged.get(key, True) and passed
            else:
                checks[name] = checks.get(name, True) and value
    ok = all(healthy for healthy, _ in found)
    checks["cells"] = len(apps)
    return ok, {"status": "ok" if ok else "fail", "checks": checks}
