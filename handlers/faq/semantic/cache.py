"""Entry vectors on disk, keyed by a hash of (model, kind, text).

A restart, or a thousand institutions sharing one FAQ, re-embeds nothing; editing one entry
re-embeds only its texts. The vectors live in one SQLite file of the folder, written a
batch per transaction: the earlier layout, one small file per text written atomically,
spent half of a cold build with the fast encoder in creating files (4,400 texts of a
1,000-entry FAQ: 4.0 of 8.0 s), and SQLite keeps a batch whole through a kill -9 and lets
several worker processes share the folder. Vectors of that earlier layout are still read
(and copied into the file), so an upgrade re-embeds nothing.

The cache only saves time: a folder that cannot be written or a full disk makes a build
slower, never fail, and a damaged file is moved aside (``vectors.sqlite3.damaged``) and
started anew."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FILE_NAME = "vectors.sqlite3"
#: SQLite's names of a file that is not, or no longer, a database
_DAMAGED = frozenset({"SQLITE_NOTADB", "SQLITE_CORRUPT"})
#: keys looked up per statement (SQLite's limit on bound values is far above)
_CHUNK = 500
#: how long a writer waits for another process's transaction on the same file
_BUSY_MS = 10_000


def text_key(model: str, kind: str, text: str) -> str:
    return hashlib.sha256(f"{model}\0{kind}\0{text}".encode()).hexdigest()


class VectorCache:
    def __init__(self, folder: Path):
        self.folder = folder
        self._warned = False
        self._has_legacy: bool | None = None

    @property
    def path(self) -> Path:
        return self.folder / FILE_NAME

    def get(self, key: str) -> np.ndarray | None:
        return self.get_many([key])[0]

    def put(self, key: str, vector: np.ndarray) -> None:
        self.put_many([(key, vector)])

    def get_many(self, keys: Sequence[str]) -> list[np.ndarray | None]:
        """The vector of each key, None where the cache has none."""
        found: dict[str, np.ndarray] = {}
        if keys and self.path.exists():
            try:
                self._read(keys, found)
            except sqlite3.Error as exc:
                self._failed("read", exc)
        out: list[np.ndarray | None] = [found.get(k) for k in keys]
        legacy = list(self._legacy(keys, out))
        for i, vector in legacy:
            out[i] = vector
        if legacy:
            self.put_many([(keys[i], v) for i, v in legacy])
        return out

    def put_many(self, items: Sequence[tuple[str, np.ndarray]]) -> None:
        """Store a batch of vectors in one transaction."""
        if not items:
            return
        rows = [(k, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in items]
        for attempt in range(2):
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                with self._connect() as db, db:
                    db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)
                return
            except (OSError, sqlite3.Error) as exc:
                if not (self._failed("write", exc) and attempt == 0):
                    return

    def _read(self, keys: Sequence[str], found: dict[str, np.ndarray]) -> None:
        with self._connect() as db:
            for start in range(0, len(keys), _CHUNK):
                chunk = list(keys[start : start + _CHUNK])
                marks = ",".join("?" * len(chunk))
                rows = db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk)
                found.update((k, _vector(v)) for k, v in rows if _valid(v))

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=_BUSY_MS / 1000, isolation_level=None)
        try:
            db.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode = WAL")
            # a cache: a power cut may lose the last batches, never damage the file
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)"
                " WITHOUT ROWID"
            )
            # a transaction per ``with db`` block, not per statement
            db.isolation_level = "DEFERRED"
            yield db
        finally:
            db.close()

    def _legacy(
        self, keys: Sequence[str], found: list[np.ndarray | None]
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Vectors of the earlier one-file-per-text layout (``ab/cdef….f32``)."""
        if self._has_legacy is None:
            try:
                self._has_legacy = any(
                    p.is_dir() and len(p.name) == 2 for p in self.folder.iterdir()
                )
            except OSError:
                self._has_legacy = False
        if not self._has_legacy:
            return
        for i, (key, vector) in enumerate(zip(keys, found, strict=True)):
            if vector is not None:
                continue
            try:
                data = (self.folder / key[:2] / f"{key[2:]}.f32").read_bytes()
            except OSError:
                continue
            if _valid(data):
                yield i, _vector(data)

    def _failed(self, what: str, exc: Exception) -> bool:
        """Warn (once per cache: the build goes on without it, only slower); a damaged
        file is moved aside, and True says the cache may be tried again."""
        damaged = getattr(exc, "sqlite_errorname", None) in _DAMAGED
        if damaged:
            aside = self.path.with_name(FILE_NAME + ".damaged")
            try:
                os.replace(self.path, aside)
                for suffix in ("-wal", "-shm"):
                    self.path.with_name(FILE_NAME + suffix).unlink(missing_ok=True)
            except OSError:
                pass  # another process moved it first, or the folder is read-only
            log.warning(
                "faq vector cache %s is damaged (%s): moved aside to %s, starting anew",
                self.path,
                exc,
                aside.name,
            )
            return True
        if not self._warned:
            self._warned = True
            log.warning("faq vector cache %s: cannot %s (%s); embedding anew", self.path, what, exc)
        return False


def _valid(data: bytes) -> bool:
    return bool(data) and len(data) % 4 == 0


def _vector(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.float32)
