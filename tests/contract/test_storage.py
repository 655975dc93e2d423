"""The storage contract: what every backend must do (SQLite in a file and in memory on
aiosqlite's thread, SQLite in a file on the event loop's thread, PostgreSQL in a schema of
its own: see tests/pg.py for when it is skipped or required)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bots.core.clock import ManualClock
from bots.core.model import Button, ChatRef, Event, Reply, SentMessage, User
from storage import Storage
from storage.announcements import Audience, BroadcastRepo, SubscriptionRepo
from storage.messages import LogRow
from storage.privacy import PrivacyRepo, purge_statements
from storage.times import iso
from tests.pg import fresh_schema

BACKENDS = ["sqlite-file", "sqlite-memory", "sqlite-loop-file", "postgresql"]


@asynccontextmanager
async def database(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """Where a backend of ``kind`` keeps its data: a path, or a URL to a fresh schema."""
    if kind == "postgresql":
        async with fresh_schema() as url:
            yield url
    else:
        yield ":memory:" if kind == "sqlite-memory" else str(tmp_path / "t.sqlite3")


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    clock = ManualClock()
    async with database(request.param, tmp_path) as target:
        engine = "loop" if request.param == "sqlite-loop-file" else "thread"
        opened = await Storage.open(target, clock.now, sqlite=engine)
        opened.clock = clock  # type: ignore[attr-defined]
        try:
            yield opened
        finally:
            await opened.close()


def now(storage: Storage) -> ManualClock:
    return storage.clock  # type: ignore[attr-defined, no-any-return]


def event(key: str = "1", text: str = "вопрос") -> Event:
    return Event(
        institution="school",
        platform="telegram",
        chat=ChatRef("telegram", "42"),
        user=User("42", "Анна", "Иванова"),
        update_key=key,
        text=text,
    )


@pytest.mark.parametrize("kind", ["sqlite-file", "postgresql"])
async def test_migrations_are_applied_once(kind: str, tmp_path: Path) -> None:
    clock = ManualClock()
    async with database(kind, tmp_path) as target:
        first = await Storage.open(target, clock.now)
        version = await first.db.schema_version()
        await first.close()
        again = await Storage.open(target, clock.now)
        assert await again.db.schema_version() == version >= 1
        if kind == "sqlite-file":
            assert await again.db.fetchval("PRAGMA journal_mode") == "wal"
        await again.close()


async def test_citizen_first_contact_and_reachability(storage: Storage) -> None:
    t = now(storage).now()
    user = User("42", "Анна")
    assert await storage.citizens.touch("school", "vk", user, "42", t) is True
    assert await storage.citizens.touch("school", "vk", user, "42", t) is False
    await storage.citizens.mark_unreachable("school", "vk", "42", "blocked", t)
    citizen = await storage.citizens.get("school", "vk", "42")
    assert citizen is not None and citizen.unreachable
    await storage.citizens.touch("school", "vk", user, "42", t)  # writing again: reachable
    citizen = await storage.citizens.get("school", "vk", "42")
    assert citizen is not None and not citizen.unreachable
    assert await storage.citizens.get("other", "vk", "42") is None


async def test_message_log_and_feedback(storage: Storage) -> None:
    t = now(storage).now()
    qid = await storage.log.add(
        institution="school",
        platform="vk",
        chat_id="42",
        user_id="42",
        direction="in",
        text="как записаться",
        now=t,
    )
    await storage.log.set_outcome(qid, "answer", "enroll", 0.9)
    logged = await storage.log.get(qid)
    assert logged is not None and logged.outcome == "answer" and logged.text == "как записаться"
    await storage.log.add_feedback(
        institution="school",
        platform="vk",
        user_id="42",
        entry_id="enroll",
        question_id=qid,
        helpful=False,
        now=t,
    )
    assert await storage.log.feedback_counts("school") == {"enroll": (0, 1)}
    assert [m.id for m in await storage.log.recent("school", "vk", "42")] == [qid]
    assert await storage.log.delete_user("school", "vk", "42") == 1
    assert await storage.log.get(qid) is None


async def test_message_log_rows_in_one_statement(storage: Storage) -> None:
    """A question with its outcome and the replies to it, written together: the first
    row's id comes back and the rows keep their order."""
    t = now(storage).now()
    before = await storage.log.add(
        institution="school", platform="vk", chat_id="42", user_id="42", direction="in",
        text="раньше", now=t,
    )  # fmt: skip
    rows = [
        LogRow("school", "vk", "42", "42", "in", "как записаться", t, "answer", "enroll", 0.9),
        LogRow("school", "vk", "42", None, "out", "ответ", t),
        LogRow("school", "vk", "42", None, "out", "и ещё", t),
    ]
    first = await storage.log.add_rows(rows)
    assert first > before
    logged = await storage.log.recent("school", "vk", "42")
    assert [(m.id, m.direction, m.text, m.outcome) for m in logged] == [
        (before, "in", "раньше", None),
        (first, "in", "как записаться", "answer"),
        (first + 1, "out", "ответ", None),
        (first + 2, "out", "и ещё", None),
    ]
    assert logged[1].entry_id == "enroll" and logged[1].score == 0.9
    single = await storage.log.add_rows([LogRow("school", "vk", "42", None, "out", "ок", t)])
    assert single == first + 3


