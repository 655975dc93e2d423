"""Tickets: questions handed to staff, from open to closed, with their messages.

open -> in_progress (a staff member took it) -> answered -> closed; a citizen's reply to the
staff answer sets it back to open (see handlers/escalation/citizen.py for when)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.port import Database
from storage.times import iso, parse

ACTIVE = ("open", "in_progress", "answered")


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    institution: str
    number: int
    platform: str
    chat_id: str
    user_id: str
    citizen_name: str
    status: str
    urgent: bool
    reason: str
    question: str
    assignee_id: str | None
    assignee_name: str | None
    created_at: datetime
    updated_at: datetime
    due_at: datetime | None
    first_response_at: datetime | None
    answered_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    reminded_at: datetime | None
    breached_at: datetime | None
    last_forward_at: datetime | None
    topic_requested: bool


@dataclass(frozen=True, slots=True)
class TicketMessage:
    id: int
    ticket_id: int
    author: str
    author_id: str | None
    author_name: str
    text: str
    created_at: datetime


class TicketRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        institution: str,
        platform: str,
        chat_id: str,
        user_id: str,
        citizen_name: str,
        question: str,
        reason: str,
        urgent: bool,
        due_at: datetime | None,
        now: datetime,
    ) -> Ticket:
        """A new ticket with the institution's next number (call inside a transaction)."""
        if getattr(self._db, "dialect", "sqlite") != "sqlite":
            # Concurrent transactions (PostgreSQL, several workers) would read the same MAX:
            # this upsert locks the institution's counter row until commit, so the next
            # creator reads MAX after this one's ticket exists. SQLite transactions are
            # exclusive already.
            await self._db.execute(
                "INSERT INTO kv(scope, key, value, updated_at) VALUES ('tickets.lock', ?, '', ?)"
                " ON CONFLICT(scope, key) DO UPDATE SET updated_at=excluded.updated_at",
                (institution, iso(now)),
            )
        number = int(
            await self._db.fetchval(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM tickets WHERE institution=?",
                (institution,),
            )
        )
        ticket_id = await self._db.execute(
            "INSERT INTO tickets(institution, number, platform, chat_id, user_id, citizen_name,"
            " status, urgent, reason, question, created_at, updated_at, due_at)"
            " VALUES (?,?,?,?,?,?,'open',?,?,?,?,?,?)",
            (
                institution,
                number,
                platform,
                chat_id,
                user_id,
                citizen_name,
                int(urgent),
                reason,
                question,
                iso(now),
                iso(now),
                iso(due_at) if due_at else None,
            ),
        )
        ticket = await self.get(ticket_id)
        assert ticket is not None
        return ticket

    async def get(self, ticket_id: int) -> Ticket | None:
        row = await self._db.fetchone("SELECT * FROM tickets WHERE id=?", (ticket_id,))
        return _ticket(row) if row else None

    async def by_number(self, institution: str, number: int) -> Ticket | None:
        row = await self._db.fetchone(
            "SELECT * FROM tickets WHERE institution=? AND number=?", (institution, number)
        )
        return _ticket(row) if row else None

    async def latest_for_citizen(
        self,
        institution: str,
        platform: str,
        user_id: str,
        statuses: tuple[str, ...] | None = None,
        *,
        urgent: bool | None = None,
    ) -> Ticket | None:
        """The citizen's newest ticket, optionally only among ``statuses`` / urgent ones."""
        sql = "SELECT * FROM tickets WHERE institution=? AND platform=? AND user_id=?"
        params: list[Any] = [institution, platform, user_id]
        if statuses is not None:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            params.extend(statuses)
        if urgent is not None:
            sql += " AND urgent=?"
            params.append(int(urgent))
        row = await self._db.fetchone(sql + " ORDER BY id DESC LIMIT 1", params)
        return _ticket(row) if row else None

    async def find(
        self, institution: str | None = None, statuses: tuple[str, ...] = ACTIVE, limit: int = 50
    ) -> list[Ticket]:
        """Urgent first, then oldest first."""
        sql = f"SELECT * FROM tickets WHERE status IN ({','.join('?' * len(statuses))})"
        params: list[Any] = list(statuses)
        if institution is not None:
            sql += " AND institution=?"
            params.append(institution)
        sql += " ORDER BY urgent DESC, created_at, id LIMIT ?"
        params.append(limit)
        return [_ticket(r) for r in await self._db.fetchall(sql, params)]

    async def update(self, ticket_id: int, now: datetime, **fields: Any) -> None:
        """Set columns; datetimes are stored as ISO text, booleans as 0/1."""
        if not fields:
            return
        values = [
            iso(v) if isinstance(v, datetime) else int(v) if isinstance(v, bool) else v
            for v in fields.values()
        ]
        assignments = ", ".join(f"{name}=?" for name in fields)
        await self._db.execute(
            f"UPDATE tickets SET {assignments}, updated_at=? WHERE id=?",
            (*values, iso(now), ticket_id),
        )

    async def add_message(
        self,
        ticket_id: int,
        *,
        author: str,
        text: str,
        now: datetime,
        author_id: str | None = None,
        author_name: str = "",
    ) -> int:
        return await self._db.execute(
            "INSERT INTO ticket_messages(ticket_id, author, author_id, author_name, text,"
            " created_at) VALUES (?,?,?,?,?,?)",
            (ticket_id, author, author_id, author_name, text, iso(now)),
        )

    async def messages(self, ticket_id: int, limit: int = 50) -> list[TicketMessage]:
        """The ticket's last ``limit`` messages, oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM ticket_messages WHERE ticket_id=? ORDER BY id DESC LIMIT ?",
            (ticket_id, limit),
        )
        return [
            TicketMessage(
                id=r["id"],
                ticket_id=r["ticket_id"],
                author=r["author"],
                author_id=r["author_id"],
                author_name=r["author_name"],
                text=r["text"],
                created_at=parse(r["created_at"]),
            )
            for r in reversed(rows)
        ]

    async def needing_sla_action(self, before: datetime) -> list[Ticket]:
        """Waiting tickets (open or taken, not yet answered) whose deadline is before ``before``."""
        rows = await self._db.fetchall(
            "SELECT * FROM tickets WHERE status IN ('open', 'in_progress')"
            " AND first_response_at IS NULL AND due_at IS NOT NULL AND due_at<=?"
            " AND breached_at IS NULL ORDER BY due_at",
            (iso(before),),
        )
        return [_ticket(r) for r in rows]

    async def quiet_answered(self, before: datetime) -> list[Ticket]:
        """Answered tickets nobody wrote to since ``before``: due to close themselves."""
        rows = await self._db.fetchall(
            "SELECT * FROM tickets WHERE status='answered' AND updated_at<=?", (iso(before),)
        )
        return [_ticket(r) for r in rows]

    async def counts_since(self, institution: str, since: datetime) -> dict[str, Any]:
        row = await self._db.fetchone(
            "SELECT COUNT(*) AS created,"
            " SUM(CASE WHEN breached_at IS NOT NULL THEN 1 ELSE 0 END) AS breached"
            " FROM tickets WHERE institution=? AND created_at>=?",
            (institution, iso(since)),
        )
        responses = await self._db.fetchall(
            "SELECT created_at, first_response_at FROM tickets WHERE institution=?"
            " AND created_at>=? AND first_response_at IS NOT NULL",
            (institution, iso(since)),
        )
        minutes = sorted(
            (parse(r["first_response_at"]) - parse(r["created_at"])).total_seconds() / 60
            for r in responses
        )
        return {
            "created": int(row["created"] or 0) if row else 0,
            "breached": int(row["breached"] or 0) if row else 0,
            "response_minutes": minutes,
        }

    async def ids_of_citizen(self, institution: str, platform: str, user_id: str) -> list[str]:
        """The ids of every ticket a citizen opened, as the outbox's ref_id spells them."""
        rows = await self._db.fetchall(
            "SELECT id FROM tickets WHERE institution=? AND platform=? AND user_id=?",
            (institution, platform, user_id),
        )
        return [str(r["id"]) for r in rows]

    async def anonymise_citizen(self, institution: str, platform: str, user_id: str) -> int:
        """For /forget: the ticket stays for statistics, the citizen's words and name go."""
        ids = [
            r["id"]
            for r in await self._db.fetchall(
                "SELECT id FROM tickets WHERE institution=? AND platform=? AND user_id=?",
                (institution, platform, user_id),
            )
        ]
        for ticket_id in ids:
            await self._db.execute(
                "UPDATE tickets SET citizen_name='', question=? WHERE id=?",
                ("[удалено по просьбе гражданина]", ticket_id),
            )
            await self._db.execute(
                "DELETE FROM ticket_messages WHERE ticket_id=? AND author='citizen'", (ticket_id,)
            )
            # staff answers quote and name the citizen: the rows stay (who answered, when)
            await self._db.execute(
                "UPDATE ticket_messages SET text=? WHERE ticket_id=?",
                ("[удалено по просьбе гражданина]", ticket_id),
            )
        return len(ids)


def _dt(value: str | None) -> datetime | None:
    return parse(value) if value else None


def _ticket(r: Any) -> Ticket:
    return Ticket(
        id=r["id"],
        institution=r["institution"],
        number=r["number"],
        platform=r["platform"],
        chat_id=r["chat_id"],
        user_id=r["user_id"],
        citizen_name=r["citizen_name"],
        status=r["status"],
        urgent=bool(r["urgent"]),
        reason=r["reason"],
        question=r["question"],
        assignee_id=r["assignee_id"],
        assignee_name=r["assignee_name"],
        created_at=parse(r["created_at"]),
        updated_at=parse(r["updated_at"]),
        due_at=_dt(r["due_at"]),
        first_response_at=_dt(r["first_response_at"]),
        answered_at=_dt(r["answered_at"]),
        closed_at=_dt(r["closed_at"]),
        closed_by=r["closed_by"],
        reminded_at=_dt(r["reminded_at"]),
        breached_at=_dt(r["breached_at"]),
        last_forward_at=_dt(r["last_forward_at"]),
        topic_requested=bool(r["topic_requested"]),
    )
