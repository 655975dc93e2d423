"""The inbox and the outbox: how "a process can be killed at any instant and lose nothing"
is kept.

Inbox: an update is stored (status pending) before it is handled and marked done in the
same transaction that stores everything its handling produced; a redelivered update whose
row is done is skipped, one still pending is handled again after a crash.

Outbox: everything the bot says is a row first, written in that same transaction, and a
sender sends the rows. Each row has a stable ``dedup_key``; a long text is sent part by part
and ``parts_sent`` records progress, so a retry resumes at the first unsent part. Every sent
part is remembered in sent_messages, which is how a staff member's reply to a ticket card is
recognised and how a card is edited later.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from bots.core.model import Button, Callback, ChatKind, ChatRef, Event, Reply, SentMessage, User
from storage.port import Database
from storage.times import iso, parse


def reply_to_json(reply: Reply) -> str:
    return json.dumps(
        {
            "text": reply.text,
            # the fields of Button by hand: dataclasses.asdict deep-copies each value
            "buttons": [
                [{"text": b.text, "callback": b.callback, "url": b.url} for b in row]
                for row in reply.buttons
            ],
            "reply_to": reply.reply_to,
            "silent": reply.silent,
        },
        ensure_ascii=False,
    )


def reply_from_json(text: str) -> Reply:
    data = json.loads(text)
    return Reply(
        text=data["text"],
        buttons=tuple(tuple(Button(**b) for b in row) for row in data["buttons"]),
        reply_to=data.get("reply_to"),
        silent=bool(data.get("silent")),
    )


def event_to_json(event: Event) -> str:
    return json.dumps(asdict(event), ensure_ascii=False)


def event_from_json(text: str) -> Event:
    d: dict[str, Any] = json.loads(text)
    return Event(
        institution=d["institution"],
        platform=d["platform"],
        chat=ChatRef(**d["chat"]),
        user=User(**d["user"]),
        update_key=d["update_key"],
        chat_kind=ChatKind(d["chat_kind"]),
        text=d.get("text"),
        callback=Callback(**d["callback"]) if d.get("callback") else None,
        message_id=d.get("message_id"),
        reply_to=d.get("reply_to"),
        replied_bot_text=d.get("replied_bot_text"),
        start_payload=d.get("start_payload"),
        membership=d.get("membership"),
    )


class Inbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def accept(self, event: Event, now: datetime) -> bool:
        """Store the update; False when it was already handled (a redelivery)."""
        inserted = await self._db.execute(
            "INSERT INTO inbox(institution, platform, update_key, status, event, received_at)"
            " VALUES (?,?,?,'pending',?,?) ON CONFLICT DO NOTHING",
            (event.institution, event.platform, event.update_key, event_to_json(event), iso(now)),
        )
        if inserted:
            return True
        status = await self._db.fetchval(
            "SELECT status FROM inbox WHERE institution=? AND platform=? AND update_key=?",
            (event.institution, event.platform, event.update_key),
        )
        return status == "pending"

    async def claim(self, event: Event) -> bool:
        """Call first inside the handling transaction: False when another worker finished
        this update meanwhile (skip it). On PostgreSQL the row stays locked until commit, so
        a second worker handling the same update (a webhook retried to another worker, a
        pending update recovered at start) waits and then sees it done. SQLite runs one
        process whose transactions are exclusive: nothing to claim."""
        if getattr(self._db, "dialect", "sqlite") == "sqlite":
            return True
        changed = await self._db.execute(
            "UPDATE inbox SET status='pending' WHERE institution=? AND platform=?"
            " AND update_key=? AND status='pending'",
            (event.institution, event.platform, event.update_key),
        )
        return changed > 0

    async def done(self, event: Event) -> None:
        await self._mark_done(event, "")

    async def _mark_done(self, event: Event, only: str) -> int:
        """Mark the update done (``only``: an extra condition); the changed row count."""
        return await self._db.execute(
            "UPDATE inbox SET status='done', event='' WHERE institution=? AND platform=?"
            " AND update_key=?" + only,
            (event.institution, event.platform, event.update_key),
        )

    async def take(self, event: Event, now: datetime) -> bool:
        """Call first inside the unit of work that handles the update: stores it as done
        (it commits together with everything its handling produced, or not at all: then
        the platform, which was not acknowledged, delivers it again). False when it was
        handled before (a redelivery) or by another worker meanwhile: on PostgreSQL the new
        row stays locked until commit, so a second worker waits here and then skips it. A
        row left pending (accepted apart from its handling) is taken the same way. One
        statement for a new update, where accept + claim + done took three."""
        inserted = await self._db.execute(
            "INSERT INTO inbox(institution, platform, update_key, status, event, received_at)"
            " VALUES (?,?,?,'done','',?) ON CONFLICT DO NOTHING",
            (event.institution, event.platform, event.update_key, iso(now)),
        )
        if inserted:
            return True
        return await self._mark_done(event, " AND status='pending'") > 0

    async def pending(self, limit: int = 1000) -> list[Event]:
        rows = await self._db.fetchall(
            "SELECT event FROM inbox WHERE status='pending' ORDER BY received_at LIMIT ?",
            (limit,),
        )
        return [event_from_json(r["event"]) for r in rows]

    async def purge_done(self, before: datetime) -> int:
        return await self._db.execute(
            "DELETE FROM inbox WHERE status='done' AND received_at < ?", (iso(before),)
        )


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    institution: str
    platform: str
    chat: ChatRef
    kind: str
    reply: Reply
    dedup_key: str
    ref_kind: str | None
    ref_id: str | None
    status: str
    parts_sent: int
    attempts: int
    next_attempt_at: datetime
    #: the reply as stored: an edit is marked sent only if the row still holds what was
    #: sent (a later state may have replaced it meanwhile, see Outbox.enqueue_edit)
    stored_reply: str = ""


@dataclass(frozen=True, slots=True)
class SentRecord:
    """What a sent message was about, found from its platform id."""

    institution: str
    outbox_id: int
    part: int
    ref_kind: str | None
    ref_id: str | None
    message: SentMessage


class Outbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def enqueue(
        self,
        *,
        institution: str,
        chat: ChatRef,
        reply: Reply,
        dedup_key: str,
        now: datetime,
        kind: str = "send",
        ref_kind: str | None = None,
        ref_id: str | None = None,
    ) -> int | None:
        """Queue a message; None when ``dedup_key`` was queued before (nothing is added).

        An edit (``kind="edit"``) of a message that already has an edit waiting replaces that
        edit's text and returns its row: at most one pending edit per message. An edit
        replaces the whole message, so its latest state is all that matters, and a citizen's
        flood of follow-ups costs the staff chat one card edit, not one each (the next
        citizen's card would otherwise wait behind them at the group's 20 a minute)."""
        if kind == "edit" and ref_kind is not None and ref_id is not None:
            pending = await self._db.fetchval(
                "SELECT MIN(id) FROM outbox WHERE status='pending' AND kind='edit'"
                " AND institution=? AND ref_kind=? AND ref_id=?",
                (institution, ref_kind, ref_id),
            )
            if pending is not None:
                await self._db.execute(
                    "UPDATE outbox SET reply=?, parts_sent=0 WHERE id=? AND status='pending'",
                    (reply_to_json(reply), pending),
                )
                return int(pending)
        new_id = await self._db.execute(
            "INSERT INTO outbox(institution, platform, chat_id, thread_id, kind, reply, dedup_key,"
            " ref_kind, ref_id, status, next_attempt_at, created_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,'pending',?,?) ON CONFLICT(dedup_key) DO NOTHING",
            (
                institution,
                chat.platform,
                chat.chat_id,
                chat.thread_id,
                kind,
                reply_to_json(reply),
                dedup_key,
                ref_kind,
                ref_id,
                iso(now),
                iso(now),
            ),
        )
        return new_id or None

    async def due(
        self, institution: str, platform: str, now: datetime, limit: int = 200
    ) -> list[OutboxItem]:
        rows = await self._db.fetchall(
            "SELECT * FROM outbox WHERE status='pending' AND institution=? AND platform=?"
            " AND next_attempt_at<=? ORDER BY id LIMIT ?",
            (institution, platform, iso(now), limit),
        )
        return [_item(r) for r in rows]

    async def due_all(self, now: datetime, limit: int = 1000) -> list[OutboxItem]:
        """Pending items that are due, oldest first, leaving out every item that has an older
        pending item to the same chat still waiting for its retry (order within a chat)."""
        rows = await self._db.fetchall(
            "SELECT *" + _DUE + " ORDER BY o.id LIMIT ?", (iso(now), iso(now), limit)
        )
        return [_item(r) for r in rows]

    async def next_attempt_after(self, now: datetime) -> datetime | None:
        """The earliest retry still to come: the sender's timer, kept apart from rows that
        are due already (those are being sent, or wait for their chat's lane to finish)."""
        value = await self._db.fetchval(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status='pending' AND next_attempt_at>?",
            (iso(now),),
        )
        return parse(value) if value else None

    async def begin_attempt(self, item_id: int, now: datetime) -> bool:
        """Written before a send: nothing leaves while storage cannot record it (a write
        that fails here raises StorageUnavailable and nothing is sent). False when the row
        is no longer pending."""
        changed = await self._db.execute(
            "UPDATE outbox SET next_attempt_at=? WHERE id=? AND status='pending'",
            (iso(now), item_id),
        )
        return changed > 0

    async def retry_now(self, institution: str, platform: str, now: datetime) -> int:
        """An account's outage is over: every row it held back is due now rather than at
        the end of its backoff."""
        return await self._db.execute(
            "UPDATE outbox SET next_attempt_at=? WHERE status='pending' AND institution=?"
            " AND platform=? AND next_attempt_at>?",
            (iso(now), institution, platform, iso(now)),
        )

    async def delayed_by_chat(
        self, institution: str, platform: str, since: datetime
    ) -> dict[str, int]:
        """chat id -> messages an outage since ``since`` held back: still pending, or sent
        since it began (the first of them went out as it ended)."""
        rows = await self._db.fetchall(
            "SELECT chat_id, COUNT(*) AS n FROM outbox WHERE institution=? AND platform=?"
            " AND (status='pending' OR (status='sent' AND sent_at>=?)) GROUP BY chat_id",
            (institution, platform, iso(since)),
        )
        return {str(r["chat_id"]): int(r["n"]) for r in rows}

    async def next_attempt_any(self) -> datetime | None:
        value = await self._db.fetchval(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status='pending'"
        )
        return parse(value) if value else None

    async def next_attempt(self, institution: str, platform: str) -> datetime | None:
        value = await self._db.fetchval(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status='pending' AND institution=?"
            " AND platform=?",
            (institution, platform),
        )
        return parse(value) if value else None

    async def replace_replies(
        self,
        institution: str,
        ref_kinds: Sequence[str],
        ref_ids: Sequence[str] | None,
        reply: Reply,
    ) -> int:
        """Overwrite the stored reply of every outbox row (sent or not) that refers to one
        of ``ref_ids`` (None: to anything) by one of ``ref_kinds``: /forget blanks ticket
        cards, forwards and the staff chat's copies."""
        if not ref_kinds or (ref_ids is not None and not ref_ids):
            return 0
        kinds = ",".join("?" * len(ref_kinds))
        sql = f"UPDATE outbox SET reply=? WHERE institution=? AND ref_kind IN ({kinds})"
        params: list[object] = [reply_to_json(reply), institution, *ref_kinds]
        if ref_ids is not None:
            sql += f" AND ref_id IN ({','.join('?' * len(ref_ids))})"
            params.extend(ref_ids)
        return await self._db.execute(sql, params)

    async def last_message_number(self, institution: str, platform: str) -> int:
        """The highest numeric message id sent on ``platform`` (the local platform numbers
        its messages and continues after a restart of the shell)."""
        value = await self._db.fetchval(
            "SELECT MAX(CAST(message_id AS INTEGER)) FROM sent_messages"
            " WHERE institution=? AND platform=?",
            (institution, platform),
        )
        return int(value or 0)

    async def pending_count(self, institution: str | None = None) -> int:
        if institution is None:
            return int(
                await self._db.fetchval("SELECT COUNT(*) FROM outbox WHERE status='pending'")
            )
        return int(
            await self._db.fetchval(
                "SELECT COUNT(*) FROM outbox WHERE status='pending' AND institution=?",
                (institution,),
            )
        )

    async def record_part(
        self, item: OutboxItem, part: int, message: SentMessage, now: datetime
    ) -> None:
        """One part went out: remember it and move the resume point, in one transaction."""
        async with self._db.transaction():
            await self._db.execute(_RECORD_PART, _record_values(item, part, message, now))
            await self._db.execute(  # never backwards (portable: no two-argument MAX)
                "UPDATE outbox SET parts_sent=? WHERE id=? AND parts_sent<?",
                (part + 1, item.id, part + 1),
            )

    async def mark_sent(self, item_id: int, now: datetime, stored_reply: str | None = None) -> bool:
        """With ``stored_reply``: only if the row still holds it (an edit replaced while it
        was in flight stays pending and goes again, with the latest text)."""
        if stored_reply is None:
            changed = await self._db.execute(
                "UPDATE outbox SET status='sent', sent_at=?, last_error=NULL WHERE id=?",
                (iso(now), item_id),
            )
        else:
            changed = await self._db.execute(
                "UPDATE outbox SET status='sent', sent_at=?, last_error=NULL WHERE id=?"
                " AND reply=?",
                (iso(now), item_id, stored_reply),
            )
        return changed > 0

    async def mark_retry(self, item_id: int, error: str, next_at: datetime) -> None:
        await self._db.execute(
            "UPDATE outbox SET attempts=attempts+1, last_error=?, next_attempt_at=? WHERE id=?",
            (error[:500], iso(next_at), item_id),
        )

    async def mark_failed(self, item_id: int, error: str) -> None:
        await self._db.execute(
            "UPDATE outbox SET status='failed', attempts=attempts+1, last_error=? WHERE id=?",
            (error[:500], item_id),
        )

    async def mark_unreachable(self, item: OutboxItem, reason: str) -> int:
        """This item and every other pending one to the same chat: the chat is gone."""
        return await self._db.execute(
            "UPDATE outbox SET status='unreachable', last_error=? WHERE status='pending'"
            " AND institution=? AND platform=? AND chat_id=? AND kind='send'",
            (reason[:500], item.institution, item.chat.platform, item.chat.chat_id),
        )

    async def find_sent(
        self, institution: str, platform: str, chat_id: str, message_id: str
    ) -> SentRecord | None:
        """What the institution's account sent as ``message_id`` in that chat (message ids
        are only unique within one account)."""
        row = await self._db.fetchone(
            "SELECT * FROM sent_messages WHERE institution=? AND platform=? AND chat_id=?"
            " AND message_id=?",
            (institution, platform, chat_id, message_id),
        )
        return _sent(row) if row else None

    async def sent_for_ref(self, ref_kind: str, ref_id: str) -> list[SentRecord]:
        """Messages sent under a reference, oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM sent_messages WHERE ref_kind=? AND ref_id=? ORDER BY outbox_id, part",
            (ref_kind, ref_id),
        )
        return [_sent(r) for r in rows]

    async def latest_for_ref(self, ref_kind: str, ref_id: str) -> OutboxItem | None:
        """The newest message queued (sent or not) under a reference."""
        row = await self._db.fetchone(
            "SELECT * FROM outbox WHERE ref_kind=? AND ref_id=? AND kind='send'"
            " ORDER BY id DESC LIMIT 1",
            (ref_kind, ref_id),
        )
        return _item(row) if row else None

    async def latest_to_chat(self, institution: str, chat: ChatRef) -> OutboxItem | None:
        """The newest message queued (sent or not) to a chat: what the person sees last."""
        row = await self._db.fetchone(
            "SELECT * FROM outbox WHERE institution=? AND platform=? AND chat_id=?"
            " AND kind='send' ORDER BY id DESC LIMIT 1",
            (institution, chat.platform, chat.chat_id),
        )
        return _item(row) if row else None

    async def get(self, item_id: int) -> OutboxItem | None:
        row = await self._db.fetchone("SELECT * FROM outbox WHERE id=?", (item_id,))
        return _item(row) if row else None

    async def by_dedup_key(self, dedup_key: str) -> OutboxItem | None:
        row = await self._db.fetchone("SELECT * FROM outbox WHERE dedup_key=?", (dedup_key,))
        return _item(row) if row else None

    # -- the sender's hot path, in few statements (issue 20: round trips per update) --------
    async def claim_due(
        self, now: datetime, limit: int = 1000
    ) -> tuple[list[OutboxItem], datetime | None]:
        """:meth:`due_all` with :meth:`begin_attempt` written for every row it returns, and
        :meth:`next_attempt_after`, in one statement when rows are due (the earliest retry
        to come rides along on each row). The attempt stamp is ``now``, which changes no
        row's turn: they are all due already."""
        if self._db.dialect == "postgresql":
            return await self._claim_due_unlocked(now, limit)
        rows = await self._db.fetchall(
            "UPDATE outbox SET next_attempt_at=? WHERE id IN (SELECT o.id" + _DUE + " ORDER BY"
            " o.id LIMIT ?) RETURNING *, (SELECT MIN(r.next_attempt_at) FROM outbox r"
            " WHERE r.status='pending' AND r.next_attempt_at>?) AS next_retry",
            (iso(now), iso(now), iso(now), limit, iso(now)),
        )
        if not rows:
            return [], await self.next_attempt_after(now)
        retry = rows[0]["next_retry"]
        return sorted((_item(r) for r in rows), key=lambda i: i.id), parse(retry) if retry else None

    async def _claim_due_unlocked(
        self, now: datetime, limit: int
    ) -> tuple[list[OutboxItem], datetime | None]:
        """PostgreSQL: the look covers every institution, so it skips rows another
        transaction has locked (SKIP LOCKED) instead of waiting for it: one institution's
        transaction that touched its queued rows (a /forget, an edit coalesced into a
        queued card) and crawls must not stop everyone's sending
        (tests/app/test_storage_stall_pg.py). The due rows counted without locks ride
        along; when some were skipped, the sender looks again after LOCKED_LOOK_AGAIN."""
        seen = f"(SELECT COUNT(*){_DUE}) AS seen"
        retry = (
            "(SELECT MIN(r.next_attempt_at) FROM outbox r"
            " WHERE r.status='pending' AND r.next_attempt_at>?) AS next_retry"
        )
        rows = await self._db.fetchall(
            "UPDATE outbox SET next_attempt_at=? WHERE id IN (SELECT o.id" + _DUE + " ORDER BY"
            f" o.id LIMIT ? FOR UPDATE OF o SKIP LOCKED) RETURNING *, {retry}, {seen}",
            (iso(now), iso(now), iso(now), limit, iso(now), iso(now), iso(now)),
        )
        head = (
            rows[0]
            if rows
            else await self._db.fetchone(f"SELECT {retry}, {seen}", (iso(now), iso(now), iso(now)))
        )
        assert head is not None
        due = parse(head["next_retry"]) if head["next_retry"] else None
        if int(head["seen"]) > len(rows) and len(rows) < limit:  # locked ones were skipped
            again = now + LOCKED_LOOK_AGAIN
            due = again if due is None else min(due, again)
        return sorted((_item(r) for r in rows), key=lambda i: i.id), due

    async def finish(
        self, item: OutboxItem, part: int, messages: Sequence[SentMessage], now: datetime
    ) -> None:
        """The last part went out: its record and the row marked sent, together. On
        PostgreSQL one statement (a round trip) for the usual single message."""
        if self._db.dialect == "postgresql" and len(messages) == 1:
            await self._db.execute(
                "WITH recorded AS (" + _RECORD_PART + ") " + _MARK_FINISHED,
                (*_record_values(item, part, messages[0], now), *_finished_values(item, part, now)),
            )
            return
        async with self._db.transaction():
            for message in messages:
                await self._db.execute(_RECORD_PART, _record_values(item, part, message, now))
            await self._db.execute(_MARK_FINISHED, _finished_values(item, part, now))


#: the due rows (two parameters: now, now), leaving out every row that has an older pending
#: row to the same chat still waiting for its retry (order within a chat)
_DUE = (
    " FROM outbox o WHERE o.status='pending' AND o.next_attempt_at<=?"
    " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.status='pending'"
    " AND p.institution=o.institution AND p.platform=o.platform"
    " AND p.chat_id=o.chat_id AND p.id<o.id AND p.next_attempt_at>?)"
)
#: PostgreSQL: when the sender looks again after it skipped rows locked by a transaction
#: still open (Outbox._claim_due_unlocked)
LOCKED_LOOK_AGAIN = timedelta(seconds=1)

_RECORD_PART = (
    "INSERT INTO sent_messages(platform, chat_id, message_id, institution, outbox_id,"
    " part, thread_id, ref_kind, ref_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT DO NOTHING"
)
#: the resume point never moves backwards (portable: no two-argument MAX)
_MARK_FINISHED = (
    "UPDATE outbox SET parts_sent=CASE WHEN parts_sent<? THEN ? ELSE parts_sent END,"
    " status='sent', sent_at=?, last_error=NULL WHERE id=?"
)


def _record_values(
    item: OutboxItem, part: int, message: SentMessage, now: datetime
) -> tuple[Any, ...]:
    return (
        message.chat.platform,
        message.chat.chat_id,
        message.message_id,
        item.institution,
        item.id,
        part,
        message.chat.thread_id,
        item.ref_kind,
        item.ref_id,
        iso(now),
    )


def _finished_values(item: OutboxItem, part: int, now: datetime) -> tuple[Any, ...]:
    return (part + 1, part + 1, iso(now), item.id)


def _item(r: Any) -> OutboxItem:
    return OutboxItem(
        id=r["id"],
        institution=r["institution"],
        platform=r["platform"],
        chat=ChatRef(r["platform"], r["chat_id"], r["thread_id"]),
        kind=r["kind"],
        reply=reply_from_json(r["reply"]),
        dedup_key=r["dedup_key"],
        ref_kind=r["ref_kind"],
        ref_id=r["ref_id"],
        status=r["status"],
        parts_sent=r["parts_sent"],
        attempts=r["attempts"],
        next_attempt_at=parse(r["next_attempt_at"]),
        stored_reply=r["reply"],
    )


def _sent(r: Any) -> SentRecord:
    return SentRecord(
        institution=r["institution"],
        outbox_id=r["outbox_id"],
        part=r["part"],
        ref_kind=r["ref_kind"],
        ref_id=r["ref_id"],
        message=SentMessage(ChatRef(r["platform"], r["chat_id"], r["thread_id"]), r["message_id"]),
    )
