"""Which database errors mean "storage unavailable" (wait, lose nothing) and which are bugs
(logged, the update answered with an apology): on both backends, with the real engines
refusing writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots.core.clock import ManualClock
from storage import Storage, StorageUnavailable
from storage.pg import PgDatabase
from tests.pg import fresh_schema


async def test_sqlite_read_only_is_unavailable_and_a_constraint_is_not(tmp_path: Path) -> None:
    clock = ManualClock()
    storage = await Storage.open(tmp_path / "db.sqlite3", clock.now)
    try:
        with pytest.raises(Exception) as bug:
            await storage.db.execute("INSERT INTO kv(scope, key) VALUES ('a', 'b')")
        assert not isinstance(bug.value, StorageUnavailable)  # NOT NULL: a bug
        storage.db._conn.execute("PRAGMA query_only=ON")
        with pytest.raises(StorageUnavailable):
            await storage.kv.set("a", "b", "c")
        with pytest.raises(StorageUnavailable):
            async with storage.transaction():
                await storage.kv.set("a", "b", "c")
        assert await storage.kv.get("a", "b") is None  # reads still work
        storage.db._conn.execute("PRAGMA query_only=OFF")
        async with storage.transaction():  # nothing was left open by the failures
            await storage.kv.set("a", "b", "c")
        assert await storage.kv.get("a", "b") == "c"
    finally:
        await storage.close()


async def test_postgresql_read_only_is_unavailable() -> None:
    clock = ManualClock()
    async with fresh_schema() as url:
        storage = await Storage.open(url, clock.now)  # migrated
        read_only = await PgDatabase.open(
            url + "&default_transaction_read_only=on", min_size=1, max_size=1, migrate=False
        )
        try:
            await storage.kv.set("a", "b", "c")
            with pytest.raises(StorageUnavailable):
                await read_only.execute("UPDATE kv SET value='d' WHERE scope='a' AND key='b'", ())
            assert await read_only.fetchval("SELECT value FROM kv WHERE key='b'") == "c"
        finally:
            await read_only.close()
            await storage.close()
