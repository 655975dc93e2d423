"""Benchmark of the retention purge on SQLite: how long it takes and how long it holds the
event loop (statements run on the loop's thread, so a long DELETE stalls every bot).

Fills a database with N messages older than the retention and N/10 new ones (and as many
delivered outbox rows), then purges it two ways on copies of the file: one DELETE per
table without the created_at indexes (what the purge did before migration 0009), and the
batched purge of storage/privacy.py. A ticker task records the longest gap between its
wake-ups: the stall a citizen's update would have waited. Prints figures only; run with
`.venv/bin/python bench/purge.py [N]` (default 200,000).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import Storage
from storage.privacy import PrivacyRepo
from storage.times import iso

NOW = datetime(2026, 9, 1, tzinfo=UTC)
OLD = NOW - timedelta(days=200)


async def fill(path: Path, count: int) -> None:
    storage = await Storage.open(str(path), lambda: NOW)
    rows = [(f"старый вопрос {n}", iso(OLD)) for n in range(count)]
    rows += [(f"новый вопрос {n}", iso(NOW)) for n in range(count // 10)]
    await storage.db.executemany(
        "INSERT INTO message_log(institution, platform, chat_id, user_id, direction, text,"
        " created_at) VALUES ('school', 'telegram', '42', '42', 'in', ?, ?)",
        rows,
    )
    await storage.db.executemany(
        "INSERT INTO outbox(institution, platform, chat_id, kind, reply, dedup_key, status,"
        " next_attempt_at, created_at) VALUES ('school', 'telegram', '42', 'send', '{}', ?,"
        " 'sent', ?, ?)",
        [(f"k{n}", created, created) for n, (_, created) in enumerate(rows)],
    )
    await storage.close()


async def timed(path: Path, purge: Callable[[Storage], Awaitable[object]]) -> tuple[float, float]:
    """(seconds the purge took, the longest the event loop did not answer)."""
    storage = await Storage.open(str(path), lambda: NOW)
    longest = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    start = time.perf_counter()
    await purge(storage)
    took = time.perf_counter() - start
    stop.set()
    await tick
    await storage.close()
    return took, longest


async def one_statement(storage: Storage) -> None:
    """The purge before: one DELETE per table, no created_at index."""
    db = storage.db
    for index in ("message_log_by_created", "feedback_by_created", "outbox_by_created"):
        await db.execute(f"DROP INDEX {index}")
    cutoff = iso(NOW - timedelta(days=180))
    async with db.transaction():
        await db.execute("DELETE FROM message_log WHERE created_at < ?", (cutoff,))
        await db.execute("DELETE FROM feedback WHERE created_at < ?", (cutoff,))
        await db.execute("DELETE FROM outbox WHERE status<>'pending' AND created_at < ?", (cutoff,))


async def batched(storage: Storage) -> None:
    await PrivacyRepo(storage.db).purge(iso(NOW - timedelta(days=180)))


async def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "full.sqlite3"
        await fill(source, count)
        for name, purge in (("one DELETE per table", one_statement), ("batched", batched)):
            copy = Path(tmp) / f"{name}.sqlite3"
            shutil.copy(source, copy)
            took, longest = await timed(copy, purge)
            print(
                f"purge of {count} old messages and outbox rows, {name}: {took:.2f} s,"
                f" event loop held at most {longest * 1000:.0f} ms"
            )


if __name__ == "__main__":
    asyncio.run(main())
