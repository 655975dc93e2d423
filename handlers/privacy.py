"""Personal data (152-FZ): /forget, the retention job and the export of what is stored.

``/forget`` asks for confirmation (buttons Удалить / Отмена: a citizen who typed it by
mistake loses nothing), then, in the update's transaction, deletes the citizen's messages
and feedback, the bot's messages to their chat, erases their name, and lets other features
anonymise what they keep (their Feature's ``forget_hooks``: the escalation feature
anonymises its tickets). Deleted rows must not survive in the file either: the connection runs
with ``PRAGMA secure_delete=ON`` (freed space is zeroed), and after the commit the WAL is
checkpointed and truncated, so neither ``.sqlite3`` nor ``-wal`` holds the text.

The retention job deletes messages older than config ``retention`` (default 180 days)
once a day on the app's clock. :func:`export_citizen` gathers every row that concerns a
citizen for ``priemnaya privacy export``.

Callback payloads: ``priv:del`` (confirm), ``priv:no`` (cancel).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bots.core.background import Periodic
from bots.core.model import Button
from handlers.conversation import Conversation, ForgetHook
from handlers.feature import Feature, Host
from handlers.texts import Labels
from storage import Storage
from storage.port import Database
from storage.times import iso

log = logging.getLogger(__name__)


#: how often the retention job runs
RETENTION_PERIOD = timedelta(days=1)


def _labels(conv: Conversation) -> Labels:
    return Labels(conv.institution.texts.env.get_template("privacy_labels.j2").module)


async def forget(conv: Conversation, args: str) -> None:
    labels = _labels(conv)
    rows = [[Button(labels.delete, callback="priv:del"), Button(labels.cancel, callback="priv:no")]]
    await conv.reply(conv.render("forget_confirm"), rows, log=False)


async def on_callback(conv: Conversation, data: str) -> None:
    conv.answer_callback()
    if data == "priv:no":
        await conv.reply(conv.render("forget_cancelled"), log=False)
        return
    if data != "priv:del":
        return
    event = conv.event
    counts = await erase_citizen(
        conv.storage,
        conv.institution.id,
        event.platform,
        event.user.id,
        event.chat.chat_id,
        conv.forget_hooks,
    )
    log.info(
        "forget: institution=%s chat=%s: %d message(s) deleted",
        conv.institution.id,
        event.chat.key,
        counts["messages"],
    )
    conv.extras.setdefault("after_commit", []).append(lambda: scrub_files(conv.storage))
    await conv.reply(conv.render("forgotten"), log=False)


async def erase_citizen(
    storage: Storage,
    institution: str,
    platform: str,
    user_id: str,
    chat_id: str,
    forget_hooks: Sequence[ForgetHook] = (),
) -> dict[str, int]:
    """Delete and anonymise everything about one citizen (call inside a transaction);
    ``forget_hooks`` are the features' own (the escalation feature's ticket anonymiser)."""
    db = storage.db
    counts = {
        "feedback": await db.execute(
            "DELETE FROM feedback WHERE institution=? AND platform=? AND user_id=?",
            (institution, platform, user_id),
        ),
        # their messages, and the bot's messages in their private chat (which may quote
        # their name)
        "messages": await db.execute(
            "DELETE FROM message_log WHERE institution=? AND platform=?"
            " AND (user_id=? OR (user_id IS NULL AND chat_id=?))",
            (institution, platform, user_id, chat_id),
        ),
        # what was already delivered to their chat; queued messages still go out
        "outbox": await db.execute(
            "DELETE FROM outbox WHERE institution=? AND platform=? AND chat_id=?"
            " AND status<>'pending'",
            (institution, platform, chat_id),
        ),
    }
    await storage.citizens.forget(institution, platform, user_id)
    for hook in forget_hooks:
        await hook(storage, institution, platform, user_id, chat_id)
    return counts


async def scrub_files(storage: Storage) -> None:
    """Move committed changes into the database file and empty the WAL, so deleted text
    survives in neither file (secure_delete zeroed it in the pages)."""
    row = await storage.db.fetchone("PRAGMA wal_checkpoint(TRUNCATE)")
    if row is not None and row[0]:
        log.warning("WAL checkpoint was blocked by a reader; deleted text may stay in -wal")


async def enable_secure_delete(db: Database) -> None:
    await db.execute("PRAGMA secure_delete=ON")


# -- retention -----------------------------------------------------------------------------
async def purge(storage: Storage, now: datetime, retention: timedelta) -> dict[str, int]:
    """Delete what is older than ``retention``: messages, feedback, delivered messages and
    handled updates. Citizens' rows stay (subscriptions and counts need them)."""
    cutoff = iso(now - retention)
    db = storage.db
    async with storage.transaction():
        counts = {
            "messages": await db.execute("DELETE FROM message_log WHERE created_at < ?", (cutoff,)),
            "feedback": await db.execute("DELETE FROM feedback WHERE created_at < ?", (cutoff,)),
            "outbox": await db.execute(
                "DELETE FROM outbox WHERE status<>'pending' AND created_at < ?", (cutoff,)
            ),
            "inbox": await db.execute(
                "DELETE FROM inbox WHERE status='done' AND received_at < ?", (cutoff,)
            ),
        }
    if any(counts.values()):
        await scrub_files(storage)
    return counts


