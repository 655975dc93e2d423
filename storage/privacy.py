"""Personal data in the database (152-FZ): erasing one citizen, the retention purge, zeroing
freed pages and emptying the WAL, and gathering every row about a citizen for an export.
handlers/privacy.py decides when (the /forget dialogue, the daily job); the statements, and
the reading of the catalog that finds a citizen's rows in tables added later, live here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from storage.port import Database

log = logging.getLogger(__name__)

#: rows the retention purge deletes per statement: with SQLite statements run on the event
#: loop's thread and every writer waits for the one connection, so each batch stays short
PURGE_BATCH = 500

#: what the retention purge deletes: (name in its counts, table, the rows' key, which rows
#: are old); each filter has an index (migrations 0001 and 0009)
_PURGED = (
    ("messages", "message_log", "id", "created_at < ?"),
    ("feedback", "feedback", "id", "created_at < ?"),
    ("outbox", "outbox", "id", "status<>'pending' AND created_at < ?"),
    ("inbox", "inbox", "institution, platform, update_key", "status='done' AND received_at < ?"),
)


def purge_statements() -> list[tuple[str, str]]:
    """(name, statement) of each purge step; a statement takes (cutoff, batch size) and
    deletes at most one batch of old rows."""
    return [
        (
            name,
            f"DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table} WHERE {old} LIMIT ?)",
        )
        for name, table, key, old in _PURGED
    ]


class PrivacyRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def erase_citizen(
        self, institution: str, platform: str, user_id: str, chat_id: str
    ) -> dict[str, int]:
        """Delete a citizen's feedback, messages (and the bot's in their private chat, which
        may quote their name) and what was delivered to their chat; counts per table."""
        db = self._db
        return {
            "feedback": await db.execute(
                "DELETE FROM feedback WHERE institution=? AND platform=? AND user_id=?",
                (institution, platform, user_id),
            ),
            "messages": await db.execute(
                "DELETE FROM message_log WHERE institution=? AND platform=?"
                " AND (user_id=? OR (user_id IS NULL AND chat_id=?))",
                (institution, platform, user_id, chat_id),
            ),
            # a shared bot's choice of this institution (it is chosen again by the next visit)
            "places": await db.execute(
                "DELETE FROM chat_places WHERE institution=? AND platform=? AND chat_id=?",
                (institution, platform, chat_id),
            ),
            # queued messages still go out
            "outbox": await db.execute(
                "DELETE FROM outbox WHERE institution=? AND platform=? AND chat_id=?"
                " AND status<>'pending'",
                (institution, platform, chat_id),
            ),
        }

    async def purge(self, cutoff: str, batch: int = PURGE_BATCH) -> dict[str, int]:
        """Delete messages, feedback, delivered messages and handled updates older than
        ``cutoff``, ``batch`` rows per statement, each committed on its own (call outside a
        transaction): months of a region's messages are not one statement that holds the
        database, and the event loop, for seconds. Counts per kind."""
        counts: dict[str, int] = {}
        for name, statement in purge_statements():
            total = 0
            while True:
                deleted = await self._db.execute(statement, (cutoff, batch))
                total += deleted
                if deleted < batch:
                    break
                await asyncio.sleep(0)  # updates waiting for the database go first
            counts[name] = total
        return counts

    async def scrub_files(self) -> None:
        """Move committed changes into the database file and empty the WAL, so deleted text
        survives in neither file (secure_delete zeroed it in the pages)."""
        if await self._db.checkpoint():
            log.warning("WAL checkpoint was blocked by a reader; deleted text may stay in -wal")

    async def enable_secure_delete(self) -> None:
        await self._db.secure_delete()

    async def export_citizen(
        self, platform: str, user_id: str, institution: str | None = None
    ) -> dict[str, Any]:
        return await export_citizen(self._db, platform, user_id, institution)


_SKIP_TABLES = {"schema_version", "inbox", "kv", "callback_payloads"}


async def export_citizen(
    db: Database, platform: str, user_id: str, institution: str | None = None
) -> dict[str, Any]:
    """Every stored row about a citizen, table by table.

    Tables are found by their columns, so tables added by later features are included
    without a change here: rows with the citizen's (platform, user_id), rows in the
    citizen's chats (platform, chat_id), and rows that reference those by a foreign key
    (ticket messages of their tickets)."""
    tables = [t for t in await db.tables() if t not in _SKIP_TABLES]
    inst_sql = " AND institution=?" if institution else ""
    inst_params: list[Any] = [institution] if institution else []
    chats = [
        r["chat_id"]
        for r in await db.fetchall(
            f"SELECT DISTINCT chat_id FROM citizens WHERE platform=? AND user_id=?{inst_sql}",
            [platform, user_id, *inst_params],
        )
    ]
    result: dict[str, list[dict[str, Any]]] = {}
    columns = {t: await db.columns(t) for t in tables}
    for table in tables:
        cols = columns[table]
        where = ""
        params: list[Any] = []
        if "platform" in cols and "user_id" in cols:
            if "chat_id" in cols and chats:
                marks = ",".join("?" * len(chats))
                where = f"platform=? AND (user_id=? OR (user_id IS NULL AND chat_id IN ({marks})))"
                params = [platform, user_id, *chats]
            else:
                where, params = "platform=? AND user_id=?", [platform, user_id]
        elif "platform" in cols and "chat_id" in cols and chats:
            where = f"platform=? AND chat_id IN ({','.join('?' * len(chats))})"
            params = [platform, *chats]
        else:
            continue
        if institution and "institution" in cols:
            where += " AND institution=?"
            params.append(institution)
        rows = await db.fetchall(f'SELECT * FROM "{table}" WHERE {where}', params)
        if rows:
            result[table] = [dict(r) for r in rows]
    for table in tables:  # children by foreign key (ticket_messages -> tickets)
        if table in result:
            continue
        for parent, child_col, parent_col in await db.foreign_keys(table):
            ids = [r[parent_col] for r in result.get(parent, []) if parent_col in r]
            if not ids or parent in {"outbox"}:
                continue
            rows = await db.fetchall(
                f'SELECT * FROM "{table}" WHERE "{child_col}" IN ({",".join("?" * len(ids))})',
                ids,
            )
            if rows:
                result.setdefault(table, []).extend(dict(r) for r in rows)
    return {"citizen": {"platform": platform, "user_id": user_id}, "tables": result}
