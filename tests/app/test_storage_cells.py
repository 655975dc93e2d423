"""Storage cells (runtime/cells.py, runtime/region.py): with ``storage.cells: 2`` the two
institutions' data is in two SQLite files, each with its own writer thread, and one
institution whose writes crawl holds up only its own cell.

The crawl is real blocking on the school's database thread (its unit of work hangs inside
the transaction, as on a stalled disk), released by the test: no sleeps. What the tests
assert is order (the polyclinic answered while the school is still held); the delays are
printed. With one cell the polyclinic's answer waits for the school's unit
(tests/app/test_storage_stall.py)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from handlers.config import load_config
from handlers.conversation import Conversation
from handlers.feature import Features
from handlers.router import route
from runtime import app as app_module
from runtime import cells, observability
from runtime.app import App
from runtime.region import Region
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

ROOT = Path(__file__).resolve().parent.parent.parent


def write_config(
    tmp_path: Path,
    emulator: TelegramEmulator,
    monkeypatch: pytest.MonkeyPatch,
    *,
    cells_line: str = "cells: 2",
    webhook_port: int | None = None,
    name: str = "config.yaml",
) -> Path:
    monkeypatch.setenv("TG_SCHOOL", SCHOOL)
    monkeypatch.setenv("TG_CLINIC", CLINIC)
    if not (tmp_path / "faq").exists():
        shutil.copytree(ROOT / "examples/faq", tmp_path / "faq")
    emulator.open_group(SCHOOL, -1001, "Сотрудники школы")
    emulator.open_group(CLINIC, -1002, "Сотрудники поликлиники")
    mode = ", mode: webhook" if webhook_port else ""
    lines = [f"storage: {{path: data/bot.sqlite3, {cells_line}}}", "timezone: Europe/Moscow"]
    if webhook_port:
        lines.append(
            f"server: {{host: 127.0.0.1, port: {webhook_port},"
            f" public_url: 'http://127.0.0.1:{webhook_port}'}}"
        )
    lines.append("institutions:")
    institutions = [("school-17", "school", "TG_SCHOOL", -1001, 1111)]
    institutions.append(("polyclinic-3", "polyclinic", "TG_CLINIC", -1002, 2222))
    for inst, faq, token, staff_chat, member in institutions:
        telegram = f'{{token: "${{{token}}}", api_server: "{emulator.url}"{mode}}}'
        lines += institution_lines(inst, faq, telegram, staff_chat, member)
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@asynccontextmanager
async def running_region(config: Path, **options: Any) -> AsyncIterator[Region]:
    region = Region(load_config(config), **options)
    await region.start()
    try:
        yield region
    finally:
        await region.stop()


def answers(emulator: TelegramEmulator, token: str, chat: int, answer: str) -> int:
    return sum(answer in m.text for m in emulator.bot_messages(token, chat))


def logged_institutions(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT institution FROM message_log")}


async def test_a_crawling_cell_leaves_the_other_cell_polling_and_answered(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, emulator, monkeypatch)
    loaded = load_config(config)
    assert cells.cell_of(loaded, "school-17") != cells.cell_of(loaded, "polyclinic-3")
    held, release = threading.Event(), threading.Event()

    async def crawling_route(conv: Conversation, features: Features) -> None:
        await route(conv, features)
        if conv.event.institution == "school-17" and not release.is_set():
            held.set()
            release.wait(120)  # the school's database thread hangs inside its transaction

    monkeypatch.setattr(app_module, "route", crawling_route)
    async with running_region(config) as region:
        assert len(region.apps) == 2
        web_app = web.Application()
        observability.add_routes(region.apps, web_app)
        server = TestServer(web_app, host="127.0.0.1")
        await server.start_server()
        try:
            emulator.user_says(CLINIC, 299, CLINIC_QUESTION)  # a baseline, nothing held
            started = time.perf_counter()
            await emulator.wait_until(lambda: answers(emulator, CLINIC, 299, CLINIC_ANSWER), 30)
            baseline = (time.perf_counter() - started) * 1000

            emulator.user_says(SCHOOL, 100, SCHOOL_QUESTION)
            assert await asyncio.to_thread(held.wait, 120), "the school's unit began"

            asked = time.perf_counter()
            emulator.user_says(CLINIC, 200, CLINIC_QUESTION)
            await emulator.wait_until(lambda: answers(emulator, CLINIC, 200, CLINIC_ANSWER), 30)
            answered = (time.perf_counter() - asked) * 1000
            async with aiohttp.ClientSession() as session:
                started = time.perf_counter()
                async with session.get(str(server.make_url("/healthz"))) as response:
                    body = await response.json()
                healthz = (time.perf_counter() - started) * 1000
            # its bot confirmed the update and polls on, while the school's waits
            await emulator.wait_until(lambda: emulator.pending_updates(CLINIC) == 0, 30)
            assert not release.is_set() and held.is_set()
            print(
                f"\nwhile the school's cell was held: the polyclinic's answer came"
                f" {answered:.1f} ms after the question (baseline {baseline:.1f} ms);"
                f" /healthz answered {response.status} in {healthz:.1f} ms"
            )
            assert response.status == 200, body
            assert body["checks"]["cells"] == 2
            assert not emulator.bot_messages(SCHOOL, 100), "the school's unit is still held"
            assert emulator.pending_updates(SCHOOL) == 1  # not confirmed before it is stored

            release.set()
            await emulator.wait_until(lambda: answers(emulator, SCHOOL, 100, SCHOOL_ANSWER), 30)
            await region.settle()
        finally:
            release.set()
            await server.close()
    assert answers(emulator, SCHOOL, 100, SCHOOL_ANSWER) == 1
    assert answers(emulator, CLINIC, 200, CLINIC_ANSWER) == 1
    # each institution's messages are in its own cell's file, and nowhere else
    school_file = cells.cell_path(loaded, cells.cell_of(loaded, "school-17"))
    clinic_file = cells.cell_path(loaded, cells.cell_of(loaded, "polyclinic-3"))
    assert logged_institutions(school_file) == {"school-17"}
    assert logged_institutions(clinic_file) == {"polyclinic-3"}


async def test_cells_share_one_server_for_webhooks_healthz_and_metrics(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_config(tmp_path, emulator, monkeypatch, webhook_port=port)
    async with running_region(config) as region:
        assert len(region.apps) == 2
        for token in (SCHOOL, CLINIC):
            await emulator.wait_until(lambda t=token: bool(emulator.bot(t).webhook_url), 30)
        emulator.user_says(SCHOOL, 100, SCHOOL_QUESTION)
        emulator.user_says(CLINIC, 200, CLINIC_QUESTION)
        await emulator.wait_until(lambda: answers(emulator, SCHOOL, 100, SCHOOL_ANSWER), 30)
        await emulator.wait_until(lambda: answers(emulator, CLINIC, 200, CLINIC_ANSWER), 30)
        # a forged call for the school with the polyclinic's secret is refused by the school
        # (its cell answers; the other cell's 404 does not hide it)
        forged = {"update_id": 9_000, "message": {"message_id": 1, "date": 0, "text": "x",
                  "chat": {"id": 5, "type": "private"}, "from": {"id": 5, "is_bot": False,
                  "first_name": "A"}}}  # fmt: skip
        clinic_secret = emulator.bot(CLINIC).webhook_secret
        assert await emulator.post_webhook(SCHOOL, forged, secret=clinic_secret) == 403
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                body = await response.json()
                assert response.status == 200, body
            async with session.post(f"http://127.0.0.1:{port}/telegram/999") as response:
                assert response.status == 404  # no cell's bot
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                text = await response.text()
        assert body["checks"]["cells"] == 2 and body["checks"]["database"] is True
        assert "priemnaya_institutions 2" in text.replace(".0", "")
        await region.settle()
    assert answers(emulator, SCHOOL, 100, SCHOOL_ANSWER) == 1
    assert answers(emulator, CLINIC, 200, CLINIC_ANSWER) == 1


async def test_another_cell_count_is_refused_with_what_to_do(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one file from before cells, holding a conversation
    one = write_config(tmp_path, emulator, monkeypatch, cells_line="cells: 1")
    async with running_region(one) as region:
        emulator.user_says(CLINIC, 200, CLINIC_QUESTION)
        await emulator.wait_until(lambda: answers(emulator, CLINIC, 200, CLINIC_ANSWER), 30)
        await region.settle()
    two = write_config(tmp_path, emulator, monkeypatch, name="two.yaml")
    region = Region(load_config(two))
    with pytest.raises(cells.CellMismatch) as refused:
        await region.start()
    message = str(refused.value)
    assert "bot.sqlite3" in message and "storage.cells: 1" in message
    assert "storage.cells: 2" in message
    # nothing was started or moved: the one cell still runs as before
    async with running_region(one) as region:
        emulator.user_says(CLINIC, 201, CLINIC_QUESTION)
        await emulator.wait_until(lambda: answers(emulator, CLINIC, 201, CLINIC_ANSWER), 30)
        await region.settle()
    assert not (tmp_path / "data" / "bot.cell1.sqlite3").exists(), "refused before it"


def test_institutions_sharing_an_account_share_a_cell(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples/faq", tmp_path / "faq")
    lines = ["storage: {path: data/bot.sqlite3, cells: 4}", "institutions:"]
    ids = [f"school-{n}" for n in range(1, 13)]
    for inst in ids:
        shared = "shared" if inst in {"school-2", "school-7", "school-11"} else inst
        lines += [
            f"  {inst}:",
            f"    name: {inst}",
            "    faq: faq/school.yaml",
            f'    telegram: {{token: "1{len(shared)}:{shared}-token-abcdef"}}',
        ]
    (tmp_path / "config.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    loaded = load_config(tmp_path / "config.yaml", offline=True)
    groups = cells.members(loaded)
    assert sorted(i for group in groups for i in group) == sorted(ids)
    assert len({cells.cell_of(loaded, i) for i in ("school-2", "school-7", "school-11")}) == 1
    assert sum(1 for group in groups if group) > 1, "twelve institutions spread over cells"
    assert cells.cell_path(loaded, 3).name == "bot.cell3.sqlite3"
    assert cells.cell_path(loaded, 0).name == "bot.sqlite3"


def test_cells_are_for_sqlite(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples/faq", tmp_path / "faq")
    (tmp_path / "config.yaml").write_text(
        'storage: {url: "postgresql://localhost/x", cells: 3}\n'
        "institutions:\n  school-17:\n    name: Школа\n    faq: faq/school.yaml\n",
        encoding="utf-8",
    )
    from bots.core.yamlfile import ProblemsError

    with pytest.raises(ProblemsError) as refused:
        load_config(tmp_path / "config.yaml", offline=True)
    assert "storage.cells is for SQLite" in str(refused.value)


async def test_a_cell_app_reloads_only_its_own_institutions(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.reload import reload

    config = write_config(tmp_path, emulator, monkeypatch)
    async with running_region(config) as region:
        for app in region.apps:
            result = await reload(app, "test")
            assert result.ok and not result.restart_needed, result
        assert [sorted(app.institutions) for app in region.apps] == [
            ["school-17"],
            ["polyclinic-3"],
        ]
        assert all(isinstance(app, App) for app in region.apps)


async def test_one_watcher_reloads_every_cell_when_a_file_of_either_changes(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first cell's watcher alone watches every institution's files (each watcher woke
    on every write to the databases beside the config), and a change reaches each cell."""
    from watchfiles import Change

    from runtime.reload import reloader

    config = write_config(tmp_path, emulator, monkeypatch)
    async with running_region(config) as region:
        first, second = (reloader(app) for app in region.apps)
        assert first._watch_task is not None and second._watch_task is None
        clinic_faq = str((tmp_path / "faq" / "polyclinic.yaml").resolve())
        assert first.relevant(clinic_faq), "the other cell's FAQ is watched too"
        for name in ("bot.sqlite3-wal", "bot.cell1.sqlite3-wal"):
            assert not first.relevant(str((tmp_path / "data" / name).resolve()))
        result = await first.on_changes([(Change.modified, clinic_faq)])
        assert result is not None and result.ok
        assert first.generation == 1 and second.generation == 1
        assert sorted(region.apps[1].institutions) == ["polyclinic-3"]


