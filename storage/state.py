"""Small durable state: key-value pairs (a VK long-poll ``ts``, a Telegram offset, a
conversation step) and stored callback payloads (see bots/core/payloads.py)."""

from __future__ import annotations

from datetime import datetime

from storage.port import Database
from storage.times import iso


class KeyValue:
    def __init__(self, db: Database, clock_now: object) -> None:
        self._db = db
        self._now = clock_now  # a callable returning an aware datetime

    async def get(self, scope: str, key: str) -> str | None:
        return await self._db.fetchval("SELECT value FROM kv WHERE scope=? AND key=?", (scope, key))

    async def set(self, scope: str, key: str, value: str) -> None:
        now: datetime = self._now()  # type: ignore[operator]
        await self._db.execute(
            "INSERT INTO kv(scope, key, value, updated_at) VALUES (?,?,?,?)"
            " ON CONFLICT(scope, key) DO UPDATE SET value=excluded.value,"
            " updated_at=excluded.updated_at",
            (scope, key, value, iso(now)),
        )

    async def delete(self, scope: str, key: str) -> None:
        await self._db.execute("DELETE FROM kv WHERE scope=? AND key=?", (scope, key))

    async def scope(self, scope: str) -> dict[str, str]:
        rows = await self._db.fetchall("SELECT key, value FROM kv WHERE scope=?", (scope,))
        return {r["key"]: r["value"] for r in rows}


class PayloadRepo:
    """Implements bots.core.payloads.PayloadStore."""

    def __init__(self, db: Database, clock_now: object) -> None:
        self._db = db
        self._now = clock_now

    async def put_payload(self, key: str, payload: str) -> None:
        now: datetime = self._now()  # type: ignore[operator]
        await self._db.execute(
            "INSERT INTO callback_payloads(key, payload, created_at) VALUES (?,?,?)"
            " ON CONFLICT(key) DO NOTHING",
            (key, payload, iso(now)),
        )

    async def get_payload(self, key: str) -> str | None:
        return await self._db.fetchval("SELECT payload FROM callback_payloads WHERE key=?", (key,))
