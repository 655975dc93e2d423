"""Storage: the database and one repository per aggregate.

Everything that must survive a restart goes through :class:`Storage`. Two backends run the
same repositories: SQLite (storage/db.py, one process, the default) and PostgreSQL
(storage/pg.py, selected by a ``postgresql://`` URL, for several worker processes); the
storage contract suite in tests/contract/test_storage.py runs against each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Literal, TypeVar

from storage.aio import AioSqliteDatabase
from storage.citizens import CitizenRepo
from storage.db import SqliteDatabase, StorageError, StorageUnavailable
from storage.messages import MessageLog
from storage.places import PlaceRepo
from storage.port import Database
from storage.queues import Inbox, Outbox
from storage.state import KeyValue, PayloadRepo
from storage.tickets import TicketRepo

__all__ = ["Database", "Storage", "StorageError", "StorageUnavailable", "is_database_url"]

T = TypeVar("T")
#: where SQLite's statements run: on aiosqlite's thread (storage/aio.py, the default) or on
#: the event loop's thread (storage/db.py; kept to compare them in bench/pipeline.py)
SqliteEngine = Literal["thread", "loop"]


def is_database_url(target: object) -> bool:
    """A ``postgresql://`` URL rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


class Storage:
    def __init__(self, db: Database, now: Callable[[], datetime]) -> None:
        self.db = db
        #: the app's clock, for repositories and hooks that stamp rows
        self.now = now
        self.citizens = CitizenRepo(db)
        self.log = MessageLog(db)
        self.kv = KeyValue(db, now)
        self.payloads = PayloadRepo(db, now)
        self.inbox = Inbox(db)
        self.outbox = Outbox(db)
        self.tickets = TicketRepo(db)
        self.places = PlaceRepo(db)

    @classmethod
    async def open(
        cls, path: str | Path, now: Callable[[], datetime], sqlite: SqliteEngine = "thread"
    ) -> Storage:
        """``path``: a SQLite file (or ``:memory:``), or a ``postgresql://`` URL."""
        if is_database_url(path):
            from storage.pg import PgDatabase  # asyncpg is imported only when used

            return cls(await PgDatabase.open(str(path)), now)
        if sqlite == "loop":
            return cls(await SqliteDatabase.open(path), now)
        return cls(await AioSqliteDatabase.open(path), now)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``: for the few places that differ (claims, leases)."""
        return self.db.dialect

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self.db.transaction():
            yield

    async def unit(
        self,
        work: Callable[[], Awaitable[T]],
        what: str = "unit",
        *,
        atomic: bool = True,
        owner: str | None = None,
    ) -> T:
        """``work`` as one unit of work (storage/port.py: one transaction, one hop)."""
        return await self.db.unit(work, what, atomic=atomic, owner=owner)

    async def write_soon(
        self, work: Callable[[], Awaitable[object]], what: str, *, owner: str | None = None
    ) -> None:
        """A write that need not cost a hop and a transaction of its own (a delivery's
        record, runtime/sender.py): on SQLite's thread it waits in memory and goes first in
        the next hop, inside the next unit's transaction (storage/aio.py), and the caller
        bounds the wait with :meth:`write_waiting`. Elsewhere (PostgreSQL, where several
        workers read the outbox; SQLite on the loop) it is one unit of its own now, like
        ``unit(work, what, atomic=False)``."""
        if isinstance(self.db, AioSqliteDatabase):
            self.db.write_soon(work, self.now())
            return
        await self.db.unit(work, what, atomic=False, owner=owner)

    @property
    def writes_waiting(self) -> int:
        """How many writes given to :meth:`write_soon` wait to be written."""
        return self.db.writes_waiting if isinstance(self.db, AioSqliteDatabase) else 0

    @property
    def waiting_since(self) -> datetime | None:
        """Since when (the app's clock) the oldest write given to :meth:`write_soon`
        waits; None when none does."""
        return self.db.waiting_since if isinstance(self.db, AioSqliteDatabase) else None

    async def write_waiting(self) -> None:
        """Write what :meth:`write_soon` left waiting now, in one hop (StorageUnavailable:
        it keeps waiting)."""
        if isinstance(self.db, AioSqliteDatabase):
            await self.db.write_waiting()

    async def close(self) -> None:
        await self.db.close()
