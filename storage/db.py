"""The embedded database: one SQLite connection in WAL mode, numbered migrations, and
transactions that several repositories share.

Why one connection: SQLite serialises writers anyway, and one connection makes a transaction
that spans repositories (an update, its log rows and its outgoing messages) trivial. A task
that opens ``transaction()`` owns the connection until it commits; other tasks wait on the
lock. Statements outside a transaction commit on their own.

This engine runs statements on the event loop's thread (``storage.sqlite: loop``); the
default runs them on aiosqlite's thread in units of work (storage/aio.py), since a
stalling disk here stalls the loop. Why this one existed: our statements are point reads
and single-row writes on indexed tables, 3-13 µs each in WAL mode with synchronous=NORMAL, while a hop to aiosqlite's thread
and back costs 160-200 µs (measured on this machine, 5,000 statements each way). An update
takes about twenty statements, so the hops alone capped the whole pipeline at ~200
updates/s. Anything long (a VACUUM, a bulk purge) goes through :meth:`SqliteDatabase.run_blocking`,
which runs it in a thread while holding the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib.resources
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

from bots.core.platform import NotStored

log = logging.getLogger(__name__)
T = TypeVar("T")

_in_transaction: contextvars.ContextVar[SqliteDatabase | None] = contextvars.ContextVar(
    "priemnaya_tx", default=None
)
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class StorageError(Exception):
    """The database cannot be opened or migrated; the message says what to do."""


class StorageUnavailable(StorageError, NotStored):
    """The database cannot take a statement right now (disk full, read-only file system,
    I/O error, locked, connection lost): nothing was written, and the same statement may
    work later. Callers stop and wait rather than drop what they were storing; a bug (a
    constraint, bad SQL) is never reported this way."""


#: SQLite primary result codes that mean "the storage, not the statement": BUSY, LOCKED,
#: NOMEM, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL
_UNAVAILABLE_CODES = frozenset({5, 6, 7, 8, 10, 13, 14, 15})


def unavailable(exc: BaseException) -> bool:
    """Whether a sqlite3 error means the storage is unavailable (see StorageUnavailable)."""
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc):
        return True  # a revive could not reopen the file yet
    if not isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return False
    return (int(code) & 0xFF) in _UNAVAILABLE_CODES


class _Translated:
    """sqlite3's "storage unavailable" errors as StorageUnavailable; others unchanged. A
    class, not a generator context manager: it wraps every statement, and one shared
    instance costs no generator per use."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> Literal[False]:
        if isinstance(exc, sqlite3.Error) and unavailable(exc):
            raise StorageUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return False


_TRANSLATED = _Translated()


def translated() -> _Translated:
    """sqlite3's "storage unavailable" errors as StorageUnavailable; others unchanged."""
    return _TRANSLATED


