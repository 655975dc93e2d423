"""The whole app on OK: our OK client and webhook route over HTTP against the OK emulator
(and aiogram, vk_api and our MAX client against theirs), started from a config file, with
SQLite in tmp_path. Each test plays citizens and staff and checks what they see."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bots.core.clock import Clock, ManualClock
from bots.ok.online import check_online as ok_online
from bots.telegram import TelegramRates
from handlers.announcements import feature_of
from handlers.config import load_config
from runtime.app import App
from runtime.features import TEMPLATES
from runtime.validation import check_all
from tests.emulators.max import MaxEmulator
from tests.emulators.ok import OkEmulator, OkMessage
from tests.emulators.telegram import TelegramEmulator
from tests.emulators.vk import VkEmulator
from tests.processes import ROOT, kill_9, priemnaya_run, tail
from tests.running import running_app

OK_TOKEN = "tkn1school:CQABPOJKAKEKEKEKE"
GROUP_ID = 53_000_000_000_017
TG_TOKEN = "740004:ok-school-token-abc"
VK_TOKEN = "vk1.a.ok-school-token"
VK_GROUP = 4646
MAX_TOKEN = "max-ok-school-token"
TG_STAFF_CHAT = -1004
STAFF_MEMBER = 7001
FIRST_GRADE = "Как записать ребёнка в первый класс?"
FIRST_GRADE_ANSWER = "Приём заявлений в 1 класс"
MEALS = "Как оплатить питание в столовой?"
MEALS_ANSWER = "лицевой счёт"
ESCALATED = "Во дворе не убран снег, сильный гололёд у ворот"
ANNOUNCEMENT = "Родительское собрание в четверг в 18:00"
FAST = TelegramRates().scaled(100)
PROCESS_TIMEOUT = 60.0
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def emulator() -> AsyncIterator[OkEmulator]:
    async with OkEmulator() as emu:
        emu.add_group(OK_TOKEN, GROUP_ID)
        yield emu


def write_config(
    tmp_path: Path,
    emulator: OkEmulator,
    monkeypatch: pytest.MonkeyPatch,
    telegram: TelegramEmulator,
    *,
    vk: VkEmulator | None = None,
    max_emulator: MaxEmulator | None = None,
    staff_chat: str | None = None,
    announcements: str = "",
    ok_extra: str = "",
) -> Path:
    """school-17 with an OK group in webhook mode and a Telegram bot whose group is the
    staff chat; VK and MAX when given."""
    monkeypatch.setenv("OK_SCHOOL", OK_TOKEN)
    monkeypatch.setenv("TG_SCHOOL", TG_TOKEN)
    monkeypatch.setenv("VK_SCHOOL", VK_TOKEN)
    monkeypatch.setenv("MAX_SCHOOL", MAX_TOKEN)
    (tmp_path / "faq").mkdir(exist_ok=True)
    (tmp_path / "faq/school.yaml").write_text(FAQ, encoding="utf-8")
    port = free_port()
    accounts = (
        f'    ok: {{token: "${{OK_SCHOOL}}", api_url: "{emulator.url}"{ok_extra}}}\n'
        f'    telegram: {{token: "${{TG_SCHOOL}}", api_server: "{telegram.url}"}}\n'
    )
    if vk is not None:
        accounts += (
            f'    vk: {{token: "${{VK_SCHOOL}}", group_id: {VK_GROUP},'
            f' api_url: "{vk.api_url}", wait: 1}}\n'
        )
    if max_emulator is not None:
        accounts += f'    max: {{token: "${{MAX_SCHOOL}}", api_url: "{max_emulator.url}"}}\n'
    chat = staff_chat or f"{{platform: telegram, id: {TG_STAFF_CHAT}}}"
    config = f"""\
