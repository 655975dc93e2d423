"""One Telegram bot (one token) for two institutions, end to end: the real aiogram over
HTTP against the Bot API emulator, the app started from a config file, SQLite in tmp_path.

Citizens choose their institution by deep link (``/start school-17``) or by the picker's
buttons; answers, tickets and the staff chat are the chosen institution's, and a restart
keeps every chat's choice."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bots.core.clock import ManualClock
from handlers.announcements import feature_of
from runtime.app import App
from tests.emulators.telegram import Message, TelegramEmulator
from tests.running import running_app as running
from tests.test_telegram_e2e import ask, joined, until_said

ROOT = Path(__file__).resolve().parent.parent
DISTRICT = "720001:district-token-abcdef"
SCHOOL_STAFF, CLINIC_STAFF = -1001, -1002
A, B, C = 601, 602, 603
SCHOOL_ANSWER = "Приём заявлений в 1 класс"
CLINIC_ANSWER = "прикрепиться можно по месту жительства"
SCHOOL_Q = "Как записать ребёнка в первый класс?"
CLINIC_Q = "Как прикрепиться к поликлинике?"
PRIVACY = "Бот хранит ваши сообщения"  # templates/first_contact.j2


@pytest.fixture
async def emulator() -> TelegramEmulator:  # type: ignore[misc]
    async with TelegramEmulator() as emu:
        emu.open_group(DISTRICT, SCHOOL_STAFF, "Школа 17: сотрудники")
        emu.open_group(DISTRICT, CLINIC_STAFF, "Поликлиника 3: сотрудники")
        yield emu


def write_config(
    tmp_path: Path,
    emulator: TelegramEmulator,
    monkeypatch: pytest.MonkeyPatch,
    *,
    school_extra: str = "",
) -> Path:
    """Two institutions naming the same bot token, each with its own staff chat
    (``school_extra``: more of the school's settings, indented as they are)."""
    monkeypatch.setenv("TG_DISTRICT", DISTRICT)
    (tmp_path / "faq").mkdir()
    shutil.copy(ROOT / "examples/faq/school.yaml", tmp_path / "faq/school.yaml")
    shutil.copy(ROOT / "examples/faq/polyclinic.yaml", tmp_path / "faq/polyclinic.yaml")
    bot = f'{{token: "${{TG_DISTRICT}}", api_server: "{emulator.url}"}}'
    config = f"""\
storage: {{path: data/bot.sqlite3}}
timezone: Europe/Moscow
institutions:
  school-17:
    name: МБОУ «Средняя школа № 17»
    address: г. Курск, ул. Примерная, 1
    working_hours: {{mon-sun: "00:00-23:59"}}
    faq: faq/school.yaml
    telegram: {bot}
    staff:
      chat: {{platform: telegram, id: {SCHOOL_STAFF}}}
      members: [{{platform: telegram, id: 1111, name: Иванова А. П.}}]
{school_extra}  polyclinic-3:
    name: ОГБУЗ «Городская поликлиника № 3»
    address: г. Курск, ул. Больничная, 5
    working_hours: {{mon-sun: "00:00-23:59"}}
    faq: faq/polyclinic.yaml
    telegram: {bot}
    staff:
      chat: {{platform: telegram, id: {CLINIC_STAFF}}}
      members: [{{platform: telegram, id: 2222, name: Петрова Е. В.}}]
"""
    path = tmp_path / "config.yaml"
    path.write_text(config, encoding="utf-8")
    return path


async def say(emulator: TelegramEmulator, app: App, chat: int, text: str) -> str:
    return joined(await ask(emulator, app, DISTRICT, chat, text))


async def staff_cards(emulator: TelegramEmulator, app: App, chat: int, count: int) -> list[Message]:
    return await until_said(emulator, app, DISTRICT, chat, lambda m: len(m) >= count)


async def test_two_institutions_on_one_bot(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, emulator, monkeypatch)
    async with running(config) as app:
        # A and B come by deep links (QR codes on the doors): one message says where they
        # are, what the bot keeps (a first contact) and the institution's greeting with topics
        greeted = await ask(emulator, app, DISTRICT, A, "/start school-17")
        assert len(greeted) == 1, [m.text for m in greeted]
        said = greeted[0].text
        assert "Вы в учреждении" in said and "школа № 17" in said
        assert PRIVACY in said and "Здравствуйте" in said and greeted[0].labels
        said = await say(emulator, app, B, "/start polyclinic-3")
        assert "Вы в учреждении" in said and "поликлиника № 3" in said
        assert SCHOOL_ANSWER in await say(emulator, app, A, SCHOOL_Q)
        assert CLINIC_ANSWER in await say(emulator, app, B, CLINIC_Q)
        again = await ask(emulator, app, DISTRICT, A, "/start school-17")
        assert len(again) == 1 and "Здравствуйте" in again[0].text
        assert PRIVACY not in again[0].text  # told once, at the first contact
        # C opens the bot bare and picks the clinic from the buttons
        before = len(emulator.bot_messages(DISTRICT, C))
        emulator.user_says(DISTRICT, C, "/start")
        picker = (await until_said(emulator, app, DISTRICT, C, lambda m: len(m) > before))[-1]
        assert "Выберите учреждение" in picker.text
        assert [row[0] for row in picker.labels] == [
            "МБОУ «Средняя школа № 17»",
            "ОГБУЗ «Городская поликлиника № 3»",
        ]
        before = len(emulator.bot_messages(DISTRICT, C))
        emulator.press(DISTRICT, C, picker.message_id, "поликлиника")
        chosen = await until_said(emulator, app, DISTRICT, C, lambda m: len(m) > before)
        assert "поликлиника № 3" in chosen[before].text and "/place" in chosen[before].text
        assert PRIVACY in chosen[before].text and len(chosen) == before + 1
        assert CLINIC_ANSWER in await say(emulator, app, C, CLINIC_Q)
        # each one's question for staff lands in its own institution's staff chat
        await say(emulator, app, A, "/operator учительница не отвечает на звонки")
        await say(emulator, app, B, "/operator не могу дозвониться до регистратуры")
        await say(emulator, app, C, "/operator потеряли мою медицинскую карту")
        school = joined(await staff_cards(emulator, app, SCHOOL_STAFF, 1))
        clinic = joined(await staff_cards(emulator, app, CLINIC_STAFF, 2))
        assert "учительница" in school
        assert "регистратуры" not in school and "карту" not in school
        assert "регистратуры" in clinic and "карту" in clinic and "учительница" not in clinic
    # a restart keeps every binding: each citizen still gets their institution's answers
    async with running(config) as app:
        assert SCHOOL_ANSWER in await say(emulator, app, A, SCHOOL_Q)
        assert CLINIC_ANSWER in await say(emulator, app, B, CLINIC_Q)
        assert CLINIC_ANSWER in await say(emulator, app, C, CLINIC_Q)
        assert SCHOOL_ANSWER not in await say(emulator, app, C, SCHOOL_Q)


async def test_search_switching_and_recent(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, emulator, monkeypatch)
    async with running(config) as app:
        await say(emulator, app, A, "/start school-17")
        said = await say(emulator, app, A, "/place")
        assert "Сейчас вы в учреждении «МБОУ «Средняя школа № 17»»" in said or "школа № 17" in said
        # while choosing, typed words search by name or kind
        before = len(emulator.bot_messages(DISTRICT, A))
        emulator.user_says(DISTRICT, A, "поликлиника")
        found = (await until_said(emulator, app, DISTRICT, A, lambda m: len(m) > before))[-1]
        assert found.labels == [["ОГБУЗ «Городская поликлиника № 3»"]]
        assert "ничего не нашлось" in await say(emulator, app, A, "музей")
        before = len(emulator.bot_messages(DISTRICT, A))
        emulator.press(DISTRICT, A, found.message_id, "поликлиника")
        chosen = await until_said(emulator, app, DISTRICT, A, lambda m: len(m) > before)
        assert "поликлиника № 3" in chosen[before].text
        assert CLINIC_ANSWER in await say(emulator, app, A, CLINIC_Q)
        # the picker now offers the recent ones, latest first
        before = len(emulator.bot_messages(DISTRICT, A))
        emulator.user_says(DISTRICT, A, "/place")
        picker = (await until_said(emulator, app, DISTRICT, A, lambda m: len(m) > before))[-1]
        assert [row[0] for row in picker.labels] == [
            "ОГБУЗ «Городская поликлиника № 3»",
            "МБОУ «Средняя школа № 17»",
        ]


async def subscribe(emulator: TelegramEmulator, app: App, chat: int) -> None:
    said = await ask(emulator, app, DISTRICT, chat, "/subscribe")
    emulator.press(DISTRICT, chat, said[-1].message_id, "Подписаться")
    await until_said(emulator, app, DISTRICT, chat, lambda m: "подписаны" in m[-1].text)


async def test_announcements_go_to_that_institutions_followers_and_say_whose(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    news = "Родительское собрание в среду в 18:00."
    announcement = f"""\
    announcements:
      - id: meeting
        at: 2026-09-01T13:00:00+03:00
        text: {news}
"""
    config = write_config(tmp_path, emulator, monkeypatch, school_extra=announcement)
    clock = ManualClock(datetime(2026, 9, 1, 9, 0, tzinfo=UTC))  # 12:00 in Moscow
    async with running(config, clock=clock) as app:
        # A follows the school and the clinic (and stays in the clinic); B only the clinic
        await say(emulator, app, A, "/start school-17")
        await subscribe(emulator, app, A)
        await say(emulator, app, A, "/start polyclinic-3")
        await subscribe(emulator, app, A)
        await say(emulator, app, B, "/start polyclinic-3")
        await subscribe(emulator, app, B)
        clock.set(datetime(2026, 9, 1, 10, 0, 1, tzinfo=UTC))
        await feature_of(app).settle()
        got = emulator.bot_messages(DISTRICT, A)[-1]
        assert got.text.startswith("📢 «МБОУ «Средняя школа № 17»»") or (
            "школа № 17" in got.text.split("\n")[0]
        )
        assert news in got.text
        assert not any(news in m.text for m in emulator.bot_messages(DISTRICT, B))
        # "unsubscribe" under the school's announcement is the school's, though A is in
        # the clinic now; the clinic's subscription stays
        before = len(emulator.bot_messages(DISTRICT, A))
        emulator.press(DISTRICT, A, got.message_id, "Отписаться")
        said = await until_said(emulator, app, DISTRICT, A, lambda m: len(m) > before)
        assert "отписались от объявлений" in said[-1].text and "школа № 17" in said[-1].text
        assert CLINIC_ANSWER in await say(emulator, app, A, CLINIC_Q)  # still in the clinic
        assert "поликлиника № 3" in await say(emulator, app, A, "/unsubscribe")


async def test_a_ticket_stays_its_institutions_after_the_citizen_switches(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, emulator, monkeypatch)
    async with running(config) as app:
        await say(emulator, app, A, "/start school-17")
        await say(emulator, app, A, "/operator учительница не отвечает на звонки")
        card = (await staff_cards(emulator, app, SCHOOL_STAFF, 1))[0]
        await say(emulator, app, A, "/start polyclinic-3")  # A goes to the clinic meanwhile
        # the school's staff answer by replying to the card; it reaches A from the school
        before = len(emulator.bot_messages(DISTRICT, A))
        emulator.user_says(
            DISTRICT, SCHOOL_STAFF, "Позвоните завучу.", user_id=1111, reply_to=card.message_id
        )
        said = await until_said(emulator, app, DISTRICT, A, lambda m: len(m) > before)
        answer = said[-1]
        assert "Позвоните завучу." in answer.text
        # "Не помогло" under the school's answer goes back to the school's staff, not the clinic's
        staff_before = len(emulator.bot_messages(DISTRICT, SCHOOL_STAFF))
        emulator.press(DISTRICT, A, answer.message_id, "Не помогло")
        await until_said(emulator, app, DISTRICT, SCHOOL_STAFF, lambda m: len(m) > staff_before)
        assert emulator.bot_messages(DISTRICT, CLINIC_STAFF) == []
        # and A is still in the clinic
        assert CLINIC_ANSWER in await say(emulator, app, A, CLINIC_Q)


async def test_the_picker_pages_through_many_institutions(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight more schools on the bot (ten institutions): six buttons a page, "Ещё »" for
    the rest; a search matches words from their start ("школа 7" is not school № 17)."""
    config = write_config(tmp_path, emulator, monkeypatch)
    schools = "".join(
        f"""\
  school-{n}:
    name: Школа № {n}
    faq: faq/school.yaml
    telegram: {{token: "${{TG_DISTRICT}}", api_server: "{emulator.url}"}}
"""
        for n in range(1, 9)
    )
    config.write_text(config.read_text(encoding="utf-8") + schools, encoding="utf-8")
    async with running(config) as app:
        before = len(emulator.bot_messages(DISTRICT, C))
        emulator.user_says(DISTRICT, C, "/start")
        first = (await until_said(emulator, app, DISTRICT, C, lambda m: len(m) > before))[-1]
        assert len(first.labels) == 7 and first.labels[-1] == ["Ещё »"]
        before = len(emulator.bot_messages(DISTRICT, C))
        emulator.press(DISTRICT, C, first.message_id, "Ещё")
        second = (await until_said(emulator, app, DISTRICT, C, lambda m: len(m) > before))[-1]
        assert [row[0] for row in second.labels] == [f"Школа № {n}" for n in range(5, 9)]
        before = len(emulator.bot_messages(DISTRICT, C))
        emulator.user_says(DISTRICT, C, "школа 7")
        found = (await until_said(emulator, app, DISTRICT, C, lambda m: len(m) > before))[-1]
        assert [row[0] for row in found.labels] == ["Школа № 7"]
        emulator.press(DISTRICT, C, found.message_id, "Школа № 7")
        chosen = await until_said(emulator, app, DISTRICT, C, lambda m: "Вы в" in m[-1].text)
        assert "Школа № 7" in chosen[-1].text
