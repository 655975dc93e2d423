"""The figures behind ``priemnaya report html``: one institution's period, day by day.

Per local day: the citizens' questions the FAQ answered, only clarified, or handed to staff;
the tickets whose first response came within the deadline (``due_at``, which the escalation
feature computes in working hours and holidays), late, or not yet; the FAQ entries whose
answer citizens marked "Не помогло". The unanswered clusters come from
:mod:`handlers.reports.unanswered`. Like ``report stats``, this reads the tables directly:
it is a reader of what the features wrote, not a feature of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from handlers.faq.model import Faq
from handlers.reports.stats import percentile
from handlers.reports.unanswered import UnansweredReport
from storage import Storage
from storage.times import iso, parse

#: message_log outcomes, as the report's three kinds of questions
KIND_OF_OUTCOME = {
    "answer": "answered",
    "clarify": "clarified",
    "escalate": "escalated",
    "ticket": "escalated",
}


@dataclass(slots=True)
class Day:
    day: date
    answered: int = 0
    clarified: int = 0
    escalated: int = 0
    #: tickets opened this day, by how their first response went
    in_time: int = 0
    late: int = 0
    waiting: int = 0
    overdue: int = 0

    @property
    def questions(self) -> int:
        return self.answered + self.clarified + self.escalated


@dataclass(slots=True)
class NotHelpful:
    entry_id: str
    title: str
    not_helpful: int
    helpful: int


@dataclass(slots=True)
class Overview:
    institution: str
    name: str
    since: datetime
    until: datetime
    #: the first-response deadline of the config, counted in working hours
    first_response: timedelta
    days: list[Day] = field(default_factory=list)
    first_response_median: timedelta | None = None
    first_response_p90: timedelta | None = None
    not_helpful: list[NotHelpful] = field(default_factory=list)
    unanswered: UnansweredReport | None = None

    def total(self, name: str) -> int:
        return sum(int(getattr(d, name)) for d in self.days)


def _days(since: datetime, until: datetime, zone: ZoneInfo) -> dict[date, Day]:
    first, last = since.astimezone(zone).date(), until.astimezone(zone).date()
    count = (last - first).days + 1
    return {first + timedelta(n): Day(first + timedelta(n)) for n in range(count)}


async def build_overview(
    storage: Storage,
    *,
    institution: str,
    name: str,
    faq: Faq,
    zone: ZoneInfo,
    first_response: timedelta,
    since: datetime,
    until: datetime,
) -> Overview:
    db = storage.db
    days = _days(since, until, zone)
    report = Overview(institution, name, since, until, first_response)
    for row in await db.fetchall(
        "SELECT outcome, created_at FROM message_log WHERE institution=? AND direction='in'"
        " AND created_at>=?",
        (institution, iso(since)),
    ):
        kind = KIND_OF_OUTCOME.get(row["outcome"] or "")
        day = days.get(parse(row["created_at"]).astimezone(zone).date())
        if kind is not None and day is not None:
            setattr(day, kind, getattr(day, kind) + 1)
    waits: list[float] = []
    for row in await db.fetchall(
        "SELECT created_at, due_at, first_response_at FROM tickets"
        " WHERE institution=? AND created_at>=?",
        (institution, iso(since)),
    ):
        created = parse(row["created_at"])
        day = days.get(created.astimezone(zone).date())
        due = parse(row["due_at"]) if row["due_at"] else None
        responded = parse(row["first_response_at"]) if row["first_response_at"] else None
        if responded is not None:
            waits.append((responded - created).total_seconds())
        if day is None:
            continue
        if responded is not None:
            if due is None or responded <= due:
                day.in_time += 1
            else:
                day.late += 1
        elif due is not None and until > due:
            day.overdue += 1
        else:
            day.waiting += 1
    if waits:
        report.first_response_median = timedelta(seconds=percentile(waits, 0.5))
        report.first_response_p90 = timedelta(seconds=percentile(waits, 0.9))
    titles = {entry.id: entry.title for entry in faq.entries}
    feedback: dict[str, list[int]] = {}
    for row in await db.fetchall(
        "SELECT entry_id, helpful FROM feedback WHERE institution=? AND created_at>=?",
        (institution, iso(since)),
    ):
        counts = feedback.setdefault(row["entry_id"], [0, 0])
        counts[0 if row["helpful"] else 1] += 1
    report.not_helpful = sorted(
        (
            NotHelpful(entry, titles.get(entry, entry), no, yes)
            for entry, (yes, no) in feedback.items()
            if no
        ),
        key=lambda n: (-n.not_helpful, n.entry_id),
    )
    report.days = [days[d] for d in sorted(days)]
    return report
