"""``priemnaya check --online -c CONFIG -i ID``: ask each messenger of one institution
whether its token is accepted and where it delivers updates (webhook subscriptions).
Read-only calls only; each platform's check lives with its adapter."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from handlers.config import LoadedConfig

#: platform -> "module:function"; function(account, public_url) -> (fine, lines)
CHECKS: dict[str, str] = {
    "ok": "bots.ok.online:check_online",
    "max": "bots.max.online:check_online",
    "telegram": "runtime.cli.online:telegram_online",
}


async def telegram_online(account: Any, public_url: str | None) -> tuple[bool, list[str]]:
    """getMe and getWebhookInfo through aiogram."""
    from bots.telegram.platform import make_bot

    bot = make_bot(account.token.get_secret_value(), account.api_server, timeout=30)
    try:
        me = await bot.get_me()
        hook = await bot.get_webhook_info()
    except Exception as exc:
        return False, [f"telegram: {type(exc).__name__}: {exc}"]
    finally:
        await bot.session.close()
    where = "webhook set" if hook.url else "no webhook (polling)"
    return True, [f"telegram: token accepted for @{me.username} ({me.id}); {where}"]


async def check_institution(loaded: LoadedConfig, inst_id: str) -> tuple[bool, list[str]]:
    inst = loaded.config.institutions[inst_id]
    server = loaded.config.server
    public_url = server.public_url if server is not None else None
    fine, lines = True, []
    for kind in inst.platforms():
        target = CHECKS.get(kind)
        if target is None:
            lines.append(f"{kind}: no online check yet")
            continue
        module, _, name = target.partition(":")
        check = getattr(importlib.import_module(module), name)
        try:
            ok, said = await asyncio.wait_for(check(getattr(inst, kind), public_url), 60)
        except TimeoutError:
            ok, said = False, [f"{kind}: no answer within 60 s"]
        fine = fine and ok
        lines.extend(said)
    return fine, lines


def run_online(config_path: str, wanted: str | None) -> int:
    """Print each check's lines; 0 when every messenger answered as expected."""
    from runtime.cli.common import load_or_report, pick_institution

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
