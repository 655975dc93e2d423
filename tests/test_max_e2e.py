"""The whole app on MAX: our MAX client over HTTP against the MAX emulator (and aiogram and
vk_api against theirs), started from a config file, with SQLite in tmp_path. Each test plays
citizens and staff in the emulators and checks what they see in their chats."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bots.core.clock import Clock, ManualClock
from bots.telegram import TelegramRates
from handlers.announcements import feature_of
from runtime.app import App
from tests.emulators.max import MaxEmulator, MaxMessage
from tests.emulators.telegram import TelegramEmulator
from tests.emulators.vk import VkEmulator
from tests.running import running_app

MAX_TOKEN = "max-school-token-0001"
BOT_ID = 5300
TG_TOKEN = "730003:max-school-token-abc"
VK_TOKEN = "vk1.a.max-school-token"
VK_GROUP = 4545
MAX_STAFF_CHAT = -7000000001
TG_STAFF_CHAT = -1003
STAFF_MEMBER = 7001
CHANNEL = -7200000001
FIRST_GRADE = "Как записать ребёнка в первый класс?"
FIRST_GRADE_ANSWER = "Приём заявлений в 1 класс"
MEALS = "Как оплатить питание в столовой?"
MEALS_ANSWER = "лицевой счёт"
ESCALATED = "Во дворе не убран снег, сильный гололёд у ворот"
ANNOUNCEMENT = "Родительское собрание в четверг в 18:00"
#: Telegram's group pace (20 a minute) a hundred times faster, so no test waits it out
FAST = TelegramRates().scaled(100)
#: a small FAQ of its own, so that these tests follow the adapter, not the matcher's tuning
FAQ = f"""\
entries:
  - id: first-grade
    category: Приём в школу
    questions: ["{FIRST_GRADE}"]
    answer: |
      {FIRST_GRADE_ANSWER} идёт с 1 апреля по 30 июня, в канцелярии ({{{{ institution.address }}}}).
  - id: meal-payment
    category: Питание
    questions: ["{MEALS}"]
    answer: |
      Питание оплачивается через <b>{MEALS_ANSWER}</b> ученика в личном кабинете.
"""


@pytest.fixture
async def emulator() -> AsyncIterator[MaxEmulator]:
    async with MaxEmulator() as emu:
        emu.add_bot(MAX_TOKEN, BOT_ID, username="school17_bot")
        emu.open_group(MAX_TOKEN, MAX_STAFF_CHAT, "Сотрудники школы")
        emu.open_channel(MAX_TOKEN, CHANNEL, "Новости школы")
        yield emu


def write_config(
    tmp_path: Path,
    emulator: MaxEmulator,
    monkeypatch: pytest.MonkeyPatch,
    *,
    telegram: TelegramEmulator | None = None,
    vk: VkEmulator | None = None,
    staff: str = "max",
    webhook_port: int | None = None,
    announcements: str = "",
) -> Path:
    monkeypatch.setenv("MAX_SCHOOL", MAX_TOKEN)
    monkeypatch.setenv("TG_SCHOOL", TG_TOKEN)
    monkeypatch.setenv("VK_SCHOOL", VK_TOKEN)
    faq = tmp_path / "faq"
    faq.mkdir(exist_ok=True)
    (faq / "school.yaml").write_text(FAQ, encoding="utf-8")
    mode = ", mode: webhook" if webhook_port else ""
    server = (
        f"server: {{host: 127.0.0.1, port: {webhook_port},"
        f" public_url: 'http://127.0.0.1:{webhook_port}'}}\n"
        if webhook_port
        else ""
    )
    accounts = f'    max: {{token: "${{MAX_SCHOOL}}", api_url: "{emulator.url}"{mode}}}\n'
    if telegram is not None:
        accounts += f'    telegram: {{token: "${{TG_SCHOOL}}", api_server: "{telegram.url}"}}\n'
    if vk is not None:
        accounts += (
            f'    vk: {{token: "${{VK_SCHOOL}}", group_id: {VK_GROUP},'
            f' api_url: "{vk.api_url}", wait: 1}}\n'
        )
    staff_chat = {"max": MAX_STAFF_CHAT, "telegram": TG_STAFF_CHAT}[staff]
    config = f"""\
