"""The MAX adapter (our aiohttp client) against the MAX emulator, in the contract suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from pydantic import SecretStr

from bots.core.adapters import AccountSpec, Services
from bots.core.clock import SystemClock
from bots.core.payloads import MemoryPayloadStore
from bots.max import MaxGroup, create_group
from bots.max.account import MaxAccount
from tests.contract.harness import Harness, Seen
from tests.emulators.max import MaxEmulator

NAME = "max"
TOKEN = "max-contract-token"
BOT_ID = 5100
GROUP_CHAT = -7000000500


class MemoryState:
    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str] = {}

    async def get(self, scope: str, key: str) -> str | None:
        return self.values.get((scope, key))

    async def set(self, scope: str, key: str, value: str) -> None:
        self.values[(scope, key)] = value


class MaxHarness(Harness):
    def __init__(self, emulator: MaxEmulator) -> None:
        super().__init__()
        self.emulator = emulator
        # dialogs exist once their users started the bot; their chat ids are not user ids
        self.private_chat = str(emulator.dialog(TOKEN, 101).chat_id)
        self.other_private_chat = str(emulator.dialog(TOKEN, 102).chat_id)
        self.group_chat = str(emulator.open_group(TOKEN, GROUP_CHAT, "Сотрудники").chat_id)

    async def user_says(
        self, chat_id: str, text: str, *, reply_to: str | None = None, user_id: str | None = None
    ) -> None:
        self.emulator.user_says(
            TOKEN,
            int(chat_id),
            text,
            user_id=int(user_id) if user_id else None,
            reply_to=reply_to,
        )

    async def user_presses(self, chat_id: str, message_id: str, label: str) -> None:
        self.emulator.press(TOKEN, int(chat_id), message_id, label)

    async def seen(self, chat_id: str) -> list[Seen]:
        return [
            Seen(m.mid, m.text, m.labels) for m in self.emulator.bot_messages(TOKEN, int(chat_id))
        ]

    async def block(self, chat_id: str) -> None:
        self.emulator.block(TOKEN, int(chat_id))

    async def callback_answers(self) -> list[str | None]:
        return [text for _, text in self.emulator.answers(TOKEN)]


@asynccontextmanager
async def make_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with MaxEmulator() as emulator:
        emulator.add_bot(TOKEN, BOT_ID)
        harness = MaxHarness(emulator)
        services = Services(
            payloads=MemoryPayloadStore(),
            state=MemoryState(),
            clock=SystemClock(),
            extra={"max": {"poll_timeout": 5}},
        )
        account = MaxAccount(token=SecretStr(TOKEN), api_url=emulator.url)
        group: MaxGroup = await create_group([AccountSpec("demo", account)], services)
        harness.platform = group.platforms["demo"]
        await group.start(harness.on_event)
        try:
            yield harness
        finally:
            await group.stop()
