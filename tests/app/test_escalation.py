"""Escalation on the whole app (local platform): tickets, the staff chat, answers relayed
back, Take/Close, topics, floods, reopening, urgent words, SLA under an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bots.core.clock import ManualClock
from bots.core.model import ChatKind, User
from bots.local import LocalMessage, LocalPlatform
from handlers.config import load_config
from handlers.escalation.timers import tick
from runtime.app import App

STAFF_CHAT = "-1001234567890"
STAFF = User("1111", "Анна", "Иванова")
STRANGER = User("9999", "Посторонний")
CITIZEN_CHAT = "500"
UNCOVERED = "мой сын подрался на перемене, прошу разобраться"
# Monday 30 November 2026, 10:00 in Moscow: working hours
MONDAY_MORNING = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


def edit_config(config: Path, old: str, new: str) -> None:
    text = config.read_text(encoding="utf-8")
    assert old in text, old
    config.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
async def app(example_config: Path, clock: ManualClock) -> AsyncIterator[App]:
    clock.set(MONDAY_MORNING)
    edit_config(
        example_config,
        'working_hours: {mon-fri: "08:00-17:00"}',
        'working_hours: {mon-fri: "08:00-17:00"}\n    holidays: [2026-12-07]',
    )
    running = App(load_config(example_config), clock=clock, local=True)
    await running.start()
    running.local_platform("school-17").open_chat(STAFF_CHAT, ChatKind.GROUP)
    try:
        yield running
    finally:
        await running.stop()


def school(app: App) -> LocalPlatform:
    return app.local_platform("school-17")


async def citizen_says(app: App, text: str, chat: str = CITIZEN_CHAT) -> list[LocalMessage]:
    local = school(app)
    before = len(local.messages(chat))
    await local.user_says(chat, text, user=User(chat, "Мария", "Петрова"))
    await app.settle()
    return local.messages(chat)[before:]


async def staff_says(
    app: App,
    text: str,
    *,
    reply_to: str | None = None,
    user: User = STAFF,
    thread: str | None = None,
) -> None:
    await school(app).user_says(
        STAFF_CHAT, text, user=user, reply_to=reply_to, kind=ChatKind.GROUP, thread_id=thread
    )
    await app.settle()


def staff_messages(app: App) -> list[LocalMessage]:
    return school(app).messages(STAFF_CHAT)


def the_card(app: App, number: int = 1) -> LocalMessage:
    cards = [m for m in staff_messages(app) if f"Обращение № {number} ·" in m.text]
    assert cards, [m.text for m in staff_messages(app)]
    return cards[0]


async def test_uncovered_question_becomes_a_card_and_the_staff_reply_reaches_the_citizen(
    app: App,
) -> None:
    said = await citizen_says(app, UNCOVERED)
    assert any("передал ваш вопрос сотрудникам" in m.text and "№ 1" in m.text for m in said)
    card = the_card(app)
    assert UNCOVERED in card.text and "Мария Петрова" in card.text
    assert [label for row in card.buttons for label, _ in row] == ["Взять", "Закрыть"]

    await staff_says(
        app, "Здравствуйте! Классный руководитель свяжется с вами сегодня.", reply_to=card.id
    )
    answer = school(app).last(CITIZEN_CHAT)
    assert "Классный руководитель свяжется с вами сегодня." in answer.text
    assert "Иванова" in answer.text  # the configured staff name, not the account name
    assert "отвечено" in the_card(app).text
    assert app.storage is not None
    ticket = await app.storage.tickets.by_number("school-17", 1)
    assert ticket is not None and ticket.status == "answered" and ticket.first_response_at


async def test_a_non_member_is_not_heard(app: App) -> None:
    await citizen_says(app, UNCOVERED)
    card = the_card(app)
    citizen_before = len(school(app).messages(CITIZEN_CHAT))
    await staff_says(app, "я тоже отвечу", reply_to=card.id, user=STRANGER)
    await school(app).press(STAFF_CHAT, card.id, "Закрыть", user=STRANGER)
    await app.settle()
    assert len(school(app).messages(CITIZEN_CHAT)) == citizen_before
    assert "только для сотрудников" in (school(app).answered_callbacks[-1][1] or "")
    assert app.storage is not None
    ticket = await app.storage.tickets.by_number("school-17", 1)
    assert ticket is not None and ticket.status == "open"


async def test_take_and_close_change_the_card(app: App) -> None:
    await citizen_says(app, UNCOVERED)
    card = the_card(app)
    await school(app).press(STAFF_CHAT, card.id, "Взять", user=STAFF)
    await app.settle()
    assert "взято (Иванова А. П.)" in the_card(app).text
    assert [label for row in the_card(app).buttons for label, _ in row] == ["Закрыть"]
    await school(app).press(STAFF_CHAT, card.id, "Закрыть", user=STAFF)
    await app.settle()
    assert "закрыто (Иванова А. П.)" in the_card(app).text
    assert the_card(app).buttons == []
    assert "закрыто" in school(app).last(CITIZEN_CHAT).text


async def test_reply_command_and_ticket_list_put_urgent_first(app: App) -> None:
    await citizen_says(app, UNCOVERED)
    said = await citizen_says(app, "в школе пожар, дым на втором этаже!", chat="501")
    assert any("112" in m.text for m in said)
    await staff_says(app, "/tickets")
    listing = staff_messages(app)[-1].text
    assert listing.index("№ 2") < listing.index("№ 1")  # urgent first
    assert "🚨" in the_card(app, 2).text
    await staff_says(app, "/reply 1 Разберёмся, спасибо что написали")
    assert "Разберёмся, спасибо что написали" in school(app).last(CITIZEN_CHAT).text


async def test_follow_ups_join_the_ticket_and_a_flood_does_not_spam_staff(app: App) -> None:
    """Every follow-up is acknowledged to the citizen (never silence); staff get one
    forwarded message a minute and read the rest on the card."""
    await citizen_says(app, UNCOVERED)
    staff_before = len(staff_messages(app))
    acknowledged = 0
    for n in range(10):
        said = await citizen_says(app, f"обидчика зовут Петя, он толкается на переменах ({n})")
        acknowledged += sum("Добавил ваше сообщение к обращению № 1" in m.text for m in said)
    assert acknowledged == 10
    assert app.storage is not None
    assert len(await app.storage.tickets.find("school-17")) == 1
    forwarded = [m for m in staff_messages(app)[staff_before:] if "дополняет" in m.text]
    assert len(forwarded) == 1  # one forward a minute, the rest are on the card
    assert "толкается на переменах (9)" in the_card(app).text
    history = await app.storage.tickets.messages(1)
    assert len([m for m in history if m.author == "citizen"]) == 11


async def test_a_reply_to_the_answer_reopens_the_ticket_a_new_question_opens_another(
    app: App, clock: ManualClock
) -> None:
    """After staff answered, a plain unanswerable message is a new question (ticket № 2);
    a reply to the staff answer reopens № 1; once reopen_window (2 days) has passed since
    closing, a reply starts a new ticket instead."""
    await citizen_says(app, UNCOVERED)
    await staff_says(app, "Разберёмся сегодня", reply_to=the_card(app).id)
    answer = school(app).last(CITIZEN_CHAT)
    await citizen_says(app, "когда починят крышу спортзала")  # № 2
    assert app.storage is not None
    tickets = await app.storage.tickets.find("school-17", ("open", "answered"))
    assert sorted((t.number, t.status) for t in tickets) == [(1, "answered"), (2, "open")]

    said = await citizen_says_reply(app, "так и не разобрались, опять подрались", answer.id)
    assert any("обращению № 1" in m.text for m in said)
    assert (await ticket_status(app, 1)) == "open"

    await staff_says(app, "/reply 2 Крышу починят летом")
    await staff_says(app, "/close 1")
    closed_notice = school(app).last(CITIZEN_CHAT)
    clock.advance(timedelta(days=2, hours=1))
    said = await citizen_says_reply(
        app, "и снова подрались, разберитесь с обидчиком", closed_notice.id
    )
    assert any("№ 3" in m.text for m in said)
    assert (await ticket_status(app, 1)) == "closed"


async def citizen_says_reply(app: App, text: str, reply_to: str) -> list[LocalMessage]:
    local = school(app)
    before = len(local.messages(CITIZEN_CHAT))
    await local.user_says(
        CITIZEN_CHAT, text, user=User(CITIZEN_CHAT, "Мария", "Петрова"), reply_to=reply_to
    )
    await app.settle()
    return local.messages(CITIZEN_CHAT)[before:]


async def ticket_status(app: App, number: int) -> str:
    assert app.storage is not None
    ticket = await app.storage.tickets.by_number("school-17", number)
    assert ticket is not None
    return ticket.status


async def test_operator_command_hands_the_next_message_to_staff(app: App) -> None:
    said = await citizen_says(app, "/operator")
    assert "одним сообщением" in said[-1].text
    await citizen_says(app, "Как записать ребенка в первый класс?")
    assert "Как записать ребенка в первый класс?" in the_card(app).text


async def test_forum_topic_staff_chat(example_config: Path, clock: ManualClock) -> None:
    clock.set(MONDAY_MORNING)
    edit_config(
        example_config,
        "chat: {platform: telegram, id: -1001234567890}",
        "chat: {platform: telegram, id: -1001234567890, topics: true}",
    )
    app = App(load_config(example_config), clock=clock, local=True)
    await app.start()
    try:
        school(app).open_chat(STAFF_CHAT, ChatKind.GROUP)
        await citizen_says(app, UNCOVERED)
        local = school(app)
        assert list(local.topics.values()) == ["№ 1 · Мария Петрова"]
        topic = next(iter(local.topics))
        assert the_card(app).thread_id == topic
        await staff_says(app, "Ответ прямо в теме", thread=topic)
        answer = local.last(CITIZEN_CHAT)
        assert "Ответ прямо в теме" in answer.text
        await citizen_says_reply(app, "спасибо, а когда?", answer.id)
        assert staff_messages(app)[-1].thread_id == topic
    finally:
        await app.stop()


async def test_sla_reminder_and_breach_across_a_weekend_and_a_holiday(
    app: App, clock: ManualClock
) -> None:
    # Friday 4 December, 16:00 Moscow; 8 working hours: 1 h Friday, Monday 7 Dec is a
    # holiday, so 7 h on Tuesday: deadline Tuesday 8 December 15:00 Moscow (12:00 UTC)
    clock.set(datetime(2026, 12, 4, 13, 0, tzinfo=UTC))
    await citizen_says(app, UNCOVERED)
    assert app.storage is not None
    ticket = await app.storage.tickets.by_number("school-17", 1)
    assert ticket is not None and ticket.due_at == datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
    # the citizen is told the deadline in plain words (it read "до во вторник" before)
    told = school(app).last(CITIZEN_CHAT).text
    assert "Постараемся ответить не позже, чем во вторник, 8 декабря, в 15:00." in told, told

    async def run_timers() -> None:
        assert app.storage is not None
        await tick(app.storage, app.institutions, clock.now())
        await app.settle()

    clock.set(datetime(2026, 12, 7, 12, 0, tzinfo=UTC))  # the holiday: nothing yet
    await run_timers()
    assert not [m for m in staff_messages(app) if "⏰" in m.text]
    clock.set(datetime(2026, 12, 8, 11, 5, tzinfo=UTC))  # 55 min before the deadline
    await run_timers()
    await run_timers()  # a second pass sends nothing twice
    assert len([m for m in staff_messages(app) if "⏰" in m.text]) == 1
    clock.set(datetime(2026, 12, 8, 12, 1, tzinfo=UTC))
    await run_timers()
    breach = [m for m in staff_messages(app) if "истёк" in m.text]
    assert len(breach) == 1 and "Иванова А. П." in breach[0].text


async def test_out_of_hours_the_citizen_is_told_when_to_expect_an_answer(
    app: App, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 12, 5, 15, 0, tzinfo=UTC))  # Saturday 18:00 Moscow
    said = await citizen_says(app, UNCOVERED)
    text = "\n".join(m.text for m in said)
    assert "нерабочее время" in text and "в понедельник, 7 декабря" not in text
    assert "во вторник, 8 декабря, в 8:00" in text  # Monday 7 December is a holiday

    # an urgent message out of hours is promised no answer by a time nobody is at work
    said = await citizen_says(app, "в школе пожар, дым на втором этаже!", chat="501")
    text = "\n".join(m.text for m in said)
    assert "112" in text and "как срочное" in text
    assert "постараемся ответить до" not in text
    assert "сотрудники могут ответить не сразу" in text


async def test_an_answered_ticket_closes_itself_after_a_quiet_period(
    app: App, clock: ManualClock
) -> None:
    await citizen_says(app, UNCOVERED)
    await staff_says(app, "Разобрались", reply_to=the_card(app).id)
    clock.advance(timedelta(days=3, minutes=1))
    assert app.storage is not None
    await tick(app.storage, app.institutions, clock.now())
    await app.settle()
    ticket = await app.storage.tickets.by_number("school-17", 1)
    assert ticket is not None and ticket.status == "closed" and ticket.closed_by == "auto"
    assert "закрыто автоматически" in the_card(app).text


def test_admins_list_tickets_from_the_command_line(
    example_config: Path, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from runtime.cli import main

    async def make_tickets() -> None:
        clock.set(MONDAY_MORNING)
        app = App(load_config(example_config), clock=clock, local=True)
        await app.start()
        school(app).open_chat(STAFF_CHAT, ChatKind.GROUP)
        await citizen_says(app, UNCOVERED)
        await citizen_says(app, "на крыльце пожар", chat="501")
        await staff_says(app, "/close 1")
        await app.stop()

    asyncio.run(make_tickets())
    assert main(["tickets", "list", "-c", str(example_config)]) == 0
    active = capsys.readouterr().out
    assert "на крыльце пожар" in active and "подрался" not in active
    assert main(["tickets", "list", "-c", str(example_config), "--status", "all"]) == 0
    everything = capsys.readouterr().out
    assert "подрался" in everything and "closed" in everything


async def test_staff_help_unknown_commands_and_only_the_bots_messages_count(app: App) -> None:
    """/help lists the staff commands, an unknown command gets a hint, and a reply to a
    colleague's message that names a ticket number reaches nobody: only the bot's own
    messages identify a ticket."""
    await staff_says(app, "/help")
    assert "/reply N" in staff_messages(app)[-1].text
    await staff_says(app, "/тикеты")
    assert "Не знаю команды /тикеты" in staff_messages(app)[-1].text

    await citizen_says(app, UNCOVERED)
    local = school(app)
    citizen_before = len(local.messages(CITIZEN_CHAT))
    colleague = await local.user_says(
        STAFF_CHAT, "Обращение № 1 · кто возьмёт?", user=STAFF, kind=ChatKind.GROUP
    )
    await staff_says(app, "Я возьму", reply_to=colleague.message_id)
    assert len(local.messages(CITIZEN_CHAT)) == citizen_before
    assert app.storage is not None
    ticket = await app.storage.tickets.by_number("school-17", 1)
    assert ticket is not None and ticket.status == "open"


async def test_a_reply_to_a_tickets_history_answers_it_a_reply_to_the_list_is_refused(
    app: App,
) -> None:
    """/ticket N names one ticket as plainly as its card: a reply to it answers that ticket.
    A reply to the /tickets list names no single ticket: the staff member is told that
    nobody got it, rather than believing the citizen was answered."""
    await citizen_says(app, UNCOVERED)
    local = school(app)
    await staff_says(app, "/tickets")
    listing = staff_messages(app)[-1]
    citizen_before = len(local.messages(CITIZEN_CHAT))
    await staff_says(app, "Посмотрим завтра", reply_to=listing.id)
    assert "никому не отправлен" in staff_messages(app)[-1].text
    assert "/reply N" in staff_messages(app)[-1].text
    assert len(local.messages(CITIZEN_CHAT)) == citizen_before
    assert await ticket_status(app, 1) == "open"

    await staff_says(app, "/ticket 1")
    history = staff_messages(app)[-1]
    assert UNCOVERED in history.text
    await staff_says(app, "Классный руководитель позвонит вам сегодня.", reply_to=history.id)
    assert "Классный руководитель позвонит вам сегодня." in local.last(CITIZEN_CHAT).text
    assert await ticket_status(app, 1) == "answered"


async def test_asking_for_a_person_in_words_is_taken_like_the_operator_command(
    app: App,
) -> None:
    """«хочу поговорить с оператором» holds no question for the FAQ (matching it offered
    unrelated entries): the bot asks for the question and hands it to staff."""
    said = await citizen_says(app, "хочу поговорить с оператором")
    assert "одним сообщением" in said[-1].text
    assert not [m for m in staff_messages(app) if "Обращение №" in m.text]
    await citizen_says(app, "Как перевести сына в другую школу посреди года?")
    assert "Как перевести сына в другую школу посреди года?" in the_card(app).text


async def test_a_plain_answer_to_a_staff_members_question_joins_the_ticket_that_asked(
    app: App,
) -> None:
    """Staff ask back («В каком классе учится сын?»); a parent on a phone types the answer
    instead of replying to it. It joins the ticket that asked, not another waiting ticket
    or a new one nobody connects with the question."""
    await citizen_says(app, UNCOVERED)  # ticket 1
    await staff_says(app, "/reply 1 Разберёмся сегодня.")
    await citizen_says(app, "когда починят крышу спортзала")  # ticket 2
    assert await ticket_status(app, 2) == "open"
    await staff_says(app, "/reply 1 В каком классе учится сын и как его зовут?")
    assert await ticket_status(app, 1) == "answered"
    said = await citizen_says(app, "Петров Миша, учительница Сидорова")
    assert any("обращению № 1" in m.text for m in said), [m.text for m in said]
    assert await ticket_status(app, 1) == "open"
    assert "Петров Миша" in the_card(app, 1).text
    assert "Петров Миша" not in the_card(app, 2).text

    # an answer without a question is an answer: the next new question opens a ticket
    await staff_says(app, "/reply 1 Спасибо, классный руководитель позвонит вам.")
    await citizen_says(app, "А почему в столовой холодные котлеты уже неделю")
    assert "холодные котлеты" not in the_card(app, 1).text


async def test_the_list_puts_what_waits_before_what_was_answered_and_ticket_asks_for_a_number(
    app: App,
) -> None:
    """A busy secretary reads /tickets from the top: what still needs an answer comes
    before what was answered; /ticket without a number says how to use it."""
    await citizen_says(app, UNCOVERED)  # № 1, answered below
    await staff_says(app, "/reply 1 Разберёмся сегодня.")
    await citizen_says(app, "когда починят крышу спортзала")  # № 2, waits
    await staff_says(app, "/tickets")
    listing = staff_messages(app)[-1].text
    assert listing.index("№ 2") < listing.index("№ 1"), listing
    await staff_says(app, "/ticket")
    assert "Напишите так: /ticket N" in staff_messages(app)[-1].text
