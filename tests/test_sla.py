"""SLA deadlines counted in working hours, across weekends, holidays and timezones."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from handlers.config import WorkingHours
from handlers.escalation.sla import WorkingCalendar

MSK = ZoneInfo("Europe/Moscow")


def calendar(holidays: list[date] | None = None) -> WorkingCalendar:
    return WorkingCalendar(WorkingHours({"mon-fri": "08:00-17:00"}), holidays or [], MSK)


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK)


def test_a_deadline_inside_one_day() -> None:
    assert calendar().add(msk(2026, 11, 30, 9, 0), timedelta(hours=4)) == msk(2026, 11, 30, 13, 0)


def test_friday_afternoon_rolls_over_the_weekend() -> None:
    # Friday 16:00 + 8 working hours: 1 h on Friday, 7 h on Monday -> Monday 15:00
    friday = msk(2026, 12, 4, 16, 0)
    assert calendar().add(friday, timedelta(hours=8)) == msk(2026, 12, 7, 15, 0)


def test_a_holiday_is_skipped() -> None:
    # Tuesday 4 November 2026 is a public holiday; Monday 16:00 + 8 h -> Wednesday 15:00
    monday = msk(2026, 11, 2, 16, 0)
    assert calendar([date(2026, 11, 4)]).add(monday, timedelta(hours=8)) == msk(2026, 11, 3, 15, 0)
    assert calendar([date(2026, 11, 3)]).add(monday, timedelta(hours=8)) == msk(2026, 11, 4, 15, 0)


def test_a_question_at_night_counts_from_the_morning() -> None:
    night = msk(2026, 11, 30, 23, 30)
    cal = calendar()
    assert not cal.is_working(night)
    assert cal.next_working_moment(night) == msk(2026, 12, 1, 8, 0)
    assert cal.add(night, timedelta(hours=1)) == msk(2026, 12, 1, 9, 0)


def test_saturday_evening_waits_for_monday_and_utc_input_works() -> None:
    saturday_utc = datetime(2026, 12, 5, 15, 0, tzinfo=ZoneInfo("UTC"))  # 18:00 in Moscow
    assert calendar().next_working_moment(saturday_utc) == msk(2026, 12, 7, 8, 0)


def test_split_days_and_other_timezones() -> None:
    hours = WorkingHours({"mon-fri": "08:00-12:00,13:00-17:00", "sat": "09:00-13:00"})
    cal = WorkingCalendar(hours, [], ZoneInfo("Asia/Yekaterinburg"))
    start = datetime(2026, 12, 4, 11, 0, tzinfo=ZoneInfo("Asia/Yekaterinburg"))  # Friday
    # 1 h before lunch, 4 h after, then Saturday 09:00 + 1 h
    assert cal.add(start, timedelta(hours=6)) == datetime(
        2026, 12, 5, 10, 0, tzinfo=ZoneInfo("Asia/Yekaterinburg")
    )
    assert cal.working_between(start, start + timedelta(hours=3)) == timedelta(hours=2)


def test_no_working_hours_means_clock_time() -> None:
    cal = WorkingCalendar(WorkingHours({}), [], MSK)
    moment = msk(2026, 12, 5, 3, 0)
    assert cal.add(moment, timedelta(hours=8)) == moment + timedelta(hours=8)
    assert cal.next_working_moment(moment) == moment