storage: {{path: data/bot.sqlite3}}
timezone: Europe/Moscow
{server}institutions:
  school-17:
    name: МБОУ «Средняя школа № 17»
    address: г. Курск, ул. Примерная, 1
    phone: +7 (4712) 00-00-00
    working_hours: {{mon-sun: "00:00-23:59"}}
    faq: faq/school.yaml
{accounts}    staff:
      chat: {{platform: {staff}, id: {staff_chat}}}
      members: [{{platform: {staff}, id: {STAFF_MEMBER}, name: Иванова А. П.}}]
{announcements}"""
    path = tmp_path / "config.yaml"
    path.write_text(config, encoding="utf-8")
    return path


@asynccontextmanager
async def running(config: Path, clock: Clock | None = None) -> AsyncIterator[App]:
    extra = {"max": {"poll_timeout": 5}, "telegram": {"rates": FAST, "poll_timeout": 5}}
    async with running_app(config, clock=clock, services_extra=extra) as app:
        yield app


def dialog(emulator: MaxEmulator, user: int) -> int:
    return emulator.dialog(MAX_TOKEN, user).chat_id


async def until_said(
    emulator: MaxEmulator, app: App, chat: int, done: Callable[[list[MaxMessage]], bool]
) -> list[MaxMessage]:
    """Wait until the bot's messages in ``chat`` satisfy ``done``, then until the app has
    nothing left to send; returns the bot's messages."""
    await emulator.wait_until(lambda: done(emulator.bot_messages(MAX_TOKEN, chat)), timeout=60)
    await app.settle()
    return emulator.bot_messages(MAX_TOKEN, chat)


async def ask(emulator: MaxEmulator, app: App, user: int, text: str) -> list[MaxMessage]:
    chat = dialog(emulator, user)
    before = len(emulator.bot_messages(MAX_TOKEN, chat))
    emulator.user_says(MAX_TOKEN, chat, text)
    said = await until_said(emulator, app, chat, lambda m: len(m) > before)
    return said[before:]


def count(emulator: MaxEmulator, user: int, fragment: str) -> int:
    return sum(fragment in m.text for m in emulator.bot_messages(MAX_TOKEN, dialog(emulator, user)))


def flat(text: str) -> str:
    return " ".join(text.split())


