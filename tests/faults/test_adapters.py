"""The adapters never skip an update because the app could not store it (issue 19, item 1):
the app raises NotStored only when it gives up waiting for storage (a stop), and an adapter
may also meet storage trouble itself (reading a stored button payload). Either way the
update stays unconfirmed and comes again, however often; only a poison update (the app's
handling fails the same way every time) is skipped after MAX_ATTEMPTS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from bots.core.adapters import AccountSpec, Services
from bots.core.clock import SystemClock
from bots.core.model import Event
from bots.core.payloads import MemoryPayloadStore
from bots.telegram import create_group
from bots.telegram import group as telegram_group
from handlers.config import TelegramAccount
from storage import StorageUnavailable
from tests.contract.harness_telegram import MemoryState
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
    refused: list[str] = []
    handled: list[Event] = []

    async def on_event(event: Event) -> None:
        if len(refused) < REFUSALS:
            refused.append(event.update_key)
            raise StorageUnavailable("OperationalError: database or disk is full")
        handled.append(event)

    services = Services(
        payloads=MemoryPayloadStore(),
        state=MemoryState(),
        clock=SystemClock(),
        extra={"telegram": {"poll_timeout": 1}},
    )
    account = TelegramAccount(token=SecretStr(TOKEN), api_server=emulator.url)
    group = await create_group([AccountSpec("demo", account)], services)
    await group.start(on_event)
    try:
        emulator.user_says(TOKEN, 301, "Когда запись в первый класс?")
        emulator.user_says(TOKEN, 301, "И какие документы нужны?")
        await emulator.wait_until(lambda: len(handled) == 2, timeout=30)
        await emulator.wait_until(lambda: emulator.pending_updates(TOKEN) == 0, timeout=30)
    finally:
        await group.stop()
    assert len(refused) == REFUSALS and set(refused) == {handled[0].update_key}
    assert [e.text for e in handled] == ["Когда запись в первый класс?", "И какие документы нужны?"]
