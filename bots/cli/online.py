"""``priemnaya check --online -c CONFIG -i ID``: ask each messenger of one institution
whether its token is accepted and where it delivers updates (webhook subscriptions).
Read-only calls only; each platform's check lives with its adapter."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from bots.config import LoadedConfig

#: platform -> "module:function"; function(account, public_url) -> (fine, lines)
CHECKS: dict[str, str] = {
    "ok": "bots.ok.online:check_online",
    "max": "bots.max.online:check_online",
    "telegram": "bots.cli.online:telegram_online",
    "vk": "bots.cli.online:vk_online",
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


async def vk_online(account: Any, public_url: str | None) -> tuple[bool, list[str]]:
    """groups.getById and groups.getLongPollSettings through vk_api."""
    from bots.vk.api import API_VERSION, VkCallError, VkClient
    from bots.vk.platform import NEEDED_EVENTS

    client = VkClient(account.token.get_secret_value(), api_url=account.api_url)
    try:
        group = await client.call("groups.getById", group_id=account.group_id)
        settings = await client.call("groups.getLongPollSettings", group_id=account.group_id)
    except VkCallError as exc:
        return False, [f"vk: {exc}"]
    finally:
        client.close()
    groups = group.get("groups", group) if isinstance(group, dict) else group
    name = groups[0].get("name", "?") if groups else "?"
    events = settings.get("events") or {}
    off = [e for e in NEEDED_EVENTS if not events.get(e)]
    version = str(settings.get("api_version") or "?")
    lines = [
        f"vk: token accepted for community {name!r} (club{account.group_id})",
        f"vk: Long Poll {'on' if settings.get('is_enabled') else 'OFF'}, version {version}"
        + (f" (the bot needs {API_VERSION})" if version != API_VERSION else "")
        + (f", events switched off: {', '.join(off)}" if off else ", events complete"),
    ]
    fine = bool(settings.get("is_enabled")) and not off and version == API_VERSION
    return fine, lines


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
    from bots.cli.common import load_or_report, pick_institution

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
