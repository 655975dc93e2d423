"""``priemnaya reload -c CONFIG``: make a running ``priemnaya run`` re-read its files now.

It checks the files first (like ``priemnaya check``) and signals nothing when they are
broken; otherwise it sends SIGHUP to the pid in the pid file next to the database. The
running process validates again and swaps the new version in without a restart."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from runtime.cells import pid_database
from runtime.cli.check import check_config
from runtime.cli.common import add_config_argument, load_or_report
from runtime.reload import pid_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reload", help="make the running bot reload its config, FAQs and templates"
    )
    add_config_argument(parser)
    parser.set_defaults(func=run_reload)


def run_reload(args: argparse.Namespace) -> int:
    problems, _ = check_config(args.config)
    if problems:
        for problem in problems:
            print(problem)
        print(
            f"{len(problems)} problem(s) found; nothing reloaded, the running bot keeps "
            "the previous version",
            file=sys.stderr,
        )
        return 1
    loaded = load_or_report(args.config)
    if loaded is None:
        return 1
    path = pid_path(pid_database(loaded))
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        print(
            f"no running bot found: cannot read {path} (is `priemnaya run` running?)",
            file=sys.stderr,
        )
        return 1
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        print(f"no process {pid} (stale {path}); is the bot running?", file=sys.stderr)
        return 1
    except PermissionError:
        print(f"not allowed to signal process {pid}; run as the bot's user", file=sys.stderr)
        return 1
    print(f"sent SIGHUP to {pid}: the bot reloads; its log says what changed", file=sys.stderr)
    return 0
