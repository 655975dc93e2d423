"""The shared bot on MAX: one MAX bot for the school and the clinic, chosen by the deep
link's ``start`` payload (``bot_started``) or the picker; our MAX client against the MAX
emulator, the app started from a config file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.app import App
from tests.emulators.max import MaxEmulator, MaxMessage
from tests.running import running_app
from tests.test_shared_bot_e2e import (
    CLINIC_ANSWER,
    CLINIC_Q,
    CLINIC_STAFF,
    SCHOOL_ANSWER,
    SCHOOL_Q,
    SCHOOL_STAFF,
)
from tests.test_shared_bot_e2e import write_config as telegram_config

TOKEN = "max-district-token"


@pytest.fixture
async def emulator() -> AsyncIterator[MaxEmulator]:
    async with MaxEmulator() as emu:
        emu.add_bot(TOKEN, 9100, username="kursk_district")
        emu.open_group(TOKEN, SCHOOL_STAFF, "Школа 17: сотрудники")
        emu.open_group(TOKEN, CLINIC_STAFF, "Поликлиника 3: сотрудники")
        yield emu


def write_config(tmp_path: Path, emulator: MaxEmulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The Telegram test's two institutions, with the shared bot and staff on MAX."""
    path = telegram_config(tmp_path, emulator, monkeypatch)  # type: ignore[arg-type]
    text = path.read_text(encoding="utf-8").replace("platform: telegram", "platform: max")
    text = text.replace(
        f'telegram: {{token: "${{TG_DISTRICT}}", api_server: "{emulator.url}"}}',
        f'max: {{token: "{TOKEN}", api_url: "{emulator.url}"}}',
    )
    path.write_text(text, encoding="utf-8")
    return path


async def until(emulator: MaxEmulator, app: App, chat: int, count: int) -> list[MaxMessage]:
    await emulator.wait_until(lambda: len(emulator.bot_messages(TOKEN, chat)) >= count, 60)
    await app.settle()
    return emulator.bot_messages(TOKEN, chat)


async def ask(emulator: MaxEmulator, app: App, chat: int, text: str) -> str:
    before = len(emulator.bot_messages(TOKEN, chat))
    emulator.user_says(TOKEN, chat, text)
    return "\n".join(m.text for m in (await until(emulator, app, chat, before + 1))[before:])


async def test_max_deep_link_and_picker_choose_the_institution(
    tmp_path: Path, emulator: MaxEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, emulator, monkeypatch)
    extra = {"max": {"poll_timeout": 5}}
    async with running_app(config, services_extra=extra) as app:
        b = emulator.start_bot(TOKEN, 702, payload="polyclinic-3")
        said = await until(emulator, app, b, 1)
        assert "поликлиника № 3" in said[0].text
        assert CLINIC_ANSWER in await ask(emulator, app, b, CLINIC_Q)
        c = emulator.start_bot(TOKEN, 703)
        picker = (await until(emulator, app, c, 1))[-1]
        assert "Выберите учреждение" in picker.text
        emulator.press(TOKEN, c, picker.mid, "школа")
        await until(emulator, app, c, 2)
        assert SCHOOL_ANSWER in await ask(emulator, app, c, SCHOOL_Q)
        await ask(emulator, app, b, "/operator не могу дозвониться до регистратуры")
        cards = await until(emulator, app, CLINIC_STAFF, 1)
        assert "регистратуры" in cards[0].text
        assert emulator.bot_messages(TOKEN, SCHOOL_STAFF) == []
