"""The product as a real process (``python -m runtime.cli run``), as an operator runs it:
SIGTERM with 500 messages queued, and a start on a read-only disk after a SIGKILL
(issue 19, items 2 and 5)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from bots.core.clock import SystemClock
from bots.core.model import ChatRef, Reply
from bots.telegram import TelegramRates
from storage import Storage
from tests.emulators.telegram import Message, TelegramEmulator
from tests.faults.rig import ANSWER, QUESTION, SCHOOL, count, write_config
from tests.processes import priemnaya_run, tail
from tests.running import running_app as running

QUEUED = 500
DEADLINE = 5.0
#: python has to import everything and connect first
PROCESS_TIMEOUT = 60.0


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emu:
        yield emu


async def test_sigterm_with_500_queued_messages_exits_within_the_deadline(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(
        tmp_path, emulator, monkeypatch, extra=f"shutdown_timeout: {DEADLINE:g}s\n"
    )
    chats = list(range(20001, 20001 + QUEUED))
    storage = await Storage.open(tmp_path / "data/bot.sqlite3", SystemClock().now)
    try:
        for chat in chats:
            emulator._chat(SCHOOL, chat)  # each citizen's private chat exists
            await storage.outbox.enqueue(
                institution="school-17",
                chat=ChatRef("telegram", str(chat)),
                reply=Reply(f"Ответ жителю {chat}"),
                dedup_key=f"flood:{chat}",
                now=SystemClock().now(),
            )
    finally:
        await storage.close()
    delivered: list[Message] = []
    emulator.message_listeners.append(delivered.append)
    log = tmp_path / "bot.log"
    async with priemnaya_run(config, log) as process:
        await emulator.wait_until(lambda: len(delivered) >= 30, timeout=PROCESS_TIMEOUT)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
        elapsed = time.monotonic() - started
    print(f"exited {elapsed:.2f} s after SIGTERM with {QUEUED} queued, {len(delivered)} sent")
    assert code == 0, tail(log)
    assert elapsed < DEADLINE + 2.5, (elapsed, tail(log))
    assert len(delivered) < QUEUED  # the test stopped it mid-flood

    # what was not sent is queued for the next start, and goes out once
    fast = {"telegram": {"rates": TelegramRates().scaled(100)}}
    async with running(config, services_extra=fast) as app:
        await emulator.wait_until(lambda: len(delivered) >= QUEUED, timeout=60)
        await app.settle()
    per_chat = [len(emulator.bot_messages(SCHOOL, chat)) for chat in chats]
    assert min(per_chat) == 1, "a queued message was lost"
    # a send cut short at the deadline (its HTTP request under way) has an unknown result and
    # goes once more (Telegram has no idempotency key): only those may repeat
    cut = re.search(r"outbox: (\d+) send\(s\) cut short", log.read_text(encoding="utf-8"))
    in_flight = int(cut.group(1)) if cut else 0
    assert sum(n - 1 for n in per_chat) <= in_flight, (per_chat, in_flight)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def tmpfs(path: Path) -> Iterator[Path]:
    """A small file system of its own that the test can remount read-only (needs root)."""
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


async def _health(port: int) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
            return response.status


@pytest.mark.skipif(os.geteuid() != 0, reason="remounting a file system needs root")
async def test_a_read_only_disk_at_start_after_sigkill_sends_nothing_until_writable(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    with tmpfs(tmp_path / "disk") as disk:
        config = write_config(
            tmp_path,
            emulator,
            monkeypatch,
            storage=str(disk / "bot.sqlite3"),
            extra=f"server: {{host: 127.0.0.1, port: {port}}}\n",
        )
        log = tmp_path / "bot.log"
        async with priemnaya_run(config, log) as first:

            def kill_once_answered(message: Message) -> None:
                if message.chat_id == 501 and ANSWER in message.text:
                    first.send_signal(signal.SIGKILL)  # the answer left, unrecorded

            emulator.message_listeners.append(kill_once_answered)
            emulator.user_says(SCHOOL, 501, QUESTION)
            assert await asyncio.wait_for(first.wait(), PROCESS_TIMEOUT) == -signal.SIGKILL
        emulator.message_listeners.clear()
        assert count(emulator.bot_messages(SCHOOL, 501), ANSWER) == 1

        remount(disk, "ro")
        served = emulator.bot(SCHOOL).served
        emulator.user_says(SCHOOL, 502, QUESTION)
        update_id = emulator.bot(SCHOOL).updates[-1]["update_id"]
        seen: dict[str, int] = {}

        def at_polling_start(method: str, params: object) -> None:
            if method == "deleteWebhook":  # the new process begins to poll
                seen.setdefault("served", served[update_id])

        emulator.listeners.append(at_polling_start)
        async with priemnaya_run(config, log) as second:
            # the new process fetched the question (a request of the killed one may have
            # been served it too, before)
            await emulator.wait_until(
                lambda: "served" in seen and served[update_id] > seen["served"],
                timeout=PROCESS_TIMEOUT,
            )
            assert await _health(port) == 503
            # the row whose result is unknown was not sent again; the new question is
            # neither answered nor confirmed while nothing can be stored
            assert count(emulator.bot_messages(SCHOOL, 501), ANSWER) == 1
            assert emulator.bot_messages(SCHOOL, 502) == []
            assert emulator.pending_updates(SCHOOL) >= 1

            remount(disk, "rw")
            await emulator.wait_until(
                lambda: count(emulator.bot_messages(SCHOOL, 502), ANSWER) == 1,
                timeout=PROCESS_TIMEOUT,
            )
            assert await _health(port) == 200
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 30) == 0, tail(log)
        assert "storage unavailable" in log.read_text(encoding="utf-8")
    # Telegram has no idempotency key: the answer whose result was unknown went at most
    # once more, after storage could record it
    assert count(emulator.bot_messages(SCHOOL, 501), ANSWER) <= 2, tail(log)
    assert count(emulator.bot_messages(SCHOOL, 502), ANSWER) == 1
