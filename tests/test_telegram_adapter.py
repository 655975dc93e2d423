"""The Telegram adapter on its own (no app): real aiogram against the Bot API emulator.
What the Platform contract suite does not cover: error translation, forum topics, reply-to,
membership changes, the pace of sending, acknowledging updates only after they were handled,
switching from webhook back to polling, and a clean stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiogram.types import InlineKeyboardButton, Update
from pydantic import SecretStr

from bots.core.adapters import AccountSpec, Services
from bots.core.clock import SystemClock
from bots.core.model import Button, ChatKind, ChatRef, Event, Reply, SentMessage
from bots.core.payloads import MemoryPayloadStore
from bots.core.platform import PermanentSendError, PlatformError, RecipientUnreachable
from bots.telegram import TelegramGroup, TelegramPlatform, TelegramRates, create_group
from bots.telegram.account import TelegramAccount
from bots.telegram.convert import message_event, plain_text_event
from tests.contract.harness_telegram import MemoryState
from tests.emulators.telegram import RateRules, TelegramEmulator

TOKEN = "720001:adapter-test-token"
FAST = TelegramRates().scaled(100)
USER = 301
GROUP = -1_000_300


@dataclass
class Rig:
    emu: TelegramEmulator
    group: TelegramGroup
    platform: TelegramPlatform
    events: asyncio.Queue[Event]

    async def next_event(self) -> Event:
        return await asyncio.wait_for(self.events.get(), 10)

    def chat(self, chat_id: int, thread: str | None = None) -> ChatRef:
        return ChatRef("telegram", str(chat_id), thread)


Handler = Callable[[Event], Awaitable[None]]


async def make_rig(
    emu: TelegramEmulator, *, rates: TelegramRates = FAST, on_event: Handler | None = None
) -> Rig:
    services = Services(
        payloads=MemoryPayloadStore(),
        state=MemoryState(),
        clock=SystemClock(),
        extra={"telegram": {"rates": rates, "poll_timeout": 5}},
    )
    account = TelegramAccount(token=SecretStr(TOKEN), api_server=emu.url)
    group = await create_group([AccountSpec("demo", account)], services)
    platform = group.platforms["demo"]
    assert isinstance(platform, TelegramPlatform)
    events: asyncio.Queue[Event] = asyncio.Queue()
    await group.start(on_event or events.put)
    return Rig(emu, group, platform, events)


@pytest.fixture
async def emu() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emulator:
        emulator.user_says(TOKEN, USER, "/start")  # the private chat exists
        emulator.open_group(TOKEN, GROUP, "Сотрудники", forum=True)
        yield emulator


@pytest.fixture
async def rig(emu: TelegramEmulator) -> AsyncIterator[Rig]:
    made = await make_rig(emu)
    assert (await made.next_event()).text == "/start"
    try:
        yield made
    finally:
        await made.group.stop()


# -- receiving -----------------------------------------------------------------------------


async def test_a_start_link_payload_and_the_sender_reach_the_event(rig: Rig) -> None:
    rig.emu.user_says(TOKEN, USER, "/start school17-web", first_name="Мария")
    event = await rig.next_event()
    assert event.start_payload == "school17-web"
    assert event.user.first_name == "Мария" and event.user.id == str(USER)
    assert event.update_key.isdigit()


async def test_a_topic_message_carries_its_thread_and_is_no_reply(rig: Rig) -> None:
    topic = rig.chat(GROUP, await rig.platform.create_topic(rig.chat(GROUP), "Заявка №7"))
    assert topic.thread_id is not None and topic.thread_id.isdigit()
    sent = await rig.platform.send(topic, Reply(text="Карточка заявки"), dedup_key="card")
    card = rig.emu.bot_messages(TOKEN, GROUP)[-1]
    assert card.thread_id == int(topic.thread_id) and card.text == "Карточка заявки"

    rig.emu.user_says(TOKEN, GROUP, "Взяла", user_id=1111, thread_id=int(topic.thread_id))
    event = await rig.next_event()
    assert event.chat == topic and event.chat_kind is ChatKind.GROUP
    assert event.reply_to is None  # Telegram's implicit reply to the topic root is not one

    rig.emu.user_says(
        TOKEN,
        GROUP,
        "Ответ",
        user_id=1111,
        thread_id=int(topic.thread_id),
        reply_to=int(sent[0].message_id),
    )
    event = await rig.next_event()
    assert event.reply_to == sent[0].message_id and event.chat.thread_id == topic.thread_id


async def test_blocking_and_unblocking_become_membership_events(rig: Rig) -> None:
    rig.emu.block(TOKEN, USER)
    blocked = await rig.next_event()
    assert blocked.membership == "blocked" and blocked.text is None and blocked.callback is None
    assert blocked.chat.chat_id == str(USER)
    rig.emu.unblock(TOKEN, USER)
    assert (await rig.next_event()).membership == "unblocked"


async def test_a_photo_without_caption_is_an_empty_text_and_service_messages_are_skipped(
    rig: Rig,
) -> None:
    rig.emu.push_update(
        TOKEN,
        {
            "message": {
                "message_id": 900,
                "date": 1_700_000_000,
                "chat": {"id": GROUP, "type": "supergroup", "title": "Сотрудники"},
                "from": {"id": 1111, "is_bot": False, "first_name": "Ирина"},
                "new_chat_members": [{"id": 1112, "is_bot": False, "first_name": "Олег"}],
            }
        },
    )
    rig.emu.push_update(
        TOKEN,
        {
            "message": {
                "message_id": 901,
                "date": 1_700_000_000,
                "chat": {"id": USER, "type": "private", "first_name": "Анна"},
                "from": {"id": USER, "is_bot": False, "first_name": "Анна"},
                "photo": [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}],
            }
        },
    )
    event = await rig.next_event()
    assert event.message_id == "901" and event.text == ""
    assert rig.events.empty()


async def test_an_update_is_confirmed_only_after_it_was_handled(emu: TelegramEmulator) -> None:
    seen: list[Event] = []
    handled = asyncio.Event()

    async def flaky(event: Event) -> None:
        seen.append(event)
        if len(seen) == 2:  # the /start of the fixture, then the first try of the question
            raise RuntimeError("database is locked")
        if event.text == "вопрос":
            handled.set()

    rig = await make_rig(emu, on_event=flaky)
    try:
        emu.user_says(TOKEN, USER, "вопрос")
        await asyncio.wait_for(handled.wait(), 10)
        assert [e.text for e in seen] == ["/start", "вопрос", "вопрос"]
        assert seen[1].update_key == seen[2].update_key
        await emu.wait_until(lambda: emu.pending_updates(TOKEN) == 0)
    finally:
        await rig.group.stop()


async def test_updates_of_one_chat_are_handled_in_order(rig: Rig) -> None:
    """Also when some are replies (read as aiogram's Update) among plain texts (read
    straight into their Event): one chat is one line either way."""
    first = rig.emu.user_says(TOKEN, USER, "сообщение 0")
    for n in range(1, 20):
        rig.emu.user_says(
            TOKEN, USER, f"сообщение {n}", reply_to=first.message_id if n % 3 else None
        )
    events = [await rig.next_event() for _ in range(20)]
    assert [e.text for e in events] == [f"сообщение {n}" for n in range(20)]
    assert [e.reply_to is not None for e in events] == [n % 3 != 0 for n in range(20)]


async def test_a_webhook_left_over_is_removed_when_polling(emu: TelegramEmulator) -> None:
    emu.bot(TOKEN).webhook_url = "https://old.example/hook"
    rig = await make_rig(emu)
    try:
        assert (await rig.next_event()).text == "/start"
        assert emu.bot(TOKEN).webhook_url == ""
    finally:
        await rig.group.stop()


def _text_update(text: str, chat: dict[str, Any], **fields: Any) -> dict[str, Any]:
    message = {"message_id": 42, "date": 1_700_000_000, "chat": chat, "text": text, **fields}
    return {"update_id": 7001, "message": {k: v for k, v in message.items() if v is not None}}


_PRIVATE = {"id": USER, "type": "private", "first_name": "Анна"}
_FORUM = {"id": GROUP, "type": "supergroup", "title": "Сотрудники", "is_forum": True}
_ANNA = {"id": USER, "is_bot": False, "first_name": "Анна", "last_name": "Ли", "username": "al"}
_IRINA = {"id": 1111, "is_bot": False, "first_name": "Ирина"}


@pytest.mark.parametrize(
    "update",
    [
        _text_update("Когда приём в 1 класс?", _PRIVATE, **{"from": _ANNA}),
        _text_update("/start school17-web", _PRIVATE, **{"from": _IRINA}),
        _text_update("/start@demo_bot", _PRIVATE, **{"from": _IRINA}),
        _text_update(
            "Взяла", _FORUM, is_topic_message=True, message_thread_id=77, **{"from": _IRINA}
        ),
        # a thread id outside a forum (a reply chain in an ordinary group) is no topic
        _text_update(
            "Всем привет",
            {"id": -300, "type": "group", "title": "Родители"},
            message_thread_id=12,
            **{"from": _IRINA},
        ),
        # an anonymous admin: no sender, the chat speaks
        _text_update(
            "Объявление", _FORUM, sender_chat={"id": GROUP, "type": "supergroup", "title": "С"}
        ),
        _text_update(
            "Пост",
            {"id": -1_000_400, "type": "channel", "title": "Новости"},
            entities=[{"type": "bold", "offset": 0, "length": 4}],
        ),
    ],
)
def test_a_webhook_text_message_becomes_the_event_aiogram_s_update_gives(
    update: dict[str, Any],
) -> None:
    """The webhook reads a text message straight from its JSON (convert.plain_text_event):
    the Event must be the one the general way through aiogram's Update makes."""
    general = Update.model_validate(update)
    assert general.message is not None
    expected = message_event("demo", general.update_id, general.message)
    assert expected is not None
    assert plain_text_event("demo", update) == expected