storage: {{path: data/bot.sqlite3}}
timezone: Europe/Moscow
server: {{host: 127.0.0.1, port: {port}, public_url: "http://127.0.0.1:{port}"}}
institutions:
  school-17:
    name: МБОУ «Средняя школа № 17»
    address: г. Курск, ул. Примерная, 1
    working_hours: {{mon-sun: "00:00-23:59"}}
    faq: faq/school.yaml
{accounts}    staff:
      chat: {chat}
      members: [{{platform: telegram, id: {STAFF_MEMBER}, name: Иванова А. П.}}]
{announcements}"""
    path = tmp_path / "config.yaml"
    path.write_text(config, encoding="utf-8")
    return path


@asynccontextmanager
async def running(
    config: Path, emulator: OkEmulator, clock: Clock | None = None
) -> AsyncIterator[App]:
    extra = {
        "telegram": {"rates": FAST, "poll_timeout": 5},
        "max": {"poll_timeout": 5},
    }
    async with running_app(config, clock=clock, services_extra=extra) as app:
        await emulator.wait_until(lambda: bool(emulator.group(OK_TOKEN).webhooks), timeout=15)
        yield app


def dialog(emulator: OkEmulator, user: int) -> str:
    return emulator.dialog(OK_TOKEN, user).chat_id


async def until_said(
    emulator: OkEmulator, app: App, chat: str, done: Callable[[list[OkMessage]], bool]
) -> list[OkMessage]:
    await emulator.wait_until(lambda: done(emulator.bot_messages(OK_TOKEN, chat)), timeout=15)
    await app.settle()
    return emulator.bot_messages(OK_TOKEN, chat)


async def ask(emulator: OkEmulator, app: App, user: int, text: str) -> list[OkMessage]:
    chat = dialog(emulator, user)
    before = len(emulator.bot_messages(OK_TOKEN, chat))
    emulator.user_says(OK_TOKEN, chat, text)
    said = await until_said(emulator, app, chat, lambda m: len(m) > before)
    return said[before:]


def count(emulator: OkEmulator, user: int, fragment: str) -> int:
    return sum(fragment in m.text for m in emulator.bot_messages(OK_TOKEN, dialog(emulator, user)))


def flat(text: str) -> str:
    return " ".join(text.split())


# -- citizens ---------------------------------------------------------------------------
async def test_an_faq_answer_with_buttons_and_a_press(
    tmp_path: Path, emulator: OkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with TelegramEmulator() as telegram:
        config = write_config(tmp_path, emulator, monkeypatch, telegram)
        async with running(config, emulator) as app:
            emulator.start_chat(OK_TOKEN, 501)
            greeting = (await until_said(emulator, app, dialog(emulator, 501), bool))[-1]
            assert any("Питание" in label for row in greeting.labels for label in row)

            said = await ask(emulator, app, 501, MEALS)
            answer = next(m for m in said if MEALS_ANSWER in m.text)
            assert "<b>" not in answer.text  # OK shows plain text: no markup leaks
            assert "Помогло" in str(said[-1].labels)

            before = len(emulator.bot_messages(OK_TOKEN, dialog(emulator, 501)))
            emulator.press(OK_TOKEN, dialog(emulator, 501), said[-1].mid, "Помогло")
            after = await until_said(
                emulator, app, dialog(emulator, 501), lambda m: len(m) > before
            )
            assert await emulator.deliver_again(OK_TOKEN) == 200  # the press, redelivered
            await app.settle()
    ((_, thanks),) = emulator.answers(OK_TOKEN)  # answered through chat:ID/answer
    assert "Спасибо" in thanks
    assert "Спасибо" in after[-1].text  # and the citizen reads it in the dialog
    assert emulator.group(OK_TOKEN).typing  # "typing" showed while answering


async def test_a_question_escalated_to_telegram_staff_gets_the_staff_reply_on_ok(
    tmp_path: Path, emulator: OkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with TelegramEmulator() as telegram:
        telegram.open_group(TG_TOKEN, TG_STAFF_CHAT, "Сотрудники")
        config = write_config(tmp_path, emulator, monkeypatch, telegram)
        async with running(config, emulator) as app:
            await ask(emulator, app, 502, "Здравствуйте")
            emulator.user_says(OK_TOKEN, dialog(emulator, 502), ESCALATED)
            await telegram.wait_until(
                lambda: any(
                    "гололёд" in m.text for m in telegram.bot_messages(TG_TOKEN, TG_STAFF_CHAT)
                ),
                timeout=15,
            )
            card = telegram.bot_messages(TG_TOKEN, TG_STAFF_CHAT)[-1]
            assert "Одноклассники" in card.text
            before = len(emulator.bot_messages(OK_TOKEN, dialog(emulator, 502)))
            telegram.user_says(
                TG_TOKEN,
                TG_STAFF_CHAT,
                "Сегодня дворник посыплет песком. <Спасибо> за сигнал!",
                user_id=STAFF_MEMBER,
                reply_to=card.message_id,
            )
            said = await until_said(emulator, app, dialog(emulator, 502), lambda m: len(m) > before)
            await telegram.wait_until(
                lambda: "отвечено" in telegram.bot_messages(TG_TOKEN, TG_STAFF_CHAT)[0].text
            )
    relayed = [m for m in said[before:] if "дворник посыплет" in m.text]
    assert relayed and "<Спасибо>" in relayed[0].text  # escaped on the way, shown as typed


def test_an_ok_chat_cannot_be_the_staff_chat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OK's group messages are person↔group dialogs (no group chat holds the bot and
    several staff members), so `priemnaya check` refuses an OK staff chat and says where
    to put it instead; a VK or MAX citizen is answered from a Telegram/VK/MAX staff chat."""

    class Fake:
        url = "http://127.0.0.1:9/graph/"
        api_url = "http://127.0.0.1:9/method/"

    config = write_config(
        tmp_path,
        Fake(),  # type: ignore[arg-type]
        monkeypatch,
        Fake(),  # type: ignore[arg-type]
        staff_chat="{platform: ok, id: 'chat:C123'}",
    )
    problems, _ = check_all(str(config), TEMPLATES)
    (problem,) = [p for p in problems if "staff chat" in p.message]
    assert problem.line is not None and "OK chat cannot be a staff chat" in problem.message
    assert "Telegram, VK or MAX" in problem.message


