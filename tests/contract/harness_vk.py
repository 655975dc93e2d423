"""The VK adapter (real vk_api over HTTP) against the VK emulator, in the contract suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bots.core.adapters import AccountSpec, Services
from bots.core.clock import SystemClock
from bots.core.payloads import MemoryPayloadStore
from bots.vk import create_group
from bots.vk.account import VkAccount
from tests.contract.harness import Harness, Seen
from tests.emulators.vk import VkEmulator

NAME = "vk"
GROUP_ID = 4242
TOKEN = "vk1.a.contract-token"


class MemoryState:
    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str] = {}

    async def get(self, scope: str, key: str) -> str | None:
        return self.values.get((scope, key))

    async def set(self, scope: str, key: str, value: str) -> None:
        self.values[(scope, key)] = value


class VkHarness(Harness):
    private_chat = "101"
    other_private_chat = "102"
    group_chat = "2000000001"

    def __init__(self, emulator: VkEmulator) -> None:
        super().__init__()
        self.emulator = emulator

    async def user_says(
        self, chat_id: str, text: str, *, reply_to: str | None = None, user_id: str | None = None
    ) -> None:
        await self.emulator.user_says(
            GROUP_ID, chat_id, text, from_id=user_id or chat_id, reply_to=reply_to
        )

    async def user_presses(self, chat_id: str, message_id: str, label: str) -> None:
        await self.emulator.press(GROUP_ID, chat_id, message_id, label)

    async def seen(self, chat_id: str) -> list[Seen]:
        return [
            Seen(str(m.cmid), m.text, m.labels) for m in self.emulator.messages(GROUP_ID, chat_id)
        ]

    async def block(self, chat_id: str) -> None:
        self.emulator.block(GROUP_ID, int(chat_id))

    async def callback_answers(self) -> list[str | None]:
        return self.emulator.snackbars(GROUP_ID)


@asynccontextmanager
async def make_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    emulator = await VkEmulator().start()
    emulator.add_community(GROUP_ID, TOKEN)
    account = VkAccount(token=TOKEN, group_id=GROUP_ID, api_url=emulator.api_url, wait=2)
    services = Services(payloads=MemoryPayloadStore(), state=MemoryState(), clock=SystemClock())
    group = await create_group([AccountSpec("demo", account)], services)
    harness = VkHarness(emulator)
    harness.platform = group.platforms["demo"]
    await group.start(harness.on_event)
    try:
        yield harness
    finally:
        await group.stop()
        await emulator.close()