async def test_key_value_state(storage: Storage) -> None:
    assert await storage.kv.get("vk:1", "ts") is None
    await storage.kv.set("vk:1", "ts", "10")
    await storage.kv.set("vk:1", "ts", "11")
    assert await storage.kv.get("vk:1", "ts") == "11"
    assert await storage.kv.scope("vk:1") == {"ts": "11"}


async def test_a_shared_bots_chat_bindings_latest_first(storage: Storage) -> None:
    """chat_places (migration 0006 in both dialects): the latest choice is the binding,
    choices of institutions on another account do not count, /forget drops its row."""
    among = ["school-17", "polyclinic-3"]
    assert await storage.places.current("telegram", "42", among) is None
    await storage.places.choose("telegram", "42", "school-17", now(storage).now())
    now(storage).advance(1)
    await storage.places.choose("telegram", "42", "polyclinic-3", now(storage).now())
    now(storage).advance(1)
    await storage.places.choose("telegram", "42", "elsewhere", now(storage).now())
    assert await storage.places.recent("telegram", "42", among) == ["polyclinic-3", "school-17"]
    now(storage).advance(1)
    await storage.places.choose("telegram", "42", "school-17", now(storage).now())
    assert await storage.places.current("telegram", "42", among) == "school-17"
    assert await storage.places.current("telegram", "43", among) is None
    erased = await PrivacyRepo(storage.db).erase_citizen("school-17", "telegram", "42", "42")
    assert erased["places"] == 1
    assert await storage.places.current("telegram", "42", among) == "polyclinic-3"


async def test_the_institution_that_sent_a_message_in_a_shared_bots_chat(
    storage: Storage,
) -> None:
    """sender_of (by the chat's index, migration 0010): of the institutions on the
    account, the one whose message it was; another account's use of the same message id
    in the same chat does not count, and a thousand institutions are no special case."""
    clock = now(storage)
    chat = ChatRef("telegram", "42")
    among = [f"school-{n}" for n in range(1000)]
    for institution, message_id in (("school-17", "m1"), ("elsewhere", "m2"), ("school-3", "m2")):
        row = await storage.outbox.enqueue(
            institution=institution,
            chat=chat,
            reply=Reply("привет"),
            dedup_key=f"{institution}:{message_id}",
            now=clock.now(),
        )
        assert row is not None
        item = next(i for i in await storage.outbox.due_all(clock.now()) if i.id == row)
        await storage.outbox.finish(item, 0, [SentMessage(chat, message_id)], clock.now())
    assert await storage.places.sender_of("telegram", "42", "m1", among) == "school-17"
    assert await storage.places.sender_of("telegram", "42", "m2", among) == "school-3"
    assert await storage.places.sender_of("telegram", "42", "m2", among[:2]) is None
    assert await storage.places.sender_of("telegram", "43", "m1", among) is None
    assert await storage.places.sender_of("telegram", "42", "m1", []) is None


async def test_payloads_are_stored_idempotently(storage: Storage) -> None:
    await storage.payloads.put_payload("~k", "long payload")
    await storage.payloads.put_payload("~k", "long payload")
    assert await storage.payloads.get_payload("~k") == "long payload"
    assert await storage.payloads.get_payload("~missing") is None


async def test_inbox_accepts_an_update_once(storage: Storage) -> None:
    t = now(storage).now()
    e = event("77")
    assert await storage.inbox.accept(e, t) is True
    assert await storage.inbox.accept(e, t) is True  # still pending: handle again
    assert [p.update_key for p in await storage.inbox.pending()] == ["77"]
    restored = (await storage.inbox.pending())[0]
    assert restored == e
    await storage.inbox.done(e)
    assert await storage.inbox.accept(e, t) is False
    assert await storage.inbox.pending() == []


