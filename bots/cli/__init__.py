"""The ``priemnaya`` command. Each sub-command lives in its own module with a
``register(subparsers)`` function; this module only assembles them."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bots.cli import check, faq, run, shell, tickets


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="priemnaya",
        description="Bots for public institutions on Telegram, VK and MAX.",
    )
    parser.add_argument(
        "--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default) or ERROR"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    shell.register(subparsers)
    check.register(subparsers)
    run.register(subparsers)
    tickets.register(subparsers)
    faq_commands = faq.register(subparsers)
    faq_ask_register(faq_commands)
    return parser


def faq_ask_register(faq_commands: argparse._SubParsersAction) -> None:
    from bots.cli import faq_ask

    faq_ask.register(faq_commands)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), logging.WARNING)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
