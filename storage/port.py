"""The storage port: what repositories (and the few callers outside storage/) may ask of a
database. Two backends implement it: SQLite (storage/db.py, the embedded default) and
PostgreSQL (storage/pg.py, for several worker processes); SQLite runs either on a thread of
its own through aiosqlite (storage/aio.py, the default) or on the event loop's thread
(storage/db.py). A third backend implements this
Protocol and passes the contract suite in tests/contract/test_storage.py; nothing else in
the product needs to know it exists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

#: one result row: sqlite3.Row or asyncpg.Record, both indexed by column name and position
Row = Any


class Database(Protocol):
    """Statements in SQLite's dialect with ``?`` placeholders (PgDatabase translates them),
    transactions that several repositories share, numbered migrations applied at open."""

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``: for the few statements that must differ."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Everything the current task runs inside commits together or not at all;
        nested use joins the outer transaction."""
        ...

    async def unit(
        self,
        work: Callable[[], Awaitable[T]],
        what: str = "unit",
        *,
        atomic: bool = True,
        owner: str | None = None,
    ) -> T:
        """Run ``work`` as one unit of work: in one transaction (``atomic=False``: on one
        connection, each statement committing by itself, for reads and writes that need
        no transaction), and on a backend that runs statements on a thread of its own
        (storage/aio.py) in one hop to that thread.
        ``work`` may await this database and nothing else (no sleeps, no network, no
        futures of the event loop): on that backend it runs on the database's thread,
        where awaiting anything that suspends is an error. ``what`` names it in the
        slow-call log and /metrics (storage/timing.py). ``owner`` (an institution) is
        whom the work is for: a backend whose connections several units share at once
        keeps one owner's crawling units from taking them all (storage/pg.py); SQLite,
        with its one writer, ignores it."""
        ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement; lastrowid for an INSERT, else the changed row count."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    async def schema_version(self) -> int: ...

    async def close(self) -> None: ...

    # -- the catalog and the files, each backend in its own terms -------------------------
    async def tables(self) -> list[str]:
        """The application's tables, by name."""
        ...

    async def columns(self, table: str) -> list[str]:
        """The column names of ``table``, in order."""
        ...

    async def foreign_keys(self, table: str) -> list[tuple[str, str, str]]:
        """(parent table, column of ``table``, parent column) for each foreign key."""
        ...

    async def secure_delete(self) -> None:
        """Make deleted rows unrecoverable from the files where the backend can (SQLite
        zeroes freed pages); a no-op elsewhere."""
        ...

    async def checkpoint(self) -> bool:
        """Move committed changes out of a write-ahead log that could still hold deleted
        text (SQLite's -wal); True when a reader blocked it."""
        ...
