"""Storage that refuses writes (a full or read-only disk) while citizens write and while
replies are going out: nothing is lost, nothing is sent twice, /healthz says so, and the
bot resumes by itself once storage takes writes again (issue 19, items 1 and 2).

The whole app runs against the Telegram emulator (real aiogram over HTTP); storage is the
real SQLite file made to refuse writes (tests/faults/rig.py); time is the app's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bots.core.clock import ManualClock
from runtime import observability
from tests.emulators.telegram import Message, TelegramEmulator
from tests.faults.rig import (
    ANSWER,
    QUESTION,
    SCHOOL,
    ReadOnlyStorage,
    count,
    storage_back,
    storage_down_for,
    until,
    write_config,
)
from tests.running import running_app as running


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emu:
        yield emu


@pytest.mark.parametrize("outage", [20, 180], ids=["20s", "3min"])
async def test_questions_asked_while_storage_refuses_writes_are_answered_once_after(
    outage: int, tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock()
    config = write_config(tmp_path, emulator, monkeypatch)
    citizens = [601, 602, 603]
    async with running(config, clock=clock) as app:
        disk = ReadOnlyStorage(app)
        disk.fail()
        for chat in citizens:
            emulator.user_says(SCHOOL, chat, QUESTION)
        watch = app.storage_watch
        assert watch is not None
        await until(lambda: _true(not watch.healthy), app, what="the app noticed")

        await storage_down_for(app, clock, outage / 2)
        emulator.user_says(SCHOOL, 604, QUESTION)  # one more in the middle of the outage
        await storage_down_for(app, clock, outage / 2)

        # nothing answered, nothing confirmed to Telegram (it keeps the updates), unhealthy
        assert all(emulator.bot_messages(SCHOOL, c) == [] for c in [*citizens, 604])
        assert emulator.pending_updates(SCHOOL) == 4
        healthy, body = await observability.health(app)
        assert not healthy and body["checks"]["database"] is False

        disk.heal()
        await storage_back(app, clock)
        await emulator.wait_until(
            lambda: all(count(emulator.bot_messages(SCHOOL, c), ANSWER) for c in [*citizens, 604]),
            timeout=30,
        )
        await app.settle()
        assert emulator.pending_updates(SCHOOL) == 0
        assert (await observability.health(app))[0]
    for chat in [*citizens, 604]:
        said = emulator.bot_messages(SCHOOL, chat)
        assert count(said, ANSWER) == 1, [m.text[:60] for m in said]
        assert len({m.text for m in said}) == len(said)  # no message twice


async def test_a_reply_whose_delivery_cannot_be_recorded_is_not_sent_again(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The send works, recording it fails: the sender stops (no relaunch loop), reports
    unhealthy, and once storage is back records what it delivered and goes on."""
    clock = ManualClock()
    config = write_config(tmp_path, emulator, monkeypatch)
    async with running(config, clock=clock) as app:
        disk = ReadOnlyStorage(app)

        def fail_once_sent(message: Message) -> None:
            if message.chat_id == 701 and ANSWER in message.text:
                disk.fail()  # the answer left; the app cannot record it

        emulator.message_listeners.append(fail_once_sent)
        emulator.user_says(SCHOOL, 701, QUESTION)
        watch = app.storage_watch
        assert watch is not None
        await emulator.wait_until(lambda: count(emulator.bot_messages(SCHOOL, 701), ANSWER) > 0)
        assert app.sender is not None and app.storage is not None
        storage = app.storage
        # no update follows for the record to go in with: the sender writes it itself
        # once it has waited record_within (app time)
        await until(lambda: _true(storage.writes_waiting > 0), app, what="the record waits")
        clock.advance(app.sender.record_within)
        await until(lambda: _true(not watch.healthy), app, what="the app noticed")
        await storage_down_for(app, clock, 30)
        assert not app.sender.busy
        assert count(emulator.bot_messages(SCHOOL, 701), ANSWER) == 1
        assert not (await observability.health(app))[0]

        emulator.message_listeners.clear()
        disk.heal()
        await storage_back(app, clock)
        emulator.user_says(SCHOOL, 702, QUESTION)  # a new citizen is answered again
        await emulator.wait_until(lambda: count(emulator.bot_messages(SCHOOL, 702), ANSWER) > 0)
        await app.settle()
        assert app.storage is not None
        assert await app.storage.outbox.pending_count() == 0
    assert count(emulator.bot_messages(SCHOOL, 701), ANSWER) == 1


async def _true(value: bool) -> bool:
    return value
