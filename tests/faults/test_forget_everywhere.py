"""/forget erases a citizen's words and name everywhere they were copied (issue 19, item 7):
the ticket's history (the staff answer too), the card and the forwards, the staff chat's
/ticket N and /tickets answers in the message log and the outbox, the updates in the inbox.

After /forget and a clean stop the test reads the SQLite files byte by byte (the database,
-wal and -shm), and on PostgreSQL every text column of every table, for the citizen's
question, name and the staff answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots.core.clock import SystemClock
from bots.core.model import ChatKind, User
from handlers.config import load_config
from runtime.app import App
from storage import Storage
from tests.pg import fresh_schema

#: words that appear nowhere but in what this citizen and the staff wrote
QUESTION = "Пафнутий Кондратьевич подрался на перемене, прошу разобраться"
FOLLOW_UP = "дополняю: Пафнутий Кондратьевич ушёл домой раньше"
NAME = "Евлампия"
SURNAME = "Ферапонтова"
STAFF_ANSWER = "Разберёмся с Пафнутием завтра, классный руководитель позвонит"
SECRETS = ("Пафнутий", "Пафнутием", NAME, SURNAME, "классный руководитель позвонит")
STAFF_CHAT = "-1001234567890"  # school-17's staff chat in config.example.yaml
STAFF = User("1111", "Иванова")
CITIZEN = User("100", NAME, SURNAME)


async def forget_after_a_ticket(app: App) -> None:
    """The citizen's ticket goes through the staff chat, then the citizen says /forget."""
    local = app.local_platform("school-17")
    local.open_chat(STAFF_CHAT, ChatKind.GROUP)
    await local.user_says("100", QUESTION, user=CITIZEN)
    await app.settle()
    await local.user_says("100", FOLLOW_UP, user=CITIZEN)
    await app.settle()
    card = next(m for m in local.messages(STAFF_CHAT) if "Обращение № 1" in m.text)
    assert "Пафнутий" in card.text
    await local.user_says(
        STAFF_CHAT, STAFF_ANSWER, user=STAFF, reply_to=card.id, kind=ChatKind.GROUP
    )
    await app.settle()
    assert STAFF_ANSWER in local.last("100").text
    await local.user_says("100", "ещё вопрос: Пафнутий Кондратьевич опять подрался", user=CITIZEN)
    await app.settle()
    for command in ("/ticket 1", "/tickets", "/ticket 2"):
        await local.user_says(STAFF_CHAT, command, user=STAFF, kind=ChatKind.GROUP)
        await app.settle()
    said = "\n".join(m.text for m in local.messages(STAFF_CHAT))
    assert STAFF_ANSWER in said and "Пафнутий" in said  # the copies exist before /forget

    await local.user_says("100", "/forget", user=CITIZEN)
    await app.settle()
    await local.press("100", local.last("100").id, "Удалить", user=CITIZEN)
    await app.settle()
    assert "удалены" in local.last("100").text


def found_in_files(database: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = database.with_name(database.name + suffix)
        if path.exists():
            data = path.read_bytes()
            found[path.name] = [s for s in SECRETS if s.encode() in data]
    return found


async def test_after_forget_and_a_clean_stop_the_sqlite_files_hold_none_of_it(
    example_config: Path,
) -> None:
    app = App(load_config(example_config), local=True)
    await app.start()
    try:
        assert app.storage is not None
        database = Path(app.storage.db.path)  # type: ignore[attr-defined]
        await forget_after_a_ticket(app)
    finally:
        await app.stop()
    found = found_in_files(database)
    assert found and database.name in found
    assert all(words == [] for words in found.values()), found


async def found_in_tables(url: str) -> dict[str, list[str]]:
    storage = await Storage.open(url, SystemClock().now)
    found: dict[str, list[str]] = {}
    try:
        db = storage.db
        for table in await db.tables():
            for column in await db.columns(table):
                for secret in SECRETS:
                    hits = await db.fetchval(
                        f'SELECT COUNT(*) FROM "{table}" WHERE CAST("{column}" AS TEXT) LIKE ?',
                        (f"%{secret}%",),
                    )
                    if hits:
                        found.setdefault(f"{table}.{column}", []).append(secret)
    finally:
        await storage.close()
    return found


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_after_forget_no_postgresql_table_holds_any_of_it(
    backend: str, example_config: Path
) -> None:
    async with fresh_schema() as url:
        app = App(load_config(example_config), local=True, database=url)
        await app.start()
        try:
            await forget_after_a_ticket(app)
        finally:
            await app.stop()
        found = await found_in_tables(url)
        assert found == {}, sorted(found)
