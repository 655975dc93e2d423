"""A staff reply to the first copy of a card that was posted twice reaches its ticket.

Telegram has no idempotency key: when the process dies after a card reached Telegram but
before the bot recorded its message id, the card is posted again after the restart, and
the first copy is a message the bot knows nothing about. A staff member who replies to that
first copy must still reach the citizen, exactly once. The reply carries the replied-to
text (the bot's own card, "Обращение № 1 · ..."), and the ticket number in it is enough.

This runs ``python -m runtime.cli run`` as a real process and SIGKILLs it from inside the
emulator's sendMessage, the moment the card is stored there and before the bot hears back.
The citizen is on VK, where random_id makes every repeated send to the citizen harmless.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.emulators.telegram import Message
from tests.processes import priemnaya_run, tail
from tests.test_escalation_e2e import (
    ANSWER,
    CITIZEN,
    ESCALATED,
    TG_MEMBER,
    TG_STAFF_CHAT,
    TG_TOKEN,
    UNCOVERED,
    VK_GROUP,
    TelegramSide,
    VkSide,
    World,
    cards,
    count,
    stop_cleanly,
    stored_tickets,
    until,
    vk_polling,
    world,  # noqa: F401  (the fixture)
    write_config,
)


async def test_sigkill_as_the_card_reaches_telegram_then_a_reply_to_the_first_copy(
    world: World,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    telegram, vk = world.telegram, world.vk
    citizen, staff = VkSide(vk), TelegramSide(telegram)
    config = write_config(tmp_path, monkeypatch, telegram, vk, staff_on="telegram")
    log = tmp_path / "bot.log"

    async with priemnaya_run(config, log) as first:
        killed: list[Message] = []

        def kill_on_the_card(message: Message) -> None:
            # runs inside the emulator's sendMessage: the card is stored, the reply to the
            # bot not yet written, so the bot never learns the first copy's message id
            if not killed and message.chat_id == TG_STAFF_CHAT and "Обращение №" in message.text:
                killed.append(message)
                first.send_signal(signal.SIGKILL)

        telegram.message_listeners.append(kill_on_the_card)
        await vk_polling(vk, log)
        await citizen.citizen_says(UNCOVERED)
        await until(staff, lambda: bool(killed), "the card reaching Telegram", log)
        await first.wait()
        telegram.message_listeners.remove(kill_on_the_card)
    first_copy = killed[0]
    assert len(cards(staff)) == 1

    polls = vk.communities[VK_GROUP].polls
    async with priemnaya_run(config, log) as second:
        await vk_polling(vk, log, since=polls)
        await until(staff, lambda: len(cards(staff)) == 2, "the card posted again", log)
        await until(
            citizen, lambda: count(citizen.citizen_sees(), ESCALATED) >= 1, "the notice", log
        )
        # the staff member replies to the first copy, which the bot never recorded
        telegram.user_says(
            TG_TOKEN,
            TG_STAFF_CHAT,
            ANSWER,
            user_id=TG_MEMBER,
            first_name="Анна",
            reply_to=first_copy.message_id,
        )
        await until(citizen, lambda: count(citizen.citizen_sees(), ANSWER) >= 1, "answer", log)
        await until(staff, staff.caught_up, "the reply handled", log)
        await stop_cleanly(second, log)

    seen = citizen.citizen_sees()
    assert count(seen, ANSWER) == 1, (seen, tail(log))
    assert count(seen, ESCALATED) == 1, seen
    copies = cards(staff)
    assert len(copies) == 2 and copies[0].id == first_copy.message_id
    assert all("Обращение № 1 ·" in c.text for c in copies)
    tickets = await stored_tickets(config)
    assert [(t.number, t.status) for t in tickets] == [(1, "answered")]
    assert str(CITIZEN) == tickets[0].chat_id
