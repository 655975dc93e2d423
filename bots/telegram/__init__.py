"""The Telegram adapter on aiogram 3: one TelegramPlatform per bot, all bots of the process
in one TelegramGroup (one HTTP session per Bot API server; polling or webhooks). See group.py for how updates are
confirmed only after the app took them, platform.py for sending, pacing.py for the limits."""

from bots.telegram.group import TelegramGroup, create_group
from bots.telegram.pacing import TelegramRates
from bots.telegram.platform import TELEGRAM_LIMITS, TelegramPlatform

__all__ = ["TELEGRAM_LIMITS", "TelegramGroup", "TelegramPlatform", "TelegramRates", "create_group"]
