"""A messenger that fails for an hour, and one send that hangs (issue 19, items 6 and 9).

The whole app on the Telegram emulator; the emulator answers every sendMessage with 502
for an hour of the app's (injected) clock. Nothing is given up: when Telegram works again
every citizen's reply and every ticket card arrives exactly once, and the staff get one
summary of what was delayed. A send that hangs in one chat does not hold up another
chat's retry."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bots.core.clock import ManualClock
from runtime.app import App
from tests.emulators.telegram import TelegramEmulator
from tests.faults.rig import (
    ANSWER,
    QUESTION,
    SCHOOL,
    STAFF_CHAT,
    UNCOVERED,
    count,
    until,
    write_config,
)
from tests.running import running_app as running

SUMMARY = "не уходили"


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emu:
        yield emu


async def _quiet(app: App, clock: ManualClock) -> bool:
    """Nothing in flight and nothing due: the sender waits for its next retry."""
    assert app.sender is not None and app.storage is not None
    if app.sender.busy:
        return False
    return not await app.storage.outbox.due_all(clock.now())


async def _run_clock(app: App, clock: ManualClock, seconds: float, step: float = 60.0) -> None:
    passed = 0.0
    while passed < seconds:
        clock.advance(step)
        passed += step
        assert app.sender is not None
        app.sender.wake()
        await until(lambda: _quiet(app, clock), app, what="the sender went quiet")


async def test_after_an_hour_long_outage_every_reply_and_card_arrives_once(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock()
    config = write_config(tmp_path, emulator, monkeypatch)
    async with running(config, clock=clock) as app:
        emulator.fail("sendMessage", 502, times=10**9)
        emulator.user_says(SCHOOL, 801, QUESTION)
        emulator.user_says(SCHOOL, 802, UNCOVERED)  # a ticket: a card for the staff
        emulator.user_says(SCHOOL, 803, QUESTION)
        assert app.storage is not None
        storage = app.storage
        await until(
            lambda: _at_least(storage.outbox.pending_count(), 5), app, what="replies queued"
        )
        await _run_clock(app, clock, 3600)
        assert emulator.bot_messages(SCHOOL, 801) == []
        assert emulator.bot_messages(SCHOOL, STAFF_CHAT) == []
        failed = await storage.db.fetchval("SELECT COUNT(*) FROM outbox WHERE status='failed'")
        assert failed == 0  # nothing given up

        emulator.faults.clear()
        await _run_clock(app, clock, 300, step=30)
        await app.settle()
    for chat in (801, 803):
        said = emulator.bot_messages(SCHOOL, chat)
        assert count(said, ANSWER) == 1, [m.text[:50] for m in said]
        assert len({m.text for m in said}) == len(said)
    citizen = emulator.bot_messages(SCHOOL, 802)
    assert len(citizen) == len({m.text for m in citizen}) >= 1
    staff = emulator.bot_messages(SCHOOL, STAFF_CHAT)
    cards = [m for m in staff if UNCOVERED in m.text]
    assert len(cards) == 1, [m.text[:80] for m in staff]
    summaries = [m for m in staff if SUMMARY in m.text]
    assert len(summaries) == 1, [m.text[:80] for m in staff]
    assert "Telegram" in summaries[0].text
    assert re.search(r"\((60|61) мин", summaries[0].text), summaries[0].text


async def test_a_hung_send_does_not_hold_up_another_chats_retry(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock()
    config = write_config(tmp_path, emulator, monkeypatch)
    async with running(config, clock=clock) as app:
        assert app.storage is not None
        storage = app.storage
        release = emulator.hold(901)  # every send to 901 hangs
        emulator.fail("sendMessage", 502, chat_id=902)  # 902's first send fails once
        emulator.user_says(SCHOOL, 901, QUESTION)
        await emulator.wait_until(lambda: emulator.calls["sendMessage"] >= 1)
        emulator.user_says(SCHOOL, 902, QUESTION)

        async def retry_scheduled() -> bool:
            row = await storage.db.fetchone(
                "SELECT attempts FROM outbox WHERE chat_id='902' ORDER BY id LIMIT 1"
            )
            return (
                row is not None
                and row["attempts"] == 1
                and app.sender is not None
                and (("school-17", "telegram", "902") not in app.sender._lanes)
            )

        await until(retry_scheduled, app, what="902 retry scheduled")
        clock.advance(2)  # the retry is due (1 s backoff); 901's send still hangs
        await emulator.wait_until(
            lambda: count(emulator.bot_messages(SCHOOL, 902), ANSWER) == 1, timeout=20
        )
        assert emulator.bot_messages(SCHOOL, 901) == []
        release.set()
        await emulator.wait_until(
            lambda: count(emulator.bot_messages(SCHOOL, 901), ANSWER) == 1, timeout=20
        )
        await app.settle()
    assert count(emulator.bot_messages(SCHOOL, 901), ANSWER) == 1
    assert count(emulator.bot_messages(SCHOOL, 902), ANSWER) == 1


async def _at_least(value: object, floor: int) -> bool:
    return int(await value) >= floor  # type: ignore[misc]
