"""The counters and gauges of the product, and the registry that renders them.

Counting must not spread through the code, so the counters are module-level objects that
the update path, the sender and the FAQ answering bump in one line each
(``metrics.UPDATES.inc(institution=..., platform=...)``). They live in the kernel so that
handlers count without importing the runtime; runtime/observability.py serves them on
/metrics in Prometheus' text format 0.0.4 (written here, so no client library is needed).
"""

from __future__ import annotations

import math
import threading
from typing import Any


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
ENCODER_BUSY = METRICS.counter(
    "priemnaya_faq_encoder_busy",
    "Citizens' messages decided by words alone: the sentence encoder stayed busy with other"
    " messages for matching.encoder_wait (a burst, or too few CPUs for the traffic).",
    ("institution",),
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
STORAGE_SLOW = METRICS.counter(
    "priemnaya_storage_slow_calls",
    "Storage calls slower than the threshold (storage.slow_call_seconds), by what they did.",
    ("what",),
)
STORAGE_CALLS = METRICS.counter(
    "priemnaya_storage_calls",
    "Storage calls timed for the slow-call threshold: hops to SQLite's thread, units of work"
    " and statements outside them on PostgreSQL.",
)
TICKETS_OPEN = METRICS.gauge("priemnaya_tickets_open", "Tickets not closed yet.", ("institution",))


def error_code(exc: BaseException) -> str:
    """The label for a send error: the platform's code when it gave one, else the kind."""
    code = getattr(exc, "code", None)
    return str(code) if code is not None else type(exc).__name__
