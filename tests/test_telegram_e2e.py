"""The whole app on Telegram: real aiogram over HTTP against the Bot API emulator, started
from a config file, with SQLite in tmp_path. Each test plays citizens in the emulator and
checks what they see in their chats."""

from __future__ import annotations

import shutil
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from runtime.app import App
from tests.emulators.telegram import Message, TelegramEmulator
from tests.running import running_app as running

ROOT = Path(__file__).resolve().parent.parent
SCHOOL = "710001:school-token-abcdef"
CLINIC = "710002:clinic-token-abcdef"
LONG_PARAGRAPHS = 24  # about 10,000 characters


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emu:
        yield emu


def long_faq(folder: Path) -> Path:
    """The school FAQ plus an entry whose answer is about 10,000 characters."""
    paragraphs = [
        f"Пункт {n}. " + "Ученики и родители соблюдают правила распорядка школы. " * 7
        for n in range(1, LONG_PARAGRAPHS + 1)
    ]
    body = "\n\n".join(paragraphs)
    assert len(body) > 9_500
    entry = (
        "\n  - id: internal-rules\n"
        "    category: Правила\n"
        "    questions:\n"
        "      - Какие правила внутреннего распорядка действуют в школе?\n"
        "    answer: |\n" + "".join(f"      {line}\n" for line in body.split("\n"))
    )
    text = (ROOT / "examples/faq/school.yaml").read_text(encoding="utf-8")
    path = folder / "school.yaml"
    path.write_text(text.rstrip("\n") + "\n" + entry, encoding="utf-8")
    return path


def write_config(
    tmp_path: Path,
    emulator: TelegramEmulator,
    monkeypatch: pytest.MonkeyPatch,
    *,
    webhook_port: int | None = None,
) -> Path:
    monkeypatch.setenv("TG_SCHOOL", SCHOOL)
    monkeypatch.setenv("TG_CLINIC", CLINIC)
    faq = tmp_path / "faq"
    faq.mkdir()
    long_faq(faq)
    shutil.copy(ROOT / "examples/faq/polyclinic.yaml", faq / "polyclinic.yaml")
    mode = ", mode: webhook" if webhook_port else ""
    server = (
        f"server: {{host: 127.0.0.1, port: {webhook_port},"
        f" public_url: 'http://127.0.0.1:{webhook_port}'}}\n"
        if webhook_port
        else ""
    )
    config = f"""\
storage: {{path: data/bot.sqlite3}}
timezone: Europe/Moscow
{server}institutions:
  school-17:
    name: МБОУ «Средняя школа № 17»
    address: г. Курск, ул. Примерная, 1
    phone: +7 (4712) 00-00-00
    site: https://school17.example
    working_hours: {{mon-sun: "00:00-23:59"}}
    faq: faq/school.yaml
    telegram: {{token: "${{TG_SCHOOL}}", api_server: "{emulator.url}"{mode}}}
    staff:
      chat: {{platform: telegram, id: -1001}}
      members: [{{platform: telegram, id: 1111, name: Иванова А. П.}}]
  polyclinic-3:
    name: ОГБУЗ «Городская поликлиника № 3»
    address: г. Курск, ул. Больничная, 5
    phone: +7 (4712) 11-11-11
    working_hours: {{mon-sun: "00:00-23:59"}}
    faq: faq/polyclinic.yaml
    telegram: {{token: "${{TG_CLINIC}}", api_server: "{emulator.url}"{mode}}}
    staff:
      chat: {{platform: telegram, id: -1002}}
      members: [{{platform: telegram, id: 2222, name: Петрова Е. В.}}]
"""
    path = tmp_path / "config.yaml"
    path.write_text(config, encoding="utf-8")
    return path


async def until_said(
    emulator: TelegramEmulator,
    app: App,
    token: str,
    chat: int,
    done: Callable[[list[Message]], bool],
) -> list[Message]:
    """Wait until the bot's messages in ``chat`` satisfy ``done``, then until the app has
    nothing left to send; returns the bot's messages."""
    await emulator.wait_until(lambda: done(emulator.bot_messages(token, chat)))
    await app.settle()
    return emulator.bot_messages(token, chat)


async def ask(
    emulator: TelegramEmulator, app: App, token: str, chat: int, text: str
) -> list[Message]:
    """A citizen asks ``text``; returns what the bot said in answer (all its messages)."""
    before = len(emulator.bot_messages(token, chat))
    emulator.user_says(token, chat, text)
    said = await until_said(emulator, app, token, chat, lambda m: len(m) > before)
    return said[before:]


def joined(messages: list[Message]) -> str:
    return "\n".join(m.text for m in messages)


# -- tests ---------------------------------------------------------------------------------


