"""``priemnaya check --online`` for VK: groups.getById and groups.getLongPollSettings,
read-only calls that tell whether the token is accepted and Long Poll is set up as the bot
needs it."""

from __future__ import annotations

from typing import Any

from bots.vk.api import API_VERSION, VkCallError, VkClient
from bots.vk.platform import NEEDED_EVENTS


async def check_online(account: Any, public_url: str | None) -> tuple[bool, list[str]]:
    """groups.getById and groups.getLongPollSettings through vk_api."""
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
