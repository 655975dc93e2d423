"""``priemnaya shell``: talk to an institution's bot in the terminal.

You are a citizen; ``/staff`` makes you the institution's first staff member writing in
the staff chat, and ``/staff`` again takes you back. A number presses that button of the
bot's last message. When stdin is not a terminal, every line is one message; every reply is
printed and the command exits 0 at the end of input (scripts and tests rely on this).

The shell is a sandbox: it runs on a temporary database of its own, so a test ticket never
shows up in the real staff chat's /tickets or in reports, and nothing it does reaches a
messenger (the staff chat is played locally too). ``--real`` opts into the configured
database, e.g. to look at real tickets as a staff member.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import threading
from types import FrameType

from bots.core.model import ChatKind, User
from bots.local import LocalMessage, LocalPlatform
from handlers.config import LoadedConfig
from runtime import cells
from runtime.app import App
from runtime.cli.common import (
    add_config_argument,
    database_or_report,
    load_institution,
)
from runtime.region import Region

CITIZEN_CHAT = "100"
LOCAL_STAFF_CHAT = "staff"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("shell", help="chat with a bot in the terminal (local platform)")
    add_config_argument(parser)
    parser.add_argument("--institution", "-i", help="institution id (default: the first)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--real",
        action="store_true",
        help="use the configured database (real tickets, counted in reports); by default the "
        "shell is a sandbox with a temporary database of its own",
    )
    where.add_argument("--database", help="an SQLite file to use instead of a temporary one")
    parser.set_defaults(func=run_shell)


def run_shell(args: argparse.Namespace) -> int:
    found = load_institution(args)
    if isinstance(found, int):
        return found
    loaded, inst_id = found
    interactive = sys.stdin.isatty()
    database = args.database
    if args.real:
        database = database_or_report(loaded)
        if database is None:
            return 1
    with tempfile.TemporaryDirectory(prefix="priemnaya-shell-") as scratch:
        if database is None:
            database = os.path.join(scratch, "shell.sqlite3")
        app = _local(loaded, database, real=args.real)
        sandbox = not args.real and args.database is None
        shell = Shell(app, inst_id, interactive, sandbox=sandbox)
        return asyncio.run(_run(shell, scratch if interactive else None))


async def _run(shell: Shell, scratch: str | None) -> int:
    if scratch is not None:
        _leave_soon_after_ctrl_c(scratch)
    return await shell.run()


#: seconds the shell may take to stop its app after Ctrl+C before it leaves anyway
FORCED_EXIT_AFTER = 5.0


def _leave_soon_after_ctrl_c(scratch: str) -> None:
    """Ctrl+C stops the app as usual, but the shell leaves within
    :data:`FORCED_EXIT_AFTER` seconds even if something in that stop hangs (a CI run saw the
    shell still running a minute after Ctrl+C, once in a few runs beside a CPU hog, and the
    cause was not found). An abrupt exit loses nothing the database has not got: SQLite
    survives it as it survives kill -9. The sandbox's scratch folder (the chat's personal
    data) is removed first."""

    def force() -> None:
        shutil.rmtree(scratch, ignore_errors=True)
        sys.stderr.write("\n")
        sys.stderr.flush()
        os._exit(130)

    # asyncio.run's own handler (installed before this runs) cancels the shell's task, so
    # the app stops as usual; this one only adds the deadline
    graceful = signal.getsignal(signal.SIGINT)

    def interrupted(signum: int, frame: FrameType | None) -> None:
        timer = threading.Timer(FORCED_EXIT_AFTER, force)
        timer.daemon = True
        timer.start()
        signal.signal(signal.SIGINT, graceful)
        if callable(graceful):
            graceful(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupted)


def _local(loaded: LoadedConfig, database: str, *, real: bool) -> App | Region:
    """What the shell runs: on the real database with storage cells, every cell's app as
    ``run`` has them (the institution's data is in its cell's file); otherwise one app on
    ``database`` (a sandbox file holds every institution as one cell)."""
    if real and cells.cell_count(loaded) > 1:
        return Region(loaded, local=True)
    return App(loaded, local=True, database=database)


class Shell:
    def __init__(
        self, app: App | Region, institution: str, interactive: bool, *, sandbox: bool = True
    ) -> None:
        self.app = app
        #: the app that serves the institution (its cell's, with storage cells)
        self.cell = app.app_of[institution] if isinstance(app, Region) else app
        self.institution = institution
        self.interactive = interactive
        self.sandbox = sandbox
        self._lines = TerminalLines() if interactive else None
        self.as_staff = False
        self.shown: dict[str, int] = {}
        self.edits: dict[str, int] = {}
        self.last_bot_message: dict[str, LocalMessage] = {}
        self.notices_shown = 0

    async def run(self) -> int:
        await self.app.start()
        try:
            inst = self.cell.institutions[self.institution]
            self.local: LocalPlatform = self.cell.local_platform(self.institution)
            assert self.cell.storage is not None
            self.local.continue_numbering(
                await self.cell.storage.outbox.last_message_number(self.institution, "local")
            )
            self.staff_chat = inst.staff_chat.chat_id if inst.staff_chat else LOCAL_STAFF_CHAT
            self.local.open_chat(self.staff_chat, ChatKind.GROUP)
            members = inst.config.staff.members
            self.staff_user = (
                User(members[0].id, members[0].name) if members else User("staff", "Сотрудник")
            )
            self.citizen = User(CITIZEN_CHAT, "Анна")
            if self.interactive:
                where = (
                    "песочница: своя временная база, настоящие чаты и тикеты не затрагиваются"
                    if self.sandbox
                    else "настоящая база: тикеты попадут в отчёты и /tickets"
                )
                name = inst.config.name
                print(
                    f"Бот {name if '«' in name else f'«{name}»'} ({where}).\n"
                    "Пишите вопросы; число нажимает кнопку; /staff — переключиться в чат "
                    "сотрудников и обратно; там «>N текст» отвечает на сообщение [N]; "
                    "Ctrl+D или Ctrl+C — выход."
                )
            while True:
                line = await self._next_line()
                if line is None:
                    break
                line = line.strip()
                if not line:
                    continue
                await self._handle(line)
                await self.app.settle()
                self._print_new()
        finally:
            await self.app.stop()
        return 0

    async def _next_line(self) -> str | None:
        if self._lines is not None:
            return await self._lines.read("сотрудник> " if self.as_staff else "вы> ")
        return await asyncio.to_thread(_read_piped)

    async def _handle(self, line: str) -> None:
        if line == "/staff":
            self.as_staff = not self.as_staff
            where = "чат сотрудников" if self.as_staff else "чат гражданина"
            print(f"— теперь вы пишете в {where}")
            return
        chat = self.staff_chat if self.as_staff else CITIZEN_CHAT
        user = self.staff_user if self.as_staff else self.citizen
        last = self.last_bot_message.get(chat)
        if line.isdigit() and last is not None:
            labels = [label for row in last.buttons for label, _ in row]
            index = int(line) - 1
            if 0 <= index < len(labels):
                await self.local.press(chat, last.id, labels[index], user=user)
                return
        reply_to = None
        if self.as_staff and line.startswith(">"):
            # ">N text" replies to the staff chat message N (e.g. a ticket card)
            head, _, rest = line[1:].partition(" ")
            if head.isdigit():
                reply_to, line = head, rest
        kind = ChatKind.GROUP if self.as_staff else ChatKind.PRIVATE
        await self.local.user_says(chat, line, user=user, reply_to=reply_to, kind=kind)

    def _print_new(self) -> None:
        # a pressed button's notice (a snackbar on the real platforms)
        answered = self.local.answered_callbacks
        for _, notice in answered[self.notices_shown :]:
            if notice:
                print(f"  ({notice})")
        self.notices_shown = len(answered)
        for chat, title in ((CITIZEN_CHAT, "бот"), (self.staff_chat, "бот → сотрудникам")):
            messages = self.local.messages(chat)
            start = self.shown.get(chat, 0)
            for message in messages[:start]:
                if message.edited > self.edits.get(message.id, 0):
                    self.edits[message.id] = message.edited
                    self._print(f"{title} (изменено)", message)
            for message in messages[start:]:
                self._print(title, message)
                self.last_bot_message[chat] = message
            self.shown[chat] = len(messages)

    def _print(self, title: str, message: LocalMessage) -> None:
        prefix = f"[{message.id}] " if title != "бот" else ""
        print(f"{prefix}{title}: {message.text}")
        number = 1
        for row in message.buttons:
            cells = []
            for label, data in row:
                link = f" → {data}" if data.startswith(("http://", "https://")) else ""
                cells.append(f"[{number}] {label}{link}")
                number += 1
            print("    " + "   ".join(cells))
        sys.stdout.flush()


def _read_piped() -> str | None:
    try:
        return input()
    except EOFError:
        return None


class TerminalLines:
    """Lines typed at a terminal, read on the event loop (no thread): Ctrl+C ends the shell
    at once instead of waiting for a thread blocked in input() to get an Enter."""

    def __init__(self) -> None:
        self._buffer = b""
        self._eof = False

    async def read(self, prompt: str) -> str | None:
        sys.stdout.write(prompt)
        sys.stdout.flush()
        while b"\n" not in self._buffer and not self._eof:
            chunk = await self._chunk()
            self._buffer += chunk
            self._eof = not chunk  # Ctrl+D at the start of a line
        if not self._buffer:
            return None
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", errors="replace")

    async def _chunk(self) -> bytes:
        loop = asyncio.get_running_loop()
        fd = sys.stdin.fileno()
        ready: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, readable)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
        return os.read(fd, 4096)
