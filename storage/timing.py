"""Slow storage calls: each is logged with what it was doing and counted on /metrics, so a
stalling disk or an overloaded PostgreSQL server shows up before citizens notice.

What a call was doing is named briefly and with bounded variety: a unit of work by the
name its caller gave it (``update``, ``outbox.record``...), a single statement by its verb
and table (``UPDATE outbox``). Never parameters: they may hold a citizen's text."""

from __future__ import annotations

import logging
import re
import threading
import time
from functools import lru_cache

from bots.core import metrics

log = logging.getLogger(__name__)

#: a call taking this long or longer is reported (override per database: ``slow_call_seconds``)
SLOW_CALL_SECONDS = 0.25

_VERB_TABLE = re.compile(
    r"^\s*(?:WITH\b.*?\)\s*)?(SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|PRAGMA|BEGIN|COMMIT"
    r"|ROLLBACK|[A-Z]+)\b(?:.*?\bFROM\s+|\s+)?\"?([A-Za-z_][A-Za-z0-9_]*)?",
    re.IGNORECASE | re.DOTALL,
)


@lru_cache(maxsize=1024)
def what_of(sql: str) -> str:
    """``UPDATE outbox``, ``SELECT inbox``: a statement's verb and first table. Cached: the
    statements are a few hundred constant strings, and the regular expression ran for
    every statement of every update (~60 us each in a profile of the update path)."""
    match = _VERB_TABLE.match(sql)
    if match is None:
        return "statement"
    verb = match.group(1).split()[0].upper()
    table = match.group(2) or ""
    return f"{verb} {table}".strip()


#: at most one log line per kind of call in this many seconds (an overload would flood the
#: log); the counter on /metrics counts every one
LOG_EVERY = 10.0
_lock = threading.Lock()
_logged_at: dict[str, float] = {}
_unlogged: dict[str, int] = {}


def timed(what: str, seconds: float, threshold: float) -> None:
    """Count a storage call; report it when it took ``threshold`` seconds or more."""
    metrics.STORAGE_CALLS.inc()
    if seconds < threshold:
        return
    metrics.STORAGE_SLOW.inc(what=what)
    now = time.monotonic()
    with _lock:
        if now - _logged_at.get(what, -LOG_EVERY) < LOG_EVERY:
            _unlogged[what] = _unlogged.get(what, 0) + 1
            return
        _logged_at[what] = now
        more = _unlogged.pop(what, 0)
    if more:
        log.warning(
            "slow storage call: %s took %.0f ms (and %d more since the last report)",
            what,
            seconds * 1000,
            more,
        )
    else:
        log.warning("slow storage call: %s took %.0f ms", what, seconds * 1000)
