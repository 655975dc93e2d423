"""``priemnaya run``: serve every configured account until SIGINT or SIGTERM.

On a signal it stops receiving, lets in-flight handling and sends finish, closes the
sessions and the database, and exits 0."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

from handlers.config import LoadedConfig
from runtime import cells, heap, limits
from runtime.app import App
from runtime.cli.common import add_config_argument, load_or_report
from runtime.region import Region

log = logging.getLogger("priemnaya")

#: freeze the start-up heap (runtime/heap.py); PRIEMNAYA_GC_FREEZE=0 turns it off, for
#: measuring what it does (bench/scale.py --no-freeze)
FREEZE = os.environ.get("PRIEMNAYA_GC_FREEZE", "1") != "0"


#: institutions per SQLite file from which ``run`` suggests storage.cells
CROWDED_CELL = 100


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="serve all configured Telegram/VK/MAX accounts")
    add_config_argument(parser)
    parser.add_argument(
        "--worker-id",
        metavar="ID",
        help="with storage.url (PostgreSQL): this process's name among several workers"
        " sharing the institutions (default: host-pid)",
    )
    parser.add_argument(
        "--lease",
        type=float,
        metavar="SECONDS",
        help="with PostgreSQL: how long a worker's hold on an institution lasts without"
        " renewal, i.e. how soon others take over from a dead worker (default 30)",
    )
    parser.set_defaults(func=run_app)


def run_app(args: argparse.Namespace) -> int:
    loaded = load_or_report(args.config, offline=False)
    if loaded is None:
        return 1
    for warning in loaded.warnings:
        log.warning("%s", warning)
    accounts = sum(len(i.platforms()) for i in loaded.config.institutions.values())
    if accounts == 0:
        print(
            f"{args.config}: no Telegram, VK or MAX account is configured; "
            "add one (see README) or try `priemnaya shell`"
        )
        return 1
    crowded = len(loaded.config.institutions) // max(1, cells.cell_count(loaded))
    if loaded.config.storage.url is None and crowded >= CROWDED_CELL:
        log.warning(
            "about %d institutions per SQLite file: one whose writes crawl holds up the"
            " answers of every other in its file. Spread them over more files with"
            " storage.cells (admin guide, section 17, «Ячейки хранилища»), or use PostgreSQL",
            crowded,
        )
    if args.worker_id is not None and loaded.config.storage.url is None:
        print(f"{args.config}: --worker-id needs PostgreSQL: set storage.url (see README)")
        return 1
    code = serve(loaded, worker_id=args.worker_id, lease_seconds=args.lease)
    # Everything is closed by now. Tearing down the interpreter frees the FAQ indexes and
    # dictionaries object by object, which took 2-3 s on a loaded machine (measured after a
    # stop with 500 messages queued): skip it, so the process ends within shutdown_timeout.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve(
    loaded: LoadedConfig,
    *,
    worker_id: str | None = None,
    lease_seconds: float | None = None,
    services_extra: dict[str, Any] | None = None,
) -> int:
    """Serve until a signal; the exit code. ``services_extra`` tunes the adapters
    (bench/scale.py scales Telegram's pace)."""
    limits.ensure_open_files(loaded)
    if cells.cell_count(loaded) > 1:  # one app per storage cell (runtime/region.py)
        return asyncio.run(_serve(Region(loaded, services_extra=services_extra)))
    app = App(
        loaded, worker_id=worker_id, lease_seconds=lease_seconds, services_extra=services_extra
    )
    return asyncio.run(_serve(app))


async def _serve(app: App | Region) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
    except Exception:
        log.exception("start failed")
        await app.stop()
        return 1
    if FREEZE:
        heap.freeze()  # what start-up built lives on: out of the collector's sight
        for cell in app.apps if isinstance(app, Region) else [app]:
            cell.on_reload.append(heap.refreeze)
    log.warning("Priemnaya is running; stop with Ctrl+C or SIGTERM")
    await stop.wait()
    log.warning("stopping")
    await app.stop()
    return 0