@pytest.mark.parametrize(
    "update",
    [
        _text_update(
            "Да", _PRIVATE, reply_to_message={"message_id": 1, "date": 1, "chat": _PRIVATE}
        ),
        _text_update("", _PRIVATE, **{"from": _ANNA}),
        {**_text_update("Текст", _PRIVATE), "edited_message": {}},
        _text_update("Текст", {"id": "301", "type": "private"}),
        _text_update("Текст", _PRIVATE, **{"from": {"id": USER, "first_name": 5}}),
        {"update_id": 7002, "callback_query": {"id": "q", "from": _ANNA, "chat_instance": "c"}},
        {
            "update_id": 7003,
            "message": {"message_id": 1, "date": 1, "chat": _PRIVATE, "caption": "Фото"},
        },
        [1, 2],
    ],
)
def test_other_webhook_updates_take_the_general_way(update: Any) -> None:
    """Replies, other kinds and anything not shaped as the Bot API documents it are left to
    aiogram's Update (which answers a malformed one with 400)."""
    assert plain_text_event("demo", update) is None


# -- sending -------------------------------------------------------------------------------


async def test_a_reply_quotes_the_message_and_silent_and_wide_rows_are_honoured(rig: Rig) -> None:
    question = rig.emu.messages(TOKEN, USER)[0]
    buttons = [Button(f"{n}", callback=f"n:{n}") for n in range(10)]
    reply = Reply(text="Ответ", buttons=(tuple(buttons),), reply_to=str(question.message_id))
    await rig.platform.send(rig.chat(USER), reply, dedup_key="r")
    answer = rig.emu.bot_messages(TOKEN, USER)[-1]
    assert answer.reply_to == question.message_id
    assert [len(row) for row in answer.labels] == [8, 2]


