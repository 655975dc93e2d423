"""The VK adapter with the real vk_api against the VK emulator: what a citizen, a staff
member or the app's outbox would notice."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from bots.core.adapters import AccountSpec, Services
from bots.core.clock import SystemClock
from bots.core.model import Button, ChatKind, ChatRef, Event, Reply, SentMessage
from bots.core.payloads import MemoryPayloadStore
from bots.core.platform import PermanentSendError, PlatformError, RecipientUnreachable
from bots.vk import VkPlatform, create_group
from bots.vk.account import VkAccount
from tests.contract.harness_vk import MemoryState
from tests.emulators.vk import VkEmulator

GROUP = 4242
TOKEN = "vk1.a.test-token"
CITIZEN = 101
CONVERSATION = 2000000001


class Rig:
    """One started VkPlatform with the events it delivered."""

    def __init__(self, emulator: VkEmulator, platform: VkPlatform) -> None:
        self.emulator = emulator
        self.platform = platform
        self.events: asyncio.Queue[Event] = asyncio.Queue()

    async def on_event(self, event: Event) -> None:
        await self.events.put(event)

    async def next_event(self, within: float = 10.0) -> Event:
        return await asyncio.wait_for(self.events.get(), within)

    def chat(self, peer: int = CITIZEN) -> ChatRef:
        return ChatRef("vk", str(peer))

    def seen(self, peer: int = CITIZEN) -> list[str]:
        return [m.text for m in self.emulator.messages(GROUP, peer)]


async def make_platform(
    emulator: VkEmulator, state: MemoryState | None = None, wait: int = 1
) -> VkPlatform:
    account = VkAccount(token=TOKEN, group_id=GROUP, api_url=emulator.api_url, wait=wait)
    services = Services(
        payloads=MemoryPayloadStore(), state=state or MemoryState(), clock=SystemClock()
    )
    group = await create_group([AccountSpec("school", account)], services)
    platform = group.platforms["school"]
    assert isinstance(platform, VkPlatform)
    return platform


@pytest.fixture
async def emulator() -> AsyncIterator[VkEmulator]:
    emu = await VkEmulator().start()
    emu.add_community(GROUP, TOKEN)
    try:
        yield emu
    finally:
        await emu.close()


@pytest.fixture
async def rig(emulator: VkEmulator) -> AsyncIterator[Rig]:
    platform = await make_platform(emulator)
    made = Rig(emulator, platform)
    await platform.start(made.on_event)
    try:
        yield made
    finally:
        await platform.stop()


def buttons(n: int) -> list[Button]:
    return [Button(f"Вариант {i}", callback=f"opt:{i}") for i in range(1, n + 1)]


# -- keyboards ---------------------------------------------------------------------------
async def test_a_row_wider_than_five_is_reflowed(rig: Rig) -> None:
    await rig.platform.send(rig.chat(), Reply.of("Выберите", [buttons(7)]), dedup_key="k")
    (message,) = rig.emulator.messages(GROUP, CITIZEN)
    assert [len(row) for row in message.labels] == [5, 2]
    assert message.labels[1] == ["Вариант 6", "Вариант 7"]


async def test_more_options_than_fit_go_to_pages_that_never_reach_the_app(rig: Rig) -> None:
    reply = Reply.of("Возможно, вы имели в виду:", [[b] for b in buttons(14)])
    sent = await rig.platform.send(rig.chat(), reply, dedup_key="many")
    message = rig.emulator.messages(GROUP, CITIZEN)[-1]
    first_page = [label for row in message.labels for label in row]
    assert len(message.labels) <= 6 and len(first_page) <= 10
    assert first_page[-1] == "Ещё ›" and "Вариант 1" in first_page

    await rig.emulator.press(GROUP, CITIZEN, sent[0].message_id, "Ещё ›")
    await rig.emulator.wait_until(lambda: message.edited == 1)
    second_page = [label for row in message.labels for label in row]
    assert "Вариант 1" not in second_page and "Вариант 6" in second_page
    assert "‹ Назад" in second_page
    assert message.text == "Возможно, вы имели в виду:"
    await rig.emulator.wait_until(lambda: len(rig.emulator.communities[GROUP].answers) == 1)

    # the page turn was the adapter's own: the next thing the app hears is a real press
    await rig.emulator.press(GROUP, CITIZEN, sent[0].message_id, "Вариант 7")
    event = await rig.next_event()
    assert event.callback is not None and event.callback.data == "opt:7"
    assert event.message_id == sent[0].message_id

    every_option: set[str] = set(first_page + second_page)
    while "Ещё ›" in [label for row in message.labels for label in row]:
        edits = message.edited
        await rig.emulator.press(GROUP, CITIZEN, sent[0].message_id, "Ещё ›")
        await rig.emulator.wait_until(lambda e=edits: message.edited > e)
        every_option |= {label for row in message.labels for label in row}
    assert {f"Вариант {i}" for i in range(1, 15)} <= every_option


async def test_labels_and_links_fit_vk(rig: Rig) -> None:
    long_label = "Очень длинная подпись кнопки, которая не помещается в сорок символов"
    reply = Reply.of(
        "Ссылки",
        [[Button(long_label, callback="x")], [Button("Госуслуги", url="https://gosuslugi.ru/")]],
    )
    await rig.platform.send(rig.chat(), reply, dedup_key="labels")
    (message,) = rig.emulator.messages(GROUP, CITIZEN)
    assert len(message.labels[0][0]) <= 40 and message.labels[0][0].endswith("…")
    assert message.button("Госуслуги")["action"]["link"] == "https://gosuslugi.ru/"


async def test_a_callback_is_answered_with_a_snackbar(rig: Rig) -> None:
    sent = await rig.platform.send(
        rig.chat(), Reply.of("Помогло?", [[Button("Да", callback="fb:yes")]]), dedup_key="fb"
    )
    await rig.emulator.press(GROUP, CITIZEN, sent[0].message_id, "Да")
    event = await rig.next_event()
    await rig.platform.answer_callback(event, "Спасибо за отзыв! " * 10)
    (snackbar,) = rig.emulator.snackbars(GROUP)
    assert snackbar is not None and snackbar.startswith("Спасибо за отзыв!")
    assert len(snackbar) <= 90


# -- incoming --------------------------------------------------------------------------
async def test_vk_start_button_and_text_buttons(rig: Rig) -> None:
    await rig.emulator.user_says(GROUP, CITIZEN, "Начать", payload='{"command":"start"}')
    start = await rig.next_event()
    assert start.text == "/start"

    await rig.emulator.user_says(GROUP, CITIZEN, "Питание", payload='{"c":"cat:food"}')
    pressed = await rig.next_event()
    assert pressed.callback is not None and pressed.callback.data == "cat:food"
    assert pressed.text is None
    await rig.platform.answer_callback(pressed, "ok")  # nothing to answer: no error
    assert rig.emulator.snackbars(GROUP) == []


async def test_a_conversation_message_addressed_to_the_bot(rig: Rig) -> None:
    await rig.emulator.user_says(
        GROUP, CONVERSATION, "[club4242|@school17], как записаться?", from_id=7001
    )
    event = await rig.next_event()
    assert event.chat_kind is ChatKind.GROUP
    assert event.text == "как записаться?"
    assert event.user.id == "7001" and event.user.display_name == "Гражданин 7001"


async def test_deny_and_allow_change_membership(rig: Rig) -> None:
    await rig.emulator.deny(GROUP, CITIZEN)
    blocked = await rig.next_event()
    assert blocked.membership == "blocked" and blocked.text is None
    assert blocked.chat.chat_id == str(CITIZEN)
    await rig.emulator.allow(GROUP, CITIZEN)
    assert (await rig.next_event()).membership == "unblocked"


# -- errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("code", [6, 9, 29])
async def test_rate_limits_are_retryable(rig: Rig, code: int) -> None:
    rig.emulator.fail("messages.send", code)
    with pytest.raises(PlatformError) as caught:
        await rig.platform.send(rig.chat(), Reply(text="Ответ"), dedup_key="r")
    assert caught.value.code == code and caught.value.retry_after == 1.0
    await rig.platform.send(rig.chat(), Reply(text="Ответ"), dedup_key="r")
    assert rig.seen() == ["Ответ"]


@pytest.mark.parametrize("code", [900, 901, 902])
async def test_cannot_write_means_unreachable(rig: Rig, code: int) -> None:
    rig.emulator.fail("messages.send", code)
    with pytest.raises(RecipientUnreachable):
        await rig.platform.send(rig.chat(), Reply(text="Объявление"), dedup_key="u")


async def test_a_user_who_denied_messages_is_unreachable(rig: Rig) -> None:
    rig.emulator.block(GROUP, CITIZEN)
    with pytest.raises(RecipientUnreachable) as caught:
        await rig.platform.send(rig.chat(), Reply(text="Объявление"), dedup_key="u")
    assert "901" in caught.value.reason


@pytest.mark.parametrize("code", [911, 914])
async def test_a_refused_request_is_a_logged_bug_not_a_crash(
    rig: Rig, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    rig.emulator.fail("messages.send", code)
    with caplog.at_level(logging.ERROR, logger="bots.vk"), pytest.raises(PermanentSendError):
        await rig.platform.send(rig.chat(), Reply(text="Ответ"), dedup_key="bug")
    assert any(str(code) in r.getMessage() and "bug" in r.getMessage() for r in caplog.records)
    await rig.platform.send(rig.chat(), Reply(text="Дальше"), dedup_key="next")
    assert rig.seen() == ["Дальше"]


async def test_server_errors_are_retryable(rig: Rig) -> None:
    rig.emulator.fail_http("messages.send", 502)
    with pytest.raises(PlatformError):
        await rig.platform.send(rig.chat(), Reply(text="Ответ"), dedup_key="5xx")
    rig.emulator.fail("messages.send", 10)
    with pytest.raises(PlatformError):
        await rig.platform.send(rig.chat(), Reply(text="Ответ"), dedup_key="5xx")


# -- dedup -------------------------------------------------------------------------------
async def test_a_retry_never_duplicates(rig: Rig) -> None:
    first = await rig.platform.send(rig.chat(), Reply(text="Ответ"), dedup_key="same")
    again = await rig.platform.send(rig.chat(), Reply(text="Ответ"), dedup_key="same")
    assert first == again and rig.seen() == ["Ответ"]
    assert rig.emulator.communities[GROUP].dedup_hits == 1
    await rig.platform.send(rig.chat(), Reply(text="Ответ"), dedup_key="other")
    assert rig.seen() == ["Ответ", "Ответ"]


async def test_a_long_text_retried_after_a_failed_part_arrives_once_in_order(rig: Rig) -> None:
    text = "\n\n".join(f"Абзац {i}. " + "слово " * 250 for i in range(14))
    rig.emulator.fail("messages.send", 6, after=1)
    with pytest.raises(PlatformError):
        await rig.platform.send(rig.chat(), Reply(text=text), dedup_key="long")
    assert len(rig.seen()) == 1
    sent = await rig.platform.send(rig.chat(), Reply(text=text), dedup_key="long")
    seen = rig.seen()
    assert len(seen) == len(sent) >= 2
    assert all(len(part) <= 9000 for part in seen)
    assert " ".join(seen).split() == text.split()


async def test_send_many_batches_by_100_with_per_peer_outcomes(rig: Rig) -> None:
    peers = [str(1000 + i) for i in range(230)]
    rig.emulator.block(GROUP, 1005)
    rig.emulator.block(GROUP, 1150)
    reply = Reply.of("Завтра собрание", [[Button("Приду", callback="rsvp")]])
    outcome = await rig.platform.send_many(peers, reply, dedup_key="meeting")
    assert rig.emulator.count_calls("messages.send") == 3
    assert isinstance(outcome["1005"], RecipientUnreachable)
    assert isinstance(outcome["1150"], RecipientUnreachable)
    delivered = [p for p, r in outcome.items() if isinstance(r, SentMessage)]
    assert len(delivered) == 228
    for peer in delivered:
        (message,) = rig.emulator.messages(GROUP, peer)
        assert message.labels == [["Приду"]]

    again = await rig.platform.send_many(peers, reply, dedup_key="meeting")
    assert again["1000"] == outcome["1000"]
    assert all(len(rig.emulator.messages(GROUP, p)) == 1 for p in delivered)


async def test_sends_are_paced_to_20_a_second(rig: Rig) -> None:
    rig.emulator.call_times.clear()
    started = time.monotonic()
    await asyncio.gather(
        *(
            rig.platform.send(rig.chat(2000 + i), Reply(text="Объявление"), dedup_key=f"p{i}")
            for i in range(41)
        )
    )
    elapsed = time.monotonic() - started
    times = sorted(rig.emulator.call_times)
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 21, busiest
    assert elapsed >= 1.9


# -- long poll ---------------------------------------------------------------------------
async def test_failed_2_keeps_ts_so_no_event_is_lost(rig: Rig) -> None:
    community = rig.emulator.communities[GROUP]
    before = community.server_requests
    await rig.emulator.longpoll_failed(GROUP, 2)
    await rig.emulator.user_says(GROUP, CITIZEN, "во время смены ключа")
    event = await rig.next_event()
    assert event.text == "во время смены ключа"
    assert community.server_requests == before + 1


async def test_failed_3_reconnects(rig: Rig) -> None:
    community = rig.emulator.communities[GROUP]
    before = community.server_requests
    await rig.emulator.longpoll_failed(GROUP, 3)
    await rig.emulator.wait_until(lambda: community.server_requests == before + 1)
    await rig.emulator.user_says(GROUP, CITIZEN, "после переподключения")
    assert (await rig.next_event()).text == "после переподключения"


async def test_failed_1_takes_the_new_ts(rig: Rig) -> None:
    await rig.emulator.longpoll_failed(GROUP, 1)
    await rig.emulator.user_says(GROUP, CITIZEN, "после failed 1")
    assert (await rig.next_event()).text == "после failed 1"


async def test_network_errors_are_ridden_out(rig: Rig) -> None:
    community = rig.emulator.communities[GROUP]
    polls = community.polls
    rig.emulator.fail_http("a_check", 502, times=2)
    await rig.emulator.longpoll_failed(GROUP, 1)  # wake the pending poll
    await rig.emulator.user_says(GROUP, CITIZEN, "после сбоя сети")
    assert (await rig.next_event()).text == "после сбоя сети"
    assert community.polls >= polls + 3


async def test_a_restart_neither_loses_nor_repeats_events(emulator: VkEmulator) -> None:
    state = MemoryState()
    first = Rig(emulator, await make_platform(emulator, state))
    await first.platform.start(first.on_event)
    await emulator.user_says(GROUP, CITIZEN, "первое")
    assert (await first.next_event()).text == "первое"
    await first.platform.stop()

    await emulator.user_says(GROUP, CITIZEN, "пока бот лежал")
    second = Rig(emulator, await make_platform(emulator, state))
    await second.platform.start(second.on_event)
    try:
        assert (await second.next_event()).text == "пока бот лежал"
        await emulator.user_says(GROUP, CITIZEN, "после")
        assert (await second.next_event()).text == "после"
    finally:
        await second.platform.stop()


async def test_a_failing_handler_gets_the_batch_again(emulator: VkEmulator) -> None:
    platform = await make_platform(emulator)
    seen: list[Event] = []
    arrived = asyncio.Event()

    async def flaky(event: Event) -> None:
        seen.append(event)
        if len(seen) == 1:
            raise RuntimeError("database is locked")
        arrived.set()

    await platform.start(flaky)
    try:
        await emulator.user_says(GROUP, CITIZEN, "вопрос")
        await asyncio.wait_for(arrived.wait(), 10)
        assert [e.update_key for e in seen] == [seen[0].update_key] * 2
    finally:
        await platform.stop()


async def test_stop_does_not_wait_out_a_long_poll(emulator: VkEmulator) -> None:
    platform = await make_platform(emulator, wait=60)
    await platform.start(Rig(emulator, platform).on_event)
    community = emulator.communities[GROUP]
    await emulator.wait_until(lambda: community.polls >= 1)
    started = time.monotonic()
    await platform.stop()
    assert time.monotonic() - started < 1.0


async def test_switched_off_settings_are_named_in_a_warning(
    emulator: VkEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    settings = emulator.communities[GROUP].settings
    settings["events"]["message_event"] = 0
    settings["is_enabled"] = False
    platform = await make_platform(emulator)
    with caplog.at_level(logging.WARNING, logger="bots.vk"):
        await platform.start(Rig(emulator, platform).on_event)
    await platform.stop()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "message_event" in text and "message_new" not in text.split("switched off:")[-1]
    assert "Long Poll API is switched off" in text
    assert "Управление → Работа с API → Long Poll API → Типы событий" in text


async def test_requests_use_api_version_5_199(rig: Rig) -> None:
    await rig.platform.send(rig.chat(), Reply(text="Ответ"), dedup_key="v")
    assert rig.emulator.calls and all(p.get("v") == "5.199" for _, p in rig.emulator.calls)


async def test_a_rejected_token_is_reported_without_crashing_or_leaking(
    emulator: VkEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.communities[GROUP].token = "vk1.a.another-token"
    platform = await make_platform(emulator)
    with caplog.at_level(logging.DEBUG):
        await platform.start(Rig(emulator, platform).on_event)  # does not raise
        with pytest.raises(PlatformError) as caught:
            await platform.send(ChatRef("vk", str(CITIZEN)), Reply(text="Ответ"), dedup_key="t")
        await platform.stop()
    assert caught.value.code == 5 and caught.value.retry_after == 60.0
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "token was rejected" in text
    assert TOKEN not in text
