"""``priemnaya check``: validate the config, every FAQ and every template before deploying.

Prints ``file:line: message`` for each problem (and ``file:line: warning: ...`` for what
would not stop the local demo), exits 0 when clean and 1 otherwise."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bots.core.yamlfile import Problem
from runtime import cells
from runtime.cli.common import add_config_argument, load_or_report
from runtime.cli.online import run_online
from runtime.features import TEMPLATES
from runtime.validation import check_all


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("check", help="validate the config, FAQs and templates")
    add_config_argument(parser)
    parser.add_argument(  # calls each messenger's API (bots/cli/online.py)
        "--online", action="store_true", help="also ask the messengers: tokens, subscriptions"
    )
    parser.add_argument("-i", "--institution", help="with --online: which institution")
    parser.set_defaults(func=run_check)


def check_config(path: str) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) for the config at ``path`` with the product's features."""
    return check_all(path, TEMPLATES)


def run_check(args: argparse.Namespace) -> int:
    problems, warnings = check_config(args.config)
    for warning in warnings:
        print(f"{warning.file}:{warning.line or 1}: warning: {warning.message}")
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    if not _cells_ok(args.config):
        return 1
    print(f"{args.config}: OK", file=sys.stderr)
    if getattr(args, "online", False):
        return run_online(args.config, args.institution)
    return 0


def _cells_ok(path: str) -> bool:
    """With storage.cells: which file each institution's data is in, and whether the files
    there are the ones the config says (a changed count, a missing or swapped file stop
    ``run``: runtime/cells.py). Prints what it found."""
    loaded = load_or_report(path)
    if loaded is None:
        return False
    if cells.cell_count(loaded) == 1 and not loaded.database_path.exists():
        return True  # nothing written yet (or PostgreSQL: check_files skips it)
    for index, ids in enumerate(cells.members(loaded) if cells.cell_count(loaded) > 1 else []):
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        print(
            f"storage cell {index}: {cells.cell_path(loaded, index)}: {shown or 'no institution'}"
        )
    try:
        asyncio.run(cells.check_files(loaded))
    except cells.CellMismatch as exc:
        print(exc, file=sys.stderr)
        return False
    return True
