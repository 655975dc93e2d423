"""A parent's whole conversation with the school's bot, replayed through the real aiogram
adapter against the Telegram Bot API emulator (the app built from a config file, SQLite in
tmp_path), with the staff in a Telegram group.

It is the conversation that went wrong before: FAQ questions, a question the FAQ does not
cover, more FAQ questions while that ticket is open, a lone digit, a sticker, a follow-up,
an injury, a complaint, the staff answer, a question after the answer, /forget, and a
question after that. After each message the test asserts what the parent sees; at the end,
which tickets exist: one per unanswered question, FAQ answers never swallowed by a ticket.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.app import App
from storage.tickets import Ticket
from tests.emulators.telegram import Message, TelegramEmulator
from tests.running import running_app as running

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "710001:school-token-abcdef"
STAFF_CHAT = -1001
MEMBER = 1111
PARENT = 501
FIGHT = "мой сын подрался на перемене, прошу разобраться"
INJURY = "Ребенок упал на перемене и сильно ударился головой, что делать?"
ALL_STATUSES = ("open", "in_progress", "answered", "closed")


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emu:
        emu.open_group(TOKEN, STAFF_CHAT, "Сотрудники школы")
        yield emu


def write_config(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("TG_SCHOOL", TOKEN)
    (tmp_path / "faq").mkdir()
    shutil.copy(ROOT / "examples/faq/school.yaml", tmp_path / "faq/school.yaml")
    config = f"""\
storage: {{path: data/bot.sqlite3}}
timezone: Europe/Moscow
institutions:
  school-17:
    name: МБОУ «Средняя школа № 17»
    address: г. Курск, ул. Примерная, 1
    phone: +7 (4712) 00-00-00
    working_hours: {{mon-sun: "00:00-23:59"}}
    faq: faq/school.yaml
    telegram: {{token: "${{TG_SCHOOL}}", api_server: "{emulator.url}"}}
    staff:
      chat: {{platform: telegram, id: {STAFF_CHAT}}}
      members: [{{platform: telegram, id: {MEMBER}, name: Иванова А. П.}}]
      urgent_response: 20m
