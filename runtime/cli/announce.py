"""``priemnaya announce``: list the configured announcements, send one now, show broadcasts.

``send`` queues the occurrence in the database for the running bot (``priemnaya run``) and
follows its progress; it does not start adapters of its own. Why: the running process owns
each account's rate limiter and its receiving (a second getUpdates on the same Telegram bot
is refused with 409, a second VK long poll steals the key), and a second sender working the
same rows would race it into duplicates. The database is the queue both processes share
(SQLite in WAL mode takes the CLI's write beside the bot's), and the bot looks at it every
few seconds. Without a running bot ``send`` refuses at once and queues nothing: a broadcast
queued "for later" would go out unannounced at some restart, and every retry would add one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime

from handlers.announcements.feature import audience_of, render_announcement
from handlers.announcements.schedule import describe, next_fire, trigger_for
from handlers.config import LoadedConfig
from handlers.institution import build_institution
from runtime.cells import databases, open_cells, pid_database
from runtime.cli.common import (
    add_config_argument,
    database_or_report,
    load_or_report,
    pick_institution,
)
from runtime.reload import pid_path
from storage import Storage
from storage.announcements import Broadcast, BroadcastRepo
from storage.leases import LeaseRepo

#: after this long without progress, say that nobody seems to be sending
QUIET_HINT_SECONDS = 15.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("announce", help="list, send and follow announcements")
    commands = parser.add_subparsers(dest="announce_command", metavar="ACTION", required=True)

    listing = commands.add_parser("list", help="configured announcements and their next time")
    add_config_argument(listing)
    listing.set_defaults(func=_list)

    send = commands.add_parser(
        "send", help="send one announcement now (through the running bot), with progress"
    )
    add_config_argument(send)
    send.add_argument("--institution", help="institution id (default: the first)")
    send.add_argument("announcement", metavar="ANNOUNCEMENT_ID")
    send.add_argument("--no-wait", action="store_true", help="queue it and return")
    send.set_defaults(func=_send)

    status = commands.add_parser("status", help="recent broadcasts and their deliveries")
    add_config_argument(status)
    status.add_argument("--limit", type=int, default=20)
    status.set_defaults(func=_status)


def _list(args: argparse.Namespace) -> int:

    loaded = load_or_report(args.config)
    if loaded is None:
        return 1
    now = datetime.now(UTC)
    found = 0
    for inst_id, inst in loaded.config.institutions.items():
        zone = loaded.zone(inst_id)
        for ann in inst.announcements:
            found += 1
            nxt = next_fire(trigger_for(ann, zone), now)
            when = nxt.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if nxt else "—"
            audience = audience_of(ann)
            to = []
            if audience.subscribers:
                to.append("subscribers")
            to += [f"{p}:{c}" for p, c in audience.channels]
            topics = f"  topics: {', '.join(ann.topics)}" if ann.topics else ""
            print(f"{inst_id}/{ann.id}  {describe(ann)}  next: {when}  to: {', '.join(to)}{topics}")
    if not found:
        print("no announcements configured")
    return 0


def _send(args: argparse.Namespace) -> int:
    loaded = load_or_report(args.config)
    if loaded is None:
        return 1
    inst_id = pick_institution(loaded, args.institution)
    if inst_id is None:
        return 1
    anns = {a.id: a for a in loaded.config.institutions[inst_id].announcements}
    if args.announcement not in anns:
        known = ", ".join(anns) or "none"
        print(
            f"{inst_id} has no announcement {args.announcement!r}; configured: {known}",
            file=sys.stderr,
        )
        return 1
    if database_or_report(loaded) is None:
        return 1
    return asyncio.run(_queue_and_follow(loaded, inst_id, args.announcement, not args.no_wait))


def _pid_alive(loaded: LoadedConfig) -> str | None:
    """None when a `priemnaya run` with this config's SQLite database is running on this
    machine (its pid file names a live process), else why not, in words."""
    path = pid_path(pid_database(loaded))
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return f"no bot is running with {loaded.path} (there is no {path})"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"no bot is running with {loaded.path} (process {pid} of {path} is gone)"
    except PermissionError:
        pass  # it exists, under another user (the service's)
    return None


async def _no_running_bot(loaded: LoadedConfig, storage: object) -> str | None:
    """Why nobody would send a broadcast queued now, or None when a running bot will."""
    assert isinstance(storage, Storage)
    if storage.dialect != "postgresql":
        return _pid_alive(loaded)
    if not await LeaseRepo(storage.db, "announce-cli", 0).holders():
        return "no worker holds a lease in the database: no `priemnaya run` is running"
    return None


async def _queue_and_follow(loaded: LoadedConfig, inst_id: str, ann_id: str, wait: bool) -> int:

    ann = next(a for a in loaded.config.institutions[inst_id].announcements if a.id == ann_id)
    institution = build_institution(loaded, inst_id)
    now = datetime.now(UTC)
    try:
        text = render_announcement(institution, ann, now)
    except Exception as exc:
        print(f"{inst_id}/{ann_id}: the template fails: {exc}", file=sys.stderr)
        return 1
    async with open_cells(loaded, [inst_id], write=True) as cells:
        storage = cells.of[inst_id]  # the institution's cell: its app sends from there
        reason = await _no_running_bot(loaded, storage)
        if reason is not None:
            print(
                f"not sent: {reason}. The running bot sends announcements; start it"
                f" (`priemnaya run -c {loaded.path}` or `systemctl start priemnaya`) and"
                " try again. Nothing was queued.",
                file=sys.stderr,
            )
            return 1
        repo = BroadcastRepo(storage.db)
        broadcast_id = await repo.create(
            institution=inst_id,
            announcement_id=ann_id,
            scheduled_for=now,
            send_after=now,  # sent on demand: quiet hours are the operator's call here
            text=text,
            audience=audience_of(ann),
            origin="cli",
            now=now,
        )
        assert broadcast_id is not None
        print(f"broadcast {broadcast_id} queued: {inst_id}/{ann_id}")
        if not wait:
            return 0
        return await _follow(repo, broadcast_id)


async def _follow(repo: object, broadcast_id: int) -> int:

    assert isinstance(repo, BroadcastRepo)
    last_change = time.monotonic()
    seen = -1
    hinted = False
    while True:
        b = await repo.get(broadcast_id)
        assert b is not None
        counts = await repo.counts(broadcast_id)
        if counts.finished != seen:
            seen, last_change = counts.finished, time.monotonic()
        total = b.total or counts.total
        if total or b.status in ("done", "failed"):  # before the bot counts the audience: no 0/0
            _bar(counts.finished, total)
        if b.status in ("done", "failed"):
            print()
            print(
                f"done: {counts.sent} delivered, {counts.unreachable} unreachable, "
                f"{counts.failed} failed"
            )
            return 0 if b.status == "done" else 1
        if not hinted and time.monotonic() - last_change > QUIET_HINT_SECONDS:
            hinted = True
            print(
                "\nno progress yet: the running bot has not started sending; its log says"
                " why (Ctrl+C stops watching; the broadcast stays with the bot).",
                file=sys.stderr,
            )
        await asyncio.sleep(0.5)  # a progress display refreshing, not synchronisation


def _bar(done: int, total: int, width: int = 40) -> None:
    filled = width if total == 0 else width * done // total
    sys.stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stdout.flush()


def _status(args: argparse.Namespace) -> int:
    loaded = load_or_report(args.config)
    if loaded is None:
        return 1
    if loaded.config.storage.url is None and not any(
        os.path.exists(path) for path in databases(loaded)
    ):
        print("no broadcasts yet (no database)")
        return 0
    return asyncio.run(_print_status(loaded, args.limit))


async def _print_status(loaded: LoadedConfig, limit: int) -> int:

    async with open_cells(loaded) as cells:
        rows = await _recent(cells.storages, limit)
        if not rows:
            print("no broadcasts yet")
        for b, repo in rows:
            c = await repo.counts(b.id)
            zone = (
                loaded.zone(b.institution) if b.institution in loaded.config.institutions else UTC
            )
            when = b.scheduled_for.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            extra = f"  error: {b.error}" if b.error else ""
            if b.status == "waiting":
                extra += f"  sends after {b.send_after.astimezone(zone).strftime('%Y-%m-%d %H:%M')}"
            print(
                f"#{b.id} {b.institution}/{b.announcement_id} {when} [{b.origin}] {b.status}: "
                f"{c.sent} delivered, {c.unreachable} unreachable, {c.failed} failed, "
                f"{c.pending} pending of {c.total}{extra}"
            )
    return 0


async def _recent(storages: list[Storage], limit: int) -> list[tuple[Broadcast, BroadcastRepo]]:
    """The newest ``limit`` broadcasts of every cell, newest first, each with the repo of its
    cell (its deliveries are there). Numbers count per file, so cells are merged by when
    each broadcast was created (one file: newest id first, the same order)."""
    found = []
    for storage in storages:
        repo = BroadcastRepo(storage.db)
        found += [(b, repo) for b in await repo.recent(limit)]
    if len(storages) > 1:
        found.sort(key=lambda pair: pair[0].created_at, reverse=True)  # stable: ids stay
    return found[:limit]
