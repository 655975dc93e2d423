"""A stalled disk under one institution's writes (storage on aiosqlite's thread,
storage/aio.py): the event loop keeps serving. The stall is real blocking on the
database's thread, released by the test: no sleeps, no timing assertions (the /healthz
latency is printed). With the on-loop engine the same stall would block the loop, and
this test could not even ask /healthz.

SQLite has one writer and the app one connection on one thread: another institution's
update, and any read (here the outbox's count), wait for the stalled unit like everything
stored; they are finished once it is through. The test asserts that order and prints the
delays. PostgreSQL does not serialise them (tests/app/test_storage_stall_pg.py), nor do
institutions in different storage cells (tests/app/test_storage_cells.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bots.core import metrics
from bots.core.model import Event
from runtime import observability
from runtime.app import App
from storage import timing
from storage.aio import AioSqliteDatabase
from storage.queues import Inbox

SCHOOL_QUESTION = "Как записать ребенка в первый класс?"
CLINIC_QUESTION = "как вызвать врача на дом"


async def test_a_stalled_write_leaves_the_event_loop_serving(
    local_app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert local_app.storage is not None
    db = local_app.storage.db
    assert isinstance(db, AioSqliteDatabase), "the default engine runs off the loop"
    db.slow_call_seconds = 0.0  # every call is "slow": the report is checked, not a time
    monkeypatch.setattr(timing, "LOG_EVERY", 0.0)  # each one logged
    stalled, release = threading.Event(), threading.Event()
    take = Inbox.take

    async def stalling_take(self: Inbox, event: Event, now: datetime) -> bool:
        if event.institution == "school-17" and not release.is_set():
            stalled.set()
            release.wait(120)  # the database's thread hangs, as on a stalled disk
        return await take(self, event, now)

    monkeypatch.setattr(Inbox, "take", stalling_take)
    school = local_app.local_platform("school-17")
    clinic = local_app.local_platform("polyclinic-3")
    slow_before = metrics.STORAGE_SLOW.value(what="update")

    web_app = web.Application()
    observability.add_routes(local_app, web_app)
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    try:
        asked = asyncio.create_task(school.user_says("100", SCHOOL_QUESTION))
        assert await asyncio.to_thread(stalled.wait, 120), "the school's write began"
        clinic_asked = asyncio.create_task(clinic.user_says("200", CLINIC_QUESTION))
        read = asyncio.create_task(local_app.storage.outbox.pending_count())
        async with aiohttp.ClientSession() as session:
            started = time.perf_counter()
            async with session.get(str(server.make_url("/healthz"))) as response:
                body = await response.json()
            took = (time.perf_counter() - started) * 1000
        print(f"/healthz answered in {took:.1f} ms while the database's thread was stalled")
        assert response.status == 200, body  # the last probe was fine; this one waits
        assert not asked.done(), "the school's update is still being stored"
        assert not clinic_asked.done() and not read.done(), "one connection: they wait"
        released = time.perf_counter()
        release.set()
        finished: dict[str, float] = {}
        waiting = {"the school's update": asked, "a read": read, "the polyclinic's": clinic_asked}
        for name, task in waiting.items():
            await asyncio.wait_for(task, 120)
            finished[name] = (time.perf_counter() - released) * 1000
        print(
            "waited for the stalled unit, done after its release: "
            + ", ".join(f"{name} +{ms:.1f} ms" for name, ms in finished.items())
        )
    finally:
        release.set()
        await server.close()
    await local_app.settle()
    assert any("Приём заявлений в 1 класс" in m.text for m in school.messages("100"))
    assert any("на дом" in m.text for m in clinic.messages("200"))
    assert metrics.STORAGE_SLOW.value(what="update") > slow_before
    assert "slow storage call: update took" in caplog.text
