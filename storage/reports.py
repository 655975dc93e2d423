"""The read-only queries behind reports and metrics: ``priemnaya report`` (stats, unanswered
questions) and the gauges /metrics shows. Features own the tables they read (tickets,
subscriptions), so a database without a table reports it missing rather than zero."""

from __future__ import annotations

from typing import Any

from storage.port import Database, Row


class ReportQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def tables(self) -> set[str]:
        return set(await self._db.tables())

    async def outcomes(self, institution: str, since: str) -> dict[str, int]:
        """Citizens' messages since ``since`` by the outcome the bot gave them."""
        return {
            r["outcome"]: int(r["n"])
            for r in await self._db.fetchall(
                "SELECT outcome, COUNT(*) AS n FROM message_log WHERE institution=? AND"
                " direction='in' AND created_at>=? GROUP BY outcome",
                (institution, since),
            )
        }

    async def ticket_times(self, institution: str, since: str) -> list[Row]:
        """created_at, first_response_at, breached_at of the tickets opened since."""
        return await self._db.fetchall(
            "SELECT created_at, first_response_at, breached_at FROM tickets"
            " WHERE institution=? AND created_at>=?",
            (institution, since),
        )

    async def subscribers(self, institution: str) -> dict[str, int]:
        """Subscribers per platform."""
        return {
            r["platform"]: int(r["n"])
            for r in await self._db.fetchall(
                "SELECT platform, COUNT(*) AS n FROM subscriptions WHERE institution=?"
                " GROUP BY platform",
                (institution,),
            )
        }

    async def unhelpful_questions(self, institution: str, since: str) -> list[Row]:
        """id, text, created_at of questions whose answer a citizen marked unhelpful."""
        return await self._db.fetchall(
            "SELECT m.id, m.text, m.created_at FROM feedback f JOIN message_log m"
            " ON m.id = f.question_id WHERE f.institution=? AND f.helpful=0 AND f.created_at>=?",
            (institution, since),
        )

    # -- gauges for /metrics ----------------------------------------------------------------
    async def outbox_pending_by_platform(self) -> dict[str, int]:
        rows = await self._db.fetchall(
            "SELECT platform, COUNT(*) AS n FROM outbox WHERE status='pending' GROUP BY platform"
        )
        return {r["platform"]: int(r["n"]) for r in rows}

    async def inbox_pending(self) -> int:
        return int(await self._db.fetchval("SELECT COUNT(*) FROM inbox WHERE status='pending'"))

    async def tickets_by_institution(self) -> dict[str, Any] | None:
        """Institution -> row with ``breached`` and ``open`` counts; None without tickets."""
        if "tickets" not in await self._db.tables():
            return None
        rows = await self._db.fetchall(
            "SELECT institution,"
            " SUM(CASE WHEN breached_at IS NOT NULL THEN 1 ELSE 0 END) AS breached,"
            " SUM(CASE WHEN status<>'closed' THEN 1 ELSE 0 END) AS open"
            " FROM tickets GROUP BY institution"
        )
        return {r["institution"]: r for r in rows}
