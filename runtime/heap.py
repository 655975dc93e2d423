"""Keep the garbage collector off the start-up heap.

A thousand institutions leave millions of long-lived objects after start (FAQ indexes,
templates, pydantic models). CPython's full collections walk all of them: at N = 1,000 that
was 31 full collections in a run, the longest 1.2-2.2 s, each a pause in answering. What
exists after start-up lives as long as the process (or until the next reload), so
``gc.freeze()`` moves it out of the collector's sight; reference counting still frees it.

After a reload the replaced institutions are garbage, some of it in cycles that only the
collector frees: ``refreeze`` unfreezes, collects once (one pause, at a moment an
administrator chose) and freezes what lives now.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

log = logging.getLogger(__name__)


def freeze() -> None:
    """Freeze what start-up built (``priemnaya run``). No full collection first: over a
    thousand institutions' heap it is a pause of seconds while the bots already answer;
    the young generations hold most of start-up's garbage and are collected."""
    started = time.perf_counter()
    gc.collect(1)
    gc.freeze()
    log.info(
        "heap frozen after start: %d objects (%.0f ms)",
        gc.get_freeze_count(),
        1000 * (time.perf_counter() - started),
    )


def refreeze(_app: Any = None) -> None:
    """After a reload (an ``on_reload`` hook): free the replaced version, freeze the new."""
    started = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    log.info(
        "heap frozen after reload: %d objects (%.0f ms)",
        gc.get_freeze_count(),
        1000 * (time.perf_counter() - started),
    )