# -- announcements ----------------------------------------------------------------------
async def test_a_broadcast_reaches_ok_subscribers_and_marks_who_refuses(
    tmp_path: Path, emulator: OkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(datetime(2026, 9, 1, 9, 0, tzinfo=UTC))  # 12:00 in Moscow
    announcement = f"""\
    announcements:
      - id: meeting
        at: 2026-09-01T13:00:00+03:00
        text: {ANNOUNCEMENT}
"""
    async with TelegramEmulator() as telegram:
        config = write_config(tmp_path, emulator, monkeypatch, telegram, announcements=announcement)
        async with running(config, emulator, clock) as app:
            assert app.storage is not None
            for user in (701, 703):
                offer = (await ask(emulator, app, user, "/subscribe"))[-1]
                emulator.press(OK_TOKEN, dialog(emulator, user), offer.mid, "Подписаться")
                await until_said(
                    emulator, app, dialog(emulator, user), lambda m: "подписаны" in m[-1].text
                )
            await ask(emulator, app, 702, "Здравствуйте")  # asked, never subscribed
            emulator.deny(OK_TOKEN, dialog(emulator, 703))  # no longer allows group messages

            clock.set(datetime(2026, 9, 1, 10, 0, 1, tzinfo=UTC))
            await feature_of(app).settle()
            await app.settle()
            refused = await app.storage.citizens.get("school-17", "ok", "user:703")
    got = emulator.bot_messages(OK_TOKEN, dialog(emulator, 701))[-1]
    assert got.text == ANNOUNCEMENT
    assert any("Отписаться" in label for row in got.labels for label in row)
    assert count(emulator, 702, ANNOUNCEMENT) == 0
    assert count(emulator, 703, ANNOUNCEMENT) == 0
    assert refused is not None and refused.unreachable


# -- the webhook ------------------------------------------------------------------------
async def test_a_webhook_redelivery_is_handled_once(
    tmp_path: Path, emulator: OkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with TelegramEmulator() as telegram:
        config = write_config(tmp_path, emulator, monkeypatch, telegram)
        async with running(config, emulator) as app:
            said = await ask(emulator, app, 801, FIRST_GRADE)
            assert any(FIRST_GRADE_ANSWER in m.text for m in said)
            group = emulator.group(OK_TOKEN)
            url = next(iter(group.webhooks))
            assert url.startswith(app.loaded.config.server.public_url + "/ok/")  # type: ignore[union-attr]
            assert len(url.rsplit("/", 1)[1]) >= 32  # an unguessable path
            assert group.webhooks[url]["types"] == [
                "MESSAGE_CREATED",
                "MESSAGE_CALLBACK",
                "CHAT_SYSTEM",
            ]
            assert await emulator.deliver_again(OK_TOKEN) == 200  # OK retries the message
            await app.settle()
            base = url.rsplit("/", 1)[0]
            assert await emulator.post_raw(OK_TOKEN, {}) == 200  # odd bodies are taken, ignored
            group.webhooks[base + "/guessed"] = {"url": base + "/guessed", "types": [], "time": 0}
            assert await emulator.post_raw(OK_TOKEN, group.updates[-1]) == 404
            del group.webhooks[base + "/guessed"]
    assert count(emulator, 801, FIRST_GRADE_ANSWER) == 1


async def test_the_allow_list_refuses_other_sources(
    tmp_path: Path, emulator: OkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with TelegramEmulator() as telegram:
        config = write_config(
            tmp_path, emulator, monkeypatch, telegram, ok_extra=", allow_from: [ok]"
        )
        async with running(config, emulator) as app:
            emulator.user_says(OK_TOKEN, dialog(emulator, 802), FIRST_GRADE)
            group = emulator.group(OK_TOKEN)
            await emulator.wait_until(lambda: bool(group.deliveries))
            await app.settle()
    assert group.deliveries[0][2] == 403  # 127.0.0.1 is not one of OK's networks
    assert count(emulator, 802, FIRST_GRADE_ANSWER) == 0


async def test_a_refused_token_is_logged_and_told_to_staff(
    tmp_path: Path,
    emulator: OkEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.refuse_token(OK_TOKEN)
    async with TelegramEmulator() as telegram:
        telegram.open_group(TG_TOKEN, TG_STAFF_CHAT, "Сотрудники")
        config = write_config(tmp_path, emulator, monkeypatch, telegram)
        with caplog.at_level(logging.ERROR, logger="bots.ok"):
            async with running_app(
                config, services_extra={"telegram": {"rates": FAST, "poll_timeout": 5}}
            ) as app:
                await telegram.wait_until(
                    lambda: bool(telegram.bot_messages(TG_TOKEN, TG_STAFF_CHAT)), timeout=15
                )
                await app.settle()
                health = app.groups["ok"].platforms["school-17"].healthy()  # type: ignore[attr-defined]
    (notice,) = telegram.bot_messages(TG_TOKEN, TG_STAFF_CHAT)
    assert "не принимает ключ доступа" in notice.text and "Получить ключ доступа" in notice.text
    assert any("refused the group's token" in r.getMessage() for r in caplog.records)
    assert OK_TOKEN not in caplog.text
    assert not health


async def test_an_error_code_with_http_200_is_retried_and_the_answer_arrives_once(
    tmp_path: Path, emulator: OkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with TelegramEmulator() as telegram:
        config = write_config(tmp_path, emulator, monkeypatch, telegram)
        async with running(config, emulator) as app:
            await ask(emulator, app, 803, "Здравствуйте")
            sends = emulator.calls["POST messages"]
            emulator.fail("POST messages", code=2)  # SERVICE, in a body that came with 200
            said = await ask(emulator, app, 803, FIRST_GRADE)
    assert any(FIRST_GRADE_ANSWER in m.text for m in said)
    assert count(emulator, 803, FIRST_GRADE_ANSWER) == 1
    assert emulator.calls["POST messages"] - sends == len(said) + 1  # one refused


# -- one FAQ, four messengers -----------------------------------------------------------
async def test_one_institution_on_telegram_vk_max_and_ok_answers_all_four(
    tmp_path: Path, emulator: OkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    vk = await VkEmulator().start()
    vk.add_community(VK_GROUP, VK_TOKEN)
    try:
        async with TelegramEmulator() as telegram, MaxEmulator() as max_emu:
            max_emu.add_bot(MAX_TOKEN, 5400)
            config = write_config(
                tmp_path, emulator, monkeypatch, telegram, vk=vk, max_emulator=max_emu
            )
            async with running(config, emulator) as app:
                max_chat = max_emu.dialog(MAX_TOKEN, 901).chat_id
                telegram.user_says(TG_TOKEN, 901, FIRST_GRADE)
                await vk.user_says(VK_GROUP, 901, FIRST_GRADE)
                max_emu.user_says(MAX_TOKEN, max_chat, FIRST_GRADE)
                on_ok = next(
                    m
                    for m in await ask(emulator, app, 901, FIRST_GRADE)
                    if FIRST_GRADE_ANSWER in m.text
                )
                await telegram.wait_until(
                    lambda: any(
                        FIRST_GRADE_ANSWER in m.text for m in telegram.bot_messages(TG_TOKEN, 901)
                    )
                )
                await vk.wait_until(
                    lambda: any(FIRST_GRADE_ANSWER in m.text for m in vk.messages(VK_GROUP, 901))
                )
                await max_emu.wait_until(
                    lambda: any(
                        FIRST_GRADE_ANSWER in m.text
                        for m in max_emu.bot_messages(MAX_TOKEN, max_chat)
                    )
                )
                await app.settle()
            tg = next(
                m for m in telegram.bot_messages(TG_TOKEN, 901) if FIRST_GRADE_ANSWER in m.text
            )
            on_max = next(
                m for m in max_emu.bot_messages(MAX_TOKEN, max_chat) if FIRST_GRADE_ANSWER in m.text
            )
    finally:
        await vk.close()
    on_vk = next(m for m in vk.messages(VK_GROUP, 901) if FIRST_GRADE_ANSWER in m.text)
    assert flat(on_ok.text) == flat(tg.text) == flat(on_vk.text) == flat(on_max.text)
    assert "г. Курск, ул. Примерная, 1" in on_ok.text


# -- a kill between receiving a webhook and answering it ---------------------------------
async def test_sigkill_between_receiving_a_webhook_and_answering_it(
    tmp_path: Path, emulator: OkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot shows "typing" before it handles a message, and the emulator holds that
    call: the process is killed with the webhook received and not yet answered. OK
    delivers it again to the restarted bot, and the citizen gets exactly one answer."""
    log = tmp_path / "bot.log"
    group = emulator.group(OK_TOKEN)
    async with TelegramEmulator() as telegram:
        config = write_config(tmp_path, emulator, monkeypatch, telegram)
        async with priemnaya_run(config, log) as first:
            await until(emulator, lambda: bool(group.webhooks), "the subscription", log)
            emulator.hold("POST typing_on")
            emulator.user_says(OK_TOKEN, dialog(emulator, 950), FIRST_GRADE)
            await until(emulator, lambda: emulator.held >= 1, "the webhook's handling", log)
            await kill_9(first)
        emulator.release()
        assert count(emulator, 950, FIRST_GRADE_ANSWER) == 0
        assert all(status != 200 for *_, status in group.deliveries)  # not acknowledged

        async with priemnaya_run(config, log) as second:
            await until(
                emulator,
                lambda: count(emulator, 950, FIRST_GRADE_ANSWER) >= 1,
                "the answer after the restart",
                log,
            )
            await until(emulator, lambda: emulator.all_delivered(OK_TOKEN), "redelivery", log)
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 15) == 0, tail(log)
    assert count(emulator, 950, FIRST_GRADE_ANSWER) == 1, tail(log)
    assert [status for *_, status in group.deliveries][-1] == 200
    hook = next(iter(group.webhooks)).rsplit("/", 1)[1]
    text = log.read_text(encoding="utf-8")
    assert "POST /ok/" in text and hook not in text  # the path secret is masked in logs


async def until(emulator: OkEmulator, done: Callable[[], bool], what: str, log: Path) -> None:
    try:
        await emulator.wait_until(done, PROCESS_TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"{what} never happened; the bot's log:\n{tail(log)}") from None


# -- priemnaya check --online -----------------------------------------------------------
async def check_online(config: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runtime.cli",
        "check",
        "-c",
        str(config),
        "--online",
        "-i",
        "school-17",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), PROCESS_TIMEOUT)
    return int(process.returncode or 0), out.decode()


async def test_check_online_asks_ok_telegram_and_vk(
    tmp_path: Path, emulator: OkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = emulator.group(OK_TOKEN)
    state.webhooks["https://crm.example.ru/hook"] = {
        "url": "https://crm.example.ru/hook",
        "types": ["MESSAGE_CREATED"],
        "time": 1_764_000_000_000,
    }
    vk = await VkEmulator().start()
    vk.add_community(VK_GROUP, VK_TOKEN)
    try:
        async with TelegramEmulator() as telegram:
            config = write_config(tmp_path, emulator, monkeypatch, telegram, vk=vk)
            code, output = await check_online(config)
    finally:
        await vk.close()
    emulator.refuse_token(OK_TOKEN)
    account = load_config(config).config.institutions["school-17"].ok
    fine, refused = await ok_online(account, None)
    assert code == 0, output
    assert f"token accepted for group 'Школа № 17' (group:{GROUP_ID})" in output
    assert "1 subscription(s)" in output and "https://crm.example.ru/hook" in output
    assert "this config's webhook is not subscribed yet" in output
    assert "telegram: token accepted" in output
    assert "vk: token accepted for community" in output and f"club{VK_GROUP}" in output
    assert OK_TOKEN not in output
    assert not fine and "the token is refused" in refused[0]
