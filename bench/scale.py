"""Benchmark: a region in one process. N institutions, each with its own Telegram bot (or,
with ``--shared``, all behind one bot), run by ``priemnaya run`` against a lean Bot API
emulator (bench/scale_emulator.py) that wakes only the bot with a new update; side by side,
in the same run against the same emulator, a bare aiogram echo bot serving as many bots in
the same mode (bench/scale_echo.py) as the yardstick.

Generated in a temporary folder: a config of N institutions sharing one FAQ file
(examples/faq/school.yaml), SQLite beside it; the FAQ's vectors are cached across runs, as
a restarted bot has them (``--cold-vectors``: a first start, embedding in the background).
The emulator and the load run in this process, the app (bench/scale_app.py: ``priemnaya
run`` with the pace scaled) and the echo bot in processes of their own, so that CPU time
is each one's own.

Printed:
- start: seconds from launching the process until every bot (every institution, with
  ``--shared``) has answered the /start queued for it before the launch; then where it
  went: until the bots began receiving (getUpdates or setWebhook: imports, config, storage,
  set-up calls), the first and the last answer, and how many messages each /start brought;
- with ``--shared``, the bound that one bot's sending pace sets: Telegram allows a bot about
  30 messages a second in all, and the bench runs the shared bot's pace ``--rate-scale``
  times faster (default rate/25, so that the steady load fits), so its start is read
  against that bound, here and on Telegram;
- RSS after start and at the end (peak too), and memory per institution: the RSS over
  that of the same app with one institution, divided by N - 1;
- CPU while idle (long polls only) and, at a steady ``--rate`` of questions per second
  across all bots (from citizens greeted at start, so one answer per question), p50/p99
  answer latency (question queued in the emulator -> the answer's sendMessage arriving)
  and CPU time per update, with the ratio of the app's to the echo bot's;
- the load average before and after (the machine is shared: read figures with it).

The FAQ's vectors are kept in ``--vectors`` between runs: built in the background on a
first run, that one-off work would otherwise fall into the idle and steady windows of every
run and count as CPU per update.

Prints figures, asserts nothing. ``make bench`` runs it small; the region is
``.venv/bin/python bench/scale.py --n 1000 --mode webhook --seconds 30``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import QUESTIONS  # noqa: E402
from bench.scale_emulator import FastTelegram  # noqa: E402
from bots.telegram import TelegramRates  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
VECTORS_ENV = "PRIEMNAYA_VECTORS_DIR"  # handlers/faq/semantic/index.py
PAGE = os.sysconf("SC_PAGE_SIZE")


def app_token(n: int, shared: bool) -> str:
    return "7000000:scale-app-token-shared" if shared else f"{7_000_000 + n}:scale-app-{n:06d}"


def echo_token(n: int) -> str:
    return f"{8_000_000 + n}:scale-echo-{n:06d}"


def institution_id(n: int) -> str:
    return f"inst-{n:04d}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(
    folder: Path,
    n: int,
    api: str,
    mode: str,
    shared: bool,
    port: int,
    sqlite: str = "thread",
    cells: int = 1,
    matching: str = "{}",
) -> Path:
    shutil.copy(ROOT / "examples/faq/school.yaml", folder / "faq.yaml")
    storage = f"storage: {{path: scale.sqlite3, sqlite: {sqlite}, cells: {cells}}}"
    lines = [storage, "timezone: Europe/Moscow"]
    if mode == "webhook":
        lines.append(
            f'server: {{host: 127.0.0.1, port: {port}, public_url: "http://127.0.0.1:{port}"}}'
        )
    lines.append("institutions:")
    for i in range(n):
        lines += [
            f"  {institution_id(i)}:",
            f"    name: Школа № {i + 1}",
            "    address: г. Курск, ул. Примерная, 1",
            '    working_hours: {mon-sun: "00:00-23:59"}',
            "    faq: faq.yaml",
            f"    matching: {matching}",
            f'    telegram: {{token: "{app_token(i, shared)}", api_server: "{api}", mode: {mode}}}',
        ]
    config = folder / "config.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


# -- measuring a process ---------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def read(path: Path) -> str:
    return path.read_text(errors="replace")


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


# -- one side of the comparison: the app or the echo bot ---------------------------------------


@dataclass
class Side:
    name: str
    #: (token, chat id) of every citizen greeted at start, per bot (or per institution)
    chats: list[list[tuple[str, int]]]
    #: what each warm chat says first (/start, or /start <id> for a shared bot)
    hello: list[list[str]]
    process: subprocess.Popen[bytes] | None = None
    launched: float = 0.0
    answered_at: float = 0.0
    first_answer_at: float = 0.0
    #: messages sent while starting (the greetings), counted when the side fell quiet
    start_messages: int = 0
    first_answers: set[tuple[str, int]] = field(default_factory=set)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    messages: int = 0
    last_message: float = 0.0
    asked: dict[tuple[str, int], deque[float]] = field(default_factory=lambda: defaultdict(deque))
    latencies: list[float] = field(default_factory=list)
    outstanding: int = 0
    drained: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def all_chats(self) -> list[tuple[str, int]]:
        return [c for group in self.chats for c in group]

    def message(self, token: str, chat: int, at: float) -> None:
        self.messages += 1
        self.last_message = at
        key = (token, chat)
        if not self.started.is_set():
            if not self.first_answers:
                self.first_answer_at = at
            self.first_answers.add(key)
            if len(self.first_answers) == len(self.all_chats()):
                self.answered_at = at
                self.started.set()
            return
        waiting = self.asked.get(key)
        if waiting:
            self.latencies.append((at - waiting.popleft()) * 1000)
            self.outstanding -= 1
            if self.outstanding == 0:
                self.drained.set()


async def quiet(sides: list[Side], seconds: float = 1.0) -> None:
    """Until no side got a message for ``seconds`` (the greetings are all out)."""
    while True:
        latest = max(s.last_message for s in sides)
        if time.perf_counter() - latest >= seconds:
            return
        await asyncio.sleep(0.2)  # a poll of counters; nothing waits on it to be correct


def launch(
    command: list[str], log: Path, env: dict[str, str] | None = None, nofile: int = 0
) -> subprocess.Popen[bytes]:
    """Start a process logging into ``log``; ``nofile``: its open-file limit (soft and
    hard), as a service manager would set it."""

    def limit() -> None:
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=limit,
        )


async def stop(side: Side) -> None:
    if side.process is None or side.process.poll() is not None:
        return
    side.process.send_signal(signal.SIGTERM)
    try:
        await asyncio.to_thread(side.process.wait, 30)
    except subprocess.TimeoutExpired:
        side.process.kill()


async def wait_started(side: Side, log: Path, timeout: float) -> None:
    async def died() -> None:
        assert side.process is not None
        await asyncio.to_thread(side.process.wait)

    done, _ = await asyncio.wait(
        [asyncio.create_task(side.started.wait()), asyncio.create_task(died())],
        timeout=timeout,
        return_when=asyncio.FIRST_COMPLETED,
    )
    if not side.started.is_set():
        tail = read(log)[-3000:]
        raise SystemExit(
            f"{side.name}: {len(side.first_answers)} of {len(side.all_chats())} chats answered"
            f" {'when it exited' if done else f'after {timeout:.0f} s'}; its log ends:\n{tail}"
        )


# -- the run ----------------------------------------------------------------------------------


async def steady(emu: FastTelegram, sides: list[Side], rate: float, seconds: float) -> None:
    """Open loop: the k-th question arrives at start + k / rate on each side, to the bots in
    turn, from their greeted citizens in turn, answered or not."""
    total = int(rate * seconds)
    turns = [
        itertools.cycle(
            [
                group[k % len(group)]
                for k in range(max(map(len, side.chats)))
                for group in side.chats
            ]
        )
        for side in sides
    ]
    for side in sides:
        side.outstanding = total
        side.drained.clear()
    start = time.perf_counter()
    for k in range(total):
        delay = start + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.perf_counter()
        for side, turn in zip(sides, turns, strict=True):
            token, chat = next(turn)
            side.asked[(token, chat)].append(now)
            emu.user_says(token, chat, QUESTIONS[k % len(QUESTIONS)])


async def run(args: argparse.Namespace, tmp: Path) -> None:
    n, shared = args.n, args.shared
    # citizens greeted at start: enough per bot that none asks faster than 1 question/s
    per_bot = 1 if shared else max(1, math.ceil(2 * args.rate / n))
    app_chats = [
        [(app_token(i, shared), 100_000 * (i + 1) + c) for c in range(per_bot)] for i in range(n)
    ]
    hello = [[f"/start {institution_id(i)}" if shared else "/start"] * per_bot for i in range(n)]
    app = Side("app", app_chats, hello)
    sides = [app]
    echo_bots = 1 if shared else n
    if not args.no_echo:
        echo_per_bot = math.ceil(n * per_bot / echo_bots)
        chats = [
            [(echo_token(i), 100_000 * (i + 1) + c) for c in range(echo_per_bot)]
            for i in range(echo_bots)
        ]
        sides.append(Side("echo", chats, [["hello"] * echo_per_bot for _ in range(echo_bots)]))
    by_token: dict[str, Side] = {}
    for side in sides:
        for token, _ in side.all_chats():
            by_token[token] = side

    def on_message(token: str, chat: int, text: str, at: float) -> None:
        side = by_token.get(token)
        if side is not None:
            side.message(token, chat, at)

    emu = FastTelegram(on_message)
    api = await emu.start()
    scale = args.rate_scale or (max(1.0, args.rate / 25) if shared else 1.0)
    config = write_config(
        tmp, n, api, args.mode, shared, free_port(), args.sqlite, args.cells, args.matching
    )
    print(
        f"scale: N={n} institutions, {args.mode}, "
        f"{'one shared bot' if shared else 'a bot each'}, {args.rate:g} questions/s for "
        f"{args.seconds:g} s{f', pace x{scale:g}' if scale != 1 else ''}, FAQ vectors "
        f"{'cold' if args.cold_vectors else 'cached'}; load average {load_average()}",
        flush=True,
    )
    for side in sides:
        for group, words in zip(side.chats, side.hello, strict=True):
            for (token, chat), text in zip(group, words, strict=True):
                emu.user_says(token, chat, text)
    command = [sys.executable, str(ROOT / "bench/scale_app.py"), str(config), str(scale)]
    if args.profile:
        command.append(args.profile)
    app.launched = time.perf_counter()
    app.process = launch(command, tmp / "app.log", app_env(args, tmp), args.app_nofile)
    if len(sides) > 1:
        echo = sides[1]
        tokens = tmp / "echo-tokens.txt"
        write(tokens, "\n".join(echo_token(i) for i in range(echo_bots)))
        echo.launched = time.perf_counter()
        echo.process = launch(
            [
                sys.executable,
                str(ROOT / "bench/scale_echo.py"),
                api,
                str(tokens),
                args.mode,
                str(free_port()),
            ],
            tmp / "echo.log",
        )
    try:
        for side in sides:
            await wait_started(side, tmp / f"{side.name}.log", args.start_timeout)
        await quiet(sides)
        for side in sides:
            side.start_messages = side.messages
        print("started; idle, then the steady load", flush=True)
        rss_start = {s.name: rss_mb(s.pid) for s in sides}
        files = {s.name: open_files(s.pid) for s in sides}
        cpu0 = {s.name: cpu_seconds(s.pid) for s in sides}
        idle_from = time.perf_counter()
        await asyncio.sleep(args.idle)  # the idle window being measured
        idle = time.perf_counter() - idle_from
        cpu1 = {s.name: cpu_seconds(s.pid) for s in sides}
        self0 = resource.getrusage(resource.RUSAGE_SELF)
        began = time.perf_counter()
        await steady(emu, sides, args.rate, args.seconds)
        for side in sides:
            await asyncio.wait_for(side.drained.wait(), 300)
        took = time.perf_counter() - began
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu2 = {s.name: cpu_seconds(s.pid) for s in sides}
        rss_end = {s.name: (rss_mb(s.pid), rss_mb(s.pid, "VmHWM")) for s in sides}
        load_after = load_average()
    finally:
        await asyncio.gather(*(stop(s) for s in sides))
    baseline = None
    if not args.no_baseline and n > 1:
        baseline = await one_institution_rss(args, tmp, emu)
    await emu.stop()

    updates = int(args.rate * args.seconds)
    for line in read(tmp / "app.log").splitlines():
        if "open-file" in line or "открытых файлов" in line or "heap frozen" in line:
            print("app log:", line)
    print(
        "start until every bot answered: "
        + ", ".join(f"{s.name} {s.answered_at - s.launched:.1f} s" for s in sides)
    )
    for side in sides:
        print(f"  {side.name}: {timeline(side, emu.receiving)}")
    if shared:
        print(pace_bound(app, scale, args.rate))
    line = f"RSS after start: app {rss_start['app']:.0f} MB"
    if baseline is not None:
        per = (rss_start["app"] - baseline) / (n - 1)
        line += f" ({per * 1024:.0f} KB per institution over {baseline:.0f} MB with one)"
    line += "".join(f", {s.name} {rss_start[s.name]:.0f} MB" for s in sides[1:])
    print(line + "; open files " + ", ".join(f"{k} {v}" for k, v in files.items()))
    print(
        "RSS at the end (peak): "
        + ", ".join(f"{k} {v[0]:.0f} MB ({v[1]:.0f})" for k, v in rss_end.items())
    )
    print(
        f"idle CPU over {idle:.0f} s: "
        + ", ".join(f"{k} {100 * (cpu1[k] - cpu0[k]) / idle:.1f}%" for k in cpu0)
    )
    per_update = {k: 1000 * (cpu2[k] - cpu1[k]) / updates for k in cpu1}
    for side in sides:
        lat = side.latencies
        print(
            f"{side.name}: {len(lat)} answers at {args.rate:g}/s: p50 {statistics.median(lat):.0f}"
            f" ms, p99 {percentile(lat, 99):.0f} ms, max {max(lat):.0f} ms; CPU per update"
            f" {per_update[side.name]:.2f} ms ({100 * (cpu2[side.name] - cpu1[side.name]) / took:.0f}%"
            f" of a core over {took:.0f} s)"
        )
    if "echo" in per_update:
        print(f"CPU per update, app / echo: {per_update['app'] / per_update['echo']:.2f}x")
    emulator = (self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime) / took
    print(f"emulator and load: {100 * emulator:.0f}% of a core; load average {load_after}")


def app_env(args: argparse.Namespace, tmp: Path) -> dict[str, str]:
    """The app's environment: the FAQ's vectors cached across runs, as a restarted bot
    has them (an empty cache is embedded in a background thread that takes a core for
    half a minute and more, whatever N is); ``--cold-vectors`` measures that first start."""
    env = {"PRIEMNAYA_GC_FREEZE": "0"} if args.no_freeze else {}
    if args.cold_vectors:
        env[VECTORS_ENV] = str(tmp / "vectors")
    elif VECTORS_ENV not in os.environ:
        env[VECTORS_ENV] = args.vectors
    return env


def timeline(side: Side, receiving: dict[str, float]) -> str:
    """Where a side's start went: launching until its bots polled (or set their webhook),
    then until the first and the last greeted chat got an answer."""
    tokens = {token for token, _ in side.all_chats()}
    began = [at - side.launched for token, at in receiving.items() if token in tokens]
    chats = len(side.all_chats())
    return (
        f"receiving {min(began):.1f}-{max(began):.1f} s after launch, first answer at"
        f" {side.first_answer_at - side.launched:.1f} s, all at"
        f" {side.answered_at - side.launched:.1f} s; {side.start_messages / chats:.1f}"
        f" messages per greeted chat"
    )


def pace_bound(side: Side, scale: float, rate: float) -> str:
    """What one bot's sending pace alone costs: Telegram lets a bot send about 30 messages
    a second in all (bots/telegram/pacing.py; a burst of 30, then one every 1/30 s), so a
    thousand greetings through one bot take at least half a minute in reality, whatever
    the app does, and a steady load over 30 answers a second cannot be served by one bot
    at all. The bench runs the shared bot's pace ``scale`` times faster; these bounds say
    what that pace allows, here and on Telegram."""
    overall, period = TelegramRates().overall
    per_second = overall / period
    chats = len(side.all_chats())
    first = max(0.0, chats - overall) / per_second
    every = max(0.0, side.start_messages - overall) / per_second
    line = (
        f"one bot's pace: Telegram's {per_second:g} messages/s, x{scale:g} here ="
        f" {per_second * scale:g}/s; {chats} first answers need >= {first / scale:.1f}"
        f" s after receiving here ({first:.1f} s on Telegram), all"
        f" {side.start_messages} start messages >= {every / scale:.1f} s ({every:.1f} s)"
    )
    if rate > per_second:
        line += f"; {rate:g} answers/s is over one bot's {per_second:g}/s on Telegram"
    return line


async def one_institution_rss(args: argparse.Namespace, tmp: Path, emu: FastTelegram) -> float:
    """The same app with one institution, after it answered: what N institutions add to."""
    folder = tmp / "one"
    os.makedirs(folder)
    config = write_config(folder, 1, emu.url, args.mode, False, free_port())
    token = app_token(0, False)
    side = Side("one", [[(token, 42)]], [["/start"]])
    chat_answered = side.message

    def on_message(tok: str, chat: int, text: str, at: float) -> None:
        if tok == token:
            chat_answered(tok, chat, at)

    emu.on_message = on_message
    emu.user_says(token, 42, "/start")
    side.process = launch(
        [sys.executable, str(ROOT / "bench/scale_app.py"), str(config), "1"],
        folder / "one.log",
        app_env(args, tmp),
    )
    try:
        await wait_started(side, folder / "one.log", args.start_timeout)
        await quiet([side])
        return rss_mb(side.pid)
    finally:
        await stop(side)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help="institutions (default 20)")
    parser.add_argument("--rate", type=float, default=50.0, help="questions/s in all")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the steady load")
    parser.add_argument("--mode", choices=("polling", "webhook"), default="polling")
    parser.add_argument("--shared", action="store_true", help="all institutions on one bot")
    parser.add_argument(
        "--sqlite",
        choices=("thread", "loop"),
        default="thread",
        help="where the app's SQLite statements run (storage.sqlite; default thread)",
    )
    parser.add_argument(
        "--cells", type=int, default=1, help="storage.cells: SQLite files, one app each"
    )
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of idle measured")
    parser.add_argument(
        "--rate-scale",
        type=float,
        default=0.0,
        help="x Telegram's pace in the app (default 1; with --shared rate/25)",
    )
    parser.add_argument("--no-echo", action="store_true", help="no aiogram echo bot beside")
    parser.add_argument("--no-baseline", action="store_true", help="no one-institution run")
    parser.add_argument("--start-timeout", type=float, default=300.0)
    parser.add_argument("--profile", metavar="FILE", help="cProfile the app into FILE")
    parser.add_argument("--no-freeze", action="store_true", help="no gc.freeze() in the app")
    parser.add_argument(
        "--cold-vectors", action="store_true", help="the FAQ's vectors not cached (a first start)"
    )
    parser.add_argument(
        "--app-nofile", type=int, default=0, help="the app's open-file limit (default: ours)"
    )
    parser.add_argument(
        "--vectors",
        default=str(Path(tempfile.gettempdir()) / "priemnaya-scale-vectors"),
        help="the FAQ vectors' cache, kept between runs (default: %(default)s)",
    )
    parser.add_argument(
        "--matching",
        default="{}",
        help="every institution's matching: block, e.g. '{encoder_wait: 1000}' (default: the"
        " product's)",
    )
    parser.add_argument("--keep", metavar="DIR", help="work in DIR (kept: config, logs, db)")
    args = parser.parse_args()
    args.vectors = str(Path(args.vectors).resolve())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the emulator's sockets
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=False)
        asyncio.run(run(args, Path(args.keep).resolve()))
        return
    with tempfile.TemporaryDirectory(prefix="priemnaya-scale-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
