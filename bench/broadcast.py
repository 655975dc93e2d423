"""Broadcast throughput: one announcement to N Telegram subscribers through the real adapter
(aiogram) against the Telegram Bot API emulator, which enforces the overall limit by
answering 429 over it. Telegram's 30 messages/s is scaled up (default 1,000/s) so the run
takes seconds; the bot's limiter is set to the same rate.

Targets: achieved rate >= 90 % of the limit, zero 429s, every recipient exactly one copy.

The emulator runs in a child process (this file with ``--serve``), as Telegram is another
machine: in one process its HTTP server would share a CPU with the bot and measure itself.

    .venv/bin/python -m bench.broadcast            # 10,000 recipients at 1,000/s
    .venv/bin/python -m bench.broadcast -n 2000 --rate 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bots.core.clock import SystemClock
from bots.core.payloads import MemoryPayloadStore
from bots.core.platform import Platform
from bots.telegram.pacing import TelegramRates
from bots.telegram.platform import TelegramPlatform, make_bot
from handlers.announcements.broadcast import Broadcaster
from storage import Storage
from storage.announcements import Audience, BroadcastRepo, SubscriptionRepo
from tests.emulators.telegram import Chat, RateRules, TelegramEmulator

TOKEN = "730003:bench-token-abcdef"
INSTITUTION = "bench"
TEXT = "Уважаемые родители! Завтра, 2 сентября, занятия начинаются в 9:00. <b>Сменная обувь</b> обязательна."


class Host:
    """The little of the app the broadcaster needs."""

    def __init__(self, storage: Storage, platform: Platform) -> None:
        self.storage = storage
        self.clock = SystemClock()
        self.institutions: dict[str, Any] = {}
        self.groups: dict[str, Any] = {"telegram": None}
        self.sender = None
        self._platform = platform

    def platform(self, institution: str, kind: str) -> Platform | None:
        return self._platform if (institution, kind) == (INSTITUTION, "telegram") else None


async def serve(recipients: int, rate: float, burst: float) -> None:
    """The child: the emulator, its address on stdout, its figures when stdin says so."""
    emulator = TelegramEmulator(rate_rules=RateRules(overall=(rate, burst)))
    await emulator.start()
    bot_state = emulator.bot(TOKEN)
    for chat_id in chat_ids(recipients):
        bot_state.chats[chat_id] = Chat(id=chat_id, type="private")
    print(emulator.url, flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    copies = [len(emulator.bot_messages(TOKEN, c)) for c in chat_ids(recipients)]
    figures = {"rate_limited": emulator.rate_limited, "copies": sorted(set(copies))}
    print(json.dumps(figures), flush=True)
    await emulator.stop()


def chat_ids(recipients: int) -> list[int]:
    return [10_000_000 + i for i in range(recipients)]


async def run(recipients: int, rate: float, lanes: int) -> int:
    burst = max(1.0, rate / 10)  # the limiter lets 0.1 s worth through at once
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.broadcast",
        "--serve",
        "-n",
        str(recipients),
        "--rate",
        str(rate),
        "--burst",
        str(burst * 2),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdin is not None
    url = (await child.stdout.readline()).decode().strip()
    chats = chat_ids(recipients)
    platform = TelegramPlatform(
        INSTITUTION,
        make_bot(TOKEN, url),
        payloads=MemoryPayloadStore(),
        rates=TelegramRates(overall=(burst, burst / rate)),
    )
    with tempfile.TemporaryDirectory() as tmp:
        storage = await Storage.open(Path(tmp) / "bench.sqlite3", lambda: datetime.now(UTC))
        now = datetime.now(UTC)
        await SubscriptionRepo(storage.db).add_many(
            [(INSTITUTION, "telegram", str(c), str(c)) for c in chats], now
        )
        broadcaster = Broadcaster(Host(storage, platform), lanes=lanes)
        repo = BroadcastRepo(storage.db)
        broadcast_id = await repo.create(
            institution=INSTITUTION,
            announcement_id="bench",
            scheduled_for=now,
            send_after=now,
            text=TEXT,
            audience=Audience(subscribers=True),
            origin="bench",
            now=now,
        )
        assert broadcast_id is not None
        started = time.perf_counter()
        broadcaster.start()
        while True:
            b = await repo.get(broadcast_id)
            assert b is not None
            if b.status == "done":
                break
            await broadcaster.wait_progress(1.0)
        elapsed = time.perf_counter() - started
        await broadcaster.stop()
        counts = await repo.counts(broadcast_id)
        await storage.close()
    await platform.stop()
    child.stdin.write(b"figures\n")
    await child.stdin.drain()
    figures = json.loads(await child.stdout.readline())
    await child.wait()

    achieved = counts.sent / elapsed
    exactly_once = figures["copies"] == [1]
    print(f"recipients         {recipients}")
    print(f"limit              {rate:.0f} messages/s (limiter burst {burst:.0f})")
    print(f"lanes              {lanes}")
    print(f"elapsed            {elapsed:.2f} s (rows written, sent, recorded)")
    print(
        f"achieved rate      {achieved:.0f} messages/s = {100 * achieved / rate:.1f} % of the limit"
    )
    print(
        f"delivered          {counts.sent} (unreachable {counts.unreachable}, failed {counts.failed})"
    )
    print(f"429 answers        {figures['rate_limited']}")
    print(f"exactly one copy   {exactly_once}")
    ok = achieved >= 0.9 * rate and figures["rate_limited"] == 0 and exactly_once
    print("targets            " + ("met" if ok else "NOT met"))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--recipients", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="messages per second")
    parser.add_argument("--lanes", type=int, default=32, help="sends in flight")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--burst", type=float, default=200.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.serve:
        asyncio.run(serve(args.recipients, args.rate, args.burst))
        return 0
    return asyncio.run(run(args.recipients, args.rate, args.lanes))


if __name__ == "__main__":
    sys.exit(main())
