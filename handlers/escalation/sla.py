"""Working-hours arithmetic for SLA deadlines: "8 working hours after a question sent on
Friday at 16:00" is Monday 15:00 when the office works 08:00-17:00 on weekdays.

Everything is computed in the institution's timezone from its working_hours and holidays.
An institution without any working hours gets plain clock time (never an endless search).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from handlers.config import WorkingHours

_HORIZON_DAYS = 400


class WorkingCalendar:
    def __init__(self, hours: WorkingHours, holidays: Iterable[date], zone: ZoneInfo) -> None:
        self.hours = hours
        self.holidays = frozenset(holidays)
        self.zone = zone
        self.has_hours = any(hours.by_day.values())

    def spans(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working spans of one local day, as aware datetimes."""
        if day in self.holidays:
            return []
        return [
            (
                datetime.combine(day, start, tzinfo=self.zone),
                datetime.combine(day, end, tzinfo=self.zone),
            )
            for start, end in self.hours.by_day[day.weekday()]
        ]

    def _spans_from(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        local = moment.astimezone(self.zone)
        for offset in range(_HORIZON_DAYS):
            for start, end in self.spans(local.date() + timedelta(days=offset)):
                if end > local:
                    yield max(start, local), end

    def is_working(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        return any(start <= local < end for start, end in self.spans(local.date()))

    def next_working_moment(self, moment: datetime) -> datetime:
        """``moment`` itself in working hours, else the start of the next working span."""
        if not self.has_hours:
            return moment
        for start, _ in self._spans_from(moment):
            return start
        return moment

    def add(self, moment: datetime, duration: timedelta) -> datetime:
        """``moment`` plus ``duration`` of working time."""
        if not self.has_hours:
            return moment + duration
        remaining = duration
        for start, end in self._spans_from(moment):
            available = end - start
            if available >= remaining:
                return start + remaining
            remaining -= available
        return moment + duration

    def working_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two moments (for response-time statistics)."""
        if not self.has_hours:
            return max(timedelta(0), end - start)
        total = timedelta(0)
        for span_start, span_end in self._spans_from(start):
            if span_start >= end:
                break
            total += min(span_end, end) - span_start
        return total
