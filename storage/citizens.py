"""Citizens: who wrote to which institution on which platform, and whether they can still be
reached (a citizen who blocked the bot is not written to again until they write first)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bots.core.model import User
from storage.port import Database
from storage.times import iso, parse


@dataclass(frozen=True, slots=True)
class Citizen:
    institution: str
    platform: str
    user_id: str
    chat_id: str
    first_name: str
    last_name: str
    username: str | None
    first_seen: datetime
    last_seen: datetime
    unreachable: bool

    @property
    def display_name(self) -> str:
        return User(self.user_id, self.first_name, self.last_name, self.username).display_name


class CitizenRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def touch(
        self, institution: str, platform: str, user: User, chat_id: str, now: datetime
    ) -> bool:
        """Record that ``user`` wrote; returns True on their first contact with this institution.

        Writing again makes a citizen reachable again. The update comes first: a citizen
        who wrote before (most updates) costs one statement; a first contact two (three if
        a concurrent worker inserted the same citizen in between)."""
        if await self._refresh(institution, platform, user, chat_id, now):
            return False
        created = await self._db.execute(
            "INSERT INTO citizens(institution, platform, user_id, chat_id, first_name, last_name,"
            " username, first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(institution, platform, user_id) DO NOTHING",
            (
                institution,
                platform,
                user.id,
                chat_id,
                user.first_name,
                user.last_name,
                user.username,
                iso(now),
                iso(now),
            ),
        )
        if created:
            return True
        await self._refresh(institution, platform, user, chat_id, now)
        return False

    async def _refresh(
        self, institution: str, platform: str, user: User, chat_id: str, now: datetime
    ) -> bool:
        """A known citizen wrote: their names and chat as now, reachable again."""
        changed = await self._db.execute(
            "UPDATE citizens SET chat_id=?, first_name=?, last_name=?, username=?, last_seen=?,"
            " unreachable_at=NULL, unreachable_reason=NULL"
            " WHERE institution=? AND platform=? AND user_id=?",
            (
                chat_id,
                user.first_name,
                user.last_name,
                user.username,
                iso(now),
                institution,
                platform,
                user.id,
            ),
        )
        return changed > 0

    async def get(self, institution: str, platform: str, user_id: str) -> Citizen | None:
        row = await self._db.fetchone(
            "SELECT * FROM citizens WHERE institution=? AND platform=? AND user_id=?",
            (institution, platform, user_id),
        )
        return _citizen(row) if row else None

    async def by_chat(self, institution: str, platform: str, chat_id: str) -> Citizen | None:
        row = await self._db.fetchone(
            "SELECT * FROM citizens WHERE institution=? AND platform=? AND chat_id=?"
            " ORDER BY last_seen DESC LIMIT 1",
            (institution, platform, chat_id),
        )
        return _citizen(row) if row else None

    async def mark_unreachable(
        self, institution: str, platform: str, chat_id: str, reason: str, now: datetime
    ) -> int:
        return await self._db.execute(
            "UPDATE citizens SET unreachable_at=?, unreachable_reason=?"
            " WHERE institution=? AND platform=? AND chat_id=? AND unreachable_at IS NULL",
            (iso(now), reason[:200], institution, platform, chat_id),
        )

    async def forget(self, institution: str, platform: str, user_id: str) -> None:
        """Erase personal fields; the row stays so that counts remain right."""
        await self._db.execute(
            "UPDATE citizens SET first_name='', last_name='', username=NULL"
            " WHERE institution=? AND platform=? AND user_id=?",
            (institution, platform, user_id),
        )


def _citizen(row: object) -> Citizen:
    r = row  # sqlite3.Row supports mapping access
    return Citizen(
        institution=r["institution"],  # type: ignore[index]
        platform=r["platform"],  # type: ignore[index]
        user_id=r["user_id"],  # type: ignore[index]
        chat_id=r["chat_id"],  # type: ignore[index]
        first_name=r["first_name"],  # type: ignore[index]
        last_name=r["last_name"],  # type: ignore[index]
        username=r["username"],  # type: ignore[index]
        first_seen=parse(r["first_seen"]),  # type: ignore[index]
        last_seen=parse(r["last_seen"]),  # type: ignore[index]
        unreachable=r["unreachable_at"] is not None,  # type: ignore[index]
    )
