"""What an adapter tells about the message a person replied to: its text, but only when
the bot wrote it. A staff reply to a bot message the bot has no record of (a card posted
again after a crash) is mapped to its ticket by that text; a quoted colleague must not be.
The real adapters (aiogram, vk_api, our MAX client) against the emulators."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bots.core.model import Reply
from tests.emulators.max import MaxEmulator
from tests.test_max_adapter import BOT_ID as MAX_BOT_ID
from tests.test_max_adapter import TOKEN as MAX_TOKEN
from tests.test_max_adapter import Inbox as MaxInbox
from tests.test_max_adapter import dialog as max_dialog
from tests.test_max_adapter import running as max_running
from tests.test_telegram_adapter import GROUP as TG_GROUP
from tests.test_telegram_adapter import TOKEN as TG_TOKEN
from tests.test_telegram_adapter import Rig as TelegramRig
from tests.test_telegram_adapter import emu, rig  # noqa: F401  (fixtures)
from tests.test_vk_adapter import CITIZEN as VK_CITIZEN
from tests.test_vk_adapter import GROUP as VK_GROUP
from tests.test_vk_adapter import Rig as VkRig
from tests.test_vk_adapter import emulator  # noqa: F401  (fixture)
from tests.test_vk_adapter import rig as vk_rig  # noqa: F401  (fixture)


async def test_telegram_gives_the_text_of_the_bots_own_message_only(
    rig: TelegramRig,  # noqa: F811
) -> None:
    sent = await rig.platform.send(
        rig.chat(TG_GROUP), Reply(text="Обращение № 4 · Telegram"), dedup_key="card"
    )
    rig.emu.user_says(TG_TOKEN, TG_GROUP, "Ответ", user_id=1111, reply_to=int(sent[0].message_id))
    event = await rig.next_event()
    assert event.reply_to == sent[0].message_id
    assert event.replied_bot_text == "Обращение № 4 · Telegram"

    colleague = rig.emu.user_says(TG_TOKEN, TG_GROUP, "Обращение № 5 · кто возьмёт?", user_id=1112)
    await rig.next_event()
    rig.emu.user_says(TG_TOKEN, TG_GROUP, "Я", user_id=1111, reply_to=colleague.message_id)
    event = await rig.next_event()
    assert event.reply_to == str(colleague.message_id) and event.replied_bot_text is None


async def test_vk_gives_the_text_of_the_communitys_own_message_only(
    vk_rig: VkRig,  # noqa: F811
) -> None:
    await vk_rig.emulator.user_says(VK_GROUP, VK_CITIZEN, "Вопрос")
    question = await vk_rig.next_event()
    sent = await vk_rig.platform.send(
        vk_rig.chat(), Reply(text="Обращение № 4 · ВКонтакте"), dedup_key="card"
    )
    await vk_rig.emulator.user_says(VK_GROUP, VK_CITIZEN, "Ответ", reply_to=int(sent[0].message_id))
    event = await vk_rig.next_event()
    assert event.reply_to == sent[0].message_id
    assert event.replied_bot_text == "Обращение № 4 · ВКонтакте"

    assert question.message_id is not None
    await vk_rig.emulator.user_says(VK_GROUP, VK_CITIZEN, "Ещё", reply_to=int(question.message_id))
    event = await vk_rig.next_event()
    assert event.reply_to == question.message_id and event.replied_bot_text is None


@pytest.fixture
async def max_emulator() -> AsyncIterator[MaxEmulator]:
    async with MaxEmulator() as running_emulator:
        running_emulator.add_bot(MAX_TOKEN, MAX_BOT_ID, username="school17_bot")
        yield running_emulator


async def test_max_gives_the_text_of_the_bots_own_message_only(
    max_emulator: MaxEmulator,
) -> None:
    bot_api = max_emulator
    inbox = MaxInbox()
    async with max_running(bot_api, inbox) as platform:
        chat = max_dialog(bot_api)
        (card,) = await platform.send(chat, Reply(text="Обращение № 4 · MAX"), dedup_key="card")
        bot_api.user_says(MAX_TOKEN, int(chat.chat_id), "Ответ", reply_to=card.message_id)
        event = await inbox.next()
        assert event.reply_to == card.message_id
        assert event.replied_bot_text == "Обращение № 4 · MAX"

        own = bot_api.user_says(MAX_TOKEN, int(chat.chat_id), "Обращение № 5?")
        await inbox.next()
        bot_api.user_says(MAX_TOKEN, int(chat.chat_id), "Ещё", reply_to=own.mid)
        event = await inbox.next()
        assert event.reply_to == own.mid and event.replied_bot_text is None
