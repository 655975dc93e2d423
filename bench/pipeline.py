"""Benchmark of the whole update pipeline on Telegram: the Bot API emulator on loopback,
real aiogram, the Telegram adapter, the app (inbox, router, FAQ matcher, outbox, sender)
and SQLite in a temporary folder, all started from a config file.

Two figures:
- throughput: a backlog of questions from distinct (already greeted) citizens is put into
  the emulator at once; updates/s = questions / seconds until the last answer arrived.
- latency: questions arrive at a fixed rate (default 50/s) from distinct citizens; the
  latency of one is from its arrival in the emulator to the bot's answer arriving there.

Telegram's real sending limits (30 messages/s per bot) would make the throughput figure a
figure of the limiter, so the bot's limits are scaled up here (``--rate-scale``); the
adapter's pacing is measured by the tests. Prints figures, asserts nothing. Run:
`.venv/bin/python bench/pipeline.py` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bots.telegram import TelegramRates  # noqa: E402
from handlers.config import load_config  # noqa: E402
from runtime.app import App  # noqa: E402
from tests.emulators.telegram import Message, TelegramEmulator  # noqa: E402

TOKEN = "730001:bench-token-abcdefgh"
QUESTIONS = [
    "Как записать ребенка в первый класс?",
    "как оплатить питание в столовой",
    "Какие документы нужны для зачисления в 1 класс?",
    "где взять справку об обучении",
    "Положено ли бесплатное питание ученикам начальной школы?",
    "какие дома закреплены за школой",
]


def write_config(folder: Path, api_server: str) -> Path:
    shutil.copy(ROOT / "examples/faq/school.yaml", folder / "school.yaml")
    config = folder / "config.yaml"
    config.write_text(
        f"""\
storage: {{path: bench.sqlite3}}
timezone: Europe/Moscow
institutions:
  school-17:
    name: МБОУ «Средняя школа № 17»
    address: г. Курск, ул. Примерная, 1
    working_hours: {{mon-sun: "00:00-23:59"}}
    faq: school.yaml
    telegram: {{token: "{TOKEN}", api_server: "{api_server}"}}
""",
        encoding="utf-8",
    )
    return config


class Arrivals:
    """How many bot messages arrived, and when each chat last got one."""

    def __init__(self) -> None:
        self.count = 0
        self.at: dict[int, float] = {}
        self.done = asyncio.Event()
        self.expect = 0

    def __call__(self, message: Message) -> None:
        self.count += 1
        self.at[message.chat_id] = time.perf_counter()
        if self.count >= self.expect:
            self.done.set()

    def reset(self, expect: int) -> None:
        self.count, self.expect = 0, expect
        self.at.clear()
        self.done.clear()


# -- the citizens' side: the emulator and the load, in a process of their own ----------------


def citizens(conn: Connection) -> None:
    """The child process: the Bot API emulator and the people writing to the bot. It runs
    apart so that its CPU time is not charged to the app, as with the real Bot API."""
    asyncio.run(_citizens(conn))


async def _citizens(conn: Connection) -> None:
    arrivals = Arrivals()
    async with TelegramEmulator() as emu:
        emu.message_listeners.append(arrivals)
        conn.send(emu.url)
        while True:
            command, chats, argument = await asyncio.to_thread(conn.recv)
            if command == "stop":
                return
            if command == "greet":
                await _greet(emu, arrivals, chats)
                conn.send(None)
            elif command == "backlog":
                conn.send(await _backlog(emu, arrivals, chats))
            elif command == "steady":
                conn.send(await _steady(emu, arrivals, chats, argument))


async def _greet(emu: TelegramEmulator, arrivals: Arrivals, chats: range) -> None:
    """A citizen's first message gets a first-contact note besides its answer; get those
    out of the way, so that every measured question gets exactly one message back."""
    arrivals.reset(2 * len(chats))
    for chat in chats:
        emu.user_says(TOKEN, chat, "/start")
    await asyncio.wait_for(arrivals.done.wait(), 600)


async def _backlog(emu: TelegramEmulator, arrivals: Arrivals, chats: range) -> float:
    arrivals.reset(len(chats))
    started = time.perf_counter()
    for n, chat in enumerate(chats):
        emu.user_says(TOKEN, chat, QUESTIONS[n % len(QUESTIONS)])
    await asyncio.wait_for(arrivals.done.wait(), 600)
    return len(chats) / (time.perf_counter() - started)


async def _steady(
    emu: TelegramEmulator, arrivals: Arrivals, chats: range, rate: float
) -> list[float]:
    arrivals.reset(len(chats))
    asked: dict[int, float] = {}
    interval = 1 / rate
    start = time.perf_counter()
    for n, chat in enumerate(chats):
        # open-loop load: the n-th question arrives at start + n * interval, answered or not
        delay = start + n * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        asked[chat] = time.perf_counter()
        emu.user_says(TOKEN, chat, QUESTIONS[n % len(QUESTIONS)])
    await asyncio.wait_for(arrivals.done.wait(), 600)
    return sorted((arrivals.at[c] - asked[c]) * 1000 for c in chats)


# -- the bot's side: the app in this process --------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def main(args: argparse.Namespace) -> None:
    rates = TelegramRates().scaled(args.rate_scale)

    conn, child_conn = multiprocessing.Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=citizens, args=(child_conn,), daemon=True
    )
    child.start()

    async def ask(command: str, chats: range, argument: float = 0.0) -> Any:
        conn.send((command, chats, argument))
        return await asyncio.to_thread(conn.recv)

    try:
        url = await asyncio.to_thread(conn.recv)
        with tempfile.TemporaryDirectory() as tmp:
            app = App(
                load_config(write_config(Path(tmp), url)),
                services_extra={"telegram": {"rates": rates, "poll_timeout": 25}},
            )
            await app.start()
            try:
                backlog = range(10_000, 10_000 + args.updates)
                steady = range(50_000, 50_000 + int(args.rate * args.seconds))
                await ask("greet", backlog)
                await ask("greet", steady)
                await app.settle()
                rate = await ask("backlog", backlog)
                await app.settle()
                delays = await ask("steady", steady, args.rate)
                await app.settle()
            finally:
                await app.stop()
    finally:
        conn.send(("stop", range(0), 0.0))
        child.join(10)
    print(f"throughput: {rate:.0f} updates/s ({args.updates} questions, target >= 300)")
    print(
        f"latency at {args.rate:.0f} updates/s over {len(delays)} questions: "
        f"p50 {statistics.median(delays):.1f} ms, p90 {percentile(delays, 90):.1f} ms, "
        f"p99 {percentile(delays, 99):.1f} ms, max {delays[-1]:.1f} ms (target p99 <= 50 ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=2000, help="backlog size")
    parser.add_argument("--rate", type=float, default=50.0, help="updates/s for latency")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency run length")
    parser.add_argument("--rate-scale", type=float, default=100.0, help="x Telegram limits")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the app's process")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO if arguments.verbose else logging.WARNING)
    if arguments.profile:
        import cProfile

        cProfile.run("asyncio.run(main(arguments))", arguments.profile)
    else:
        asyncio.run(main(arguments))