async def test_outbox_dedups_orders_and_records_parts(storage: Storage) -> None:
    clock = now(storage)
    chat = ChatRef("vk", "42")
    reply = Reply.of("<b>ответ</b>", [[Button("Да", callback="fb:1")]])
    first = await storage.outbox.enqueue(
        institution="school",
        chat=chat,
        reply=reply,
        dedup_key="u1:1",
        now=clock.now(),
        ref_kind="card",
        ref_id="7",
    )
    assert first is not None
    assert (
        await storage.outbox.enqueue(
            institution="school", chat=chat, reply=reply, dedup_key="u1:1", now=clock.now()
        )
        is None
    )
    second = await storage.outbox.enqueue(
        institution="school", chat=chat, reply=Reply("второе"), dedup_key="u1:2", now=clock.now()
    )
    due = await storage.outbox.due_all(clock.now())
    assert [i.id for i in due] == [first, second]
    assert due[0].reply == reply

    # the first waits for a retry: the second must not overtake it
    await storage.outbox.mark_retry(first, "429", clock.now() + timedelta(seconds=5))
    assert await storage.outbox.due_all(clock.now()) == []
    clock.advance(6)
    item = (await storage.outbox.due_all(clock.now()))[0]
    assert item.attempts == 1

    await storage.outbox.record_part(item, 0, SentMessage(chat, "m1"), clock.now())
    await storage.outbox.mark_sent(item.id, clock.now())
    record = await storage.outbox.find_sent("school", "vk", "42", "m1")
    assert await storage.outbox.find_sent("other", "vk", "42", "m1") is None
    assert record is not None and (record.ref_kind, record.ref_id) == ("card", "7")
    assert [r.message.message_id for r in await storage.outbox.sent_for_ref("card", "7")] == ["m1"]
    assert await storage.outbox.pending_count() == 1


async def test_unreachable_drops_every_pending_message_to_that_chat(storage: Storage) -> None:
    t = now(storage).now()
    chat = ChatRef("vk", "42")
    for n in range(3):
        await storage.outbox.enqueue(
            institution="school", chat=chat, reply=Reply(f"m{n}"), dedup_key=f"k{n}", now=t
        )
    item = (await storage.outbox.due_all(t))[0]
    assert await storage.outbox.mark_unreachable(item, "blocked") == 3
    assert await storage.outbox.pending_count() == 0


async def test_a_transaction_commits_together_or_not_at_all(storage: Storage) -> None:
    with pytest.raises(RuntimeError):
        async with storage.transaction():
            await storage.kv.set("s", "a", "1")
            raise RuntimeError("crash")
    assert await storage.kv.get("s", "a") is None
    async with storage.transaction():
        await storage.kv.set("s", "a", "1")
        await storage.kv.set("s", "b", "2")
    assert await storage.kv.scope("s") == {"a": "1", "b": "2"}


async def test_ticket_numbers_stay_unique_when_created_concurrently(storage: Storage) -> None:
    t = now(storage).now()

    async def create(n: int) -> int:
        async with storage.transaction():
            ticket = await storage.tickets.create(
                institution="school",
                platform="vk",
                chat_id=str(n),
                user_id=str(n),
                citizen_name="Анна",
                question="вопрос",
                reason="no_match",
                urgent=False,
                due_at=None,
                now=t,
            )
        return ticket.number

    numbers = await asyncio.gather(*(create(n) for n in range(8)))
    assert sorted(numbers) == list(range(1, 9))
    stats = await storage.tickets.counts_since("school", t - timedelta(days=1))
    assert (stats["created"], stats["breached"]) == (8, 0)


