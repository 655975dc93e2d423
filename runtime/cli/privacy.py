"""``priemnaya privacy export``: everything stored about one citizen, as JSON (a citizen's
request under 152-FZ art. 14). ``--citizen PLATFORM:ID``, e.g. ``telegram:123456``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from handlers.config import LoadedConfig
from handlers.privacy import export_citizen
from runtime.cells import open_cells
from runtime.cli.common import (
    add_config_argument,
    database_or_report,
    load_or_report,
    pick_institution,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    privacy = subparsers.add_parser("privacy", help="personal data: export what is stored")
    commands = privacy.add_subparsers(dest="privacy_command", metavar="COMMAND", required=True)
    export = commands.add_parser("export", help="print everything stored about a citizen as JSON")
    add_config_argument(export)
    export.add_argument(
        "--citizen", required=True, metavar="PLATFORM:ID", help="e.g. telegram:123456, vk:42"
    )
    export.add_argument("--institution", "-i", help="only this institution (default: all)")
    export.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    platform, sep, user_id = str(args.citizen).partition(":")
    if not sep or not platform or not user_id:
        print("--citizen: write PLATFORM:ID, e.g. telegram:123456", file=sys.stderr)
        return 2
    loaded = load_or_report(args.config)
    if loaded is None:
        return 1
    if args.institution is not None and pick_institution(loaded, args.institution) is None:
        return 2
    if database_or_report(loaded) is None:
        return 1
    data = asyncio.run(_export(loaded, platform, user_id, args.institution))
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    return 0


async def _export(
    loaded: LoadedConfig, platform: str, user_id: str, institution: str | None
) -> Any:
    """One export over every cell holding the institution (or all): a citizen who wrote to
    institutions of different cells has rows in several files; each table lists them all."""
    wanted = None if institution is None else [institution]
    tables: dict[str, list[dict[str, Any]]] = {}
    async with open_cells(loaded, wanted) as cells:
        for storage in cells.storages:
            found = await export_citizen(storage.db, platform, user_id, institution)
            for table, rows in found["tables"].items():
                tables.setdefault(table, []).extend(rows)
    for row in tables.get("outbox", []):  # the bot's messages: show text, not JSON
        try:
            row["reply"] = json.loads(row["reply"])
        except (TypeError, ValueError):
            pass
    return {"citizen": {"platform": platform, "user_id": user_id}, "tables": tables}
