"""What a citizen can send that used to break the update path (issue 19, item 10): a NUL
character (PostgreSQL refuses U+0000 in text), a forged button whose number overflows a
database integer, and a message that is neither text nor media (a dice)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bots.core.model import User
from handlers.config import load_config
from runtime.app import App
from tests.emulators.telegram import TelegramEmulator
from tests.faults.rig import ANSWER, QUESTION, SCHOOL, write_config
from tests.pg import fresh_schema
from tests.running import running_app as running

ERROR = "что-то пошло не так"
NON_TEXT = "Я понимаю только текст"
HUGE = "9" * 30


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emu:
        yield emu


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_nul_character_in_a_question_and_a_name_still_gets_the_answer(
    backend: str, example_config: Path
) -> None:
    async def ask(database: str | None) -> str:
        app = App(load_config(example_config), local=True, database=database)
        await app.start()
        try:
            local = app.local_platform("school-17")
            await local.user_says(
                "555", QUESTION.replace(" ", " \x00", 1), user=User("555", "Ан\x00на", "\x00")
            )
            await app.settle()
            return "\n".join(m.text for m in local.messages("555"))
        finally:
            await app.stop()

    if backend == "sqlite":
        said = await ask(None)
    else:
        async with fresh_schema() as url:
            said = await ask(url)
    assert ANSWER in said and ERROR not in said


@pytest.mark.parametrize(
    "data",
    [
        f"fb:1:{HUGE}:first-grade-enrollment",
        f"fb:0:-{HUGE}:x",
        f"faq:a:{HUGE}",
        f"esc:x:{HUGE}",
        f"priv:{HUGE}",
        f"sub:{HUGE}",
        "x" * 5000,
    ],
)
async def test_a_forged_button_with_an_oversized_number_is_a_stale_button(
    data: str,
    tmp_path: Path,
    emulator: TelegramEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = write_config(tmp_path, emulator, monkeypatch)
    async with running(config) as app:
        emulator.user_says(SCHOOL, 777, "/start")
        await emulator.wait_until(lambda: len(emulator.bot_messages(SCHOOL, 777)) >= 1)
        await app.settle()
        caplog.clear()
        before = len(emulator.bot_messages(SCHOOL, 777))
        emulator.bot(SCHOOL).callbacks["forged-1"] = (777, 1)
        emulator.push_update(
            SCHOOL,
            {
                "callback_query": {
                    "id": "forged-1",
                    "from": {"id": 777, "is_bot": False, "first_name": "Анна"},
                    "chat_instance": "ci777",
                    "message": {
                        "message_id": 1,
                        "date": 0,
                        "chat": {"id": 777, "type": "private", "first_name": "Анна"},
                        "text": "…",
                    },
                    "data": data,
                }
            },
        )
        await emulator.wait_until(
            lambda: any(q == "forged-1" for q, _ in emulator.answered(SCHOOL))
        )
        await app.settle()
        said = emulator.bot_messages(SCHOOL, 777)[before:]
    assert not any(ERROR in m.text for m in said)
    tracebacks = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
    assert tracebacks == [], [r.getMessage() for r in tracebacks]


async def test_a_dice_gets_a_reply(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, emulator, monkeypatch)
    async with running(config) as app:
        emulator._chat(SCHOOL, 778)  # the private chat the bot answers in
        emulator.push_update(
            SCHOOL,
            {
                "message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": 778, "type": "private", "first_name": "Анна"},
                    "from": {"id": 778, "is_bot": False, "first_name": "Анна"},
                    "dice": {"emoji": "🎲", "value": 4},
                }
            },
        )
        await emulator.wait_until(
            lambda: any(NON_TEXT in m.text for m in emulator.bot_messages(SCHOOL, 778))
        )
        await app.settle()