"""
    path = tmp_path / "config.yaml"
    path.write_text(config, encoding="utf-8")
    return path


class Parent:
    """The parent in their private chat with the bot."""

    def __init__(self, emulator: TelegramEmulator, app: App) -> None:
        self.emulator = emulator
        self.app = app

    def seen(self) -> list[Message]:
        return self.emulator.bot_messages(TOKEN, PARENT)

    async def says(self, text: str, *, reply_to: int | None = None) -> str:
        """Send ``text``; returns everything the bot said back (its reaction)."""
        before = len(self.seen())
        self.emulator.user_says(TOKEN, PARENT, text, first_name="Мария", reply_to=reply_to)
        return await self._reaction(before)

    async def sends_a_sticker(self) -> str:
        before = len(self.seen())
        self.emulator.push_update(
            TOKEN,
            {
                "message": {
                    "message_id": 90_000,
                    "date": int(time.time()),
                    "chat": {"id": PARENT, "type": "private", "first_name": "Мария"},
                    "from": {"id": PARENT, "is_bot": False, "first_name": "Мария"},
                    "sticker": {
                        "file_id": "sticker-1",
                        "file_unique_id": "s1",
                        "type": "regular",
                        "width": 512,
                        "height": 512,
                        "is_animated": False,
                        "is_video": False,
                    },
                }
            },
        )
        return await self._reaction(before)

    async def presses(self, message: Message, label: str) -> str:
        before = len(self.seen())
        self.emulator.press(TOKEN, PARENT, message.message_id, label)
        return await self._reaction(before)

    async def gets_staff_answer(self, text: str, card: Message | None = None) -> None:
        """A staff member writes ``text`` in the staff chat (a reply to ``card``, if given);
        returns once the parent has the answer."""
        before = len(self.seen())
        self.emulator.user_says(
            TOKEN,
            STAFF_CHAT,
            text,
            user_id=MEMBER,
            reply_to=card.message_id if card is not None else None,
        )
        await self._reaction(before)

    async def _reaction(self, before: int) -> str:
        await self.emulator.wait_until(lambda: len(self.seen()) > before, 20.0)
        await self.emulator.wait_until(lambda: self.emulator.pending_updates(TOKEN) == 0, 20.0)
        await self.app.settle()
        return "\n".join(m.text for m in self.seen()[before:])


def staff_cards(emulator: TelegramEmulator) -> list[Message]:
    return [m for m in emulator.bot_messages(TOKEN, STAFF_CHAT) if "Обращение №" in m.text]


def card_of(emulator: TelegramEmulator, number: int) -> Message:
    return next(m for m in staff_cards(emulator) if f"Обращение № {number} ·" in m.text)


async def tickets(app: App) -> list[Ticket]:
    assert app.storage is not None
    found = await app.storage.tickets.find("school-17", ALL_STATUSES)
    return sorted(found, key=lambda t: t.number)


async def test_a_parents_conversation_every_message_understood_on_its_own(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        parent = Parent(emulator, app)

        seen = await parent.says("/start")
        assert "Здравствуйте" in seen and parent.seen()[-1].labels[0] == ["Приём в школу"]

        seen = await parent.says("Сколько стоит питание в столовой?")
        assert "лицевой счёт" in seen

        seen = await parent.says(FIGHT)  # the FAQ does not cover it
        assert "передал ваш вопрос сотрудникам (обращение № 1)" in seen
        card = card_of(emulator, 1)
        assert FIGHT in card.text

        # FAQ questions while the ticket is open are answered, the ticket is untouched
        seen = await parent.says("Какое расписание звонков?")
        assert "8:30" in seen and "обращени" not in seen
        seen = await parent.says("Как записать ребенка в первый класс?")
        assert "Приём заявлений в 1 класс" in seen and "обращени" not in seen
        seen = await parent.says("/help")
        assert "/operator" in seen

        # a lone digit under a message without buttons, and a sticker: "не понял" and topics
        seen = await parent.says("3")
        assert "Не понял" in seen and "обращени" not in seen
        assert ["Приём в школу"] in parent.seen()[-1].labels
        seen = await parent.sends_a_sticker()
        assert "только текст" in seen and ["Приём в школу"] in parent.seen()[-1].labels

        # a follow-up the FAQ cannot answer, while № 1 waits for staff: it joins № 1
        seen = await parent.says("обидчика зовут Петя, он толкается на переменах")
        assert "Добавил ваше сообщение к обращению № 1" in seen

        # an injury: the emergency numbers at once, and an urgent ticket of its own
        seen = await parent.says(INJURY)
        assert "112" in seen and "103" in seen
        assert "как срочное (обращение № 2)" in seen
        assert "СРОЧНО" in card_of(emulator, 2).text

        # a complaint the FAQ cannot answer: a follow-up of the ticket still waiting
        seen = await parent.says("хочу пожаловаться на охранника, он грубит детям")
        assert "обращению № 1" in seen

        # the staff answer № 1 by replying to its card
        await parent.gets_staff_answer(
            "Здравствуйте! Классный руководитель позвонит вам сегодня.", card_of(emulator, 1)
        )
        answer = parent.seen()[-1]
        assert "Ответ сотрудника" in answer.text and "№ 1" in answer.text
        assert answer.labels == [["👎 Не помогло"]]
        assert "отвечено" in card_of(emulator, 1).text
        assert (
            "Дополнения" in card_of(emulator, 1).text and "охранника" in card_of(emulator, 1).text
        )

        # after the answer, a new question the FAQ cannot answer is a new ticket
        seen = await parent.says("Почему в классе так холодно, батареи ледяные?")
        assert "передал ваш вопрос сотрудникам (обращение № 3)" in seen

        found = await tickets(app)
        assert [(t.number, t.question, t.status, t.urgent) for t in found] == [
            (1, FIGHT, "answered", False),
            (2, INJURY, "open", True),
            (3, "Почему в классе так холодно, батареи ледяные?", "open", False),
        ]

        seen = await parent.says("/forget")
        seen = await parent.presses(parent.seen()[-1], "Удалить")
        assert "Готово" in seen

        # after /forget nothing is joined to the old, anonymised tickets
        seen = await parent.says("когда починят крышу спортзала")
        assert "передал ваш вопрос сотрудникам (обращение № 4)" in seen

        found = await tickets(app)

    assert [(t.number, t.status, t.closed_by) for t in found] == [
        (1, "closed", "forget"),
        (2, "closed", "forget"),
        (3, "closed", "forget"),
        (4, "open", None),
    ]
    assert found[3].question == "когда починят крышу спортзала"
    anonymised = next(
        m for m in emulator.bot_messages(TOKEN, STAFF_CHAT) if m.message_id == card.message_id
    )
    assert FIGHT not in anonymised.text and "удалено" in anonymised.text


async def test_a_reply_to_the_staff_answer_reopens_the_ticket_and_a_number_presses_a_button(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply to the staff answer is a follow-up (the ticket reopens), though its words
    alone would be a question of their own; "Не помогло" under the answer does the same;
    a number under a message with buttons presses its button."""
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        parent = Parent(emulator, app)
        await parent.says(FIGHT)
        await parent.gets_staff_answer("Разберёмся.", card_of(emulator, 1))
        answer = parent.seen()[-1]

        seen = await parent.says("Когда будут каникулы?", reply_to=answer.message_id)
        assert "обращению № 1" in seen and "каникулы — в начале ноября" not in seen
        assert [t.status for t in await tickets(app)] == ["open"]

        await parent.gets_staff_answer("/reply 1 Каникулы с 29 декабря.")
        seen = await parent.presses(parent.seen()[-1], "Не помогло")
        assert "обращению № 1" in seen
        assert [t.status for t in await tickets(app)] == ["open"]

        seen = await parent.says("/start")
        seen = await parent.says("3")  # the third topic: Питание
        assert "Питание" in seen
