"""The PostgreSQL database: the same public methods as storage.db.Database, so every
repository runs unchanged on either backend, and several worker processes can share one
installation (see runtime/workers.py).

Why a translation layer rather than two sets of repositories: the repositories' SQL is
portable apart from the placeholder style (``?`` -> ``$n``) and SQLite's ``lastrowid``
(PostgreSQL has none: an INSERT into a table with an ``id`` column gets ``RETURNING id``).
Both are mechanical and covered by tests/test_pg.py; anything else that is SQLite-only is
written portably in the repositories (CASE WHEN instead of two-argument MAX, ...).

Type leniency: SQLite stores what it is given and compares by affinity, so callers may
pass ``"5"`` for an integer column or ``5`` for a text one. asyncpg refuses both; integer
and text values are therefore exchanged in text format with converting encoders, which
keeps the repositories' behaviour identical on both backends.

Transactions: a pool of connections; ``transaction()`` pins one connection to the current
task (a contextvar, as in the SQLite backend) until it commits. Unlike SQLite, transactions
of different tasks run concurrently (READ COMMITTED); code that needs a counter to be
serialised takes a row lock first (see TicketRepo.create). A unit of work
(:meth:`PgDatabase.unit`: an update's handling, a delivery's record) is one transaction on
one connection.

One institution's crawl is not everyone's: units of work of different institutions run on
different connections at once, so a unit held up (its commit waiting on a lock or a slow
server, a handler taking long) delays no one else's, except through the pool. Units that
name their ``owner`` (the app's updates and the sender's claims and records name the
institution) hold at most ``owner_share`` of the pool's connections per owner at a time
(half of it): a burst of one institution's updates that all crawl leaves the other half to
the other institutions, the sender's sweep and /healthz (tests/app/test_storage_stall_pg.py).

Round trips: a connection goes back to the pool without asyncpg's reset query
(``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``, one round trip per
release, which made a quarter of all round trips when each statement took a connection of
its own): nothing here takes advisory locks beyond one statement's migration lock, LISTENs,
keeps cursors or changes settings, and a transaction left open is still rolled back by the
pool. ``round_trips`` counts them (bench/pipeline.py prints them per update).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from storage.db import StorageError, StorageUnavailable, to_apply
from storage.db import migrations as shipped_migrations
from storage.timing import SLOW_CALL_SECONDS, timed, what_of

T = TypeVar("T")

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_INSERT_INTO = re.compile(r'^\s*INSERT\s+INTO\s+"?([A-Za-z_][A-Za-z0-9_]*)"?', re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_STATUS_COUNT = re.compile(r"(\d+)\s*$")
#: how many translated statements are remembered (the repositories use a few hundred)
_CACHE_SIZE = 2048


#: PostgreSQL errors that mean "the storage, not the statement": the server is gone,
#: shutting down, out of disk or memory, or in read-only (recovery) mode
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,
    asyncpg.exceptions.OperatorInterventionError,
    OSError,
    TimeoutError,
)


def unavailable(exc: BaseException) -> bool:
    """Whether an asyncpg error means the storage is unavailable (see StorageUnavailable)."""
    if isinstance(exc, _UNAVAILABLE):
        return True
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc).lower()


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except StorageUnavailable:
        raise
    except Exception as exc:
        if unavailable(exc):
            raise StorageUnavailable(f"{type(exc).__name__}: {exc}") from exc
        raise


class _Current:
    """The connection a task's transaction (or unit of work) holds; only that task may use
    it (a task the transaction spawns inherits the contextvar but must not share the
    connection). ``in_transaction`` False: a unit with ``atomic=False``."""

    __slots__ = ("conn", "db", "in_transaction", "task")

    def __init__(
        self,
        db: PgDatabase,
        conn: asyncpg.Connection,
        task: asyncio.Task[Any] | None,
        in_transaction: bool = True,
    ):
        self.db = db
        self.conn = conn
        self.task = task
        self.in_transaction = in_transaction


_in_transaction: contextvars.ContextVar[_Current | None] = contextvars.ContextVar(
    "priemnaya_pg_tx", default=None
)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


def placeholders(sql: str) -> str:
    """``?`` -> ``$1, $2, ...`` outside string literals, quoted names and comments."""
    out: list[str] = []
    number = 0
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in ("'", '"'):
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:  # doubled quote: still inside
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i : end + 1])
            i = end + 1
        elif ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif ch == "?":
            number += 1
            out.append(f"${number}")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def translate(sql: str, tables_with_id: frozenset[str] = frozenset()) -> tuple[str, bool]:
    """The statement in PostgreSQL's dialect, and whether it returns the new row's id.

    An INSERT into a table with an ``id`` column gets ``RETURNING id`` (SQLite's
    ``lastrowid``); one that names its own RETURNING keeps it."""
    text = placeholders(sql)
    insert = _INSERT_INTO.match(text)
    if insert is None:
        return text, False
    if _RETURNING.search(text):
        return text, True
    if insert.group(1).lower() in tables_with_id:
        return text.rstrip().rstrip(";") + " RETURNING id", True
    return text, False


def migrations() -> list[tuple[int, str, str]]:
    """(number, name, sql) of every PostgreSQL migration, in order."""
    return shipped_migrations("migrations_pg")


def _to_int_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return str(int(value))


class _CountingConnection(asyncpg.Connection):  # type: ignore[misc]
    """Counts the round trips to the server: each statement (and BEGIN, COMMIT, ROLLBACK)
    is one; preparing a statement that is not cached yet is one more. It hooks asyncpg's
    internal ``_execute``/``_executemany``/``_get_statement``: a measurement only, read by
    the benchmarks."""

    round_trips = 0

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        if not args:  # the simple protocol (BEGIN, COMMIT, scripts): one round trip
            _CountingConnection.round_trips += 1
        return await super().execute(query, *args, timeout=timeout)  # type: ignore[no-any-return]

    async def _get_statement(self, query: str, timeout: float | None, **kwargs: Any) -> Any:
        record_class = kwargs.get("record_class") or self._protocol.get_record_class()
        key = (query, record_class, kwargs.get("ignore_custom_codec", False))
        if not kwargs.get("use_cache", True) or self._stmt_cache.get(key) is None:
            _CountingConnection.round_trips += 1  # a prepare
        return await super()._get_statement(query, timeout, **kwargs)

    async def _execute(self, query: str, args: Any, limit: int, timeout: Any, **kw: Any) -> Any:
        _CountingConnection.round_trips += 1
        return await super()._execute(query, args, limit, timeout, **kw)

    async def _executemany(self, query: str, args: Any, timeout: Any, **kw: Any) -> Any:
        _CountingConnection.round_trips += 1
        return await super()._executemany(query, args, timeout, **kw)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release (see the module docstring): nothing to undo. The pool
    rolls back an open transaction before calling this."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    """SQLite-like leniency (see the module docstring)."""
    for name in ("int2", "int4", "int8"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=_to_int_text, decoder=int, format="text"
        )
    await conn.set_type_codec("text", schema="pg_catalog", encoder=str, decoder=str, format="text")


class PgDatabase:
    """A pool of asyncpg connections with the interface of storage.db.Database."""

    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self.url = url
        #: shown in messages instead of the URL (which may carry a password)
        self.path = redact(url)
        #: the worker process using this database (runtime/workers.py sets it): broadcast
        #: deliveries it claims carry it
        self.worker_id: str | None = None
        self._tables_with_id: frozenset[str] = frozenset()
        #: statement -> (with $n placeholders, as ``execute`` runs it, returns an id)
        self._translated: dict[str, tuple[str, str, bool]] = {}
        #: a unit of work or statement taking this long or longer is logged and counted
        self.slow_call_seconds = SLOW_CALL_SECONDS
        #: how many connections one owner's units may hold at once (see the docstring)
        self.owner_share = max(1, pool.get_max_size() // 2)
        self._shares: dict[str, asyncio.Semaphore] = {}

    @property
    def pool_size(self) -> int:
        """The most connections the pool opens."""
        return int(self._pool.get_max_size())

    @property
    def round_trips(self) -> int:
        """Round trips to the server so far, by every PostgreSQL database of this process."""
        return _CountingConnection.round_trips

    @classmethod
    async def open(
        cls, url: str, *, min_size: int = 1, max_size: int = 10, migrate: bool = True
    ) -> PgDatabase:
        """Connect and migrate to the newest schema (one process at a time: several workers
        starting together wait for each other on an advisory lock). ``migrate=False``: a
        second pool on a database already opened (the workers' lease pool)."""
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=min_size,
                max_size=max_size,
                init=_init_connection,
                reset=_keep_session,
                connection_class=_CountingConnection,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            raise StorageError(f"cannot connect to PostgreSQL at {redact(url)}: {exc}") from exc
        db = cls(pool, url)
        try:
            if migrate:
                await db._migrate()
            await db._learn_tables()
        except BaseException:
            await pool.close()
            raise
        return db

    async def close(self) -> None:
        await self._pool.close()

    # -- schema ----------------------------------------------------------------------------
    async def _migrate(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "SELECT pg_advisory_lock(hashtext('priemnaya-migrate:' || current_schema()))"
            )
            try:
                await self._migrate_locked(conn)
            finally:
                await conn.execute(
                    "SELECT pg_advisory_unlock(hashtext('priemnaya-migrate:' || current_schema()))"
                )

    async def _migrate_locked(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            ' version INTEGER PRIMARY KEY, name TEXT COLLATE "C" NOT NULL,'
            " applied_at TEXT NOT NULL DEFAULT"
            " to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))"
        )
        current = int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))
        for number, name, sql in to_apply(current, migrations(), self.path):
            try:
                async with conn.transaction():
                    await conn.execute(sql)  # no arguments: the whole file in one round trip
                    await conn.execute(
                        "INSERT INTO schema_version(version, name) VALUES ($1, $2)", number, name
                    )
            except asyncpg.PostgresError as exc:
                raise StorageError(f"migration {name} failed: {exc}") from exc

    async def _learn_tables(self) -> None:
        rows = await self._pool.fetch(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND column_name = 'id'"
        )
        self._tables_with_id = frozenset(str(r[0]).lower() for r in rows)
        self._translated.clear()

    async def schema_version(self) -> int:
        row = await self.fetchone("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version")
        return int(row["v"]) if row else 0

    # -- the catalog and the files (storage/port.py) ---------------------------------------
    async def tables(self) -> list[str]:
        rows = await self.fetchall(
            "SELECT table_name::text AS name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            " ORDER BY table_name"
        )
        return [r["name"] for r in rows]

    async def columns(self, table: str) -> list[str]:
        rows = await self.fetchall(
            "SELECT column_name::text AS name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            (table,),
        )
        return [r["name"] for r in rows]

    async def foreign_keys(self, table: str) -> list[tuple[str, str, str]]:
        rows = await self.fetchall(
            "SELECT ccu.table_name::text AS parent, kcu.column_name::text AS child,"
            " ccu.column_name::text AS parent_column FROM information_schema.table_constraints tc"
            " JOIN information_schema.key_column_usage kcu"
            " ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema"
            " JOIN information_schema.constraint_column_usage ccu"
            " ON ccu.constraint_name = tc.constraint_name AND ccu.table_schema = tc.table_schema"
            " WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema()"
            " AND tc.table_name = ?",
            (table,),
        )
        return [(r["parent"], r["child"], r["parent_column"]) for r in rows]

    async def secure_delete(self) -> None:
        """PostgreSQL has no counterpart: dead rows stay until VACUUM reuses the space."""

    async def checkpoint(self) -> bool:
        """No -wal file to empty: PostgreSQL's WAL is the server's to recycle."""
        return False

    # -- transactions ----------------------------------------------------------------------
    def _current(self) -> _Current | None:
        current = _in_transaction.get()
        if current is None or current.db is not self:
            return None
        if current.task is not asyncio.current_task():
            return None  # a task spawned inside a transaction is not part of it
        return current

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Everything the current task runs inside commits together or not at all."""
        current = self._current()
        if current is not None and current.in_transaction:
            yield  # nested: part of the outer transaction
            return
        with _translated():
            if current is not None:  # inside a unit with atomic=False: on its connection
                current.in_transaction = True
                try:
                    async with self._transaction_on(current.conn):
                        yield
                finally:
                    current.in_transaction = False
                return
            async with self._pool.acquire() as conn:
                token = _in_transaction.set(_Current(self, conn, asyncio.current_task()))
                try:
                    async with self._transaction_on(conn):
                        yield
                finally:
                    _in_transaction.reset(token)

    @asynccontextmanager
    async def _transaction_on(self, conn: asyncpg.Connection) -> AsyncIterator[None]:
        tx = conn.transaction()
        await tx.start()
        try:
            yield
        except BaseException:
            try:
                await tx.rollback()
            except Exception as exc:  # the connection broke: the server rolls back
                log.warning("rollback failed: %s", type(exc).__name__)
            raise
        await tx.commit()

    async def unit(
        self,
        work: Callable[[], Awaitable[T]],
        what: str = "unit",
        *,
        atomic: bool = True,
        owner: str | None = None,
    ) -> T:
        """``work`` in one transaction on one connection (storage/port.py); ``atomic``
        False: on one connection, without BEGIN and COMMIT (two round trips fewer).
        ``owner``: it waits for its owner's share of the pool first (``owner_share``)."""
        if self._current() is not None:
            return await work()
        if owner is None:
            return await self._unit(work, what, atomic)
        share = self._shares.get(owner)
        if share is None:
            share = self._shares[owner] = asyncio.Semaphore(self.owner_share)
        async with share:
            return await self._unit(work, what, atomic)

    async def _unit(self, work: Callable[[], Awaitable[T]], what: str, atomic: bool) -> T:
        if atomic:
            async with self.transaction():
                return await self._timed(work, what)
        with _translated():
            async with self._pool.acquire() as conn:
                token = _in_transaction.set(
                    _Current(self, conn, asyncio.current_task(), in_transaction=False)
                )
                try:
                    return await self._timed(work, what)
                finally:
                    _in_transaction.reset(token)

    async def _timed(self, work: Callable[[], Awaitable[T]], what: str) -> T:
        """Time ``work`` on its connection (waiting for a pool connection is not the
        server's slowness, so it is left out)."""
        started = time.perf_counter()
        try:
            return await work()
        finally:
            timed(what, time.perf_counter() - started, self.slow_call_seconds)

    @asynccontextmanager
    async def _use(self, sql: str) -> AsyncIterator[asyncpg.Connection]:
        current = self._current()
        with _translated():
            if current is not None:
                yield current.conn
            else:
                async with self._pool.acquire() as conn:
                    started = time.perf_counter()
                    try:
                        yield conn
                    finally:
                        timed(what_of(sql), time.perf_counter() - started, self.slow_call_seconds)

    def _sql(self, sql: str) -> tuple[str, str, bool]:
        found = self._translated.get(sql)
        if found is None:
            found = (placeholders(sql), *translate(sql, self._tables_with_id))
            if len(self._translated) >= _CACHE_SIZE:
                self._translated.clear()
            self._translated[sql] = found
        return found

    # -- statements ------------------------------------------------------------------------
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the new id for an INSERT into a table with an ``id``
        (0 when ON CONFLICT skipped it), else the changed row count."""
        _, text, returns = self._sql(sql)
        async with self._use(sql) as conn:
            if returns:
                value = await conn.fetchval(text, *params)
                return int(value) if value is not None else 0
            status = await conn.execute(text, *params)
        match = _STATUS_COUNT.search(status or "")
        return int(match.group(1)) if match else 0

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        text = self._sql(sql)[0]
        batch = [tuple(r) for r in rows]
        if not batch:
            return
        async with self._use(sql) as conn:
            await conn.executemany(text, batch)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> asyncpg.Record | None:
        text = self._sql(sql)[0]
        async with self._use(sql) as conn:
            return await conn.fetchrow(text, *params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[asyncpg.Record]:
        text = self._sql(sql)[0]
        async with self._use(sql) as conn:
            return list(await conn.fetch(text, *params))

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        text = self._sql(sql)[0]
        async with self._use(sql) as conn:
            return await conn.fetchval(text, *params)
