"""Times are stored as ISO-8601 UTC text with microseconds: sortable as text, readable in
``sqlite3``, and the same in every backend."""

from __future__ import annotations

from datetime import UTC, datetime

#: the last moment converted and its text: an update stamps most of its rows with the same
#: moment (the handling's ``now``), ~12 conversions per update on the storage thread
_last: tuple[datetime, str] | None = None


def iso(moment: datetime) -> str:
    global _last
    last = _last  # one read: two threads may convert at once
    if last is not None and last[0] is moment:
        return last[1]
    if moment.tzinfo is UTC and moment.year >= 1000:
        # a clock's moment (UTC already): its text less the offset, without a conversion
        text = moment.isoformat(timespec="microseconds")[:-6] + "Z"
        _last = (moment, text)
        return text
    if moment.tzinfo is None:
        raise ValueError("naive datetime: use the injected clock, which is timezone-aware")
    utc = moment.astimezone(UTC)
    if utc.year >= 1000:  # isoformat pads years to 4 digits; strftime's %Y may not
        # the same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ"), several times faster
        text = utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    else:
        text = utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    _last = (moment, text)
    return text


def parse(text: str) -> datetime:
    if len(text) == 27 and text[-1] == "Z" and text[10] == "T":
        # what iso() writes: fromisoformat reads it many times faster than strptime
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
