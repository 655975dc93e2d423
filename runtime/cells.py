"""Storage cells: the institutions' SQLite data spread over several files.

Why: SQLite has one writer per file. With every institution in one file, one institution
whose writes crawl (a unit of work held by a stalled disk, a huge broadcast being queued)
holds every other institution's answers behind it, though the event loop keeps serving
(storage/aio.py). With ``storage.cells: N`` each institution's data lives in one of N
files, each with its own connection and thread, and the process runs one app per cell
(runtime/region.py): a crawl holds up only its own cell's institutions. PostgreSQL needs
no cells; it does not serialise institutions' transactions.

Which cell: a stable hash of the institution's id, so adding an institution moves no
other. Institutions sharing an account (one bot for several institutions, handlers/places)
are served by one adapter and resolved by one lookup: they share a cell, the one of the
first of them in sorted order.

The count is fixed once data is written: each file records its cell and the count
(:func:`check_marker`), and a start with another count is refused with a message rather
than letting institutions look for their tickets in the wrong file.
"""

from __future__ import annotations

import weakref
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from handlers.config import LoadedConfig
from handlers.places.shared import shared_accounts
from storage import Storage

#: where each file records which cell of how many it is
MARKER = ("storage", "cell")
#: which cell files existed at the last start, as each file remembers it (record_files)
MADE = ("storage", "cells_made")
_members: weakref.WeakKeyDictionary[LoadedConfig, list[list[str]]] = weakref.WeakKeyDictionary()
_index: weakref.WeakKeyDictionary[LoadedConfig, dict[str, int]] = weakref.WeakKeyDictionary()


class CellMismatch(RuntimeError):
    """A database file was written as another cell, or with another cell count."""


def cell_count(loaded: LoadedConfig) -> int:
    """How many cells the config asks for (1 with PostgreSQL)."""
    return 1 if loaded.config.storage.url is not None else loaded.config.storage.cells


