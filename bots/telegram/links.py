"""Deep links to a Telegram bot: ``https://t.me/<bot>?start=<payload>`` opens the bot and
sends ``/start <payload>`` when the citizen presses Start (a shared bot binds the chat to
the institution the payload names)."""

from __future__ import annotations

from typing import Any

from bots.telegram.platform import make_bot


async def deep_link(account: Any, payload: str, online: bool) -> str | None:
    """The link, with the bot's username from the config or, ``online``, from getMe;
    None when the config names no username and ``online`` is off."""
    username = account.username
    if online:
        bot = make_bot(account.token.get_secret_value(), account.api_server, timeout=30)
        try:
            username = (await bot.get_me()).username
        finally:
            await bot.session.close()
    if not username:
        return None
    return f"https://t.me/{username}?start={payload}"
