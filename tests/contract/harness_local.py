"""The local platform in the Platform contract suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bots.core.model import ChatKind, User
from bots.local import LocalPlatform
from tests.contract.harness import Harness, Seen

NAME = "local"


class LocalHarness(Harness):
    private_chat = "101"
    other_private_chat = "102"
    group_chat = "-500"

    def __init__(self) -> None:
        super().__init__()
        self.local = LocalPlatform("demo")
        self.platform = self.local
        self.local.open_chat(self.group_chat, ChatKind.GROUP)

    async def user_says(
        self, chat_id: str, text: str, *, reply_to: str | None = None, user_id: str | None = None
    ) -> None:
        user = User(id=user_id or chat_id.lstrip("-"), first_name="Анна")
        await self.local.user_says(chat_id, text, user=user, reply_to=reply_to)

    async def user_presses(self, chat_id: str, message_id: str, label: str) -> None:
        await self.local.press(chat_id, message_id, label)

    async def seen(self, chat_id: str) -> list[Seen]:
        return [
            Seen(m.id, m.text, [[label for label, _ in row] for row in m.buttons], m.thread_id)
            for m in self.local.messages(chat_id)
        ]

    async def block(self, chat_id: str) -> None:
        self.local.block(chat_id)

    async def callback_answers(self) -> list[str | None]:
        return [text for _, text in self.local.answered_callbacks]


@asynccontextmanager
async def make_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = LocalHarness()
    await harness.platform.start(harness.on_event)
    try:
        yield harness
    finally:
        await harness.platform.stop()
