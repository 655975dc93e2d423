"""What the fault-injection tests share: a one-school config on the Telegram emulator,
storage that refuses writes on demand, and ways to let app time pass without sleeping.

The storage fault is SQLite's own: ``PRAGMA query_only`` makes the connection refuse every
write with SQLITE_READONLY, exactly what a read-only remount gives (and, for the app, what a
full disk gives: reads work, writes fail). Time is the app's injected ManualClock: each
step waits for what that step must cause (a storage probe, the sender going quiet).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bots.core.clock import ManualClock
from runtime.app import App
from tests.emulators.telegram import Message, TelegramEmulator

ROOT = Path(__file__).resolve().parent.parent.parent
SCHOOL = "710001:school-token-abcdef"
STAFF_CHAT = -1001
STAFF_MEMBER = 1111
QUESTION = "Как записать ребенка в первый класс?"
ANSWER = "Приём заявлений в 1 класс"
#: not in the school FAQ: escalated to staff (a ticket card in the staff chat)
UNCOVERED = "мой сын подрался на перемене, прошу разобраться"
TIMEOUT = 30.0


def write_config(
    tmp_path: Path,
    emulator: TelegramEmulator,
    monkeypatch: pytest.MonkeyPatch,
    *,
    extra: str = "",
    storage: str = "data/bot.sqlite3",
) -> Path:
    """school-17 on Telegram with its staff chat, a Telegram group, in the emulator."""
    monkeypatch.setenv("TG_SCHOOL", SCHOOL)
    (tmp_path / "faq").mkdir(exist_ok=True)
    shutil.copy(ROOT / "examples/faq/school.yaml", tmp_path / "faq/school.yaml")
    emulator.open_group(SCHOOL, STAFF_CHAT, "Сотрудники")
    config = f"""\
storage: {{path: {storage}}}
timezone: Europe/Moscow
{extra}institutions:
  school-17:
    name: МБОУ «Средняя школа № 17»
    address: г. Курск, ул. Примерная, 1
    phone: +7 (4712) 00-00-00
    working_hours: {{mon-sun: "00:00-23:59"}}
    faq: faq/school.yaml
    telegram: {{token: "${{TG_SCHOOL}}", api_server: "{emulator.url}"}}
    staff:
      chat: {{platform: telegram, id: {STAFF_CHAT}}}
      members: [{{platform: telegram, id: {STAFF_MEMBER}, name: Иванова А. П.}}]
"""
    path = tmp_path / "config.yaml"
    path.write_text(config, encoding="utf-8")
    return path


class ReadOnlyStorage:
    """Makes the app's SQLite connection refuse writes (SQLITE_READONLY) until ``heal``."""

    def __init__(self, app: App) -> None:
        assert app.storage is not None
        self._conn = app.storage.db._conn

    def fail(self) -> None:
        self._conn.execute("PRAGMA query_only=ON")

    def heal(self) -> None:
        self._conn.execute("PRAGMA query_only=OFF")


async def until(
    check: Callable[[], Awaitable[bool]], app: App, timeout: float = TIMEOUT, what: str = ""
) -> None:
    """Wait until ``check()`` holds, re-checking whenever the sender makes progress."""
    assert app.sender is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise TimeoutError(f"not reached within {timeout} s: {what}")
        await app.sender.wait_progress(0.1)


async def storage_down_for(app: App, clock: ManualClock, seconds: float) -> None:
    """Let ``seconds`` of app time pass while storage refuses writes: each step is the
    probe's longest pause, and waits for the probe it causes (which fails)."""
    watch = app.storage_watch
    assert watch is not None and not watch.healthy
    passed = 0.0
    while passed < seconds:
        probes = watch.probes
        clock.advance(watch.cap)
        passed += watch.cap
        await watch.wait_probes(probes + 1)
        assert not watch.healthy


async def storage_back(app: App, clock: ManualClock) -> None:
    """After healing: the next probe (at most ``cap`` later) finds storage writable."""
    watch = app.storage_watch
    assert watch is not None
    probes = watch.probes
    clock.advance(watch.cap)
    await watch.wait_probes(probes + 1)
    assert watch.healthy


def texts(messages: list[Message]) -> list[str]:
    return [m.text for m in messages]


def count(messages: list[Message], fragment: str) -> int:
    return sum(fragment in m.text for m in messages)
