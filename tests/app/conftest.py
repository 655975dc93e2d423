"""Fixtures of the app tests that run the product against the Telegram emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.emulators.telegram import TelegramEmulator


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emu:
        yield emu
