"""The Telegram adapter in the Platform contract suite: real aiogram over HTTP against the
Bot API emulator in tests/emulators/telegram.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from pydantic import SecretStr

from bots.core.adapters import AccountSpec, Services
from bots.core.clock import SystemClock
from bots.core.model import Event
from bots.core.payloads import MemoryPayloadStore
from bots.telegram import TelegramGroup, TelegramRates, create_group
from bots.telegram.account import TelegramAccount
from tests.contract.harness import Harness, Seen
from tests.emulators.telegram import TelegramEmulator

NAME = "telegram"
TOKEN = "700100:contract-test-token"
#: Telegram's bursts at a hundred times the pace, so the suite does not wait out real limits
FAST = TelegramRates().scaled(100)


class MemoryState:
    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str] = {}

    async def get(self, scope: str, key: str) -> str | None:
        return self.values.get((scope, key))

    async def set(self, scope: str, key: str, value: str) -> None:
        self.values[(scope, key)] = value


class TelegramHarness(Harness):
    private_chat = "101"
    other_private_chat = "102"
    group_chat = "-500"

    def __init__(self, emulator: TelegramEmulator) -> None:
        super().__init__()
        self.emulator = emulator
        emulator.open_group(TOKEN, int(self.group_chat), "Сотрудники")

    async def user_says(
        self, chat_id: str, text: str, *, reply_to: str | None = None, user_id: str | None = None
    ) -> None:
        self.emulator.user_says(
            TOKEN,
            int(chat_id),
            text,
            user_id=int(user_id) if user_id else None,
            reply_to=int(reply_to) if reply_to else None,
        )

    async def user_presses(self, chat_id: str, message_id: str, label: str) -> None:
        self.emulator.press(TOKEN, int(chat_id), int(message_id), label)

    async def seen(self, chat_id: str) -> list[Seen]:
        return [
            Seen(
                str(m.message_id),
                m.text,
                m.labels,
                str(m.thread_id) if m.thread_id is not None else None,
            )
            for m in self.emulator.bot_messages(TOKEN, int(chat_id))
        ]

    async def block(self, chat_id: str) -> None:
        self.emulator.block(TOKEN, int(chat_id), notify=False)

    async def callback_answers(self) -> list[str | None]:
        return [text for _, text in self.emulator.answered(TOKEN)]


@asynccontextmanager
async def make_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with TelegramEmulator() as emulator:
        harness = TelegramHarness(emulator)
        # the users' private chats exist before the bot writes to them
        for chat in (harness.private_chat, harness.other_private_chat):
            emulator.user_says(TOKEN, int(chat), "/start")
        services = Services(
            payloads=MemoryPayloadStore(),
            state=MemoryState(),
            clock=SystemClock(),
            extra={"telegram": {"rates": FAST, "poll_timeout": 5}},
        )
        account = TelegramAccount(token=SecretStr(TOKEN), api_server=emulator.url)
        group: TelegramGroup = await create_group([AccountSpec("demo", account)], services)
        harness.platform = group.platforms["demo"]
        starts: list[str] = []
        both_started = asyncio.Event()

        async def collect(event: Event) -> None:  # the two /start messages are no test's
            if event.text == "/start" and len(starts) < 2:
                starts.append(event.update_key)
                if len(starts) == 2:
                    both_started.set()
                return
            await harness.on_event(event)

        await group.start(collect)
        try:
            await asyncio.wait_for(both_started.wait(), 10)
            yield harness
        finally:
            await group.stop()