async def test_a_question_gets_the_faq_answer(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        said = await ask(emulator, app, SCHOOL, 501, "Как записать ребенка в первый класс?")
    text = joined(said)
    assert "Приём заявлений в 1 класс" in text
    assert "г. Курск, ул. Примерная, 1" in text
    assert any("Помогло" in label for label in said[-1].labels[-1])


async def test_buttons_work_and_so_does_clarifying(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        said = await ask(emulator, app, SCHOOL, 502, "Как записать ребенка в первый класс?")
        emulator.press(SCHOOL, 502, said[-1].message_id, "Помогло")
        await emulator.wait_until(lambda: len(emulator.answered(SCHOOL)) == 1)
        assert "Спасибо" in (emulator.answered(SCHOOL)[0][1] or "")

        offer = (await ask(emulator, app, SCHOOL, 502, "питание"))[-1]
        assert "Возможно, вы имели в виду" in offer.text
        option = next(b for row in offer.buttons for b in row if "оплатить" in b.text.lower())
        before = len(emulator.bot_messages(SCHOOL, 502))
        emulator.press(SCHOOL, 502, offer.message_id, option.text)
        said = await until_said(emulator, app, SCHOOL, 502, lambda m: len(m) > before)
    assert "лицевой счёт" in said[-1].text


async def test_a_429_and_a_500_are_ridden_out_and_the_answer_arrives_once(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        await ask(emulator, app, SCHOOL, 503, "/start")  # first contact out of the way
        calls_before = emulator.calls["sendMessage"]
        emulator.fail("sendMessage", 429, retry_after=1, chat_id=503)
        emulator.fail("sendMessage", 500, chat_id=503)
        said = await ask(emulator, app, SCHOOL, 503, "как оплатить питание в столовой")
    assert len(said) == 1
    assert "лицевой счёт" in said[0].text
    assert emulator.calls["sendMessage"] - calls_before == 3  # 429, 500, delivered


async def test_a_user_who_blocked_the_bot_is_marked_unreachable(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        assert app.storage is not None
        await ask(emulator, app, SCHOOL, 504, "/start")
        # the user blocks the bot right after asking: the answer meets a 403
        emulator.fail("sendMessage", 403, chat_id=504)
        calls = emulator.calls["sendMessage"]
        emulator.user_says(SCHOOL, 504, "Как записать ребенка в первый класс?")
        await emulator.wait_until(lambda: emulator.calls["sendMessage"] > calls)
        await app.settle()
        citizen = await app.storage.citizens.get("school-17", "telegram", "504")
        assert citizen is not None and citizen.unreachable
        # blocking shown by Telegram as a membership change marks a citizen too
        await ask(emulator, app, SCHOOL, 505, "/start")
        emulator.block(SCHOOL, 505)
        await emulator.wait_until(lambda: emulator.pending_updates(SCHOOL) == 0)
        await app.settle()
        other = await app.storage.citizens.get("school-17", "telegram", "505")
        assert other is not None and other.unreachable


async def test_a_10000_character_answer_arrives_in_parts_in_order(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        await ask(emulator, app, SCHOOL, 506, "/start")
        said = await ask(
            emulator, app, SCHOOL, 506, "Какие правила внутреннего распорядка действуют в школе?"
        )
    assert len(said) >= 3
    assert all(len(m.text) <= 4096 for m in said)
    text = joined(said)
    positions = [text.index(f"Пункт {n}.") for n in range(1, LONG_PARAGRAPHS + 1)]
    assert positions == sorted(positions)
    assert said[-1].buttons and not any(m.buttons for m in said[:-1])


async def test_two_institutions_answer_from_their_own_faq(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        clinic = joined(await ask(emulator, app, CLINIC, 507, "как вызвать врача на дом"))
        school = joined(await ask(emulator, app, SCHOOL, 507, "как вызвать врача на дом"))
    assert "Вызвать врача на дом" in clinic and "+7 (4712) 11-11-11" in clinic
    assert "Вызвать врача на дом" not in school
    assert emulator.bot_messages(CLINIC, 507) and emulator.bot_messages(SCHOOL, 507)


async def test_an_update_delivered_twice_is_handled_once(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        await ask(emulator, app, SCHOOL, 508, "/start")
        question = emulator.user_says(SCHOOL, 508, "Как записать ребенка в первый класс?")
        first = await until_said(emulator, app, SCHOOL, 508, lambda m: "1 класс" in m[-1].text)
        update_id = next(
            u["update_id"]
            for u in emulator.sent_updates[SCHOOL]
            if u.get("message", {}).get("message_id") == question.message_id
        )
        emulator.deliver_again(SCHOOL, update_id)
        # a later message in the same chat is handled after the redelivered one
        emulator.user_says(SCHOOL, 508, "как оплатить питание в столовой")
        said = await until_said(emulator, app, SCHOOL, 508, lambda m: "лицевой" in m[-1].text)
    assert emulator.bot(SCHOOL).served[update_id] == 2
    assert said[: len(first)] == first
    assert len(said) == len(first) + 1


async def test_webhook_accepts_a_signed_update_and_rejects_a_wrong_secret(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_config(tmp_path, emulator, monkeypatch, webhook_port=port)
    async with running(config) as app:
        await emulator.wait_until(lambda: bool(emulator.bot(SCHOOL).webhook_url))
        assert emulator.bot(SCHOOL).webhook_url == f"http://127.0.0.1:{port}/telegram/710001"
        said = await ask(emulator, app, SCHOOL, 509, "Как записать ребенка в первый класс?")
        assert "Приём заявлений в 1 класс" in joined(said)

        before = len(emulator.bot_messages(SCHOOL, 509))
        forged = {
            "update_id": 9_000,
            "message": {
                "message_id": 9_000,
                "date": 1_700_000_000,
                "chat": {"id": 509, "type": "private", "first_name": "Анна"},
                "from": {"id": 509, "is_bot": False, "first_name": "Анна"},
                "text": "/start",
            },
        }
        assert await emulator.post_webhook(SCHOOL, forged, secret="wrong") in (401, 403)
        assert await emulator.post_webhook(SCHOOL, forged, secret=None) in (401, 403)
        await app.settle()
        assert len(emulator.bot_messages(SCHOOL, 509)) == before
        # the other bot's secret does not open this bot's route either
        clinic_secret = emulator.bot(CLINIC).webhook_secret
        assert await emulator.post_webhook(SCHOOL, forged, secret=clinic_secret) in (401, 403)
