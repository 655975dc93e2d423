"""``priemnaya tickets list``: the tickets of one or all institutions, for admins."""

from __future__ import annotations

import argparse
import asyncio

from bots.core.clock import SystemClock
from runtime.cli.common import (
    add_config_argument,
    database_or_report,
    load_or_report,
    pick_institution,
)
from storage import Storage
from storage.tickets import ACTIVE

STATUSES = ("open", "in_progress", "answered", "closed")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tickets", help="tickets handed to staff")
    commands = parser.add_subparsers(dest="tickets_command", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="list tickets, urgent first, then oldest first")
    add_config_argument(listing)
    listing.add_argument("--institution", "-i", help="one institution (default: all)")
    listing.add_argument(
        "--status",
        choices=[*STATUSES, "active", "all"],
        default="active",
        help="active (default: open, in_progress, answered), one status, or all",
    )
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(func=run_list)


def run_list(args: argparse.Namespace) -> int:
    loaded = load_or_report(args.config)
    if loaded is None:
        return 1
    institution = None
    if args.institution:
        institution = pick_institution(loaded, args.institution)
        if institution is None:
            return 2
    if args.status == "active":
        statuses: tuple[str, ...] = ACTIVE
    elif args.status == "all":
        statuses = STATUSES
    else:
        statuses = (args.status,)
    database = database_or_report(loaded)
    if database is None:
        return 1
    return asyncio.run(_list(database, institution, statuses, args.limit))


async def _list(path: str, institution: str | None, statuses: tuple[str, ...], limit: int) -> int:
    clock = SystemClock()
    storage = await Storage.open(path, clock.now)
    try:
        tickets = await storage.tickets.find(institution, statuses, limit=limit)
    finally:
        await storage.close()
    if not tickets:
        print("no tickets")
        return 0
    now = clock.now()
    print(f"{'institution':<16} {'№':>5}   {'status':<12} {'age':>8} {'platform':<9} question")
    for t in tickets:
        hours = (now - t.created_at).total_seconds() / 3600
        age = f"{hours:.1f}h" if hours < 48 else f"{hours / 24:.1f}d"
        flag = "!" if t.urgent else " "
        question = t.question.replace("\n", " ")[:60]
        print(
            f"{t.institution:<16} {t.number:>5} {flag} {t.status:<12} {age:>8} {t.platform:<9}"
            f" {question}"
        )
    if any(t.urgent for t in tickets):
        print("! = urgent (the question has an urgent keyword)")
    return 0
