"""SQLite off the event loop: one connection on aiosqlite's thread, with one hop to that
thread per unit of work rather than per statement.

Why a thread at all: a commit's write, a checkpoint's fsync or a stalling disk held the
event loop when statements ran on it (storage/db.py), and with it every institution's long
polls, webhooks, /healthz, the sender and the scheduler. On the thread, the loop keeps
serving while the disk crawls.

Why units of work: a hop costs little on an idle loop (~0.1 ms) but several loop
iterations on a busy one (the result comes back as a callback queued behind whatever else
is ready; 6-9 ms measured with a loop kept busy in 1 ms slices), and a transaction that
holds the connection across hops holds every other update's storage work for that long.
So an update's handling (store it in the inbox, route it, log, queue the replies, mark it
done) runs as one coroutine *on the database's thread* (:meth:`AioSqliteDatabase.unit`):
its statements there are direct calls, and the loop sees one hop for the whole update.
Such a coroutine may await this database and nothing else; awaiting anything that
suspends (a sleep, the network, a future of the loop) raises RuntimeError, since no event
loop runs on that thread. The handlers obey that already: they only queue (the outbox) and
read and write storage; what must touch the loop runs after the commit (``after_commit``).

Everything else is one hop per call: a single statement, or a ``transaction()`` opened on
the loop (BEGIN, each statement, COMMIT: one hop each). While such a transaction is open,
other tasks' calls wait for it (the gate), as they waited for the lock on the loop's
thread. The hot paths use units (runtime/app.py, runtime/sender.py); see the count of what
still runs per statement in docs/ARCHITECTURE.md.

Writes that may wait (:meth:`AioSqliteDatabase.write_soon`): a delivery's record (the
sender's, runtime/sender.py) needs no hop and no transaction of its own. It waits in memory
and rides along with the next unit of work, inside that unit's transaction and before its
own statements; without a unit to ride along with, the sender writes it after a short
ceiling (one hop for all that waited). Since every hop that is not part of an open
transaction writes the waiting ones first, nothing that reads the outbox or sent_messages
(a claim, a staff reply looking up what it answers, /forget, a report) runs before them.
A waiting write that fails because storage is unavailable fails the hop (it stays waiting,
and is the first thing written when storage is back); one that fails otherwise (a bug) is
dropped and logged, so it cannot fail every later unit.

aiosqlite's worker thread runs callables from a queue in order; ``Connection._execute``
submits one. It is not in aiosqlite's documented API, so pyproject.toml bounds the
version and tests/contract/test_storage.py runs the whole storage contract here.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

from storage.db import (
    SqliteCatalog,
    StorageError,
    StorageUnavailable,
    connect,
    migrate_connection,
    rollback,
    run_statement,
    translated,
)
from storage.timing import SLOW_CALL_SECONDS, timed, what_of

log = logging.getLogger(__name__)
T = TypeVar("T")
#: a write that may wait for the next unit of work (AioSqliteDatabase.write_soon)
Write = Callable[[], Awaitable[object]]

#: the transaction a task opened on the loop (inherited by tasks it spawns, as on the loop
#: engine: they take part in it)
_open: contextvars.ContextVar[object | None] = contextvars.ContextVar(
    "priemnaya_aio_tx", default=None
)


class AioSqliteDatabase(SqliteCatalog):
    """The SQLite backend of the storage port (storage/port.py) on aiosqlite's thread."""

    dialect = "sqlite"

    def __init__(self, aio: aiosqlite.Connection, path: str) -> None:
        self._aio = aio
        self.path = path
        #: hops to the database's thread so far, in all and by what they did
        #: (bench/pipeline.py prints them per update)
        self.hops = 0
        self.hops_by_what: Counter[str] = Counter()
        #: a call taking this long or longer is logged and counted (storage/timing.py)
        self.slow_call_seconds = SLOW_CALL_SECONDS
        #: held by a transaction opened on the loop; other calls wait for it
        self._gate = asyncio.Lock()
        self._tx: object | None = None
        #: the thread running a unit of work right now (its statements run directly)
        self._unit_thread: int | None = None
        #: that unit's connection, while it runs (the statements' direct path, _here)
        self._unit_conn: sqlite3.Connection | None = None
        #: writes waiting for the next hop (write_soon), each with when it began to wait:
        #: appended on the loop's thread, taken off the front on the database's thread
        #: once committed
        self._soon: list[tuple[Write, datetime]] = []

    @property
    def _conn(self) -> sqlite3.Connection:
        """The sqlite3 connection itself (tests put it in query_only to fake a full disk)."""
        return self._aio._conn

    @classmethod
    async def open(cls, path: str | Path) -> AioSqliteDatabase:
        """Open (creating folders and file as needed) and migrate to the newest schema."""
        target = str(path)
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        aio = await _start(target, StorageError)
        db = cls(aio, target)
        try:
            await db._call(partial(migrate_connection, path=target), "migrate")
        except BaseException:
            await aio.close()
            raise
        return db

    async def close(self) -> None:
        """Write what waits (write_soon), then close; what storage cannot take is lost, and
        the messages whose records those were go once more after the next start."""
        async with self._gate:
            if self._soon:
                try:
                    await self._hop(_nothing, "write_soon")
                except StorageError as exc:
                    log.warning(
                        "storage: %d waiting write(s) lost at close (%s); the messages they"
                        " recorded go once more after the next start",
                        len(self._soon),
                        exc,
                    )
            await self._aio.close()

    async def revive(self) -> None:
        """Open the connection anew (see SqliteDatabase.revive): a connection opened while
        the file system was read-only stays read-only after a remount."""
        async with self._gate:
            try:
                query_only = await self._hop(
                    lambda conn: conn.execute("PRAGMA query_only").fetchone()[0],
                    "revive",
                    soon=False,
                )
            except StorageUnavailable:
                query_only = 0
            if query_only:
                return
            old = self._aio
            # close first: a new connection opened beside the old one would share its
            # read-only view of the WAL index
            await old.close()
            self._aio = await _start(self.path, StorageUnavailable)

    # -- hops ------------------------------------------------------------------------------
    def _inside(self) -> bool:
        """Whether the caller is inside a unit of work (on the thread) or inside this
        database's open transaction (on the loop)."""
        if self._unit_thread is not None and self._unit_thread == threading.get_ident():
            return True
        return self._tx is not None and _open.get() is self._tx

    def _here(self) -> sqlite3.Connection | None:
        """The connection when the caller is the unit of work running on the thread: a
        statement then runs directly, without the closure, the name for timing and the
        checks a hop needs (an update's unit runs ~7 statements; each paid for those)."""
        conn = self._unit_conn
        if conn is not None and self._unit_thread == threading.get_ident():
            return conn
        return None

    async def _call(
        self, work: Callable[[sqlite3.Connection], T], what: str, *, soon: bool = True
    ) -> T:
        if self._unit_thread is not None and self._unit_thread == threading.get_ident():
            with translated():  # inside a unit of work, on the thread already
                return work(self._aio._conn)
        if self._tx is None or _open.get() is not self._tx:
            while self._gate.locked():  # another task's transaction holds the connection
                async with self._gate:
                    pass
        return await self._hop(work, what, soon=soon)

    async def _hop(
        self, work: Callable[[sqlite3.Connection], T], what: str, *, soon: bool = True
    ) -> T:
        """``soon``: write what waits (write_soon) first, in a transaction of its own
        (an atomic unit writes it in its own transaction instead)."""
        self.hops += 1
        self.hops_by_what[what] += 1
        aio = self._aio
        try:
            return cast(T, await aio._execute(self._timed, work, what, aio, soon))
        except ValueError as exc:  # aiosqlite: "Connection closed" (a revive failed)
            if "closed" in str(exc).lower():
                raise StorageUnavailable(f"database connection closed: {exc}") from exc
            raise

    def _timed(self, work: Callable[[sqlite3.Connection], T], what: str, aio: Any, soon: bool) -> T:
        """On the thread: run ``work`` and report it when slow (storage/timing.py)."""
        started = time.perf_counter()
        try:
            with translated():
                conn = aio._conn
                if soon and self._soon and not conn.in_transaction:
                    self._write_soon_alone(conn)
                return work(conn)
        finally:
            timed(what, time.perf_counter() - started, self.slow_call_seconds)

    # -- writes that wait for the next hop -------------------------------------------------
    def write_soon(self, work: Write, since: datetime) -> None:
        """Run ``work`` (it may await this database and nothing else, like a unit's) at
        the start of the next hop: inside the next atomic unit's transaction, or in a
        transaction of its own before any other hop's work. Until then it is only in
        memory: the caller bounds how long it may wait (:attr:`waiting_since`,
        :meth:`write_waiting`). ``since``: now, on the caller's clock."""
        self._soon.append((work, since))

    @property
    def waiting_since(self) -> datetime | None:
        """Since when the oldest write given to :meth:`write_soon` waits (None: none)."""
        try:
            return self._soon[0][1]
        except IndexError:  # taken on the database's thread meanwhile
            return None

    @property
    def writes_waiting(self) -> int:
        """How many writes wait for the next hop (write_soon)."""
        return len(self._soon)

    async def write_waiting(self) -> None:
        """Write what waits now (one hop for all of them), if anything does."""
        if self._soon:
            await self._call(_nothing, "write_soon")

    def _write_soon_alone(self, conn: sqlite3.Connection) -> None:
        """On the thread, outside a transaction: what waits, in a transaction of its own."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            taken = self._write_soon_in(conn)
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
        del self._soon[:taken]

    def _write_soon_in(self, conn: sqlite3.Connection) -> int:
        """On the thread, inside the transaction that will commit them: run what waits,
        each under a savepoint; returns how many were taken (to drop from the front once
        committed). StorageUnavailable propagates (the transaction must roll back and
        they keep waiting); another failure drops that write alone (logged)."""
        waiting = list(self._soon)
        outer = self._unit_thread
        self._unit_thread = threading.get_ident()
        try:
            for write, _ in waiting:
                conn.execute("SAVEPOINT write_soon")
                try:
                    _complete(cast(Coroutine[Any, Any, object], write()))
                except StorageUnavailable:
                    raise
                except Exception:
                    conn.execute("ROLLBACK TO write_soon")
                    log.exception("storage: a waiting write failed and is dropped")
                conn.execute("RELEASE write_soon")
        finally:
            self._unit_thread = outer
        return len(waiting)

    # -- units of work and transactions ----------------------------------------------------
    async def unit(
        self,
        work: Callable[[], Awaitable[T]],
        what: str = "unit",
        *,
        atomic: bool = True,
        owner: str | None = None,
    ) -> T:
        """``work`` in one transaction (``atomic=False``: statements commit one by one),
        run on the database's thread in one hop (see the module docstring for what it may
        await)."""
        if self._inside():
            return await work()  # nested: part of what is open already
        context = contextvars.copy_context()
        return await self._call(
            lambda conn: context.run(self._run_unit, conn, work, atomic), what, soon=not atomic
        )

    def _run_unit(
        self, conn: sqlite3.Connection, work: Callable[[], Awaitable[T]], atomic: bool
    ) -> T:
        if not atomic:
            self._unit_thread, self._unit_conn = threading.get_ident(), conn
            try:
                return _complete(cast(Coroutine[Any, Any, T], work()))
            finally:
                self._unit_thread, self._unit_conn = None, None
        conn.execute("BEGIN IMMEDIATE")
        try:
            taken = self._write_soon_in(conn) if self._soon else 0  # first: see write_soon
        except BaseException:
            rollback(conn)
            raise
        self._unit_thread, self._unit_conn = threading.get_ident(), conn
        try:
            result = _complete(cast(Coroutine[Any, Any, T], work()))
        except BaseException:
            rollback(conn)  # what waited keeps waiting: it rolled back too
            raise
        finally:
            self._unit_thread, self._unit_conn = None, None
        try:
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)  # a failed COMMIT (disk full) leaves it open
            raise
        del self._soon[:taken]
        return result

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Everything the current task runs inside commits together or not at all; opened
        on the loop it costs a hop per statement (units of work cost one in all)."""
        if self._unit_thread is not None and self._unit_thread == threading.get_ident():
            conn = self._aio._conn
            if conn.in_transaction:
                yield  # inside a unit of work: part of its transaction
                return
            with translated():  # inside a unit with atomic=False: a transaction of its own
                conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                rollback(conn)
                raise
            try:
                with translated():
                    conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                raise
            return
        if self._inside():
            yield  # nested: part of the outer transaction
            return
        async with self._gate:
            marker = object()
            self._tx = marker
            token = _open.set(marker)
            try:
                await self._hop(lambda conn: conn.execute("BEGIN IMMEDIATE"), "BEGIN")
                try:
                    yield
                except BaseException:
                    await self._hop(rollback, "ROLLBACK")
                    raise
                try:
                    await self._hop(lambda conn: conn.execute("COMMIT"), "COMMIT")
                except BaseException:
                    await self._hop(rollback, "ROLLBACK")
                    raise
            finally:
                self._tx = None
                _open.reset(token)

    # -- statements ------------------------------------------------------------------------
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns lastrowid for INSERT, else the changed row count."""
        conn = self._here()
        if conn is not None:
            with translated():
                return run_statement(conn, sql, params)
        return await self._call(partial(run_statement, sql=sql, params=params), what_of(sql))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = [tuple(r) for r in rows]
        await self._call(lambda conn: conn.executemany(sql, batch), what_of(sql))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        conn = self._here()
        if conn is not None:
            with translated():
                return cast(sqlite3.Row | None, conn.execute(sql, params).fetchone())
        return await self._call(
            lambda conn: cast(sqlite3.Row | None, conn.execute(sql, params).fetchone()),
            what_of(sql),
        )

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        conn = self._here()
        if conn is not None:
            with translated():
                return list(conn.execute(sql, params).fetchall())
        return await self._call(
            lambda conn: list(conn.execute(sql, params).fetchall()), what_of(sql)
        )

    async def run_blocking(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Long work (VACUUM, a bulk purge): it runs on the database's thread like
        everything else, so the event loop keeps serving updates meanwhile."""
        return await self._call(work, "run_blocking")


async def _start(target: str, error: type[Exception]) -> aiosqlite.Connection:
    """aiosqlite's thread with our connection (storage.db.connect) opened on it."""
    aio = aiosqlite.Connection(partial(connect, target), iter_chunk_size=64)
    try:
        return await aio
    except sqlite3.Error as exc:
        raise error(f"cannot open database {target}: {exc}") from exc


def _nothing(conn: sqlite3.Connection) -> None:
    """A hop's work when the hop is for what waits (write_soon) alone."""


def _complete(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that must finish without suspending (a unit of work on the
    database's thread: its awaits on the database return at once)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return cast(T, stop.value)
    coro.close()
    raise RuntimeError(
        "a unit of work awaited something other than its database (see Database.unit)"
    )
