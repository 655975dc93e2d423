"""Times are stored as ISO-8601 UTC text with microseconds: sortable as text, readable in
``sqlite3``, and the same in every backend."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: use the injected clock, which is timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text: str) -> datetime:
    if len(text) == 27 and text[-1] == "Z" and text[10] == "T":
        # what iso() writes: fromisoformat reads it many times faster than strptime
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
