"""On SQLite a delivery's record (sent_messages, the row marked sent) waits in memory and
goes first in the next unit of work instead of costing a hop to the database's thread and
a transaction of its own (Storage.write_soon, runtime/sender.py): an answered question
costs one hop, not two (bench/pipeline.py, bench/scale.py). What a user would notice if it
went wrong: a record that never lands (the message is sent again), one that lands after a
read that needed it (/forget leaves a row behind), a kill that repeats more than the one
message in flight."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from bots.core.clock import ManualClock
from bots.core.model import ChatRef, Reply, User
from bots.local import LocalPlatform
from handlers.privacy import retention_job
from runtime.app import App
from runtime.sender import Sender
from storage import Storage, StorageUnavailable
from storage.aio import AioSqliteDatabase


def on_disk(path: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """What another connection reads from the file: only what was committed."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(sql, params).fetchall())
    finally:
        conn.close()


def statuses(path: str, chat: str) -> list[object]:
    return [
        r[0]
        for r in on_disk(path, "SELECT status FROM outbox WHERE chat_id=? ORDER BY id", (chat,))
    ]


async def until(check: Callable[[], bool], sender: Sender, what: str) -> None:
    """Wait until ``check()`` holds, re-checking at each step of the sender."""
    for _ in range(300):
        if check():
            return
        await sender.wait_progress(0.1)
    raise TimeoutError(what)


async def queue_answer(storage: Storage, clock: ManualClock) -> None:
    """The school's answer "ответ" to chat 100, queued."""
    await storage.outbox.enqueue(
        institution="school",
        chat=ChatRef("local", "100"),
        reply=Reply("ответ"),
        dedup_key="k",
        now=clock.now(),
    )


async def test_an_answer_costs_one_hop_and_its_record_rides_along_with_the_next(
    local_app: App,
) -> None:
    storage, sender = local_app.storage, local_app.sender
    assert storage is not None and sender is not None
    db = storage.db
    assert isinstance(db, AioSqliteDatabase), "the example config runs SQLite on its thread"
    school = local_app.local_platform("school-17")
    await retention_job(local_app).wait_runs(1)  # its run at start is done with storage
    await school.user_says("100", "/start")
    await local_app.settle()
    await until(lambda: sender.idle, sender, "the sender is idle again")
    hops = db.hops

    await school.user_says("100", "Как записать ребенка в первый класс?")
    await until(lambda: not sender.busy and storage.writes_waiting == 1, sender, "answered")
    assert "Приём заявлений" in school.last("100").text
    assert db.hops - hops == 1, db.hops_by_what  # the update's unit, nothing else
    assert statuses(db.path, "100")[-1] == "pending"  # the record waits in memory

    await school.user_says("100", "как оплатить питание в столовой")
    await until(lambda: not sender.busy and storage.writes_waiting == 1, sender, "answered")
    assert db.hops - hops == 2, db.hops_by_what
    # the first answer's record went in with the second question's unit
    assert statuses(db.path, "100")[-2:] == ["sent", "pending"]
    assert db.hops_by_what["write_soon"] == 0

    assert await storage.outbox.pending_count() == 0  # any read writes what waits first
    assert statuses(db.path, "100")[-1] == "sent"


