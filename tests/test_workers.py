"""Several worker processes over one PostgreSQL database, as a region runs thousands of
institutions: real ``priemnaya run``-style processes (tests/worker_process.py), real aiogram
against the Telegram emulator in this process, one PostgreSQL schema per test.

What a citizen would notice: every question gets exactly one answer, also from the
institutions of a worker that was killed (another takes them over within the lease time);
an announcement fires once although every worker's scheduler fires it, and each of 5,000
subscribers gets exactly one copy while the workers share the sending.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bots.core.clock import SystemClock
from storage import Storage
from storage.announcements import SubscriptionRepo
from storage.leases import LeaseRepo
from tests.emulators.telegram import Chat, TelegramEmulator
from tests.pg import fresh_schema

pytestmark = pytest.mark.slow  # worker processes over PostgreSQL

ROOT = Path(__file__).resolve().parent.parent
#: short, so that a takeover is quick to watch (production default: 30 s), yet long enough
#: that a lease round (a few statements, each worker's round times out after one lease) fits
#: on a loaded 2-core machine: with 3 s, rounds timed out under load and leases thrashed
LEASE = 10.0
QUESTION = "Как записать ребёнка в первый класс?"
ANSWER = "Приём заявлений в 1 класс"
FAQ = f"""\
entries:
  - id: first-grade
    category: Приём в школу
    questions: ["{QUESTION}"]
    answer: |
      {ANSWER} идёт с 1 апреля по 30 июня.
  - id: meals
    category: Питание
    questions: ["Как оплатить питание в столовой?"]
    answer: |
      Питание оплачивается через лицевой счёт ученика.
