"""One institution's writes crawl on PostgreSQL; the others are not serialised behind it.

Two institutions, each with its own bot polling the Telegram emulator, and the app's
PostgreSQL pool. The school gets more citizens at once than the pool has connections, and
every one of its units of work (the update's transaction) is held open right before its
commit, by an event the test releases (no sleeps). Meanwhile a citizen of the polyclinic
asks an FAQ question: the polyclinic's bot fetches it (its polling goes on), stores it and
sends the answer while the school's transactions are all still open, and /healthz answers.
The delays are printed; what the test asserts is the order (the answer before the release).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from handlers.conversation import Conversation
from handlers.feature import Features
from handlers.router import route
from runtime import app as app_module
from runtime import observability
from storage.pg import PgDatabase
from storage.queues import LOCKED_LOOK_AGAIN
from tests.app.two_institutions import (
    CLINIC,
    CLINIC_ANSWER,
    CLINIC_QUESTION,
    SCHOOL,
    SCHOOL_ANSWER,
    SCHOOL_QUESTION,
    institution_lines,
)
from tests.emulators.telegram import TelegramEmulator
from tests.pg import fresh_schema
from tests.running import running_app as running

ROOT = Path(__file__).resolve().parent.parent.parent


def two_institutions(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("TG_SCHOOL", SCHOOL)
    monkeypatch.setenv("TG_CLINIC", CLINIC)
    shutil.copytree(ROOT / "examples/faq", tmp_path / "faq")
    emulator.open_group(SCHOOL, -1001, "Сотрудники школы")
    emulator.open_group(CLINIC, -1002, "Сотрудники поликлиники")
    institutions = [("school-17", "school", "TG_SCHOOL", -1001, 1111)]
    institutions.append(("polyclinic-3", "polyclinic", "TG_CLINIC", -1002, 2222))
    lines = ["storage: {path: data/bot.sqlite3}", "timezone: Europe/Moscow", "institutions:"]
    for inst, faq, token, staff_chat, member in institutions:
        telegram = f'{{token: "${{{token}}}", api_server: "{emulator.url}"}}'
        lines += institution_lines(inst, faq, telegram, staff_chat, member)
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_a_crawling_institution_leaves_the_others_polling_and_answered(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = two_institutions(tmp_path, emulator, monkeypatch)
    release = asyncio.Event()
    held: list[str] = []
    all_held = asyncio.Event()

    async def crawling_route(conv: Conversation, features: Features) -> None:
        await route(conv, features)
        if conv.event.institution == "school-17" and not release.is_set():
            held.append(conv.event.chat.chat_id)  # its transaction stays open, uncommitted
            if len(held) == expected:
                all_held.set()
            await release.wait()

    def answers(token: str, chat: int, answer: str) -> int:
        return sum(answer in m.text for m in emulator.bot_messages(token, chat))

    monkeypatch.setattr(app_module, "route", crawling_route)
    async with fresh_schema() as url, running(config, database=url) as app:
        assert app.storage is not None and isinstance(app.storage.db, PgDatabase)
        db = app.storage.db
        pool_size = db.pool_size
        #: more school citizens at once than the pool has connections
        crowd = pool_size + 2
        #: the school's units that get a connection (the rest wait for the school's share)
        expected = min(crowd, db.owner_share)
        web_app = web.Application()
        observability.add_routes(app, web_app)
        server = TestServer(web_app, host="127.0.0.1")
        await server.start_server()
        try:
            # a baseline: the polyclinic's answer with nothing held (after a first one)
            emulator.user_says(CLINIC, 299, CLINIC_QUESTION)
            await emulator.wait_until(lambda: answers(CLINIC, 299, CLINIC_ANSWER) == 1, 30)
            started = time.perf_counter()
            emulator.user_says(CLINIC, 300, CLINIC_QUESTION)
            await emulator.wait_until(lambda: answers(CLINIC, 300, CLINIC_ANSWER) == 1, 30)
            baseline = (time.perf_counter() - started) * 1000

            school_chats = list(range(101, 101 + crowd))
            for chat in school_chats:
                emulator.user_says(SCHOOL, chat, SCHOOL_QUESTION)
            # every school update got as many connections as it may: each one is held
            await asyncio.wait_for(all_held.wait(), 30)
            print(f"\npool of {pool_size}; school units held open: {len(held)} of {crowd}")

            asked = time.perf_counter()
            emulator.user_says(CLINIC, 200, CLINIC_QUESTION)
            async with aiohttp.ClientSession() as session:
                started = time.perf_counter()
                async with session.get(str(server.make_url("/healthz"))) as response:
                    body = await response.json()
                healthz = (time.perf_counter() - started) * 1000
            await emulator.wait_until(lambda: answers(CLINIC, 200, CLINIC_ANSWER) == 1, 30)
            answered = (time.perf_counter() - asked) * 1000
            # its bot confirmed the update and polls on, while the school's batch waits
            await emulator.wait_until(lambda: emulator.pending_updates(CLINIC) == 0, 30)
            assert not release.is_set()
            print(
                f"while the school's units were held: the polyclinic's answer came"
                f" {answered:.1f} ms after the question (baseline {baseline:.1f} ms);"
                f" /healthz answered {response.status} in {healthz:.1f} ms"
            )
            assert response.status == 200, body
            assert not any(emulator.bot_messages(SCHOOL, c) for c in school_chats)
            assert emulator.pending_updates(SCHOOL) == crowd  # its batch is not confirmed

            release.set()
            await emulator.wait_until(
                lambda: all(answers(SCHOOL, c, SCHOOL_ANSWER) for c in school_chats), 30
            )
            await app.settle()
        finally:
            release.set()
            await server.close()
    assert all(answers(SCHOOL, chat, SCHOOL_ANSWER) == 1 for chat in school_chats)


async def test_a_school_row_locked_by_a_crawling_transaction_leaves_the_sender_sending(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sender looks for due rows of every institution in one statement. A school
    transaction that locked one of its pending rows (a /forget deleting its citizen's
    queued replies, an edit coalesced into a queued card) and then crawls must not hold
    that look up: here the test's own transaction holds the lock, as that one would."""
    config = two_institutions(tmp_path, emulator, monkeypatch)
    called: list[str] = []
    emulator.listeners.append(lambda method, params: called.append(str(params.get("chat_id"))))

    def answers(token: str, chat: int, answer: str) -> int:
        return sum(answer in m.text for m in emulator.bot_messages(token, chat))

    async with fresh_schema() as url, running(config, database=url) as app:
        gate = emulator.hold(100)  # the school's sends to this chat hang in the network
        emulator.user_says(SCHOOL, 100, SCHOOL_QUESTION)
        await emulator.wait_until(lambda: "100" in called, 30)
        other = await asyncpg.connect(url)
        try:
            locking = other.transaction()
            await locking.start()
            locked = await other.fetch(
                "SELECT id FROM outbox WHERE institution='school-17' AND status='pending'"
                " FOR UPDATE"
            )
            assert locked, "the school's replies wait to be sent"
            asked = time.perf_counter()
            emulator.user_says(CLINIC, 200, CLINIC_QUESTION)
            await emulator.wait_until(lambda: answers(CLINIC, 200, CLINIC_ANSWER) == 1, 30)
            print(
                f"\nwhile {len(locked)} school row(s) were locked: the polyclinic's answer"
                f" came {(time.perf_counter() - asked) * 1000:.1f} ms after the question"
            )
            # the look skipped them and comes back for them soon, not at the next update
            assert app.storage is not None
            now = app.clock.now()
            items, due = await app.storage.outbox.claim_due(now)
            assert not any(item.id in {r["id"] for r in locked} for item in items)
            assert due is not None and due <= now + LOCKED_LOOK_AGAIN
            await locking.rollback()
        finally:
            await other.close()
        gate.set()
        await emulator.wait_until(lambda: answers(SCHOOL, 100, SCHOOL_ANSWER) == 1, 30)
        await app.settle()