async def test_a_count_under_which_every_institution_moves_to_new_files_is_refused(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With cells: 3 both institutions hash to cell 2, a file not written yet: the files
    of cells 0 and 1 (written with cells: 2) must still stop the start."""
    two = write_config(tmp_path, emulator, monkeypatch)
    async with running_region(two) as region:
        emulator.user_says(CLINIC, 200, CLINIC_QUESTION)
        await emulator.wait_until(lambda: answers(emulator, CLINIC, 200, CLINIC_ANSWER), 30)
        await region.settle()
    three = write_config(tmp_path, emulator, monkeypatch, cells_line="cells: 3", name="3.yaml")
    loaded = load_config(three)
    assert {cells.cell_of(loaded, i) for i in ("school-17", "polyclinic-3")} == {2}
    with pytest.raises(cells.CellMismatch, match=r"storage\.cells: 2"):
        await Region(loaded).start()
    assert not cells.cell_path(loaded, 2).exists(), "refused before any file was made"


async def test_sigkill_mid_traffic_loses_nothing_in_either_cell(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``priemnaya run`` with two cells, SIGKILLed the moment the first answer reaches
    Telegram while both institutions' citizens are asking; after the restart every
    question is answered from its own cell, and only sends in flight at the kill repeat
    (Telegram has no idempotency key)."""
    import signal

    from tests.processes import priemnaya_run, tail

    config = write_config(tmp_path, emulator, monkeypatch)
    log = tmp_path / "bot.log"
    asked = {SCHOOL: (range(101, 107), SCHOOL_QUESTION, SCHOOL_ANSWER)}
    asked[CLINIC] = (range(201, 207), CLINIC_QUESTION, CLINIC_ANSWER)

    def counts() -> dict[tuple[str, int], int]:
        return {
            (token, chat): answers(emulator, token, chat, answer)
            for token, (chats, _, answer) in asked.items()
            for chat in chats
        }

    async with priemnaya_run(config, log) as first:
        killed: list[str] = []

        def kill_on_the_first_answer(message: Any) -> None:
            if not killed and any(a in message.text for _, _, a in asked.values()):
                killed.append(message.text)
                first.send_signal(signal.SIGKILL)

        emulator.message_listeners.append(kill_on_the_first_answer)
        for token, (chats, question, _) in asked.items():
            for chat in chats:
                emulator.user_says(token, chat, question)
        await emulator.wait_until(lambda: bool(killed), 120)
        await first.wait()
        emulator.message_listeners.remove(kill_on_the_first_answer)
    before = counts()
    assert sum(before.values()) < len(before), "the kill came before most answers"

    async with priemnaya_run(config, log) as second:
        await emulator.wait_until(lambda: all(counts().values()), 120)
        await emulator.wait_until(
            lambda: emulator.pending_updates(SCHOOL) == emulator.pending_updates(CLINIC) == 0,
            60,
        )
        second.send_signal(signal.SIGTERM)
        assert await second.wait() == 0, tail(log)
    after = counts()
    assert all(1 <= n <= 2 for n in after.values()), (after, tail(log))
    loaded = load_config(config)
    assert logged_institutions(cells.cell_path(loaded, 0)) == {"school-17"}
    assert logged_institutions(cells.cell_path(loaded, 1)) == {"polyclinic-3"}
    print(f"\nanswers before the kill {sum(before.values())}, repeated after it:"
          f" {sum(n - 1 for n in after.values())}")  # fmt: skip


async def test_a_missing_or_swapped_cell_file_is_refused_and_check_says_so(
    tmp_path: Path,
    emulator: TelegramEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A partial restore: a cell file gone would be made anew, empty, and its institutions'
    tickets lost without a word; swapped files would answer from each other's data."""
    from runtime.cli import main

    config = write_config(tmp_path, emulator, monkeypatch)
    async with running_region(config) as region:
        for token, chat, question, answer in (
            (SCHOOL, 100, SCHOOL_QUESTION, SCHOOL_ANSWER),
            (CLINIC, 200, CLINIC_QUESTION, CLINIC_ANSWER),
        ):
            emulator.user_says(token, chat, question)
            await emulator.wait_until(
                lambda t=token, c=chat, a=answer: answers(emulator, t, c, a), 30
            )
        await region.settle()
    loaded = load_config(config)
    data = tmp_path / "data"
    assert await asyncio.to_thread(main, ["check", "-c", str(config)]) == 0
    shown = capsys.readouterr().out
    assert f"storage cell 1: {data / 'bot.cell1.sqlite3'}: polyclinic-3" in shown

    aside = tmp_path / "aside"
    aside.mkdir()
    (data / "bot.cell1.sqlite3").rename(aside / "bot.cell1.sqlite3")
    with pytest.raises(cells.CellMismatch, match="is missing"):
        await Region(loaded).start()
    assert not (data / "bot.cell1.sqlite3").exists(), "no empty file took its place"
    assert await asyncio.to_thread(main, ["check", "-c", str(config)]) == 1
    assert "Restore it from the backup" in capsys.readouterr().err

    (data / "bot.sqlite3").rename(data / "bot.cell1.sqlite3")  # swapped in a restore
    (aside / "bot.cell1.sqlite3").rename(data / "bot.sqlite3")
    with pytest.raises(cells.CellMismatch, match="swapped"):
        await Region(load_config(config)).start()
