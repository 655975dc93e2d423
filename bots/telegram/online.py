"""``priemnaya check --online`` for Telegram: getMe and getWebhookInfo through aiogram,
read-only calls that tell whether the token is accepted and where updates go."""

from __future__ import annotations

from typing import Any

from bots.telegram.platform import make_bot


async def check_online(account: Any, public_url: str | None) -> tuple[bool, list[str]]:
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