_jobs: weakref.WeakKeyDictionary[Any, Periodic] = weakref.WeakKeyDictionary()


def retention_job(app: Host) -> Periodic:
    """The app's retention job: :func:`purge` at start and then every
    :data:`RETENTION_PERIOD` of app time (tests wait on its runs)."""
    job = _jobs.get(app)
    if job is None:

        async def run() -> dict[str, int]:
            assert app.storage is not None  # the job runs between start and stop
            counts = await purge(app.storage, app.clock.now(), app.loaded.config.retention)
            if any(counts.values()):
                log.info("retention: deleted %s", counts)
            return counts

        job = _jobs[app] = Periodic("retention", run, RETENTION_PERIOD.total_seconds(), app.clock)
    return job


def install(app: Host) -> None:
    """App feature: secure deletion on the connection, and the daily retention job."""
    job = retention_job(app)

    async def on_start(_: Any) -> None:
        assert app.storage is not None  # on_start hooks run after storage opened
        await enable_secure_delete(app.storage.db)
        job.start()

    async def on_stop(_: Any) -> None:
        await job.stop()

    app.on_start.append(on_start)
    app.on_stop.append(on_stop)


# -- export ------------------------------------------------------------------------------
_SKIP_TABLES = {"schema_version", "inbox", "kv", "callback_payloads"}


async def _columns(db: Database, table: str) -> list[str]:
    return [r["name"] for r in await db.fetchall(f'PRAGMA table_info("{table}")')]


async def export_citizen(
    db: Database, platform: str, user_id: str, institution: str | None = None
) -> dict[str, Any]:
    """Every stored row about a citizen, table by table.

    Tables are found by their columns, so tables added by later features are included
    without a change here: rows with the citizen's (platform, user_id), rows in the
    citizen's chats (platform, chat_id), and rows that reference those by a foreign key
    (ticket messages of their tickets)."""
    tables = [
        r["name"]
        for r in await db.fetchall(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
        if r["name"] not in _SKIP_TABLES
    ]
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
    columns = {t: await _columns(db, t) for t in tables}
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
        for fk in await db.fetchall(f'PRAGMA foreign_key_list("{table}")'):
            parent, child_col, parent_col = fk["table"], fk["from"], fk["to"] or "id"
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


FEATURE = Feature(
    name="privacy",
    commands={"forget": forget},
    callbacks={"priv": on_callback},
    templates={
        "forget_confirm.j2": frozenset(),
        "forgotten.j2": frozenset(),
        "forget_cancelled.j2": frozenset(),
        "privacy_labels.j2": frozenset(),
    },
    install=install,
)
