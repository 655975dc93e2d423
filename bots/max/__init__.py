"""The MAX adapter: a thin aiohttp client of the MAX Bot API (schema 0.0.33), one MaxPlatform
per bot, all bots in one MaxGroup. See platform.py for receiving (polling or webhook) and
sending, events.py for how updates become Events, keyboard.py for the button limits."""

from bots.max.client import MaxApiError, MaxClient
from bots.max.group import MaxGroup, create_group, webhook_secret_for
from bots.max.platform import MAX_LIMITS, MaxPlatform

__all__ = [
    "MAX_LIMITS",
    "MaxApiError",
    "MaxClient",
    "MaxGroup",
    "MaxPlatform",
    "create_group",
    "webhook_secret_for",
]
