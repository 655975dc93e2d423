"""``priemnaya link``: the links (and QR codes to print) that open an institution's chat.

``link -c CONFIG -i ID [--qr FILE.png|FILE.svg]`` prints each platform's link for one
institution and writes the QR code of its Telegram deep link (``t.me/<bot>?start=<id>``:
the one that chooses the institution in a shared bot). ``link -c CONFIG --all --qr-dir DIR``
writes ``DIR/<id>.png`` for every institution with a Telegram bot. The bot's username comes
from the config (``telegram.username``) or, with ``--online``, from getMe."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import segno

from bots.platforms import PLATFORMS
from handlers.config import LoadedConfig
from runtime.cli.common import add_config_argument, load_or_report, pick_institution

#: the platform whose link the QR code holds
QR_PLATFORM = "telegram"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "link", help="print an institution's links and write QR codes to print"
    )
    add_config_argument(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("-i", "--institution", help="the institution's id")
    which.add_argument("--all", action="store_true", help="every institution")
    parser.add_argument("--qr", metavar="FILE", help="with -i: write the QR code (.png or .svg)")
    parser.add_argument("--qr-dir", metavar="DIR", help="with --all: write DIR/<id>.png")
    parser.add_argument(
        "--online", action="store_true", help="ask Telegram for the bot's username (getMe)"
    )
    parser.set_defaults(func=run_link)


async def links_of(loaded: LoadedConfig, inst_id: str, online: bool) -> dict[str, str | None]:
    """platform -> link (None: not known without --online) for one institution."""
    inst = loaded.config.institutions[inst_id]
    found: dict[str, str | None] = {}
    for kind in inst.platforms():
        make = PLATFORMS[kind].deep_link
        if make is not None:
            found[kind] = await make(inst.account(kind), inst_id, online)
    return found


async def _all_links(
    loaded: LoadedConfig, ids: list[str], online: bool
) -> list[dict[str, str | None]]:
    return [await links_of(loaded, inst_id, online) for inst_id in ids]


def write_qr(link: str, path: Path) -> None:
    """A QR code of ``link``: PNG or SVG by the file's extension, large enough to print."""
    path.parent.mkdir(parents=True, exist_ok=True)
    segno.make(link, error="m").save(str(path), scale=10 if path.suffix != ".svg" else 4)


def run_link(args: argparse.Namespace) -> int:
    loaded = load_or_report(args.config, offline=not args.online)
    if loaded is None:
        return 1
    if args.all:
        if args.qr:
            print("--qr goes with -i; with --all use --qr-dir", file=sys.stderr)
            return 2
        ids = list(loaded.config.institutions)
    else:
        if args.qr_dir:
            print("--qr-dir goes with --all; with -i use --qr", file=sys.stderr)
            return 2
        picked = pick_institution(loaded, args.institution)
        if picked is None:
            return 1
        ids = [picked]
    fine = True
    every = asyncio.run(_all_links(loaded, ids, args.online))
    for inst_id, links in zip(ids, every, strict=True):
        for kind, link in links.items():
            shown = link or f"the bot's username is unknown: set {kind}.username or use --online"
            print(f"{inst_id}: {kind}: {shown}")
        target = Path(args.qr) if args.qr else None
        if args.qr_dir:
            target = Path(args.qr_dir) / f"{inst_id}.png"
        if target is None or QR_PLATFORM not in links:
            continue
        link = links[QR_PLATFORM]
        if link is None:
            fine = False
            continue
        write_qr(link, target)
        print(f"{inst_id}: QR code written to {target}")
    return 0 if fine else 1