"""


def token(n: int) -> str:
    return f"{770000 + n}:workers-test-token-{n:04d}"


def inst(n: int) -> str:
    return f"inst-{n:03d}"


def write_config(
    tmp_path: Path,
    emulator: TelegramEmulator,
    url: str,
    count: int,
    monkeypatch: pytest.MonkeyPatch,
    announcement: str = "",
) -> Path:
    """``count`` institutions, each with its own Telegram bot; tokens and the database URL
    come from the environment, which the worker processes inherit."""
    monkeypatch.setenv("WORKERS_DB", url)
    (tmp_path / "faq.yaml").write_text(FAQ, encoding="utf-8")
    lines = [
        'storage: {url: "${WORKERS_DB}"}',
        "timezone: Europe/Moscow",
        "institutions:",
    ]
    for n in range(count):
        monkeypatch.setenv(f"TG_{n}", token(n))
        lines += [
            f"  {inst(n)}:",
            f"    name: Школа № {n}",
            '    working_hours: {mon-sun: "00:00-23:59"}',
            "    faq: faq.yaml",
            f'    telegram: {{token: "${{TG_{n}}}", api_server: "{emulator.url}"}}',
        ]
        if n == 0 and announcement:
            lines.append(announcement)
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Workers:
    """Worker processes started from the test; each logs to its own file."""

    def __init__(self, config: Path, folder: Path) -> None:
        self.config = config
        self.folder = folder
        self.processes: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, worker_id: str) -> None:
        with (self.folder / f"{worker_id}.log").open("ab") as sink:
            self.processes[worker_id] = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.worker_process",
                str(self.config),
                worker_id,
                str(LEASE),
                "INFO",
                cwd=ROOT,
                env=dict(os.environ),
                stdout=sink,
                stderr=sink,
            )

    def log(self, worker_id: str) -> str:
        return (self.folder / f"{worker_id}.log").read_text(encoding="utf-8", errors="replace")

    def logs(self) -> str:
        return "\n".join(f"== {w}\n{self.log(w)[-2500:]}" for w in self.processes)

    async def reload_all(self, timeout: float = 120) -> None:
        """SIGHUP every worker and wait until each logged a successful reload."""
        before = {w: self.log(w).count("reloaded (SIGHUP)") for w in self.processes}
        for process in self.processes.values():
            process.send_signal(signal.SIGHUP)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(self.log(w).count("reloaded (SIGHUP)") <= n for w, n in before.items()):
            if loop.time() > deadline:
                raise AssertionError(f"the workers did not reload\n{self.logs()}")
            await asyncio.sleep(0.1)  # polling a log file: nothing to wait on

    async def kill(self, worker_id: str) -> None:
        process = self.processes[worker_id]
        process.send_signal(signal.SIGKILL)
        await process.wait()

    async def close(self) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


@asynccontextmanager
async def workers(config: Path, folder: Path, ids: list[str]) -> AsyncIterator[Workers]:
    running = Workers(config, folder)
    try:
        for worker_id in ids:
            await running.start(worker_id)
        yield running
    finally:
        await running.close()


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll a condition on the database (it signals nothing), with a timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await check():
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def last_renewal(storage: Storage, worker_id: str) -> datetime | None:
    """When ``worker_id`` last renewed the leases it still holds (database clock)."""
    expiry = await storage.db.fetchval(
        "SELECT max(expires_at) FROM leases WHERE worker_id=?", (worker_id,)
    )
    return None if expiry is None else expiry - timedelta(seconds=LEASE)


async def held(storage: Storage) -> dict[str, str]:
    return await LeaseRepo(storage.db, "observer", LEASE).holders()


async def quiet(storage: Storage) -> bool:
    """Nothing left to handle or send."""
    inbox = await storage.db.fetchval("SELECT COUNT(*) FROM inbox WHERE status='pending'")
    outbox = await storage.db.fetchval("SELECT COUNT(*) FROM outbox WHERE status='pending'")
    return int(inbox) == 0 and int(outbox) == 0


def answers(emulator: TelegramEmulator, n: int, chat: int) -> int:
    return sum(ANSWER in m.text for m in emulator.bot_messages(token(n), chat))


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emu:
        yield emu


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with fresh_schema() as url:
        yield url


async def test_200_institutions_on_3_workers_survive_a_sigkill(
    tmp_path: Path,
    emulator: TelegramEmulator,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    count = 200
    config = write_config(tmp_path, emulator, database, count, monkeypatch)
    storage = await Storage.open(database, SystemClock().now)  # migrates before the workers
    try:
        async with workers(config, tmp_path, ["w1", "w2", "w3"]) as running:

            async def balanced() -> bool:
                holders = await held(storage)
                shares = [list(holders.values()).count(w) for w in ("w1", "w2", "w3")]
                return len(holders) == count and max(shares) <= -(-count // 3)

            await until(balanced, 300, "200 institutions shared by 3 workers")

            # every citizen's question is answered once
            for n in range(count):
                emulator.user_says(token(n), 5001, QUESTION)
            await emulator.wait_until(
                lambda: all(answers(emulator, n, 5001) >= 1 for n in range(count)), timeout=400
            )
            await until(lambda: quiet(storage), 60, "the first round to settle")
            twice = {n: c for n in range(count) if (c := answers(emulator, n, 5001)) != 1}
            assert not twice, f"institutions whose citizen got other than one answer: {twice}"

            # one worker dies: its institutions' questions are answered by the others
            holders = await held(storage)
            victim = "w2"
            orphans = sorted(int(i[5:]) for i, w in holders.items() if w == victim)
            assert orphans
            renewed_before = await last_renewal(storage, victim)
            await running.kill(victim)
            killed_at = time.monotonic()
            # all of the victim's leases are renewed by one statement; if the survivors took
            # them all before this query, the renewal read before the kill was the last one
            renewed = await last_renewal(storage, victim) or renewed_before
            assert renewed is not None
            for n in range(count):
                emulator.user_says(token(n), 5002, QUESTION)

            async def taken_over() -> bool:
                holders = await held(storage)
                return all(holders.get(inst(n)) not in (None, victim) for n in orphans)

            await until(taken_over, 120, "the survivors to take the orphaned leases")
            taken = await storage.db.fetchval(
                "SELECT max(acquired_at) FROM leases WHERE institution = ANY(?::text[])",
                ([inst(n) for n in orphans],),
            )
            takeover = (taken - renewed).total_seconds()
            await emulator.wait_until(
                lambda: all(answers(emulator, n, 5002) >= 1 for n in orphans), timeout=120
            )
            answered = time.monotonic() - killed_at
            await emulator.wait_until(
                lambda: all(answers(emulator, n, 5002) >= 1 for n in range(count)), timeout=120
            )
            await until(lambda: quiet(storage), 60, "the second round to settle")
            holders = await held(storage)
            print(
                f"{len(orphans)} leases of the killed worker taken over {takeover:.1f} s after"
                f" its last renewal (lease {LEASE} s); its institutions answered"
                f" {answered:.1f} s after SIGKILL"
            )
            assert victim not in holders.values() and len(holders) == count
            assert all(answers(emulator, n, 5002) == 1 for n in range(count)), running.logs()
            assert all(answers(emulator, n, 5001) == 1 for n in range(count))
            # The lease (and the victim's heartbeat) ran out LEASE after its last renewal; a
            # survivor's next round starts within LEASE/3 and may itself take up to its
            # timeout, one LEASE, on a loaded machine: so under 2 1/3 leases, and never 3.
            # Both instants are the database's clock, so slow answering does not count here.
            assert takeover < 3 * LEASE, running.logs()
    finally:
        await storage.close()


async def test_an_announcement_fires_once_and_5000_subscribers_get_one_copy_each(
    tmp_path: Path,
    emulator: TelegramEmulator,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subscribers = 5000
    config = write_config(tmp_path, emulator, database, 6, monkeypatch)
    storage = await Storage.open(database, SystemClock().now)
    try:
        chats = range(100_000, 100_000 + subscribers)
        bot = emulator.bot(token(0))
        for chat in chats:
            bot.chats[chat] = Chat(id=chat, type="private")
        await SubscriptionRepo(storage.db).add_many(
            [(inst(0), "telegram", str(c), str(c)) for c in chats], datetime.now(UTC)
        )
        async with workers(config, tmp_path, ["w1", "w2", "w3"]) as running:

            async def all_up() -> bool:
                return set((await held(storage)).values()) == {"w1", "w2", "w3"}

            await until(all_up, 300, "3 workers holding leases")
            # only now that all three run is the announcement added (a hot reload on
            # SIGHUP), so a slow start on a loaded machine cannot make it fire early
            fire_at = datetime.now(UTC) + timedelta(seconds=8)
            announcement = (
                "    announcements:\n"
                "      - id: news\n"
                f"        at: {fire_at.isoformat()}\n"
                '        text: "Родительское собрание в четверг в 18:00"\n'
                "        quiet_hours: null"
            )
            write_config(tmp_path, emulator, database, 6, monkeypatch, announcement)
            await running.reload_all()

            def delivered() -> int:
                return sum(1 for c in chats if bot.chats[c].messages)

            await emulator.wait_until(lambda: delivered() == subscribers, timeout=180)
            await until(lambda: _broadcast_done(storage), 60, "the broadcast to be marked done")
            assert all(len(emulator.bot_messages(token(0), c)) == 1 for c in chats)
            assert await storage.db.fetchval("SELECT COUNT(*) FROM broadcasts") == 1
            shares = {
                r[0]: int(r[1])
                for r in await storage.db.fetchall(
                    "SELECT claimed_by, COUNT(*) FROM broadcast_deliveries"
                    " WHERE status='sent' GROUP BY claimed_by"
                )
            }
            print(f"deliveries sent per worker: {shares}")
            assert sum(shares.values()) == subscribers
            assert len(shares) >= 2, (shares, running.logs())
    finally:
        await storage.close()


async def _broadcast_done(storage: Storage) -> bool:
    return bool(await storage.db.fetchval("SELECT COUNT(*) FROM broadcasts WHERE status='done'"))


def test_a_worker_id_without_postgresql_is_refused_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.cli import main

    monkeypatch.setenv("TG_0", token(0))
    (tmp_path / "faq.yaml").write_text(FAQ, encoding="utf-8")
    (tmp_path / "config.yaml").write_text(
        "institutions:\n  inst-000:\n    name: Школа\n    faq: faq.yaml\n"
        '    telegram: {token: "${TG_0}"}\n',
        encoding="utf-8",
    )
    code = main(["run", "-c", str(tmp_path / "config.yaml"), "--worker-id", "w1"])
    assert code == 1
    assert "storage.url" in capsys.readouterr().out