async def test_a_broadcast_occurrence_and_its_deliveries_are_created_once(
    storage: Storage,
) -> None:
    t = now(storage).now()
    repo = BroadcastRepo(storage.db)
    subs = SubscriptionRepo(storage.db)
    await subs.add_many([("school", "vk", str(n), str(n)) for n in range(5)], t)
    assert await subs.count("school") == 5

    async def create() -> int | None:
        return await repo.create(
            institution="school",
            announcement_id="menu",
            scheduled_for=t,
            send_after=t,
            text="Меню",
            audience=Audience(subscribers=True),
            origin="schedule",
            now=t,
        )

    ids = await asyncio.gather(create(), create(), create())
    created = [i for i in ids if i is not None]
    assert len(created) == 1
    recipients = [
        (s.platform, s.chat_id, "subscriber") for s in await subs.reachable("school", ["vk"])
    ]
    await asyncio.gather(*(repo.start(created[0], recipients, t) for _ in range(3)))
    broadcast = await repo.get(created[0])
    assert broadcast is not None and (broadcast.status, broadcast.total) == ("sending", 5)
    due = await repo.due_deliveries(created[0], t)
    assert [d.chat_id for d in due] == ["0", "1", "2", "3", "4"]
    await repo.mark_sent_many(created[0], [("vk", d.chat_id, f"m{d.chat_id}") for d in due], t)
    assert (await repo.counts(created[0])).sent == 5
    assert await repo.finish(created[0], t) is True
    assert await repo.finish(created[0], t) is False


async def test_the_retention_purge_deletes_old_rows_in_batches_and_keeps_new_ones(
    storage: Storage,
) -> None:
    clock = now(storage)
    old = clock.now()
    citizen = {"institution": "school", "platform": "telegram", "user_id": "42"}

    async def message(text: str, when: datetime) -> int:
        return await storage.log.add(**citizen, chat_id="42", direction="in", text=text, now=when)

    async def mark(question: int, helpful: bool, when: datetime) -> None:
        await storage.log.add_feedback(
            **citizen, entry_id="e", question_id=question, helpful=helpful, now=when
        )

    old_ids = [await message(f"старый {n}", old) for n in range(7)]
    await mark(old_ids[0], False, old)
    chat = ChatRef("telegram", "42")
    sent = await storage.outbox.enqueue(
        institution="school", chat=chat, reply=Reply("ушло"), dedup_key="o:1", now=old
    )
    assert sent is not None
    await storage.outbox.mark_sent(sent, old)
    waiting = await storage.outbox.enqueue(
        institution="school", chat=chat, reply=Reply("ждёт"), dedup_key="o:2", now=old
    )
    for key in ("1", "2", "3", "4"):
        await storage.inbox.accept(event(key), old)
        await storage.inbox.done(event(key))
    clock.advance(timedelta(days=200))
    new_id = await message("новый", clock.now())
    await mark(old_ids[1], True, clock.now())  # a new mark on an old question: kept
    await storage.inbox.accept(event("5"), clock.now())
    await storage.inbox.done(event("5"))

    cutoff = iso(clock.now() - timedelta(days=180))
    counts = await PrivacyRepo(storage.db).purge(cutoff, batch=3)

    # 7 messages and 4 updates take several batches of 3: none is left behind
    assert counts == {"messages": 7, "feedback": 1, "outbox": 1, "inbox": 4}
    assert [await storage.log.get(i) for i in old_ids] == [None] * 7
    assert await storage.log.get(new_id) is not None
    assert await storage.db.fetchval("SELECT COUNT(*) FROM feedback WHERE helpful=1") == 1
    assert await storage.outbox.get(sent) is None
    assert waiting is not None and await storage.outbox.get(waiting) is not None
    assert await storage.inbox.accept(event("5"), clock.now()) is False  # still known as done


async def test_each_purge_step_finds_its_rows_by_an_index(tmp_path: Path) -> None:
    clock = ManualClock()
    opened = await Storage.open(str(tmp_path / "t.sqlite3"), clock.now)
    try:
        for name, statement in purge_statements():
            plan = await opened.db.fetchall(f"EXPLAIN QUERY PLAN {statement}", ("2026", 500))
            details = [row["detail"] for row in plan]
            assert not [d for d in details if d.startswith("SCAN")], (name, details)
            assert any("USING" in d and "INDEX" in d for d in details), (name, details)
    finally:
        await opened.close()


def test_a_reply_round_trips_through_its_stored_json() -> None:
    """reply_to_json writes Button's fields by hand (asdict was a hot spot): every field."""
    from dataclasses import fields

    from storage.queues import reply_from_json, reply_to_json

    assert [f.name for f in fields(Button)] == ["text", "callback", "url"]
    reply = Reply.of(
        "<b>ответ</b>",
        [[Button("Да", callback="fb:1")], [Button("Сайт", url="https://example.org/")]],
    )
    assert reply_from_json(reply_to_json(reply)) == reply
