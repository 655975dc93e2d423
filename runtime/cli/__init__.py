"""The ``priemnaya`` command. Each sub-command lives in its own module with a
``register(subparsers)`` function; this module only assembles them."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from runtime import logs
from runtime.cells import CellMismatch
from runtime.cli import (
    announce,
    check,
    faq,
    faq_ask,
    faq_fit,
    link,
    privacy,
    reload,
    report,
    run,
    shell,
    tickets,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="priemnaya",
        description="Bots for public institutions on Telegram, VK, MAX and OK.",
    )
    parser.add_argument(
        "--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default) or ERROR"
    )
    parser.add_argument(
        "--log-format",
        choices=("human", "json"),
        default="human",
        help="human-readable lines (default) or one JSON object per line",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    shell.register(subparsers)
    check.register(subparsers)
    run.register(subparsers)
    tickets.register(subparsers)
    report.register(subparsers)
    privacy.register(subparsers)
    reload.register(subparsers)
    announce.register(subparsers)
    link.register(subparsers)
    faq_commands = faq.register(subparsers)
    faq_ask_register(faq_commands)
    return parser


def faq_ask_register(faq_commands: argparse._SubParsersAction) -> None:
    faq_ask.register(faq_commands)
    faq_fit.register(faq_commands)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.log_level, args.log_format)  # tokens are masked in every record
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(file=sys.stderr)  # the terminal's ^C stays on its own line
        return 130
    except BrokenPipeError:
        return _reader_went_away()
    except CellMismatch as exc:  # storage.cells changed: what to do, not a traceback
        print(exc, file=sys.stderr)
        return 1


def _reader_went_away() -> int:
    """`priemnaya ... | head`: the reader closed the pipe, which is not an error of ours.
    Point stdout at /dev/null so the interpreter's final flush does not fail too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141  # what a shell reports for a process ended by SIGPIPE (128 + 13)


if __name__ == "__main__":
    sys.exit(main())
