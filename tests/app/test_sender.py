"""The outbox sender on its own: the one place that sends and retries."""

from __future__ import annotations

from pathlib import Path

from bots.core.clock import ManualClock
from bots.core.model import ChatRef, Reply
from bots.local import LocalPlatform
from runtime.sender import Sender
from storage import Storage


async def test_a_stale_copy_of_a_sent_row_is_not_sent_again(tmp_path: Path) -> None:
    """The list a lane works from can be stale: another lane of the same chat (or another
    worker) may have sent a row while the list was being read."""
    clock = ManualClock()
    storage = await Storage.open(tmp_path / "db.sqlite3", clock.now)
    local = LocalPlatform("school")
    sender = Sender(storage, lambda institution, kind: local, clock)
    try:
        chat = ChatRef("local", "100")
        await storage.outbox.enqueue(
            institution="school", chat=chat, reply=Reply("ответ"), dedup_key="k", now=clock.now()
        )
        (stale,) = await storage.outbox.due_all(clock.now())
        assert await sender._deliver(stale) is True
        assert await sender._deliver(stale) is True  # the same row, read before it was sent
        assert [m.text for m in local.messages("100")] == ["ответ"]
    finally:
        await storage.close()


async def test_a_fenced_sender_leaves_the_row_to_the_new_holder(tmp_path: Path) -> None:
    clock = ManualClock()
    storage = await Storage.open(tmp_path / "db.sqlite3", clock.now)
    local = LocalPlatform("school")
    sender = Sender(storage, lambda institution, kind: local, clock)
    sender.fence = lambda institution: False  # this worker's lease ran out
    try:
        await storage.outbox.enqueue(
            institution="school",
            chat=ChatRef("local", "100"),
            reply=Reply("ответ"),
            dedup_key="k",
            now=clock.now(),
        )
        (item,) = await storage.outbox.due_all(clock.now())
        assert await sender._deliver(item) is False
        assert local.messages("100") == []
        assert await storage.outbox.pending_count() == 1  # still there for the new holder
    finally:
        await storage.close()


async def test_a_look_leaves_nothing_for_later_for_the_rows_a_lane_carries(
    tmp_path: Path,
) -> None:
    """A look while a lane sends sees that lane's row still pending. It is the lane's to
    send, so the chat is not left for later: that would make the lane's end wake the
    sender for one more look (a hop to SQLite's thread) whenever two answers overlap. A
    row the lane does not carry is left to it, as before."""
    clock = ManualClock()
    storage = await Storage.open(tmp_path / "db.sqlite3", clock.now)
    local = LocalPlatform("school")
    sender = Sender(storage, lambda institution, kind: local, clock)
    chat = ChatRef("local", "100")
    key = ("school", "local", "100")
    try:
        await storage.outbox.enqueue(
            institution="school", chat=chat, reply=Reply("ответ"), dedup_key="a", now=clock.now()
        )
        (carried,) = await storage.outbox.due_all(clock.now())
        busy = {key: frozenset({carried.id})}
        plan, left, no_room, _ = await sender._look(clock.now(), busy, 10)
        assert (plan, left, no_room) == ([], set(), False)
        await storage.outbox.enqueue(
            institution="school", chat=chat, reply=Reply("ещё"), dedup_key="b", now=clock.now()
        )
        plan, left, no_room, _ = await sender._look(clock.now(), busy, 10)
        assert (plan, left, no_room) == ([], {key}, False)
    finally:
        await storage.close()
