"""Storage: the embedded SQLite database and one repository per aggregate.

Everything that must survive a restart goes through :class:`Storage`. Later backends
(PostgreSQL) implement the same repositories; the storage contract suite in
tests/contract/test_storage.py runs against each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from storage.citizens import CitizenRepo
from storage.db import Database, StorageError
from storage.messages import MessageLog
from storage.queues import Inbox, Outbox
from storage.state import KeyValue, PayloadRepo
from storage.tickets import TicketRepo

__all__ = ["Storage", "StorageError"]


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

    @classmethod
    async def open(cls, path: str | Path, now: Callable[[], datetime]) -> Storage:
        return cls(await Database.open(path), now)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self.db.transaction():
            yield

    async def close(self) -> None:
        await self.db.close()
