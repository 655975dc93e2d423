"""The message log (what citizens asked and what the bot decided) and answer feedback.

These rows feed the admin's reports ("what did citizens ask that the FAQ does not cover")
and are personal data: /forget and the retention job delete them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from storage.port import Database
from storage.times import iso, parse


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    id: int
    institution: str
    platform: str
    chat_id: str
    user_id: str | None
    direction: str
    text: str
    outcome: str | None
    entry_id: str | None
    score: float | None
    created_at: datetime


@dataclass(slots=True)
class LogRow:
    """A row of the message log not written yet (see :meth:`MessageLog.add_rows`)."""

    institution: str
    platform: str
    chat_id: str
    user_id: str | None
    direction: str
    text: str
    created_at: datetime
    outcome: str | None = None
    entry_id: str | None = None
    score: float | None = None


_COLUMNS = (
    "INSERT INTO message_log(institution, platform, chat_id, user_id, direction, text,"
    " outcome, entry_id, score, created_at) VALUES "
)


class MessageLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_rows(self, rows: Sequence[LogRow]) -> int:
        """Write ``rows`` in one statement (a citizen's question with its outcome and the
        bot's replies to it, handlers/conversation.py); returns the first row's id. The ids
        grow in the order of ``rows`` (an autoincremented key on both backends)."""
        if not rows:
            raise ValueError("no rows to write")
        params: list[object] = []
        for r in rows:
            params += (r.institution, r.platform, r.chat_id, r.user_id, r.direction, r.text)
            params += (r.outcome, r.entry_id, r.score, iso(r.created_at))
        values = ",".join(["(?,?,?,?,?,?,?,?,?,?)"] * len(rows))
        if len(rows) == 1:
            return await self._db.execute(_COLUMNS + values, params)
        written = await self._db.fetchall(_COLUMNS + values + " RETURNING id", params)
        return min(int(r["id"]) for r in written)

    async def add(
        self,
        *,
        institution: str,
        platform: str,
        chat_id: str,
        user_id: str | None,
        direction: str,
        text: str,
        now: datetime,
        outcome: str | None = None,
        entry_id: str | None = None,
        score: float | None = None,
    ) -> int:
        row = LogRow(institution, platform, chat_id, user_id, direction, text, now)
        row.outcome, row.entry_id, row.score = outcome, entry_id, score
        return await self.add_rows([row])

    async def set_outcome(
        self, message_id: int, outcome: str, entry_id: str | None, score: float | None
    ) -> None:
        await self._db.execute(
            "UPDATE message_log SET outcome=?, entry_id=?, score=? WHERE id=?",
            (outcome, entry_id, score, message_id),
        )

    async def get(self, message_id: int) -> LoggedMessage | None:
        row = await self._db.fetchone("SELECT * FROM message_log WHERE id=?", (message_id,))
        return _logged(row) if row else None

    async def recent(
        self, institution: str, platform: str, chat_id: str, limit: int = 5
    ) -> list[LoggedMessage]:
        """The chat's last ``limit`` messages, oldest first (for ticket cards)."""
        rows = await self._db.fetchall(
            "SELECT * FROM message_log WHERE institution=? AND platform=? AND chat_id=?"
            " ORDER BY id DESC LIMIT ?",
            (institution, platform, chat_id, limit),
        )
        return [_logged(r) for r in reversed(rows)]

    async def since(
        self, institution: str, since: datetime, outcomes: tuple[str, ...] | None = None
    ) -> list[LoggedMessage]:
        sql = "SELECT * FROM message_log WHERE institution=? AND created_at>=? AND direction='in'"
        params: list[object] = [institution, iso(since)]
        if outcomes:
            sql += f" AND outcome IN ({','.join('?' * len(outcomes))})"
            params.extend(outcomes)
        rows = await self._db.fetchall(sql + " ORDER BY id", params)
        return [_logged(r) for r in rows]

    async def outcome_counts(self, institution: str, since: datetime) -> dict[str, int]:
        """Citizens' messages since ``since`` by outcome (answer, clarify, escalate, ...)."""
        rows = await self._db.fetchall(
            "SELECT COALESCE(outcome, 'none') AS outcome, COUNT(*) AS n FROM message_log"
            " WHERE institution=? AND direction='in' AND created_at>=? GROUP BY outcome",
            (institution, iso(since)),
        )
        return {r["outcome"]: int(r["n"]) for r in rows}

    async def add_feedback(
        self,
        *,
        institution: str,
        platform: str,
        user_id: str,
        entry_id: str,
        question_id: int | None,
        helpful: bool,
        now: datetime,
    ) -> int:
        return await self._db.execute(
            "INSERT INTO feedback(institution, platform, user_id, entry_id, question_id, helpful,"
            " created_at) VALUES (?,?,?,?,?,?,?)",
            (institution, platform, user_id, entry_id, question_id, int(helpful), iso(now)),
        )

    async def feedback_counts(self, institution: str) -> dict[str, tuple[int, int]]:
        """entry id -> (helpful, not helpful)."""
        rows = await self._db.fetchall(
            "SELECT entry_id, SUM(helpful) AS yes, SUM(1 - helpful) AS no FROM feedback"
            " WHERE institution=? GROUP BY entry_id",
            (institution,),
        )
        return {r["entry_id"]: (int(r["yes"]), int(r["no"])) for r in rows}

    async def delete_user(self, institution: str, platform: str, user_id: str) -> int:
        await self._db.execute(
            "DELETE FROM feedback WHERE institution=? AND platform=? AND user_id=?",
            (institution, platform, user_id),
        )
        return await self._db.execute(
            "DELETE FROM message_log WHERE institution=? AND platform=? AND user_id=?",
            (institution, platform, user_id),
        )

    async def purge_older_than(self, cutoff: datetime) -> int:
        return await self._db.execute(
            "DELETE FROM message_log WHERE created_at < ?", (iso(cutoff),)
        )


def _logged(r: object) -> LoggedMessage:
    row = r  # sqlite3.Row
    return LoggedMessage(
        id=row["id"],  # type: ignore[index]
        institution=row["institution"],  # type: ignore[index]
        platform=row["platform"],  # type: ignore[index]
        chat_id=row["chat_id"],  # type: ignore[index]
        user_id=row["user_id"],  # type: ignore[index]
        direction=row["direction"],  # type: ignore[index]
        text=row["text"],  # type: ignore[index]
        outcome=row["outcome"],  # type: ignore[index]
        entry_id=row["entry_id"],  # type: ignore[index]
        score=row["score"],  # type: ignore[index]
        created_at=parse(row["created_at"]),  # type: ignore[index]
    )
