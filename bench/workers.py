"""Benchmark: how throughput grows with worker processes sharing one PostgreSQL database.

For 1, 2 and 3 workers (tests/worker_process.py, i.e. ``priemnaya run --worker-id``): the
institutions are shared out by leases, then a backlog of questions from distinct citizens
of every institution is put into the Telegram emulator at once; updates/s = questions /
seconds until the last answer arrived. Printed as absolute figures and as ratios to one
worker: on a machine with few cores the workers, the emulator and PostgreSQL share them,
so the ratio says more than the absolute figure. Telegram's pace is scaled up (see
tests/worker_process.py) so that the limiter is not what is measured. Prints figures,
asserts nothing. Run: `.venv/bin/python bench/workers.py` (``--help`` for options);
needs PostgreSQL (PRIEMNAYA_TEST_POSTGRES, default postgresql://root@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bots.core.clock import SystemClock  # noqa: E402
from storage import Storage  # noqa: E402
from storage.leases import LeaseRepo  # noqa: E402
from tests.emulators.telegram import Message, TelegramEmulator  # noqa: E402
from tests.pg import fresh_schema  # noqa: E402

QUESTION = "Как записать ребёнка в первый класс?"
FAQ = """\
entries:
  - id: first-grade
    category: Приём в школу
    questions: ["Как записать ребёнка в первый класс?"]
    answer: |
      Приём заявлений в 1 класс идёт с 1 апреля по 30 июня.
  - id: meals
    category: Питание
    questions: ["Как оплатить питание в столовой?"]
    answer: |
      Питание оплачивается через лицевой счёт ученика.
"""
LEASE = 5.0


def token(n: int) -> str:
    return f"{780000 + n}:bench-workers-token-{n:04d}"


def write_config(folder: Path, api: str, url: str, institutions: int) -> Path:
    os.environ["BENCH_WORKERS_DB"] = url
    (folder / "faq.yaml").write_text(FAQ, encoding="utf-8")
    lines = ['storage: {url: "${BENCH_WORKERS_DB}"}', "timezone: Europe/Moscow", "institutions:"]
    for n in range(institutions):
        os.environ[f"BENCH_TG_{n}"] = token(n)
        lines += [
            f"  inst-{n:03d}:",
            f"    name: Школа № {n}",
            '    working_hours: {mon-sun: "00:00-23:59"}',
            "    faq: faq.yaml",
            f'    telegram: {{token: "${{BENCH_TG_{n}}}", api_server: "{api}"}}',
        ]
    config = folder / "config.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes so far (Linux /proc), 0 where unreadable."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def postgres_pids() -> list[int]:
    """A local server's processes (its CPU counts too when it shares the machine)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def until(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("workers did not share the institutions in time")
        await asyncio.sleep(0.1)


async def one_run(workers: int, institutions: int, per_institution: int, commit: str) -> float:
    """Updates/s with ``workers`` processes; ``commit``: PostgreSQL's synchronous_commit."""
    async with fresh_schema() as url, TelegramEmulator() as emulator:
        url += f"&synchronous_commit={commit}"
        with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
            folder = Path(tmp)
            config = write_config(folder, emulator.url, url, institutions)
            storage = await Storage.open(url, SystemClock().now)
            processes = []
            try:
                for w in range(workers):
                    sink = (folder / f"w{w}.log").open("ab")
                    processes.append(
                        await asyncio.create_subprocess_exec(
                            sys.executable,
                            "-m",
                            "tests.worker_process",
                            str(config),
                            f"w{w}",
                            str(LEASE),
                            "WARNING",
                            cwd=ROOT,
                            stdout=sink,
                            stderr=sink,
                        )
                    )
                repo = LeaseRepo(storage.db, "bench", LEASE)
                fair = -(-institutions // workers)

                async def balanced() -> bool:
                    holders = await repo.holders()
                    counts = [list(holders.values()).count(f"w{w}") for w in range(workers)]
                    return len(holders) == institutions and max(counts) <= fair

                await until(balanced, 120)
                expected = institutions * per_institution
                answered = 0
                done = asyncio.Event()

                def arrived(message: Message) -> None:
                    nonlocal answered
                    answered += 1
                    if answered >= expected:
                        done.set()

                emulator.message_listeners.append(arrived)
                pids = [p.pid for p in processes]
                cpu_workers, cpu_here = cpu_seconds(pids), time.process_time()
                cpu_pg = cpu_seconds(postgres_pids())
                started = time.perf_counter()
                for n in range(institutions):
                    for c in range(per_institution):
                        emulator.user_says(token(n), 10_000 + c, QUESTION)
                await asyncio.wait_for(done.wait(), 300)
                elapsed = time.perf_counter() - started
                per_k = 1000 / expected
                print(
                    f"  {workers} worker(s): CPU s per 1000 updates: workers"
                    f" {(cpu_seconds(pids) - cpu_workers) * per_k:.2f}, emulator"
                    f" {(time.process_time() - cpu_here) * per_k:.2f}, PostgreSQL"
                    f" {(cpu_seconds(postgres_pids()) - cpu_pg) * per_k:.2f};"
                    f" wall {elapsed * per_k:.2f}"
                )
                return expected / elapsed
            finally:
                for process in processes:
                    if process.returncode is None:
                        process.send_signal(signal.SIGTERM)
                for process in processes:
                    try:
                        await asyncio.wait_for(process.wait(), 20)
                    except TimeoutError:
                        process.kill()
                await storage.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--institutions", type=int, default=30)
    parser.add_argument("--per-institution", type=int, default=40, help="questions each")
    parser.add_argument("--workers", default="1,2,3", help="comma-separated worker counts")
    parser.add_argument(
        "--commit",
        default="on,off",
        help="PostgreSQL synchronous_commit values to run with (on: every commit waits for"
        " its WAL flush, the default and what the product assumes; off: what the disk's"
        " flush rate costs)",
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",")]
    print(
        f"{args.institutions} institutions x {args.per_institution} questions, "
        f"{os.cpu_count()} CPU(s); Telegram emulator in this process, PostgreSQL local"
    )
    for commit in args.commit.split(","):
        print(f"synchronous_commit={commit}")
        base: float | None = None
        for workers in counts:
            rate = await one_run(workers, args.institutions, args.per_institution, commit)
            base = base or rate
            print(f"  {workers} worker(s): {rate:7.1f} updates/s   x{rate / base:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