def cell_keys(loaded: LoadedConfig) -> dict[str, str]:
    """Institution -> the id its cell is chosen by: its own, or for institutions sharing
    accounts (transitively) the first of the group in sorted order."""
    parent = {inst_id: inst_id for inst_id in loaded.config.institutions}

    def root(inst_id: str) -> str:
        while parent[inst_id] != inst_id:
            parent[inst_id] = parent[parent[inst_id]]
            inst_id = parent[inst_id]
        return inst_id

    for members in shared_accounts(loaded).values():
        for other in members[1:]:
            a, b = root(members[0]), root(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {inst_id: root(inst_id) for inst_id in parent}


def cell_of(loaded: LoadedConfig, inst_id: str) -> int:
    """The cell ``inst_id``'s data lives in (0 when there is one cell)."""
    members(loaded)
    return _index[loaded][inst_id]


def members(loaded: LoadedConfig) -> list[list[str]]:
    """The institutions of each cell, in config order (some may be empty); computed once
    per loaded config (the region and each cell's app ask)."""
    found = _members.get(loaded)
    if found is None:
        found = _members[loaded] = _spread(loaded)
        _index[loaded] = {i: index for index, ids in enumerate(found) for i in ids}
    return [list(ids) for ids in found]


def _spread(loaded: LoadedConfig) -> list[list[str]]:
    count = cell_count(loaded)
    keys = cell_keys(loaded)
    cells: list[list[str]] = [[] for _ in range(count)]
    for inst_id in loaded.config.institutions:
        index = 0 if count == 1 else zlib.crc32(keys[inst_id].encode("utf-8")) % count
        cells[index].append(inst_id)
    return cells


def cell_path(loaded: LoadedConfig, index: int) -> Path:
    """Cell 0 is the configured file itself (a one-cell setup is today's file); cell k is
    ``<name>.cell<k><suffix>`` beside it (data/priemnaya.cell3.sqlite3)."""
    base = loaded.database_path
    if index == 0:
        return base
    return base.with_name(f"{base.stem}.cell{index}{base.suffix}")


def pid_database(loaded: LoadedConfig) -> Path:
    """The database whose pid file (runtime/reload.py pid_path) a running process writes:
    each cell's app writes one beside its file, and a cell no institution hashed to has no
    app, so the first cell that has institutions (the configured file with one cell)."""
    for index, ids in enumerate(members(loaded)):
        if ids:
            return cell_path(loaded, index)
    return loaded.database_path


def database_of(loaded: LoadedConfig, inst_id: str) -> str:
    """What Storage.open takes to reach ``inst_id``'s data: the PostgreSQL URL, or its
    cell's file."""
    if loaded.config.storage.url is not None:
        return loaded.database_target
    return str(cell_path(loaded, cell_of(loaded, inst_id)))


def databases(loaded: LoadedConfig) -> list[str]:
    """Every database the config's data is in: each cell's file (those that exist, and
    always cell 0's), or the one PostgreSQL URL. For commands that read every
    institution's data (reports over all, purge)."""
    if loaded.config.storage.url is not None:
        return [loaded.database_target]
    found = [str(cell_path(loaded, 0))]
    for index in range(1, cell_count(loaded)):
        path = cell_path(loaded, index)
        if path.exists():
            found.append(str(path))
    return found


async def check_marker(
    storage: Storage, index: int, count: int, path: str, *, record: bool = True
) -> None:
    """Record which cell of how many this file is, or refuse (CellMismatch) when it was
    written as another: institutions would find none of their tickets and history. A new
    file is taken as it is; one without a record that holds data is from before cells,
    i.e. the one file of a single cell. ``record=False`` only checks: a command that reads
    writes nothing beside a running bot."""
    if storage.dialect != "sqlite":
        return
    wanted = f"{index}/{count}"
    recorded = await storage.kv.get(*MARKER)
    if recorded == wanted:
        return
    found = recorded
    if found is None:
        found = "0/1" if await _holds_data(storage) else wanted
    if found == wanted:
        if record:
            await storage.kv.set(*MARKER, wanted)
        return
    was_index, _, was_count = found.partition("/")
    if was_count == str(count):
        raise CellMismatch(
            f"{path} holds cell {was_index} of {count}, not cell {index}: the cell files were"
            " swapped or renamed (a restore?). Put each file back under its own name: the"
            " one holding cell N is <name>.cellN (cell 0: the storage.path file itself;"
            " docs/admin-guide.ru.md, «Ячейки хранилища»)."
        )
    raise CellMismatch(
        f"{path} holds cell {was_index} of {was_count} (storage.cells: {was_count}), but"
        f" the config now asks for storage.cells: {count}: each institution would look for"
        f" its data in another file. Set storage.cells back to {was_count} (nothing moves"
        " data to another count yet: docs/admin-guide.ru.md, «Ячейки хранилища»)."
    )


@dataclass
class OpenCells:
    """The open storage of each cell asked for (:func:`open_cells`)."""

    #: one per cell, in cell order: for what reads every institution's rows at once
    storages: list[Storage] = field(default_factory=list)
    #: institution -> its cell's storage, for the institutions asked for
    of: dict[str, Storage] = field(default_factory=dict)


@asynccontextmanager
async def open_cells(
    loaded: LoadedConfig,
    institutions: Iterable[str] | None = None,
    *,
    write: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AsyncIterator[OpenCells]:
    """Open the storage of each cell holding ``institutions`` (default: every configured
    one). Why here: the admin commands read and write the data of institutions that may be
    in different files, and each must find the same rows as with one file.

    Every existing cell file's marker is checked, also of cells holding none of them:
    after a change of storage.cells the institutions may all hash to files not written
    yet, and an admin would read empty files without a word (CellMismatch instead).

    A read (``write=False``) records no marker, and reads a cell file that does not exist
    as an empty database in memory: it holds nothing, and opening its path would create
    it. With one cell or PostgreSQL this is the one configured database."""
    await check_files(loaded)
    count = cell_count(loaded)
    opened = OpenCells()
    try:
        for index, ids, target, missing in _cells_of(loaded, institutions):
            storage = await Storage.open(":memory:" if missing and not write else target, now)
            opened.storages.append(storage)
            opened.of.update(dict.fromkeys(ids, storage))
            await check_marker(storage, index, count, target, record=write)
        yield opened
    finally:
        for storage in opened.storages:
            await storage.close()


def _cells_of(
    loaded: LoadedConfig, institutions: Iterable[str] | None
) -> list[tuple[int, list[str], str, bool]]:
    """(index, the institutions asked for in it, its database, whether that file is
    missing) of each cell holding any of ``institutions`` (None: all); the other cells'
    files were checked by :func:`check_files`."""
    wanted = None if institutions is None else set(institutions)
    found = []
    for index, ids in enumerate(members(loaded)):
        ids = [i for i in ids if wanted is None or i in wanted]
        if not ids:
            continue
        if loaded.config.storage.url is not None:
            found.append((index, ids, loaded.database_target, False))
            continue
        path = cell_path(loaded, index)
        found.append((index, ids, str(path), not path.exists()))
    return found


async def check_files(loaded: LoadedConfig) -> None:
    """Refuse (CellMismatch) to start or read when the cell files are not what the config
    says, before any is opened for work: a file written with another cell count (also of a
    cell that now holds no institution: after a change of storage.cells the institutions
    may all hash to files not written yet, and the bots would answer from empty files
    without a word), a file of a cell beyond the count, or a file the others remember
    (:func:`record_files`) that is gone (a partial restore: a new empty file would take
    its place, and its institutions' tickets would be lost without a word)."""
    if loaded.config.storage.url is not None:
        return
    count = cell_count(loaded)
    remembered: set[int] = set()
    for index in range(count):
        path = cell_path(loaded, index)
        if not path.exists():
            continue
        storage = await Storage.open(str(path), lambda: datetime.now(UTC))
        try:
            await check_marker(storage, index, count, str(path), record=False)
            made = await storage.kv.get(*MADE)
        finally:
            await storage.close()
        remembered.update(int(i) for i in (made or "").split(",") if i.isdigit())
    for index in sorted(remembered):
        path = cell_path(loaded, index)
        if index < count and not path.exists():
            raise CellMismatch(
                f"{path} (cell {index} of {count}) is missing, but the other cell files"
                " remember it: the institutions whose data it held would start afresh."
                " Restore it from the backup (every priemnaya*.sqlite3 file of one backup"
                " together; docs/admin-guide.ru.md, «Ячейки хранилища»)."
            )
    base = loaded.database_path
    for path in sorted(base.parent.glob(f"{base.stem}.cell*{base.suffix}")):
        index_text = path.name[len(base.stem) + len(".cell") : len(path.name) - len(base.suffix)]
        if index_text.isdigit() and int(index_text) >= count:
            raise CellMismatch(
                f"{path} is cell {index_text} of an earlier storage.cells (more than {count}):"
                " its institutions would look for their data in another file. Set"
                " storage.cells back (nothing moves data to another count yet:"
                " docs/admin-guide.ru.md, «Ячейки хранилища»)."
            )


async def record_files(loaded: LoadedConfig, storages: Iterable[Storage]) -> None:
    """Write into each open cell file which cell files exist now, so that a later start
    misses none of them (:func:`check_files`)."""
    if loaded.config.storage.url is not None or cell_count(loaded) == 1:
        return
    made = [str(i) for i in range(cell_count(loaded)) if cell_path(loaded, i).exists()]
    for storage in storages:
        await storage.kv.set(*MADE, ",".join(made))


async def _holds_data(storage: Storage) -> bool:
    for table in ("inbox", "message_log", "tickets", "outbox"):
        if await storage.db.fetchone(f"SELECT 1 FROM {table} LIMIT 1") is not None:
            return True
    return False
