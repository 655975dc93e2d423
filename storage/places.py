"""Where a chat of a shared bot is: the institutions it chose and when (migration 0006).

The binding of a chat is its latest choice among the institutions of the account that
received the update; older choices are offered again as the picker's "recent" buttons."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from storage.port import Database
from storage.times import iso


class PlaceRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def choose(self, platform: str, chat_id: str, institution: str, now: datetime) -> None:
        """Bind the chat to ``institution`` (it becomes the latest choice)."""
        await self._db.execute(
            "INSERT INTO chat_places(platform, chat_id, institution, chosen_at) VALUES (?,?,?,?)"
            " ON CONFLICT(platform, chat_id, institution) DO UPDATE"
            " SET chosen_at=excluded.chosen_at",
            (platform, chat_id, institution, iso(now)),
        )

    async def recent(
        self, platform: str, chat_id: str, among: Sequence[str], limit: int = 10
    ) -> list[str]:
        """The chat's choices among ``among``, latest first (the first is the binding).

        A chat has a few choices; ``among`` may be a district's thousand institutions. So
        the chat's rows are read by its index and filtered here, instead of binding a
        thousand parameters into every statement (at N = 1,000 behind one bot that made
        the shared bot slower per update than a bot each)."""
        if not among:
            return []
        rows = await self._db.fetchall(
            "SELECT institution FROM chat_places WHERE platform=? AND chat_id=?"
            " ORDER BY chosen_at DESC, institution",
            (platform, chat_id),
        )
        wanted = among if len(among) < 16 else frozenset(among)
        return [r["institution"] for r in rows if r["institution"] in wanted][:limit]

    async def current(self, platform: str, chat_id: str, among: Sequence[str]) -> str | None:
        found = await self.recent(platform, chat_id, among, limit=1)
        return found[0] if found else None

    async def sender_of(
        self, platform: str, chat_id: str, message_id: str, among: Sequence[str]
    ) -> str | None:
        """Which of ``among`` sent the bot's message ``message_id`` in the chat (a button
        under it or a reply to it is that institution's, wherever the chat is bound now).

        Found by the chat's index (migration 0010) and filtered here, as in ``recent``:
        the institutions that used one message id in one chat are a handful, ``among`` up
        to a district's thousand."""
        if not among:
            return None
        rows = await self._db.fetchall(
            "SELECT institution FROM sent_messages WHERE platform=? AND chat_id=?"
            " AND message_id=? ORDER BY institution",
            (platform, chat_id, message_id),
        )
        wanted = among if len(among) < 16 else frozenset(among)
        return next((r["institution"] for r in rows if r["institution"] in wanted), None)
