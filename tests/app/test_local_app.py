"""The whole app on the local platform: config -> handlers -> SQLite -> replies."""

from __future__ import annotations

from bots.core.model import ChatKind
from runtime.app import App


async def ask(app: App, text: str, chat: str = "100", institution: str = "school-17") -> str:
    local = app.local_platform(institution)
    before = len(local.messages(chat))
    await local.user_says(chat, text)
    await app.settle()
    return "\n".join(m.text for m in local.messages(chat)[before:])


async def test_a_question_gets_the_faq_answer(local_app: App) -> None:
    said = await ask(local_app, "Как записать ребенка в первый класс?")
    assert "Приём заявлений в 1 класс" in said
    assert "г. Курск, ул. Примерная, 1" in said  # the template saw the institution


async def test_start_shows_categories_and_a_category_shows_its_questions(local_app: App) -> None:
    local = local_app.local_platform("school-17")
    await ask(local_app, "/start")
    greeting = local.last("100")
    assert "Средняя школа № 17" in greeting.text
    labels = [row[0][0] for row in greeting.buttons]
    assert "Приём в школу" in labels and "Питание" in labels

    await local.press("100", greeting.id, "Питание")
    await local_app.settle()
    category = local.last("100")
    assert "Питание" in category.text
    await local.press("100", category.id, "Как оплатить питание")
    await local_app.settle()
    assert "лицевой счёт" in local.last("100").text


async def test_each_institution_answers_from_its_own_faq(local_app: App) -> None:
    said = await ask(local_app, "как вызвать врача на дом", institution="polyclinic-3")
    assert "на дом" in said and "+7 (4712) 11-11-11" in said


async def test_feedback_is_stored(local_app: App) -> None:
    local = local_app.local_platform("school-17")
    await ask(local_app, "Как записать ребенка в первый класс?")
    answer = local.last("100")
    await local.press("100", answer.id, "Помогло")
    await local_app.settle()
    assert local.answered_callbacks[-1][1] and "Спасибо" in local.answered_callbacks[-1][1]
    assert local_app.storage is not None
    counts = await local_app.storage.log.feedback_counts("school-17")
    assert counts == {"first-grade-enrollment": (1, 0)}


async def test_citizens_text_is_never_markup(local_app: App) -> None:
    local = local_app.local_platform("school-17")
    await ask(local_app, "<b>{{ 7*7 }}</b> <script>alert(1)</script>")
    messages = local.messages("100")
    assert messages, "the bot answered (else the loop below checks nothing)"
    for message in messages:
        assert "49" not in message.text
        assert "<script>" not in message.html


async def test_a_group_that_is_not_the_staff_chat_is_ignored(local_app: App) -> None:
    local = local_app.local_platform("school-17")
    await local.user_says("-777", "как записаться в первый класс", kind=ChatKind.GROUP)
    await local_app.settle()
    assert local.messages("-777") == []


async def test_a_redelivered_update_is_handled_once(local_app: App) -> None:
    local = local_app.local_platform("school-17")
    event = await local.user_says("100", "Как записать ребенка в первый класс?")
    await local_app.settle()
    count = len(local.messages("100"))
    assert count > 0, "the first delivery was answered"
    await local_app.on_event(event)
    await local_app.settle()
    assert len(local.messages("100")) == count


async def test_entries_without_a_category_are_listed_under_other_questions(
    example_config, clock
) -> None:
    from pathlib import Path

    from handlers.config import load_config

    faq = Path(example_config).parent / "examples" / "faq" / "school.yaml"
    text = faq.read_text(encoding="utf-8").replace("    category: Питание\n", "", 1)
    faq.write_text(text, encoding="utf-8")
    app = App(load_config(example_config), clock=clock, local=True)
    await app.start()
    try:
        await ask(app, "/start")
        local = app.local_platform("school-17")
        labels = [row[0][0] for row in local.last("100").buttons]
        assert "Другие вопросы" in labels
        await local.press("100", local.last("100").id, "Другие вопросы")
        await app.settle()
        assert "Другие вопросы" in local.last("100").text
    finally:
        await app.stop()


async def test_a_second_run_on_the_same_database_still_answers(example_config, clock) -> None:
    """The inbox remembers handled updates: a new run's updates must not look like them."""
    from handlers.config import load_config

    for _ in range(2):
        app = App(load_config(example_config), clock=clock, local=True)
        await app.start()
        try:
            said = await ask(app, "как вызвать врача на дом", institution="polyclinic-3")
            assert "на дом" in said
        finally:
            await app.stop()


async def test_a_question_its_outcome_and_answer_are_logged_in_one_statement(
    local_app: App,
) -> None:
    """The citizen's message is written with its outcome and the bot's answer in one
    statement (was: an insert, an update of the outcome and an insert of the answer), in
    order, and the answer's feedback buttons still name the question's row."""
    assert local_app.storage is not None
    db = local_app.storage.db
    written: list[str] = []

    def trace(sql: str) -> None:
        verb = sql.lstrip()[:6].upper()
        if "message_log" in sql and verb in ("INSERT", "UPDATE"):  # not the retention purge
            written.append(sql)

    db._conn.set_trace_callback(trace)  # type: ignore[attr-defined]
    try:
        await ask(local_app, "Как записать ребенка в первый класс?")
        answered = list(written)
        await ask(local_app, "/start")
    finally:
        db._conn.set_trace_callback(None)  # type: ignore[attr-defined]
    assert len(answered) == 1, answered
    assert len(written) == 3, written  # /start: the command first (it may erase), its reply
    logged = await local_app.storage.log.recent("school-17", "local", "100", limit=4)
    assert [(m.direction, m.outcome) for m in logged] == [
        ("in", "answer"),
        ("out", None),
        ("in", "command"),
        ("out", None),
    ]
    assert logged[0].entry_id == "first-grade-enrollment" and logged[0].score is not None
    assert "Приём заявлений в 1 класс" in logged[1].text

    local = local_app.local_platform("school-17")
    answer = [m for m in local.messages("100") if "Приём заявлений в 1 класс" in m.text][-1]
    await local.press("100", answer.id, "Помогло")
    await local_app.settle()
    question = await db.fetchval("SELECT question_id FROM feedback")
    assert question == logged[0].id
