"""The storage contract: what every backend must do (SQLite now; PostgreSQL joins later by
adding a backend to BACKENDS)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bots.clock import ManualClock
from bots.model import Button, ChatRef, Event, Reply, SentMessage, User
from storage import Storage

BACKENDS = ["sqlite-file", "sqlite-memory"]


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    clock = ManualClock()
    path = str(tmp_path / "t.sqlite3") if request.param == "sqlite-file" else ":memory:"
    opened = await Storage.open(path, clock.now)
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


async def test_migrations_are_applied_once(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "db.sqlite3"
    first = await Storage.open(path, clock.now)
    version = await first.db.schema_version()
    await first.close()
    again = await Storage.open(path, clock.now)
    assert await again.db.schema_version() == version >= 1
    mode = await again.db.fetchval("PRAGMA journal_mode")
    await again.close()
    assert mode == "wal"


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


async def test_key_value_state(storage: Storage) -> None:
    assert await storage.kv.get("vk:1", "ts") is None
    await storage.kv.set("vk:1", "ts", "10")
    await storage.kv.set("vk:1", "ts", "11")
    assert await storage.kv.get("vk:1", "ts") == "11"
    assert await storage.kv.scope("vk:1") == {"ts": "11"}


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
    record = await storage.outbox.find_sent("vk", "42", "m1")
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