async def test_a_keyboard_goes_out_as_json_without_aiogram_models_on_the_last_part(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group's session writes the rows as they are: building aiogram's keyboard models
    and dumping them back cost ~85 µs a send (bots/telegram/session.py)."""
    built: list[object] = []
    original = InlineKeyboardButton.__init__

    def counted(self: InlineKeyboardButton, **fields: Any) -> None:
        built.append(fields)
        original(self, **fields)

    monkeypatch.setattr(InlineKeyboardButton, "__init__", counted)
    long_payload = "faq:a:" + "x" * 80  # over Telegram's 64 bytes: stored, the key is sent
    rows = (
        (Button("Сайт", url="https://school.example/"), Button("Длинная", callback=long_payload)),
        (Button("Помогло", callback="fb:1:7:e"),),
    )
    reply = Reply(text="Абзац.\n\n" + "Текст. " * 700, buttons=rows)
    sent = await rig.platform.send(rig.chat(USER), reply, dedup_key="k")
    assert len(sent) == 2 and not built
    first, last = rig.emu.bot_messages(TOKEN, USER)[-2:]
    assert not first.buttons
    assert last.labels == [["Сайт", "Длинная"], ["Помогло"]]
    assert last.buttons[0][0].url == "https://school.example/"
    stored = last.buttons[0][1].callback_data
    assert stored is not None and stored != long_payload
    assert await rig.platform.payloads.get_payload(stored) == long_payload


@pytest.mark.parametrize(
    ("status", "chat", "expected"),
    [
        (429, USER, PlatformError),
        (500, USER, PlatformError),
        (502, USER, PlatformError),
        (403, USER, RecipientUnreachable),
        (403, GROUP, PermanentSendError),
        (400, USER, PermanentSendError),
    ],
)
async def test_failures_are_translated(
    rig: Rig, status: int, chat: int, expected: type[Exception]
) -> None:
    rig.emu.fail("sendMessage", status, retry_after=7 if status == 429 else None)
    with pytest.raises(expected) as caught:
        await rig.platform.send(rig.chat(chat), Reply(text="Текст"), dedup_key="f")
    if status == 429:
        assert isinstance(caught.value, PlatformError)
        assert caught.value.code == 429 and caught.value.retry_after == 7
    assert not rig.emu.bot_messages(TOKEN, chat)  # nothing was delivered, nothing retried
    assert rig.emu.calls["sendMessage"] == 1


async def test_each_part_keeps_the_id_telegram_gave_it_and_options_reach_the_api(
    rig: Rig,
) -> None:
    """The session reads only the message id from sendMessage's answer (session.py): the
    ids kept are Telegram's, part by part, and the call carries what aiogram would send."""
    calls: list[dict[str, Any]] = []
    rig.emu.listeners.append(lambda method, params: calls.append(params))
    question = rig.emu.messages(TOKEN, USER)[0]
    reply = Reply(
        text="Абзац.\n\n" + "Текст. " * 700,
        buttons=((Button("Да", callback="yes"),),),
        reply_to=str(question.message_id),
        silent=True,
    )
    sent = await rig.platform.send(rig.chat(USER), reply, dedup_key="ids")
    delivered = rig.emu.bot_messages(TOKEN, USER)[-2:]
    assert [s.message_id for s in sent] == [str(m.message_id) for m in delivered]
    assert sent[0].message_id != sent[1].message_id
    assert delivered[0].reply_to == question.message_id and delivered[1].reply_to is None
    assert delivered[1].labels == [["Да"]]
    first, last = calls[-2:]
    assert first["parse_mode"] == "HTML" and first["disable_notification"] in (True, "true")
    assert "reply_markup" not in first and "reply_markup" in last


async def test_a_group_that_became_a_supergroup_is_a_permanent_error(rig: Rig) -> None:
    rig.emu.fail(
        "sendMessage",
        400,
        description="Bad Request: group chat was upgraded to a supergroup chat",
        migrate_to_chat_id=-1_000_777,
    )
    with pytest.raises(PermanentSendError, match="-1000777"):
        await rig.platform.send(rig.chat(-300), Reply(text="Текст"), dedup_key="g")


async def test_an_answer_with_status_200_but_not_ok_is_no_success(rig: Rig) -> None:
    """Only ``ok: true`` with a message counts as sent; anything else is aiogram's to read."""
    rig.emu.fail("sendMessage", 200, description="Something odd")
    with pytest.raises(PlatformError, match="Something odd"):
        await rig.platform.send(rig.chat(USER), Reply(text="Текст"), dedup_key="o")
    sent = await rig.platform.send(rig.chat(USER), Reply(text="Текст"), dedup_key="o2")
    assert sent[0].message_id == str(rig.emu.bot_messages(TOKEN, USER)[-1].message_id)


async def test_a_deactivated_user_and_an_unknown_chat_are_unreachable(rig: Rig) -> None:
    rig.emu.fail("sendMessage", 403, description="Forbidden: user is deactivated")
    with pytest.raises(RecipientUnreachable):
        await rig.platform.send(rig.chat(USER), Reply(text="Текст"), dedup_key="d")
    with pytest.raises(RecipientUnreachable):
        await rig.platform.send(rig.chat(99_999), Reply(text="Текст"), dedup_key="u")


async def test_broken_markup_is_a_permanent_error(rig: Rig) -> None:
    with pytest.raises(PermanentSendError):
        await rig.platform.send(rig.chat(USER), Reply(text="<b>жирный"), dedup_key="m")


async def test_network_failure_is_retryable(rig: Rig) -> None:
    await rig.emu.stop()
    with pytest.raises(PlatformError):
        await rig.platform.send(rig.chat(USER), Reply(text="Текст"), dedup_key="n")


async def test_an_edit_that_changes_nothing_is_fine(rig: Rig) -> None:
    reply = Reply.of("Заявка №2", [[Button("Взять", callback="t:take:2")]])
    sent = await rig.platform.send(rig.chat(USER), reply, dedup_key="e")
    await rig.platform.edit(sent[0], reply)
    assert rig.emu.bot_messages(TOKEN, USER)[-1].edits == 0
    with pytest.raises(PermanentSendError):
        await rig.platform.edit(SentMessage(rig.chat(USER), "4242"), reply)


async def test_a_late_callback_answer_is_ignored(rig: Rig) -> None:
    sent = await rig.platform.send(
        rig.chat(USER), Reply.of("?", [[Button("Да", callback="y")]]), dedup_key="c"
    )
    rig.emu.press(TOKEN, USER, int(sent[0].message_id), "Да")
    event = await rig.next_event()
    await rig.platform.answer_callback(event, "Принято")
    await rig.platform.answer_callback(event, "Принято")  # too old now: no error
    assert rig.emu.answered(TOKEN) == [(event.callback.id, "Принято")]  # type: ignore[union-attr]


# -- pace --------------------------------------------------------------------------------


async def test_sends_to_one_chat_wait_for_the_chat_limit_instead_of_failing(
    emu: TelegramEmulator,
) -> None:
    # 1 message per 0.1 s with bursts of 3, enforced by the emulator as well
    rates = TelegramRates(overall=(30, 0.1), private_chat=(3, 0.3), group_chat=(20, 6.0))
    emu.rate_rules = RateRules(overall=(300, 30), private=(10, 3.5), group=(20 / 6, 20))
    rig = await make_rig(emu, rates=rates)
    try:
        started = time.monotonic()
        for n in range(8):
            await rig.platform.send(rig.chat(USER), Reply(text=f"№{n}"), dedup_key=f"p{n}")
        elapsed = time.monotonic() - started
    finally:
        await rig.group.stop()
    assert [m.text for m in emu.bot_messages(TOKEN, USER)] == [f"№{n}" for n in range(8)]
    assert emu.rate_limited == 0
    assert elapsed >= 0.45  # 3 at once, then 5 more at 0.1 s each


async def test_the_overall_limit_spans_chats(emu: TelegramEmulator) -> None:
    rates = TelegramRates(overall=(5, 0.1), private_chat=(3, 3.0), group_chat=(20, 60.0))
    rig = await make_rig(emu, rates=rates)
    for chat in range(400, 420):
        emu.user_says(TOKEN, chat, "/start")
    try:
        started = time.monotonic()
        await asyncio.gather(
            *(
                rig.platform.send(rig.chat(chat), Reply(text="Объявление"), dedup_key=str(chat))
                for chat in range(400, 420)
            )
        )
        elapsed = time.monotonic() - started
    finally:
        await rig.group.stop()
    assert elapsed >= 0.25  # 5 at once, then 15 more at 50 a second


# -- stopping ------------------------------------------------------------------------------


async def test_stop_lets_a_send_in_flight_finish(rig: Rig) -> None:
    rig.emu.slow("sendMessage", 0.3)
    sending = asyncio.create_task(
        rig.platform.send(rig.chat(USER), Reply(text="Последнее"), dedup_key="s")
    )
    await rig.emu.wait_until(lambda: rig.emu.calls["sendMessage"] == 1)
    await rig.group.stop()
    sent = await sending
    assert [m.text for m in rig.emu.bot_messages(TOKEN, USER)] == ["Последнее"]
    assert sent[0].message_id == str(rig.emu.bot_messages(TOKEN, USER)[0].message_id)
    with pytest.raises(PlatformError):
        await rig.platform.send(rig.chat(USER), Reply(text="после"), dedup_key="s2")
