"""Subscriptions and broadcasts (see migration 0003).

A broadcast is one occurrence of an announcement: UNIQUE(institution, announcement_id,
scheduled_for), so a scheduler that fires twice (a restart, a reload, two ticks racing)
creates it once. Its deliveries are one row per recipient, all written in one transaction
before the first message goes out; a delivery row moves from ``pending`` to ``sent``,
``unreachable`` or ``failed`` right after the platform answered, so a restart resumes with
exactly the recipients whose send was not recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from storage.port import Database
from storage.times import iso, parse

#: PostgreSQL: how long claimed deliveries are left to the worker that claimed them, and
#: how many one claim takes (small enough to be sent well within the claim at Telegram's
#: 30 messages/s, so that workers share a big broadcast)
CLAIM_SECONDS = 120
CLAIM_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Subscription:
    institution: str
    platform: str
    chat_id: str
    user_id: str
    #: None: every announcement; else only announcements with one of these topics
    topics: list[str] | None

    def wants(self, announcement_topics: Iterable[str]) -> bool:
        wanted = list(announcement_topics)
        if self.topics is None or not wanted:
            return True
        return any(t in self.topics for t in wanted)


class SubscriptionRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, institution: str, platform: str, chat_id: str) -> Subscription | None:
        row = await self._db.fetchone(
            "SELECT * FROM subscriptions WHERE institution=? AND platform=? AND chat_id=?",
            (institution, platform, chat_id),
        )
        return _subscription(row) if row else None

    async def subscribe(
        self,
        institution: str,
        platform: str,
        chat_id: str,
        user_id: str,
        topics: list[str] | None,
        now: datetime,
    ) -> None:
        """Create or replace the chat's subscription (``topics`` None = everything)."""
        value = None if topics is None else json.dumps(sorted(set(topics)), ensure_ascii=False)
        await self._db.execute(
            "INSERT INTO subscriptions(institution, platform, chat_id, user_id, topics,"
            " created_at, updated_at) VALUES (?,?,?,?,?,?,?)"
            " ON CONFLICT(institution, platform, chat_id) DO UPDATE SET"
            " user_id=excluded.user_id, topics=excluded.topics, updated_at=excluded.updated_at",
            (institution, platform, chat_id, user_id, value, iso(now), iso(now)),
        )

    async def unsubscribe(self, institution: str, platform: str, chat_id: str) -> bool:
        changed = await self._db.execute(
            "DELETE FROM subscriptions WHERE institution=? AND platform=? AND chat_id=?",
            (institution, platform, chat_id),
        )
        return changed > 0

    async def reachable(self, institution: str, platforms: Iterable[str]) -> list[Subscription]:
        """Subscribers on ``platforms`` who are not known to have blocked the bot."""
        kinds = list(platforms)
        if not kinds:
            return []
        marks = ",".join("?" for _ in kinds)
        rows = await self._db.fetchall(
            "SELECT s.* FROM subscriptions s WHERE s.institution=? AND s.platform IN"
            f" ({marks}) AND NOT EXISTS (SELECT 1 FROM citizens c WHERE"
            " c.institution=s.institution AND c.platform=s.platform AND c.chat_id=s.chat_id"
            " AND c.unreachable_at IS NOT NULL) ORDER BY s.platform, s.chat_id",
            (institution, *kinds),
        )
        return [_subscription(r) for r in rows]

    async def count(self, institution: str) -> int:
        return int(
            await self._db.fetchval(
                "SELECT COUNT(*) FROM subscriptions WHERE institution=?", (institution,)
            )
        )

    async def add_many(self, rows: Iterable[tuple[str, str, str, str]], now: datetime) -> None:
        """(institution, platform, chat_id, user_id) subscribed to everything: imports, tests."""
        await self._db.executemany(
            "INSERT INTO subscriptions(institution, platform, chat_id, user_id, topics,"
            " created_at, updated_at) VALUES (?,?,?,?,NULL,?,?) ON CONFLICT DO NOTHING",
            [(*r, iso(now), iso(now)) for r in rows],
        )


