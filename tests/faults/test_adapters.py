"""The adapters never skip an update because the app could not store it (issue 19, item 1):
the app raises NotStored only when it gives up waiting for storage (a stop), and an adapter
may also meet storage trouble itself (reading a stored button payload). Either way the
update stays unconfirmed and comes again, however often; only a poison update (the app's
handling fails the same way every time) is skipped after MAX_ATTEMPTS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from bots.core import handover
from bots.core.adapters import AccountSpec, Services
from bots.core.clock import SystemClock
from bots.core.model import Event
from bots.core.payloads import MemoryPayloadStore
from bots.max import create_group as create_max_group
from bots.max import platform as max_platform
from bots.max.account import MaxAccount
from bots.telegram import create_group
from bots.telegram import group as telegram_group
from bots.telegram.account import TelegramAccount
from storage import StorageUnavailable
from tests.contract.harness_telegram import MemoryState
from tests.emulators.max import MaxEmulator
from tests.emulators.telegram import TelegramEmulator

TOKEN = "720002:faults-test-token"
REFUSALS = telegram_group.MAX_ATTEMPTS + 5


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emu:
        yield emu


async def test_telegram_fetches_an_unstored_update_again_however_often(
    emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(telegram_group, "_BACKOFF", (0.01,))  # the pauses, not the count
    app = Refusing(REFUSALS)
    services = Services(
        payloads=MemoryPayloadStore(),
        state=MemoryState(),
        clock=SystemClock(),
        extra={"telegram": {"poll_timeout": 1}},
    )
    account = TelegramAccount(token=SecretStr(TOKEN), api_server=emulator.url)
    group = await create_group([AccountSpec("demo", account)], services)
    await group.start(app)
    try:
        emulator.user_says(TOKEN, 301, "Когда запись в первый класс?")
        emulator.user_says(TOKEN, 301, "И какие документы нужны?")
        await emulator.wait_until(lambda: len(app.handled) == 2, timeout=30)
        await emulator.wait_until(lambda: emulator.pending_updates(TOKEN) == 0, timeout=30)
    finally:
        await group.stop()
    assert len(app.refused) == REFUSALS and set(app.refused) == {app.handled[0].update_key}
    assert [e.text for e in app.handled] == [
        "Когда запись в первый класс?",
        "И какие документы нужны?",
    ]


class Refusing:
    """An app whose storage refuses the first ``refusals`` updates it is handed."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.refused: list[str] = []
        self.handled: list[Event] = []

    async def __call__(self, event: Event) -> None:
        if len(self.refused) < self.refusals:
            self.refused.append(event.update_key)
            raise StorageUnavailable("OperationalError: attempt to write a readonly database")
        self.handled.append(event)


async def test_max_polls_an_unstored_update_again_however_often(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(max_platform, "_BACKOFF", (0.01,))
    app = Refusing(handover.MAX_ATTEMPTS + 5)
    async with MaxEmulator() as emulator:
        emulator.add_bot("max-faults-token", 5300, username="school17_bot")
        services = Services(
            payloads=MemoryPayloadStore(),
            state=MemoryState(),
            clock=SystemClock(),
            extra={"max": {"poll_timeout": 1}},
        )
        account = MaxAccount(token=SecretStr("max-faults-token"), api_url=emulator.url)
        group = await create_max_group([AccountSpec("school", account)], services)
        await group.start(app)
        try:
            chat = emulator.dialog("max-faults-token", 401).chat_id
            emulator.user_says("max-faults-token", chat, "Когда запись в первый класс?")
            await emulator.wait_until(lambda: len(app.handled) == 1, timeout=30)
            await emulator.wait_until(lambda: emulator.all_committed("max-faults-token"), 30)
        finally:
            await group.stop()
    assert len(app.refused) == app.refusals
    assert set(app.refused) == {app.handled[0].update_key}
