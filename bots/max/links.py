"""Deep links to a MAX bot: ``https://max.ru/<bot>?start=<payload>`` starts the bot with
that payload (a ``bot_started`` update), which a shared bot uses to bind the chat."""

from __future__ import annotations

from typing import Any


async def deep_link(account: Any, payload: str, online: bool) -> str | None:
    """None when the config names no ``username`` (no online look-up for MAX yet)."""
    if not account.username:
        return None
    return f"https://max.ru/{account.username}?start={payload}"