# -- citizens ---------------------------------------------------------------------------
async def test_a_question_gets_its_faq_answer_and_a_button_works(
    tmp_path: Path, emulator: MaxEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        emulator.start_bot(MAX_TOKEN, 501)
        greeting = (await until_said(emulator, app, dialog(emulator, 501), bool))[-1]
        assert any("Питание" in label for row in greeting.labels for label in row)

        said = await ask(emulator, app, 501, MEALS)
        answer = next(m for m in said if MEALS_ANSWER in m.text)
        assert answer.format == "html" and f"<b>{MEALS_ANSWER}</b>" in answer.raw
        assert "<b>" not in answer.text  # the citizen sees bold text, not tags

        emulator.press(MAX_TOKEN, dialog(emulator, 501), said[-1].mid, "Помогло")
        await emulator.wait_until(lambda: bool(emulator.answers(MAX_TOKEN)))
        await app.settle()
    (_, notification), *_ = emulator.answers(MAX_TOKEN)
    assert "Спасибо" in (notification or "")


async def test_a_citizen_who_stopped_the_bot_is_not_written_to(
    tmp_path: Path, emulator: MaxEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        assert app.storage is not None
        await ask(emulator, app, 502, FIRST_GRADE)
        emulator.stop_bot(MAX_TOKEN, 502)
        await emulator.wait_until(lambda: emulator.all_committed(MAX_TOKEN))
        await app.settle()
        citizen = await app.storage.citizens.get("school-17", "max", "502")
    assert citizen is not None and citizen.unreachable


async def test_a_429_is_ridden_out_and_the_answer_arrives_once(
    tmp_path: Path, emulator: MaxEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        await ask(emulator, app, 503, "/start")
        sends = emulator.calls["POST /messages"]
        emulator.fail("POST /messages", 429, retry_after=1)
        said = await ask(emulator, app, 503, FIRST_GRADE)
    assert any(FIRST_GRADE_ANSWER in m.text for m in said)
    assert count(emulator, 503, FIRST_GRADE_ANSWER) == 1
    assert emulator.calls["POST /messages"] - sends == len(said) + 1  # one refused


# -- staff across platforms -------------------------------------------------------------
async def test_a_telegram_staff_reply_reaches_a_max_citizen(
    tmp_path: Path, emulator: MaxEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with TelegramEmulator() as telegram:
        telegram.open_group(TG_TOKEN, TG_STAFF_CHAT, "Сотрудники")
        config = write_config(tmp_path, emulator, monkeypatch, telegram=telegram, staff="telegram")
        async with running(config) as app:
            await ask(emulator, app, 504, "/start")
            emulator.user_says(MAX_TOKEN, dialog(emulator, 504), ESCALATED)
            await telegram.wait_until(
                lambda: any(
                    "гололёд" in m.text for m in telegram.bot_messages(TG_TOKEN, TG_STAFF_CHAT)
                ),
                timeout=15,
            )
            card = telegram.bot_messages(TG_TOKEN, TG_STAFF_CHAT)[-1]
            before = len(emulator.bot_messages(MAX_TOKEN, dialog(emulator, 504)))
            telegram.user_says(
                TG_TOKEN,
                TG_STAFF_CHAT,
                "Сегодня дворник посыплет песком. <Спасибо> за сигнал!",
                user_id=STAFF_MEMBER,
                reply_to=card.message_id,
            )
            said = await until_said(
                emulator,
                app,
                dialog(emulator, 504),
                lambda m: any("дворник посыплет" in x.text for x in m[before:]),
            )
    relayed = [m for m in said[before:] if "дворник посыплет" in m.text]
    assert relayed and "<Спасибо>" in relayed[0].text  # escaped on the way, shown as typed


async def test_a_max_staff_chat_answers_a_vk_citizen(
    tmp_path: Path, emulator: MaxEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    vk = await VkEmulator().start()
    vk.add_community(VK_GROUP, VK_TOKEN)
    try:
        async with running(write_config(tmp_path, emulator, monkeypatch, vk=vk)) as app:
            await vk.user_says(VK_GROUP, 601, "/start")
            await vk.wait_until(lambda: bool(vk.messages(VK_GROUP, 601)))
            await vk.user_says(VK_GROUP, 601, ESCALATED)
            cards = await until_said(
                emulator, app, MAX_STAFF_CHAT, lambda m: any("гололёд" in x.text for x in m)
            )
            card = next(m for m in cards if "гололёд" in m.text)
            assert any("Взять" in label for row in card.labels for label in row)

            emulator.press(MAX_TOKEN, MAX_STAFF_CHAT, card.mid, "Взять", user_id=STAFF_MEMBER)
            await emulator.wait_until(lambda: bool(emulator.answers(MAX_TOKEN)))
            before = len(vk.messages(VK_GROUP, 601))
            emulator.user_says(
                MAX_TOKEN,
                MAX_STAFF_CHAT,
                "Завтра утром территорию очистят.",
                user_id=STAFF_MEMBER,
                reply_to=card.mid,
            )
            await vk.wait_until(lambda: len(vk.messages(VK_GROUP, 601)) > before, timeout=15)
            await app.settle()
            edited = next(
                m for m in emulator.bot_messages(MAX_TOKEN, MAX_STAFF_CHAT) if m.mid == card.mid
            )
    finally:
        await vk.close()
    assert any("территорию очистят" in m.text for m in vk.messages(VK_GROUP, 601)[before:])
    assert edited.edited >= 1  # the card shows who took it


# -- announcements ----------------------------------------------------------------------
async def test_a_scheduled_announcement_reaches_max_subscribers_and_channel(
    tmp_path: Path, emulator: MaxEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(datetime(2026, 9, 1, 9, 0, tzinfo=UTC))  # 12:00 in Moscow
    announcement = f"""\
    announcements:
      - id: meeting
        at: 2026-09-01T13:00:00+03:00
        text: {ANNOUNCEMENT}
        to: [subscribers, {{platform: max, id: {CHANNEL}}}]
"""
    config = write_config(tmp_path, emulator, monkeypatch, announcements=announcement)
    async with running(config, clock) as app:
        offer = (await ask(emulator, app, 701, "/subscribe"))[-1]
        emulator.press(MAX_TOKEN, dialog(emulator, 701), offer.mid, "Подписаться")
        await until_said(emulator, app, dialog(emulator, 701), lambda m: "подписаны" in m[-1].text)
        await ask(emulator, app, 702, "Здравствуйте")  # asked, never subscribed

        clock.set(datetime(2026, 9, 1, 10, 0, 1, tzinfo=UTC))
        await feature_of(app).settle()
    got = emulator.bot_messages(MAX_TOKEN, dialog(emulator, 701))[-1]
    assert got.text == ANNOUNCEMENT
    assert any("Отписаться" in label for row in got.labels for label in row)
    (posted,) = emulator.bot_messages(MAX_TOKEN, CHANNEL)
    assert posted.text == ANNOUNCEMENT and posted.labels == []
    assert count(emulator, 702, ANNOUNCEMENT) == 0


# -- webhook ----------------------------------------------------------------------------
async def test_webhook_mode_takes_the_right_secret_and_refuses_a_wrong_one(
    tmp_path: Path, emulator: MaxEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_config(tmp_path, emulator, monkeypatch, webhook_port=port)
    bot = emulator.bot(MAX_TOKEN)
    async with running(config) as app:
        await emulator.wait_until(lambda: bool(bot.subscriptions))
        assert bot.subscriptions[0]["url"] == f"http://127.0.0.1:{port}/max/{BOT_ID}"
        said = await ask(emulator, app, 801, FIRST_GRADE)  # delivered by the webhook
        assert any(FIRST_GRADE_ANSWER in m.text for m in said)
        assert bot.polls == 0 and set(bot.webhook_statuses) == {200}

        chat = dialog(emulator, 801)
        forged = {
            "update_type": "message_created",
            "timestamp": 1_700_000_000_000,
            "message": {
                "sender": {"user_id": 801, "first_name": "Мошенник", "is_bot": False},
                "recipient": {"chat_id": chat, "chat_type": "dialog", "user_id": BOT_ID},
                "timestamp": 1_700_000_000_000,
                "body": {"mid": "mid.forged", "seq": 1, "text": "/start"},
            },
        }
        before = len(emulator.bot_messages(MAX_TOKEN, chat))
        assert await emulator.post_webhook(MAX_TOKEN, forged, secret="wrong-secret") == 403
        assert await emulator.post_webhook(MAX_TOKEN, forged, secret=None) == 401
        await app.settle()
        assert len(emulator.bot_messages(MAX_TOKEN, chat)) == before
    assert bot.subscriptions  # a restart in webhook mode keeps it; polling would remove it


# -- one FAQ, three messengers ----------------------------------------------------------
async def test_one_institution_on_telegram_vk_and_max_answers_all_three(
    tmp_path: Path, emulator: MaxEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    vk = await VkEmulator().start()
    vk.add_community(VK_GROUP, VK_TOKEN)
    try:
        async with TelegramEmulator() as telegram:
            config = write_config(tmp_path, emulator, monkeypatch, telegram=telegram, vk=vk)
            async with running(config) as app:
                telegram.user_says(TG_TOKEN, 901, FIRST_GRADE)
                await vk.user_says(VK_GROUP, 901, FIRST_GRADE)
                max_said = await ask(emulator, app, 901, FIRST_GRADE)
                await telegram.wait_until(
                    lambda: any(
                        FIRST_GRADE_ANSWER in m.text for m in telegram.bot_messages(TG_TOKEN, 901)
                    )
                )
                await vk.wait_until(
                    lambda: any(FIRST_GRADE_ANSWER in m.text for m in vk.messages(VK_GROUP, 901))
                )
                await app.settle()
            tg = next(
                m for m in telegram.bot_messages(TG_TOKEN, 901) if FIRST_GRADE_ANSWER in m.text
            )
    finally:
        await vk.close()
    on_vk = next(m for m in vk.messages(VK_GROUP, 901) if FIRST_GRADE_ANSWER in m.text)
    on_max = next(m for m in max_said if FIRST_GRADE_ANSWER in m.text)
    assert flat(on_max.text) == flat(tg.text) == flat(on_vk.text)
    assert "г. Курск, ул. Примерная, 1" in on_max.text