def migrations(folder_name: str = "migrations") -> list[tuple[int, str, str]]:
    """(number, name, sql) of every migration shipped in ``storage/<folder_name>``, in order
    (SQLite's in migrations/, PostgreSQL's twins with the same numbers in migrations_pg/)."""
    found = []
    folder = importlib.resources.files("storage") / folder_name
    for item in folder.iterdir():
        match = _MIGRATION_NAME.match(item.name)
        if match:
            found.append((int(match.group(1)), item.name, item.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if len(set(numbers)) != len(numbers):
        raise StorageError(f"two migrations in {folder_name} share a number: {numbers}")
    return found


class SqliteCatalog:
    """The catalog and file methods of the port (storage/port.py), in SQLite's terms, for
    both SQLite engines (this module's and storage/aio.py's)."""

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        raise NotImplementedError

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        raise NotImplementedError

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        raise NotImplementedError

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def schema_version(self) -> int:
        row = await self.fetchone("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version")
        return int(row["v"]) if row else 0

    async def tables(self) -> list[str]:
        rows = await self.fetchall(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
        return [r["name"] for r in rows]

    async def columns(self, table: str) -> list[str]:
        return [r["name"] for r in await self.fetchall(f'PRAGMA table_info("{table}")')]

    async def foreign_keys(self, table: str) -> list[tuple[str, str, str]]:
        rows = await self.fetchall(f'PRAGMA foreign_key_list("{table}")')
        return [(r["table"], r["from"], r["to"] or "id") for r in rows]

    async def secure_delete(self) -> None:
        await self.execute("PRAGMA secure_delete=ON")

    async def checkpoint(self) -> bool:
        row = await self.fetchone("PRAGMA wal_checkpoint(TRUNCATE)")
        return bool(row is not None and row[0])


class SqliteDatabase(SqliteCatalog):
    """The SQLite backend of the storage port (storage/port.py), on the event loop's thread."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        self._lock = asyncio.Lock()
        #: thread hops so far: none here, statements run on the loop (bench/pipeline.py)
        self.hops = 0

    @classmethod
    async def open(cls, path: str | Path) -> SqliteDatabase:
        """Open (creating folders and file as needed) and migrate to the newest schema."""
        target = str(path)
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = connect(target)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {target}: {exc}") from exc
        db = cls(conn, target)
        await db._migrate()
        return db

    async def revive(self) -> None:
        """Open the connection anew. SQLite opens a file read-only when the file system is
        read-only at that moment, and such a connection stays read-only after a remount;
        the storage probe calls this when a write failed. A connection put in query_only
        on purpose is kept."""
        async with self._lock:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed by a failed revive
                if self._conn.execute("PRAGMA query_only").fetchone()[0]:
                    return
            # close first: a new connection opened beside the old one would share its
            # read-only view of the WAL index
            self._conn.close()
            with translated():
                self._conn = connect(self.path)

    async def close(self) -> None:
        async with self._lock:
            self._conn.close()

    async def _migrate(self) -> None:
        migrate_connection(self._conn, self.path)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Everything the current task runs inside commits together or not at all."""
        if _in_transaction.get() is self:
            yield  # nested: part of the outer transaction
            return
        async with self._lock:
            with translated():
                self._conn.execute("BEGIN IMMEDIATE")
            token = _in_transaction.set(self)
            try:
                yield
            except BaseException:
                self._rollback()
                raise
            else:
                try:
                    with translated():
                        self._conn.execute("COMMIT")
                except BaseException:
                    self._rollback()  # a failed COMMIT (disk full) leaves it open
                    raise
            finally:
                _in_transaction.reset(token)

    async def unit(
        self,
        work: Callable[[], Awaitable[T]],
        what: str = "unit",
        *,
        atomic: bool = True,
        owner: str | None = None,
    ) -> T:
        """``work`` in one transaction (storage/port.py); on the loop's thread there is
        no hop to save, so it is simply that."""
        if not atomic:
            return await work()
        async with self.transaction():
            return await work()

    def _rollback(self) -> None:
        rollback(self._conn)

    @asynccontextmanager
    async def _use(self) -> AsyncIterator[sqlite3.Connection]:
        if _in_transaction.get() is self:
            with translated():
                yield self._conn
        else:
            async with self._lock:
                with translated():
                    yield self._conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns lastrowid for INSERT, else the changed row count."""
        async with self._use() as conn:
            return run_statement(conn, sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self._use() as conn:
            conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        async with self._use() as conn:
            row: sqlite3.Row | None = conn.execute(sql, params).fetchone()
            return row

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self._use() as conn:
            return list(conn.execute(sql, params).fetchall())

    async def run_blocking(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run long work (VACUUM, a bulk purge) in a thread, holding the connection, so the
        event loop keeps serving updates meanwhile."""
        if _in_transaction.get() is self:
            raise RuntimeError("run_blocking inside a transaction would deadlock")
        async with self._lock:
            return await asyncio.to_thread(work, self._conn)


def run_statement(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> int:
    """One statement; lastrowid for an INSERT that inserted, else the changed row count."""
    cursor = conn.execute(sql, params)
    if sql.lstrip()[:6].upper() == "INSERT":
        return int(cursor.lastrowid or 0) if cursor.rowcount > 0 else 0
    return int(cursor.rowcount)


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is still open: SQLite itself rolls back on some errors
    (disk full, I/O), and a second ROLLBACK would hide the first error."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.warning("rollback failed: %s", exc)


def to_apply(
    current: int, known: list[tuple[int, str, str]], path: str
) -> list[tuple[int, str, str]]:
    """The migrations newer than schema ``current``, each logged; a database newer than
    this program is refused (both backends)."""
    newest = known[-1][0] if known else 0
    if current > newest:
        raise StorageError(
            f"database {path} has schema {current}, newer than this program's {newest}: "
            "upgrade Priemnaya or restore a backup"
        )
    newer = [m for m in known if m[0] > current]
    for _, name, _ in newer:
        log.info("applying migration %s", name)
    return newer


def migrate_connection(conn: sqlite3.Connection, path: str) -> None:
    """Bring a connection's database to the newest schema (both SQLite engines use this)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
    )
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    for number, name, sql in to_apply(int(row[0]) if row else 0, migrations(), path):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version(version, name) VALUES (?, ?)", (number, name))
            conn.execute("COMMIT")
        except Exception as exc:
            conn.execute("ROLLBACK")
            raise StorageError(f"migration {name} failed: {exc}") from exc


def connect(target: str) -> sqlite3.Connection:
    """A connection as both SQLite engines use it: autocommit (transactions are explicit),
    WAL, synchronous=NORMAL, foreign keys, a 5 s busy timeout. ``check_same_thread`` is off:
    the thread engine opens it on its own thread, and tests reach it from theirs."""
    conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _statements(sql: str) -> list[str]:
    """Split a migration file on semicolons at line ends (our migrations hold no triggers)."""
    parts, buffer = [], []
    for line in sql.splitlines():
        stripped = line.strip()
        if stripped.startswith("--") or not stripped:
            continue
        buffer.append(line)
        if stripped.endswith(";"):
            parts.append("\n".join(buffer))
            buffer = []
    if buffer:
        parts.append("\n".join(buffer))
    return parts