async def test_a_record_no_unit_follows_is_written_once_it_waited_record_within(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    storage = await Storage.open(tmp_path / "db.sqlite3", clock.now)
    local = LocalPlatform("school")
    sender = Sender(storage, lambda institution, kind: local, clock)
    assert isinstance(storage.db, AioSqliteDatabase)
    path = storage.db.path
    try:
        await queue_answer(storage, clock)
        (item,) = await storage.outbox.due_all(clock.now())
        assert await sender._deliver(item) is True
        assert [m.text for m in local.messages("100")] == ["ответ"]
        assert storage.writes_waiting == 1
        clock.advance(sender.record_within / 2)
        await sender.wait_progress(0.05)
        assert storage.writes_waiting == 1 and statuses(path, "100") == ["pending"]

        clock.advance(sender.record_within / 2)
        await until(lambda: storage.writes_waiting == 0, sender, "the record is written")
        assert statuses(path, "100") == ["sent"]
        assert on_disk(path, "SELECT message_id FROM sent_messages") == [
            (local.messages("100")[0].id,)
        ]
        assert storage.db.hops_by_what["write_soon"] == 1
    finally:
        await storage.close()


async def test_a_kill_while_a_record_waits_repeats_that_one_message_only(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "db.sqlite3"
    storage = await Storage.open(path, clock.now)
    local = LocalPlatform("school")
    sender = Sender(storage, lambda institution, kind: local, clock)
    chat = ChatRef("local", "100")
    for key, text in [("a", "первое"), ("b", "второе")]:
        await storage.outbox.enqueue(
            institution="school", chat=chat, reply=Reply(text), dedup_key=key, now=clock.now()
        )
    first, second = await storage.outbox.due_all(clock.now())
    assert await sender._deliver(first) is True
    assert await sender._deliver(second) is True  # its unit wrote the first one's record
    assert storage.writes_waiting == 1
    assert isinstance(storage.db, AioSqliteDatabase)
    await storage.db._aio.close()  # kill -9: the waiting record is lost with the process
    if sender._records_due is not None:
        sender._records_due.cancel()

    clock.advance(60)
    storage = await Storage.open(path, clock.now)
    again = LocalPlatform("school")
    restarted = Sender(storage, lambda institution, kind: again, clock)
    restarted.start()
    try:
        await until(lambda: bool(again.messages("100")), restarted, "resent")
        await restarted.stop()
        assert [m.text for m in again.messages("100")] == ["второе"]
        assert await storage.outbox.pending_count() == 0
    finally:
        await storage.close()


async def test_forget_right_after_an_answer_removes_that_answer_too(local_app: App) -> None:
    """/forget deletes what was delivered to the chat (rows no longer pending); the
    confirmation question's record still waits when the citizen presses "delete", and is
    written before /forget's unit, so its row goes too."""
    storage, sender = local_app.storage, local_app.sender
    assert storage is not None and sender is not None
    db = storage.db
    assert isinstance(db, AioSqliteDatabase)
    school = local_app.local_platform("school-17")
    user = User("100", "Евлампия")
    await retention_job(local_app).wait_runs(1)  # its run at start is done with storage
    await school.user_says("100", "Как записать ребенка в первый класс?", user=user)
    await local_app.settle()
    await school.user_says("100", "/forget", user=user)
    await until(lambda: not sender.busy and storage.writes_waiting == 1, sender, "asked")
    question = school.last("100")
    assert "Удалить всё" in question.text

    await school.press("100", question.id, "Удалить", user=user)
    await local_app.settle()
    assert "удалены" in school.last("100").text
    # left: the confirmation alone (sent after the erasure)
    assert len(statuses(db.path, "100")) == 1
    assert len(on_disk(db.path, "SELECT 1 FROM sent_messages WHERE chat_id='100'")) == 1


async def test_a_look_made_before_a_lane_sent_its_row_does_not_send_it_again(
    tmp_path: Path,
) -> None:
    """An update's unit looked at the due rows (and claimed one) while the sender's own
    look started a lane for the same row; that lane sent it and ended before the update's
    look was launched. Its record only waits, so the row still looked due to that look:
    the lane launched from it claims the row afresh and finds it sent."""
    clock = ManualClock()
    storage = await Storage.open(tmp_path / "db.sqlite3", clock.now)
    local = LocalPlatform("school")
    sender = Sender(storage, lambda institution, kind: local, clock)
    sender.start()
    try:
        await sender.wait_progress(5.0)  # its first round: nothing due
        assert sender.idle
        await queue_answer(storage, clock)
        look = sender.look_in_unit()
        assert look is not None
        looked = await storage.unit(look, "update")  # claims the row
        sender.wake()  # the sender's own look: a lane sends the row
        await until(lambda: bool(local.messages("100")) and not sender.busy, sender, "sent")
        sender.look_over(look)
        sender.launch(looked)
        await until(lambda: not sender.busy, sender, "the late look's lane is over")
        assert [m.text for m in local.messages("100")] == ["ответ"]
        assert await storage.outbox.pending_count() == 0
    finally:
        await sender.stop()
        await storage.close()


async def test_a_waiting_write_survives_a_failing_unit_and_a_broken_one_fails_no_unit(
    tmp_path: Path,
) -> None:
    """A unit that fails (a handler's bug, storage refusing writes) takes the waiting
    writes down with its rollback and they wait on; a waiting write that fails by itself
    (a bug) is dropped and logged rather than failing every later unit."""
    clock = ManualClock()
    storage = await Storage.open(tmp_path / "db.sqlite3", clock.now)
    db = storage.db
    assert isinstance(db, AioSqliteDatabase)
    try:
        await storage.write_soon(partial(storage.kv.set, "t", "record", "1"), "record")

        async def failing() -> None:
            await storage.kv.set("t", "update", "1")
            raise ValueError("a handler's bug")

        with pytest.raises(ValueError):
            await storage.unit(failing)
        assert storage.writes_waiting == 1

        db._conn.execute("PRAGMA query_only=ON")  # a full disk
        with pytest.raises(StorageUnavailable):
            await storage.unit(partial(storage.kv.set, "t", "update", "2"))
        assert storage.writes_waiting == 1
        db._conn.execute("PRAGMA query_only=OFF")

        async def broken() -> None:
            await db.execute("INSERT INTO no_such_table VALUES (1)")

        await storage.write_soon(broken, "broken")
        await storage.unit(partial(storage.kv.set, "t", "update", "3"))
        assert storage.writes_waiting == 0
        assert on_disk(db.path, "SELECT key, value FROM kv WHERE scope='t' ORDER BY key") == [
            ("record", "1"),
            ("update", "3"),
        ]
    finally:
        await storage.close()
