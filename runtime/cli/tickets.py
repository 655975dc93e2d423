"""``priemnaya tickets list``: the tickets of one or all institutions, for admins."""

from __future__ import annotations

import argparse
import asyncio

from bots.core.clock import SystemClock
from handlers.config import LoadedConfig
from runtime.cells import open_cells
from runtime.cli.common import (
    add_config_argument,
    database_or_report,
    load_or_report,
    pick_institution,
)
from storage.tickets import ACTIVE, Ticket

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
    if database_or_report(loaded) is None:
        return 1
    return asyncio.run(_list(loaded, institution, statuses, args.limit))


async def _find(
    loaded: LoadedConfig,
    institution: str | None,
    statuses: tuple[str, ...],
    limit: int,
) -> list[Ticket]:
    """What storage.tickets.find gives over one file, over every cell holding the
    institution (or all): each cell's first ``limit`` in its order (urgent first, then
    oldest first), merged in that order and cut to ``limit``."""
    wanted = None if institution is None else [institution]
    async with open_cells(loaded, wanted) as cells:
        found = [
            ticket
            for storage in cells.storages
            for ticket in await storage.tickets.find(institution, statuses, limit=limit)
        ]
    found.sort(key=lambda t: (not t.urgent, t.created_at))
    return found[:limit]


async def _list(
    loaded: LoadedConfig, institution: str | None, statuses: tuple[str, ...], limit: int
) -> int:
    clock = SystemClock()
    tickets = await _find(loaded, institution, statuses, limit)
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
