"""The replies an update queues start out from the update's own unit of work: the sender's
look at the due rows is made last in that transaction (Sender.look_in_unit) and the app
starts the lanes when it commits, instead of waking the sender for a look of its own (a
hop to SQLite's thread and a transaction more per update, bench/scale.py), while the
sender is idle."""

from __future__ import annotations

import asyncio

import pytest

from bots.core.model import ChatRef, Reply, SentMessage
from runtime.app import App
from storage.aio import AioSqliteDatabase


async def test_an_answer_goes_out_without_a_look_of_its_own(
    local_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert local_app.storage is not None
    db = local_app.storage.db
    assert isinstance(db, AioSqliteDatabase), "the example config runs SQLite on its thread"
    school = local_app.local_platform("school-17")
    await school.user_says("100", "/start")
    await local_app.settle()
    answered = asyncio.Event()
    send = school.send

    async def sending(chat: ChatRef, reply: Reply, *, dedup_key: str) -> list[SentMessage]:
        sent = await send(chat, reply, dedup_key=dedup_key)
        if "Приём заявлений в 1 класс" in reply.text:
            answered.set()
        return sent

    monkeypatch.setattr(school, "send", sending)
    sender = local_app.sender
    assert sender is not None
    for _ in range(50):  # the sender's round after the greeting's lane ended: idle again
        if sender.idle:
            break
        await sender.wait_progress(1.0)
    looks = db.hops_by_what["outbox.due"]
    await school.user_says("100", "Как записать ребенка в первый класс?")
    await asyncio.wait_for(answered.wait(), 60)
    assert db.hops_by_what["outbox.due"] == looks, "the sender looked again for the answer"
    await local_app.settle()
    assert len([m for m in school.messages("100") if "Приём заявлений" in m.text]) == 1
