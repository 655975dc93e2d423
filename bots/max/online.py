"""``priemnaya check --online`` for a MAX bot: ``GET /me`` and ``GET /subscriptions``
(read-only; no chat-list endpoint is called, MAX removed it)."""

from __future__ import annotations

from typing import Any

from bots.max.client import MaxApiError, MaxClient


async def check_online(account: Any, public_url: str | None) -> tuple[bool, list[str]]:
    client = MaxClient(
        account.token.get_secret_value(), api_url=account.api_url, ca_bundle=account.ca_bundle
    )
    try:
        try:
            me = await client.get_me()
            listed = (await client.subscriptions()).subscriptions
        except MaxApiError as exc:
            return False, [f"max: {exc}"]
    finally:
        await client.close()
    lines = [f"max: token accepted for bot @{me.username or '?'} ({me.user_id})"]
    lines.append(f"max: {len(listed)} webhook subscription(s)")
    lines.extend(f"max:   {s.url} types {','.join(s.update_types or [])}" for s in listed)
    return True, lines
