"""``priemnaya report stats``: per institution, how the bot and the staff are doing.

Questions are the citizens' messages the FAQ decided on (answer, clarify, escalate), plus
those that joined an active ticket or went straight to staff. Ticket figures (first
response time, SLA breaches) and subscribers come from tables other features own; a
database without them shows "—" rather than a misleading zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from storage import Storage
from storage.reports import ReportQueries
from storage.times import iso, parse

MISSING = "—"


@dataclass(slots=True)
class InstitutionStats:
    institution: str
    questions: int
    answered: int
    clarified: int
    escalated: int
    tickets: int | None
    first_response_median: timedelta | None
    first_response_p90: timedelta | None
    sla_breaches: int | None
    subscribers: dict[str, int] | None

    def row(self) -> dict[str, Any]:
        """Display values: percentages of questions, durations, "—" for what is unknown."""

        def pct(n: int) -> str:
            return f"{100 * n / self.questions:.0f}%" if self.questions else MISSING

        return {
            "institution": self.institution,
            "questions": self.questions,
            "answered_by_faq": pct(self.answered),
            "clarified": pct(self.clarified),
            "escalated": pct(self.escalated),
            "tickets": MISSING if self.tickets is None else self.tickets,
            "first_response_median": duration(self.first_response_median),
            "first_response_p90": duration(self.first_response_p90),
            "sla_breaches": MISSING if self.sla_breaches is None else self.sla_breaches,
            "subscribers": MISSING
            if self.subscribers is None
            else (", ".join(f"{p}: {n}" for p, n in sorted(self.subscribers.items())) or "0"),
        }

    def as_dict(self) -> dict[str, Any]:
        """Raw values for JSON (seconds for durations, null for unknown)."""

        def secs(d: timedelta | None) -> float | None:
            return None if d is None else d.total_seconds()

        return {
            "institution": self.institution,
            "questions": self.questions,
            "answered": self.answered,
            "clarified": self.clarified,
            "escalated": self.escalated,
            "tickets": self.tickets,
            "first_response_median_s": secs(self.first_response_median),
            "first_response_p90_s": secs(self.first_response_p90),
            "sla_breaches": self.sla_breaches,
            "subscribers": self.subscribers,
        }


def duration(value: timedelta | None) -> str:
    if value is None:
        return MISSING
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    return f"{hours}h{mins:02d}m" if hours else f"{mins}m"


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))  # ceil
    return ordered[int(rank) - 1]


async def _tables(storage: Storage) -> set[str]:
    return await ReportQueries(storage.db).tables()


async def institution_stats(
    storage: Storage, institution: str, since: datetime, tables: set[str] | None = None
) -> InstitutionStats:
    queries = ReportQueries(storage.db)
    tables = tables if tables is not None else await queries.tables()
    counts = await queries.outcomes(institution, iso(since))
    answered = counts.get("answer", 0)
    clarified = counts.get("clarify", 0)
    escalated = counts.get("escalate", 0)
    questions = answered + clarified + escalated + counts.get("ticket", 0)
    tickets = breaches = None
    median = p90 = None
    if "tickets" in tables:
        rows = await queries.ticket_times(institution, iso(since))
        tickets = len(rows)
        breaches = sum(1 for r in rows if r["breached_at"])
        waits = [
            (parse(r["first_response_at"]) - parse(r["created_at"])).total_seconds()
            for r in rows
            if r["first_response_at"]
        ]
        if waits:
            median = timedelta(seconds=percentile(waits, 0.5))
            p90 = timedelta(seconds=percentile(waits, 0.9))
    subscribers = None
    if "subscriptions" in tables:
        subscribers = await queries.subscribers(institution)
    return InstitutionStats(
        institution,
        questions,
        answered,
        clarified,
        escalated,
        tickets,
        median,
        p90,
        breaches,
        subscribers,
    )


async def all_stats(
    storage: Storage, institutions: list[str], since: datetime
) -> list[InstitutionStats]:
    tables = await _tables(storage)
    return [await institution_stats(storage, i, since, tables) for i in institutions]
