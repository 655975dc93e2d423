"""The OK adapter (our aiohttp client, webhook mode) against the OK emulator, in the
contract suite. OK has no group chats (group messages are person↔group dialogs) and no
edit: the harness says so, and the suite checks the degraded behaviour instead."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr

from bots.core.adapters import AccountSpec, Services
from bots.core.clock import SystemClock
from bots.core.payloads import MemoryPayloadStore
from bots.ok import OkGroup, create_group
from bots.ok.config import OkAccount
from tests.contract.harness import Harness, Seen
from tests.contract.harness_max import MemoryState
from tests.emulators.ok import OkEmulator

NAME = "ok"
TOKEN = "tkn1contract:CQABPOJKAKEKEKEKE"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OkHarness(Harness):
    #: a press answered without a notice leaves no trace on OK (it shows "typing")
    silent_answers_visible = False

    def __init__(self, emulator: OkEmulator) -> None:
        super().__init__()
        self.emulator = emulator
        self.private_chat = emulator.dialog(TOKEN, 101).chat_id
        self.other_private_chat = emulator.dialog(TOKEN, 102).chat_id
        self.group_chat = None

    async def user_says(
        self, chat_id: str, text: str, *, reply_to: str | None = None, user_id: str | None = None
    ) -> None:
        self.emulator.user_says(TOKEN, chat_id, text, reply_to=reply_to)

    async def user_presses(self, chat_id: str, message_id: str, label: str) -> None:
        self.emulator.press(TOKEN, chat_id, message_id, label)

    async def seen(self, chat_id: str) -> list[Seen]:
        return [Seen(m.mid, m.text, m.labels) for m in self.emulator.bot_messages(TOKEN, chat_id)]

    async def block(self, chat_id: str) -> None:
        self.emulator.deny(TOKEN, chat_id)

    async def callback_answers(self) -> list[str | None]:
        return [text for _, text in self.emulator.answers(TOKEN)]


@asynccontextmanager
async def make_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with OkEmulator() as emulator:
        emulator.add_group(TOKEN, 53_000_000_000_001)
        harness = OkHarness(emulator)
        port = free_port()
        web_app = web.Application()
        services = Services(
            payloads=MemoryPayloadStore(),
            state=MemoryState(),
            clock=SystemClock(),
            web_app=web_app,
            public_url=f"http://127.0.0.1:{port}",
        )
        account = OkAccount(token=SecretStr(TOKEN), api_url=emulator.url)
        group: OkGroup = await create_group([AccountSpec("demo", account)], services)
        runner = web.AppRunner(web_app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        harness.platform = group.platforms["demo"]
        await group.start(harness.on_event)
        await asyncio.wait_for(group.ok["demo"].ready.wait(), 15)
        try:
            yield harness
        finally:
            await group.stop()
            await runner.cleanup()
