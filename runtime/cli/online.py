"""``priemnaya check --online -c CONFIG -i ID``: ask each messenger of one institution
whether its token is accepted and where it delivers updates (webhook subscriptions).
Read-only calls only; each platform's check lives with its adapter (bots/platforms.py
names it)."""

from __future__ import annotations

import asyncio

from bots.platforms import PLATFORMS
from handlers.config import LoadedConfig
from runtime.cli.common import load_or_report, pick_institution


async def check_institution(loaded: LoadedConfig, inst_id: str) -> tuple[bool, list[str]]:
    inst = loaded.config.institutions[inst_id]
    server = loaded.config.server
    public_url = server.public_url if server is not None else None
    fine, lines = True, []
    for kind in inst.platforms():
        check = PLATFORMS[kind].check_online
        if check is None:
            lines.append(f"{kind}: no online check yet")
            continue
        try:
            ok, said = await asyncio.wait_for(check(getattr(inst, kind), public_url), 60)
        except TimeoutError:
            ok, said = False, [f"{kind}: no answer within 60 s"]
        fine = fine and ok
        lines.extend(said)
    return fine, lines


def run_online(config_path: str, wanted: str | None) -> int:
    """Print each check's lines; 0 when every messenger answered as expected."""
    loaded = load_or_report(config_path)
    if loaded is None:
        return 1
    inst_id = pick_institution(loaded, wanted)
    if inst_id is None:
        return 1
    fine, lines = asyncio.run(check_institution(loaded, inst_id))
    for line in lines:
        print(f"{inst_id}: {line}")
    return 0 if fine else 1