def _subscription(r: Any) -> Subscription:
    return Subscription(
        institution=r["institution"],
        platform=r["platform"],
        chat_id=r["chat_id"],
        user_id=r["user_id"],
        topics=None if r["topics"] is None else list(json.loads(r["topics"])),
    )


@dataclass(frozen=True, slots=True)
class Audience:
    subscribers: bool
    topics: tuple[str, ...] = ()
    channels: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> str:
        return json.dumps(
            {
                "subscribers": self.subscribers,
                "topics": list(self.topics),
                "channels": [list(c) for c in self.channels],
            },
            ensure_ascii=False,
        )

    @staticmethod
    def from_json(text: str) -> Audience:
        d = json.loads(text)
        return Audience(
            subscribers=bool(d["subscribers"]),
            topics=tuple(d.get("topics") or ()),
            channels=tuple((str(p), str(c)) for p, c in d.get("channels") or ()),
        )


@dataclass(frozen=True, slots=True)
class Broadcast:
    id: int
    institution: str
    announcement_id: str
    scheduled_for: datetime
    send_after: datetime
    status: str
    text: str
    audience: Audience
    origin: str
    report_platform: str | None
    report_chat_id: str | None
    report_thread_id: str | None
    total: int
    created_at: datetime
    finished_at: datetime | None
    error: str | None

    @property
    def key(self) -> str:
        """Stable across restarts: the root of every delivery's dedup key."""
        return f"ann:{self.institution}:{self.announcement_id}:{iso(self.scheduled_for)}"


@dataclass(frozen=True, slots=True)
class Delivery:
    broadcast_id: int
    platform: str
    chat_id: str
    kind: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Counts:
    pending: int = 0
    sent: int = 0
    unreachable: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.sent + self.unreachable + self.failed

    @property
    def finished(self) -> int:
        return self.sent + self.unreachable + self.failed


class BroadcastRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        institution: str,
        announcement_id: str,
        scheduled_for: datetime,
        send_after: datetime,
        text: str,
        audience: Audience,
        origin: str,
        now: datetime,
        report_to: tuple[str, str, str | None] | None = None,
        status: str = "waiting",
        error: str | None = None,
    ) -> int | None:
        """The occurrence's id, or None when this occurrence was created before."""
        platform, chat_id, thread_id = report_to or (None, None, None)
        new_id = await self._db.execute(
            "INSERT INTO broadcasts(institution, announcement_id, scheduled_for, send_after,"
            " status, text, audience, origin, report_platform, report_chat_id,"
            " report_thread_id, created_at, error, finished_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(institution, announcement_id, scheduled_for) DO NOTHING",
            (
                institution,
                announcement_id,
                iso(scheduled_for),
                iso(send_after),
                status,
                text,
                audience.to_json(),
                origin,
                platform,
                chat_id,
                thread_id,
                iso(now),
                error,
                iso(now) if status in ("done", "failed") else None,
            ),
        )
        return new_id or None

    async def get(self, broadcast_id: int) -> Broadcast | None:
        row = await self._db.fetchone("SELECT * FROM broadcasts WHERE id=?", (broadcast_id,))
        return _broadcast(row) if row else None

    async def find(
        self, institution: str, announcement_id: str, scheduled_for: datetime
    ) -> Broadcast | None:
        row = await self._db.fetchone(
            "SELECT * FROM broadcasts WHERE institution=? AND announcement_id=?"
            " AND scheduled_for=?",
            (institution, announcement_id, iso(scheduled_for)),
        )
        return _broadcast(row) if row else None

    async def open(self) -> list[Broadcast]:
        """Broadcasts not finished yet (waiting for their time, or sending), oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM broadcasts WHERE status IN ('waiting', 'sending') ORDER BY id"
        )
        return [_broadcast(r) for r in rows]

    async def recent(self, limit: int = 20, institution: str | None = None) -> list[Broadcast]:
        if institution is None:
            rows = await self._db.fetchall(
                "SELECT * FROM broadcasts ORDER BY id DESC LIMIT ?", (limit,)
            )
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM broadcasts WHERE institution=? ORDER BY id DESC LIMIT ?",
                (institution, limit),
            )
        return [_broadcast(r) for r in rows]

    async def start(
        self, broadcast_id: int, recipients: list[tuple[str, str, str]], now: datetime
    ) -> None:
        """Write every (platform, chat_id, kind) as a pending delivery and mark the broadcast
        sending, in one transaction: nothing is sent before all rows exist. The status moves
        first, so of several workers starting the same broadcast one writes the rows and
        the others (waiting on its row lock, on PostgreSQL) find it started."""
        async with self._db.transaction():
            changed = await self._db.execute(
                "UPDATE broadcasts SET status='sending', started_at=? WHERE id=?"
                " AND status='waiting'",
                (iso(now), broadcast_id),
            )
            if not changed:
                return
            await self._db.executemany(
                "INSERT INTO broadcast_deliveries(broadcast_id, platform, chat_id, kind, status,"
                " next_attempt_at) VALUES (?,?,?,?,'pending',?) ON CONFLICT DO NOTHING",
                [(broadcast_id, p, c, k, iso(now)) for p, c, k in recipients],
            )
            total = await self._db.fetchval(
                "SELECT COUNT(*) FROM broadcast_deliveries WHERE broadcast_id=?", (broadcast_id,)
            )
            await self._db.execute(
                "UPDATE broadcasts SET total=? WHERE id=?", (int(total), broadcast_id)
            )

    async def finish(self, broadcast_id: int, now: datetime, status: str = "done") -> bool:
        """Mark finished; True only for the call that changed it (the report goes once)."""
        changed = await self._db.execute(
            "UPDATE broadcasts SET status=?, finished_at=? WHERE id=? AND status='sending'",
            (status, iso(now), broadcast_id),
        )
        return changed > 0

    async def due_deliveries(
        self, broadcast_id: int, now: datetime, limit: int = 1000
    ) -> list[Delivery]:
        """Pending deliveries that are due. On PostgreSQL, where several workers share a
        broadcast, they are also claimed: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks rows
        no other worker is claiming, and their ``next_attempt_at`` moves ``CLAIM_SECONDS``
        ahead, so other workers skip them until this one records the outcome (or, if it
        died, until the claim runs out and they are due again). A worker restarting under
        the same id (``db.worker_id``) takes its own claims back at once."""
        if getattr(self._db, "dialect", "sqlite") == "sqlite":
            rows = await self._db.fetchall(
                "SELECT broadcast_id, platform, chat_id, kind, attempts FROM broadcast_deliveries"
                " WHERE broadcast_id=? AND status='pending' AND next_attempt_at<=?"
                " ORDER BY platform, chat_id LIMIT ?",
                (broadcast_id, iso(now), limit),
            )
        else:
            worker = getattr(self._db, "worker_id", None)
            rows = await self._db.fetchall(
                "UPDATE broadcast_deliveries SET next_attempt_at=?, claimed_by=?"
                " WHERE (broadcast_id, platform, chat_id) IN ("
                " SELECT broadcast_id, platform, chat_id FROM broadcast_deliveries"
                " WHERE broadcast_id=? AND status='pending'"
                " AND (next_attempt_at<=? OR claimed_by=?)"
                " ORDER BY platform, chat_id LIMIT ? FOR UPDATE SKIP LOCKED)"
                " RETURNING broadcast_id, platform, chat_id, kind, attempts",
                (
                    iso(now + timedelta(seconds=CLAIM_SECONDS)),
                    worker,
                    broadcast_id,
                    iso(now),
                    worker,
                    min(limit, CLAIM_LIMIT),
                ),
            )
            rows = sorted(rows, key=lambda r: (r[1], r[2]))
        return [Delivery(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def next_attempt(self, broadcast_id: int) -> datetime | None:
        value = await self._db.fetchval(
            "SELECT MIN(next_attempt_at) FROM broadcast_deliveries"
            " WHERE broadcast_id=? AND status='pending'",
            (broadcast_id,),
        )
        return parse(value) if value else None

    async def mark_sent(
        self, broadcast_id: int, platform: str, chat_id: str, message_id: str, now: datetime
    ) -> None:
        await self._db.execute(
            "UPDATE broadcast_deliveries SET status='sent', message_id=?, sent_at=?,"
            " last_error=NULL WHERE broadcast_id=? AND platform=? AND chat_id=?",
            (message_id, iso(now), broadcast_id, platform, chat_id),
        )

    async def mark_sent_many(
        self, broadcast_id: int, sent: list[tuple[str, str, str]], now: datetime
    ) -> None:
        """(platform, chat_id, message_id) of several sends, in one transaction."""
        async with self._db.transaction():
            await self._db.executemany(
                "UPDATE broadcast_deliveries SET status='sent', message_id=?, sent_at=?,"
                " last_error=NULL WHERE broadcast_id=? AND platform=? AND chat_id=?",
                [(m, iso(now), broadcast_id, p, c) for p, c, m in sent],
            )

    async def mark_final(
        self, broadcast_id: int, platform: str, chat_id: str, status: str, error: str
    ) -> None:
        """``unreachable`` or ``failed``: never tried again."""
        await self._db.execute(
            "UPDATE broadcast_deliveries SET status=?, attempts=attempts+1, last_error=?"
            " WHERE broadcast_id=? AND platform=? AND chat_id=?",
            (status, error[:300], broadcast_id, platform, chat_id),
        )

    async def mark_retry(
        self, broadcast_id: int, platform: str, chat_id: str, error: str, next_at: datetime
    ) -> None:
        await self._db.execute(  # unclaimed: due again at next_at, for any worker
            "UPDATE broadcast_deliveries SET attempts=attempts+1, last_error=?,"
            " next_attempt_at=?, claimed_by=NULL WHERE broadcast_id=? AND platform=?"
            " AND chat_id=?",
            (error[:300], iso(next_at), broadcast_id, platform, chat_id),
        )

    async def counts(self, broadcast_id: int) -> Counts:
        rows = await self._db.fetchall(
            "SELECT status, COUNT(*) AS n FROM broadcast_deliveries WHERE broadcast_id=?"
            " GROUP BY status",
            (broadcast_id,),
        )
        return Counts(**{r["status"]: int(r["n"]) for r in rows})

    async def deliveries(self, broadcast_id: int) -> list[tuple[str, str, str]]:
        """(platform, chat_id, status) of every recipient: for tests and the CLI."""
        rows = await self._db.fetchall(
            "SELECT platform, chat_id, status FROM broadcast_deliveries WHERE broadcast_id=?"
            " ORDER BY platform, chat_id",
            (broadcast_id,),
        )
        return [(r[0], r[1], r[2]) for r in rows]


def _broadcast(r: Any) -> Broadcast:
    return Broadcast(
        id=r["id"],
        institution=r["institution"],
        announcement_id=r["announcement_id"],
        scheduled_for=parse(r["scheduled_for"]),
        send_after=parse(r["send_after"]),
        status=r["status"],
        text=r["text"],
        audience=Audience.from_json(r["audience"]),
        origin=r["origin"],
        report_platform=r["report_platform"],
        report_chat_id=r["report_chat_id"],
        report_thread_id=r["report_thread_id"],
        total=r["total"],
        created_at=parse(r["created_at"]),
        finished_at=parse(r["finished_at"]) if r["finished_at"] else None,
        error=r["error"],
    )
