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
import math
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from runtime.app import App

log = logging.getLogger(__name__)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value):
        return str(int(value))
    return repr(value)


class Metric:
    """A counter or gauge with fixed label names; values keyed by label values."""

    def __init__(self, name: str, help_: str, kind: str, labels: tuple[str, ...]) -> None:
        self.name = name
        self.help = help_
        self.kind = kind
        self.labels = labels
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, Any]) -> tuple[str, ...]:
        if set(labels) != set(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {sorted(labels)}")
        return tuple(str(labels[name]) for name in self.labels)

    def inc(self, amount: float = 1.0, **labels: Any) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def set(self, value: float, **labels: Any) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = value

    def value(self, **labels: Any) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        sample = f"{self.name}_total" if self.kind == "counter" else self.name
        lines = [f"# HELP {self.name} {_escape(self.help)}", f"# TYPE {self.name} {self.kind}"]
        with self._lock:
            items = sorted(self._values.items())
        if not items and not self.labels:
            items = [((), 0.0)]
        for key, value in items:
            pairs = ",".join(
                f'{name}="{_escape(v)}"' for name, v in zip(self.labels, key, strict=True)
            )
            head = f"{sample}{{{pairs}}}" if pairs else sample
            lines.append(f"{head} {_number(value)}")
        return lines


class Registry:
    def __init__(self) -> None:
        self.metrics: dict[str, Metric] = {}

    def counter(self, name: str, help_: str, labels: tuple[str, ...] = ()) -> Metric:
        """``name`` without the ``_total`` suffix; samples are exposed as ``name_total``."""
        return self._add(Metric(name, help_, "counter", labels))

    def gauge(self, name: str, help_: str, labels: tuple[str, ...] = ()) -> Metric:
        return self._add(Metric(name, help_, "gauge", labels))

    def _add(self, metric: Metric) -> Metric:
        if metric.name in self.metrics:
            raise ValueError(f"metric {metric.name} registered twice")
        self.metrics[metric.name] = metric
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.metrics.values():
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


METRICS = Registry()

UPDATES = METRICS.counter(
    "priemnaya_updates", "Updates accepted from the platforms.", ("institution", "platform")
)
REPLIES = METRICS.counter(
    "priemnaya_replies", "Messages delivered to a platform.", ("institution", "platform")
)
OUTCOMES = METRICS.counter(
    "priemnaya_faq_outcomes",
    "FAQ decisions on citizens' questions: answer, clarify, escalate, smalltalk.",
    ("institution", "outcome"),
)
ESCALATIONS = METRICS.counter(
    "priemnaya_escalations", "Questions handed to staff.", ("institution", "reason")
)
SEND_ERRORS = METRICS.counter(
    "priemnaya_send_errors",
    "Failed send attempts by platform and error code (retried or not).",
    ("platform", "code"),
)
RELOADS = METRICS.counter(
    "priemnaya_reloads", "Config/FAQ/template reloads by result.", ("result",)
)
OUTBOX_PENDING = METRICS.gauge(
    "priemnaya_outbox_pending", "Messages waiting in the outbox.", ("platform",)
)
INBOX_PENDING = METRICS.gauge("priemnaya_inbox_pending", "Accepted updates not handled yet.")
INSTITUTIONS = METRICS.gauge("priemnaya_institutions", "Institutions served.")
SLA_BREACHED = METRICS.gauge(
    "priemnaya_sla_breached_tickets",
    "Tickets whose first-response deadline passed (kept tickets).",
    ("institution",),
)
TICKETS_OPEN = METRICS.gauge("priemnaya_tickets_open", "Tickets not closed yet.", ("institution",))


def error_code(exc: BaseException) -> str:
    """The label for a send error: the platform's code when it gave one, else the kind."""
    code = getattr(exc, "code", None)
    return str(code) if code is not None else type(exc).__name__


#: name -> check(app) returning True when healthy; features add theirs (the scheduler)
HealthCheck = Callable[["App"], "bool | Awaitable[bool]"]
HEALTH_CHECKS: dict[str, HealthCheck] = {}


async def _gauges(app: App) -> None:
    storage = app.storage
    if storage is None:
        return
    rows = await storage.db.fetchall(
        "SELECT platform, COUNT(*) AS n FROM outbox WHERE status='pending' GROUP BY platform"
    )
    seen = {r["platform"]: int(r["n"]) for r in rows}
    for platform in {*seen, *app.groups, *(key[0] for key in OUTBOX_PENDING._values)}:
        OUTBOX_PENDING.set(seen.get(platform, 0), platform=platform)
    INBOX_PENDING.set(
        int(await storage.db.fetchval("SELECT COUNT(*) FROM inbox WHERE status='pending'"))
    )
    INSTITUTIONS.set(len(app.institutions))
    if await storage.db.fetchval(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='tickets'"
    ):
        rows = await storage.db.fetchall(
            "SELECT institution,"
            " SUM(CASE WHEN breached_at IS NOT NULL THEN 1 ELSE 0 END) AS breached,"
            " SUM(CASE WHEN status<>'closed' THEN 1 ELSE 0 END) AS open"
            " FROM tickets GROUP BY institution"
        )
        counted = {r["institution"]: r for r in rows}
        for inst_id in {*app.institutions, *counted}:
            row = counted.get(inst_id)
            SLA_BREACHED.set(int(row["breached"]) if row else 0, institution=inst_id)
            TICKETS_OPEN.set(int(row["open"]) if row else 0, institution=inst_id)


async def metrics_text(app: App) -> str:
    """The exposition for one scrape."""
    await _gauges(app)
    return METRICS.render()


async def _call(check: Callable[..., Any], *args: Any) -> bool:
    result = check(*args)
    if asyncio.iscoroutine(result):
        result = await result
    return bool(result)


async def _adapters_ok(app: App) -> dict[str, bool]:
    status: dict[str, bool] = {}
    for kind, group in app.groups.items():
        targets = [group, *getattr(group, "platforms", {}).values()]
        ok = True
        for target in targets:
            probe = getattr(target, "healthy", None)
            if callable(probe):
                try:
                    ok = ok and await _call(probe)
                except Exception:
                    ok = False
        status[kind] = ok
    return status


async def _database_ok(app: App) -> bool:
    if app.storage is None:
        return False
    try:
        await asyncio.wait_for(app.storage.kv.set("health", "probe", "ok"), timeout=5)
    except Exception as exc:
        log.warning("health: database write failed: %s", exc)
        return False
    return True


async def health(app: App) -> tuple[bool, dict[str, Any]]:
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


def add_routes(app: App, web_app: web.Application | None = None) -> None:
    """Add /healthz and /metrics to the app's aiohttp application (before it starts)."""
    target = web_app if web_app is not None else app.web_app
    if target is None:
        return

    async def healthz(request: web.Request) -> web.Response:
        ok, body = await health(app)
        return web.Response(
            text=json.dumps(body, ensure_ascii=False),
            status=200 if ok else 503,
            content_type="application/json",
        )

    async def metrics(request: web.Request) -> web.Response:
        text = await metrics_text(app)
        return web.Response(
            body=text.encode("utf-8"),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    target.router.add_get("/healthz", healthz)
    target.router.add_get("/metrics", metrics)
