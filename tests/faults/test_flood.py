"""One citizen's flood must not hold up the staff chat (issue 19, item 4).

Each follow-up of a ticket changes its card. Telegram lets a bot post 20 messages a minute
to a group (a burst of 20, then one every 3 s), so 500 follow-ups used to queue 500 card
edits, about 25 minutes of the staff chat, and the next citizen's new card waited behind
them. An edit replaces the whole card, so a card has at most one edit waiting, carrying its
latest state: the new card goes out after at most a couple of staff-chat messages.

The sends are paced by the adapter's real limiter (Telegram's rates); the delay is shown as
the number of staff-chat messages that went before the new card, each worth 3 s of the
group's pace (a count, not a wall-clock measurement).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bots.core.clock import SystemClock
from bots.core.model import ChatRef, Reply
from bots.telegram import TelegramRates
from runtime.app import App
from storage import Storage
from tests.emulators.telegram import TelegramEmulator
from tests.faults.rig import SCHOOL, STAFF_CHAT, UNCOVERED, until, write_config
from tests.pg import fresh_schema
from tests.running import running_app as running

FLOOD = 500
SECOND_QUESTION = "у соседа по парте пропал телефон, что делать"
#: seconds between two messages to a group once its burst is spent (20 a minute)
GROUP_PACE = 60 / TelegramRates().group_chat[0]


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emu:
        yield emu


async def ticket_messages(app: App, number: int) -> int:
    assert app.storage is not None
    ticket = await app.storage.tickets.by_number("school-17", number)
    if ticket is None:
        return 0
    return len(await app.storage.tickets.messages(ticket.id, limit=FLOOD + 10))


async def test_a_500_message_flood_does_not_delay_another_citizens_card(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, emulator, monkeypatch)
    staff_calls: list[tuple[str, str]] = []

    def to_staff_chat(method: str, params: dict[str, Any]) -> None:
        if method in ("sendMessage", "editMessageText") and str(params.get("chat_id")) == str(
            STAFF_CHAT
        ):
            staff_calls.append((method, str(params.get("text", ""))))

    emulator.listeners.append(to_staff_chat)
    async with running(config) as app:
        emulator.user_says(SCHOOL, 801, UNCOVERED)
        await emulator.wait_until(
            lambda: any(UNCOVERED in m.text for m in emulator.bot_messages(SCHOOL, STAFF_CHAT))
        )
        for number in range(1, FLOOD + 1):
            emulator.user_says(SCHOOL, 801, f"{UNCOVERED}, дополнение {number}")

        async def flood_handled() -> bool:
            return await ticket_messages(app, 1) == FLOOD + 1

        await until(flood_handled, app, timeout=240, what="the flood joined the ticket")
        assert app.storage is not None
        waiting = await app.storage.outbox.pending_count()
        before = len(staff_calls)
        started = time.monotonic()
        emulator.user_says(SCHOOL, 802, SECOND_QUESTION)
        await emulator.wait_until(
            lambda: any(SECOND_QUESTION in text for _, text in staff_calls[before:]),
            timeout=120,
        )
        took = time.monotonic() - started
        ahead = next(
            i for i, (_, text) in enumerate(staff_calls[before:]) if SECOND_QUESTION in text
        )
        # the flood's card shows its latest state in the end
        card = next(m for m in emulator.bot_messages(SCHOOL, STAFF_CHAT) if UNCOVERED in m.text)
        await emulator.wait_until(lambda: f"дополнение {FLOOD}" in card.text, timeout=60)
    edits = sum(method == "editMessageText" for method, _ in staff_calls)
    print(
        f"{FLOOD} follow-ups: {edits} card edits, {waiting} message(s) queued when the second"
        f" citizen asked; {ahead} staff-chat message(s) before the new card"
        f" (<= {ahead * GROUP_PACE:.0f} s at 20/min), {took:.1f} s here"
    )
    assert ahead * GROUP_PACE <= 10, staff_calls[before:]
    assert edits < FLOOD // 5


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_an_edit_replaced_while_in_flight_goes_again_with_the_latest_text(
    backend: str, tmp_path: Path
) -> None:
    async def scenario(target: str) -> None:
        storage = await Storage.open(target, SystemClock().now)
        try:
            outbox, now = storage.outbox, SystemClock().now()
            chat = ChatRef("telegram", str(STAFF_CHAT))
            edit: dict[str, Any] = dict(
                institution="school-17",
                chat=chat,
                now=now,
                kind="edit",
                ref_kind="card",
                ref_id="7",
            )
            first = await outbox.enqueue(reply=Reply("состояние 1"), dedup_key="e1", **edit)
            in_flight = await outbox.get(first or 0)
            assert in_flight is not None
            # while the sender edits the card with state 1, two newer states arrive
            for n in (2, 3):
                again = await outbox.enqueue(
                    reply=Reply(f"состояние {n}"), dedup_key=f"e{n}", **edit
                )
                assert again == first  # the one pending edit carries them
            assert not await outbox.mark_sent(in_flight.id, now, in_flight.stored_reply)
            latest = await outbox.get(in_flight.id)
            assert latest is not None and latest.status == "pending"
            assert latest.reply.text == "состояние 3"
            assert await outbox.mark_sent(latest.id, now, latest.stored_reply)
            assert await outbox.pending_count() == 0
        finally:
            await storage.close()

    if backend == "sqlite":
        await scenario(str(tmp_path / "bot.sqlite3"))
    else:
        async with fresh_schema() as url:
            await scenario(url)
