"""Leases: which worker process serves which institution, when several share one
PostgreSQL database (runtime/workers.py runs the loop; this module holds its SQL).

A lease is a row (institution, worker_id, expires_at). Its holder renews it every third of
its lifetime; a worker that dies stops renewing and, once the lease expired, another takes
it over. Times are the database's clock (``now()``), so workers whose machines' clocks
differ agree. Workers also announce themselves (``workers``), so that each can aim at a
fair share of the institutions: ceil(institutions / live workers).

PostgreSQL only: with SQLite one process serves everything and nothing is leased.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Any

from storage.port import Database
from storage.queues import Outbox, OutboxItem, _item
from storage.times import iso, parse


class LeaseRepo:
    def __init__(self, db: Database, worker_id: str, seconds: float) -> None:
        self._db = db
        self.worker_id = worker_id
        self.seconds = float(seconds)

    async def heartbeat(self) -> int:
        """Say this worker is alive for one more lease period; how many workers are."""
        await self._db.execute(
            "INSERT INTO workers(worker_id, seen_until) VALUES (?, now() + make_interval(secs => ?))"
            " ON CONFLICT(worker_id) DO UPDATE SET seen_until=excluded.seen_until",
            (self.worker_id, self.seconds),
        )
        return int(await self._db.fetchval("SELECT COUNT(*) FROM workers WHERE seen_until > now()"))

    async def renew(self) -> set[str]:
        """Extend every lease this worker still holds; the institutions it holds."""
        rows = await self._db.fetchall(
            "UPDATE leases SET expires_at = now() + make_interval(secs => ?)"
            " WHERE worker_id=? AND expires_at > now() RETURNING institution",
            (self.seconds, self.worker_id),
        )
        return {r[0] for r in rows}

    async def free(self, institutions: Iterable[str]) -> list[str]:
        """Those of ``institutions`` nobody holds a live lease on."""
        rows = await self._db.fetchall(
            "SELECT i FROM unnest(?::text[]) AS i WHERE NOT EXISTS (SELECT 1 FROM leases l"
            " WHERE l.institution = i AND l.expires_at > now())",
            (list(institutions),),
        )
        return [r[0] for r in rows]

    async def acquire(self, institutions: Iterable[str]) -> set[str]:
        """Take the leases of ``institutions`` that are free or expired; the ones taken (a
        worker racing for the same ones gets the others: the statement is atomic per row)."""
        wanted = list(institutions)
        if not wanted:
            return set()
        rows = await self._db.fetchall(
            "INSERT INTO leases(institution, worker_id, expires_at, acquired_at)"
            " SELECT i, ?, now() + make_interval(secs => ?), now() FROM unnest(?::text[]) AS i"
            " ON CONFLICT(institution) DO UPDATE SET worker_id=excluded.worker_id,"
            " expires_at=excluded.expires_at, acquired_at=excluded.acquired_at"
            " WHERE leases.expires_at <= now()"
            " RETURNING institution",
            (self.worker_id, self.seconds, wanted),
        )
        return {r[0] for r in rows}

    async def release(self, institutions: Iterable[str]) -> None:
        """Give leases up at once (rebalancing, a clean stop): no need to wait for expiry."""
        await self._db.execute(
            "DELETE FROM leases WHERE worker_id=? AND institution = ANY(?::text[])",
            (self.worker_id, list(institutions)),
        )

    async def leave(self) -> None:
        """A clean stop: every lease released, this worker no longer counted."""
        async with self._db.transaction():
            await self._db.execute("DELETE FROM leases WHERE worker_id=?", (self.worker_id,))
            await self._db.execute("DELETE FROM workers WHERE worker_id=?", (self.worker_id,))

    async def holders(self) -> dict[str, str]:
        """Institution -> worker holding a live lease (tests, operators)."""
        rows = await self._db.fetchall(
            "SELECT institution, worker_id FROM leases WHERE expires_at > now()"
        )
        return {r[0]: r[1] for r in rows}


class LeasedOutbox(Outbox):
    """The outbox as a worker's sender sees it: only the rows of institutions whose lease
    the worker holds, so two workers never send the same row (and each chat's messages
    keep their order: one sender per institution at a time)."""

    def __init__(self, db: Database, owned: Callable[[], Collection[str]]) -> None:
        super().__init__(db)
        self._owned = owned

    async def due_all(self, now: datetime, limit: int = 1000) -> list[OutboxItem]:
        mine = sorted(self._owned())
        if not mine:
            return []
        rows: list[Any] = await self._db.fetchall(
            "SELECT * FROM outbox o WHERE o.status='pending' AND o.institution = ANY(?::text[])"
            " AND o.next_attempt_at<=?"
            " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.status='pending'"
            " AND p.institution=o.institution AND p.platform=o.platform"
            " AND p.chat_id=o.chat_id AND p.id<o.id AND p.next_attempt_at>?)"
            " ORDER BY o.id LIMIT ?",
            (mine, iso(now), iso(now), limit),
        )
        return [_item(r) for r in rows]

    async def next_attempt_any(self) -> datetime | None:
        mine = sorted(self._owned())
        if not mine:
            return None
        value = await self._db.fetchval(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status='pending'"
            " AND institution = ANY(?::text[])",
            (mine,),
        )
        return parse(value) if value else None
