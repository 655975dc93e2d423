"""/forget, retention and export: what the bot stores about a citizen, and that it can be
made to forget it for real (the bytes are gone from the database files)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from bots.core.clock import ManualClock
from bots.core.model import User
from handlers.faq.matching.text import _tokenize_short
from handlers.privacy import export_citizen, retention_job
from runtime.app import App
from runtime.cli import main

PHRASE = "Квазимодо Жуйвалович"  # appears nowhere but in the citizen's message
NAME = "Евлампия"


def database_bytes(app: App) -> bytes:
    path = Path(app.storage.db.path)  # type: ignore[union-attr]
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        data += wal.read_bytes()
    return data


async def say(app: App, text: str, chat: str = "100") -> None:
    local = app.local_platform("school-17")
    await local.user_says(chat, text, user=User(chat, NAME))
    await app.settle()


async def test_forget_asks_first_then_leaves_no_trace_in_the_files(local_app: App):
    local = local_app.local_platform("school-17")
    await say(local_app, f"Как записать ребенка в первый класс? Я {PHRASE}")
    assert "/forget" in local.messages("100")[0].text  # the first-contact notice says how
    assert PHRASE.encode() in database_bytes(local_app)  # stored: the check below can fail

    await say(local_app, "/forget")
    question = local.last("100")
    assert "Удалить всё" in question.text
    assert PHRASE.encode() in database_bytes(local_app)  # nothing deleted before "yes"

    await local.press("100", question.id, "Удалить", user=User("100", NAME))
    await local_app.settle()

    assert "удалены" in local.last("100").text
    stored = database_bytes(local_app)
    assert PHRASE.encode() not in stored
    assert NAME.encode() not in stored
    exported = await export_citizen(local_app.storage.db, "local", "100")  # type: ignore[union-attr]
    assert "message_log" not in exported["tables"]
    assert exported["tables"]["citizens"][0]["first_name"] == ""


async def test_forget_leaves_no_copy_in_the_matchers_memory(local_app: App):
    local = local_app.local_platform("school-17")
    message = f"Как записать ребенка в первый класс? Я {PHRASE}"
    await say(local_app, message)
    assert still_kept(message)  # tokenize keeps recent texts: the check below can fail

    await say(local_app, "/forget")
    await local.press("100", local.last("100").id, "Удалить", user=User("100", NAME))
    await local_app.settle()

    assert "удалены" in local.last("100").text
    assert not still_kept(message)


def still_kept(text: str) -> bool:
    """Whether tokenize's process-wide cache of recent texts holds ``text`` (a hit)."""
    hits = _tokenize_short.cache_info().hits
    _tokenize_short(text)
    return _tokenize_short.cache_info().hits > hits


async def test_cancel_keeps_everything(local_app: App):
    local = local_app.local_platform("school-17")
    await say(local_app, f"Как записать ребенка в первый класс? Я {PHRASE}")
    await say(local_app, "/forget")
    await local.press("100", local.last("100").id, "Отмена")
    await local_app.settle()
    assert "ничего не удаляю" in local.last("100").text
    assert PHRASE.encode() in database_bytes(local_app)


async def test_old_messages_are_purged_under_the_apps_clock(local_app: App, clock: ManualClock):
    assert local_app.loaded.config.retention == timedelta(days=180)
    job = retention_job(local_app)
    await job.wait_runs(1)  # the run at start
    await say(local_app, "Старый вопрос про первый класс")
    clock.advance(timedelta(days=100))
    await job.wait_runs(2)
    await say(local_app, "Новый вопрос про первый класс")
    clock.advance(timedelta(days=81))  # the first message is now 181 days old
    await job.wait_runs(3)

    exported = await export_citizen(local_app.storage.db, "local", "100")  # type: ignore[union-attr]
    texts = [row["text"] for row in exported["tables"]["message_log"]]
    assert "Новый вопрос про первый класс" in texts
    assert "Старый вопрос про первый класс" not in texts
    assert "Старый вопрос".encode() not in database_bytes(local_app)


async def test_export_prints_everything_stored_about_a_citizen(
    local_app: App, example_config: Path, capsys
):
    await say(local_app, f"Как записать ребенка в первый класс? Я {PHRASE}")
    await say(local_app, "Другой человек спрашивает", chat="200")
    code = await asyncio.to_thread(
        main, ["privacy", "export", "-c", str(example_config), "--citizen", "local:100"]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    tables = data["tables"]
    assert tables["citizens"][0]["first_name"] == NAME
    texts = [row["text"] for row in tables["message_log"]]
    assert any(PHRASE in t for t in texts)
    assert not any("Другой человек" in t for t in texts)
    # the bot's answers in their chat are part of it, shown as text
    assert any("/forget" in row["reply"]["text"] for row in tables["outbox"])


async def test_forget_anonymises_tickets_and_the_staff_card(local_app: App):
    """An escalated question lives in the ticket, its card and the outbox too."""
    from bots.core.model import ChatKind

    local = local_app.local_platform("school-17")
    staff_chat = "-1001234567890"
    local.open_chat(staff_chat, ChatKind.GROUP)
    await say(local_app, f"{PHRASE} подрался на перемене, прошу разобраться")
    card = next(m for m in local.messages(staff_chat) if "Обращение № 1" in m.text)
    assert PHRASE in card.text
    await local.user_says(
        staff_chat, "Разберёмся", user=User("1111", "Анна"), reply_to=card.id, kind=ChatKind.GROUP
    )
    await local_app.settle()

    await say(local_app, "/forget")
    await local.press("100", local.last("100").id, "Удалить", user=User("100", NAME))
    await local_app.settle()

    stored = database_bytes(local_app)
    assert PHRASE.encode() not in stored
    assert NAME.encode() not in stored
    assert PHRASE not in card.text  # the card in the staff chat was edited
    ticket = await local_app.storage.tickets.by_number("school-17", 1)  # type: ignore[union-attr]
    # kept for statistics, and ended for good: a later message never reopens it
    assert ticket is not None and ticket.status == "closed" and ticket.closed_by == "forget"
