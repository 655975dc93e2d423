"""When announcements are due: APScheduler 3 triggers, quiet hours and the misfire policy.

Time comes from the app's clock, never from the wall: occurrences are computed with the
triggers' ``get_next_fire_time`` between the last moment we looked (a cursor kept in
storage) and ``clock.now()``. So a ManualClock drives everything in tests, and after a
restart the same computation finds what was missed while the process was down:

- an occurrence younger than the announcement's ``grace`` (default 1 h) is sent late;
- several such occurrences of one announcement coalesce into the newest one;
- older ones are skipped and logged.

The YAML is the source of truth; what must survive (the cursor, the occurrences created and
their deliveries) is in our tables, never in a pickled job store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from handlers.config import AnnouncementConfig

#: ``every:`` intervals count from this local moment, so occurrences (and their UNIQUE
#: keys) are the same in every run: ``every: 2h`` fires at 00:00, 02:00, ... local time
EVERY_ANCHOR = datetime(2000, 1, 3)  # a Monday
#: quiet hours of ad-hoc announcements from staff
DEFAULT_QUIET_HOURS = "22:00-08:00"
#: never enumerate more occurrences than this in one look (``every: 1m`` after a long stop)
MAX_OCCURRENCES = 10_000
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def trigger_for(ann: AnnouncementConfig, zone: ZoneInfo) -> BaseTrigger:
    if ann.cron is not None:
        return CronTrigger.from_crontab(ann.cron, timezone=zone)
    if ann.at is not None:
        return DateTrigger(run_date=local_aware(ann.at, zone), timezone=zone)
    assert ann.every is not None
    return IntervalTrigger(
        seconds=int(ann.every.total_seconds()),
        start_date=EVERY_ANCHOR.replace(tzinfo=zone),
        timezone=zone,
    )


def local_aware(moment: datetime, zone: ZoneInfo) -> datetime:
    """A naive time in the config means the institution's local time."""
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def occurrences(trigger: BaseTrigger, after: datetime, until: datetime) -> Iterator[datetime]:
    """Fire times t with after < t <= until, oldest first (UTC)."""
    start = after + timedelta(microseconds=1)
    for _ in range(MAX_OCCURRENCES):
        t = trigger.get_next_fire_time(None, start)
        if t is None or t < start or t > until:
            return
        yield t.astimezone(UTC)
        start = t + timedelta(microseconds=1)


def next_fire(trigger: BaseTrigger, after: datetime) -> datetime | None:
    start = after + timedelta(microseconds=1)
    t = trigger.get_next_fire_time(None, start)
    if t is None or t < start:
        return None
    return t.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Due:
    """What one look at an announcement found."""

    send: datetime | None  # the occurrence to create (the newest within grace)
    coalesced: int  # older occurrences within grace folded into it
    missed: int  # occurrences older than grace, skipped


def due(trigger: BaseTrigger, after: datetime, now: datetime, grace: timedelta) -> Due:
    found = list(occurrences(trigger, after, now))
    fresh = [t for t in found if now - t <= grace]
    return Due(
        send=fresh[-1] if fresh else None,
        coalesced=max(0, len(fresh) - 1),
        missed=len(found) - len(fresh),
    )


def parse_quiet_hours(value: str) -> tuple[time, time]:
    match = _HOURS.match(value)
    if not match:
        raise ValueError(f"quiet hours {value!r}: write them as 22:00-08:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59:
        raise ValueError(f"quiet hours {value!r}: not a time range")
    return time(h1, m1), time(h2 % 24, m2)


def after_quiet_hours(moment: datetime, quiet: str | None, zone: ZoneInfo) -> datetime:
    """``moment`` itself, or the end of the quiet hours it falls into (UTC)."""
    if not quiet:
        return moment
    start, end = parse_quiet_hours(quiet)
    if start == end:
        return moment
    local = moment.astimezone(zone)
    t = local.time()
    if start < end:
        inside = start <= t < end
        end_day = local.date()
    else:  # wraps midnight: 22:00-08:00
        inside = t >= start or t < end
        end_day = local.date() if t < end else local.date() + timedelta(days=1)
    if not inside:
        return moment
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)


def describe(ann: AnnouncementConfig) -> str:
    if ann.cron is not None:
        return f"cron {ann.cron}"
    if ann.at is not None:
        return f"at {ann.at.isoformat()}"
    assert ann.every is not None
    return f"every {int(ann.every.total_seconds())} s"
