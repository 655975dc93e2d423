"""The OK (Одноклассники) adapter: a thin aiohttp client of OK's group Bot API, one
OkPlatform per group, all groups in one OkGroup. Facts and their sources are in
shared/OK-NOTES.md; what is [UNVERIFIED] there is marked where the code relies on it.
platform.py receives (webhook or long polling) and sends, events.py turns webhook bodies
into Events, errors.py maps OK's error codes, group.py serves the webhooks, config.py is
the ``ok:`` config section, notice.py tells staff about a refused token, online.py is
``priemnaya check --online``."""

from bots.ok.client import OkApiError, OkClient
from bots.ok.group import OkGroup, create_group, webhook_hook_for
from bots.ok.platform import OK_LIMITS, OkPlatform

__all__ = [
    "OK_LIMITS",
    "OkApiError",
    "OkClient",
    "OkGroup",
    "OkPlatform",
    "create_group",
    "webhook_hook_for",
]
