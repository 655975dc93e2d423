"""The VK adapter (vk_api, API 5.199, Bots Long Poll): one VkPlatform per community.

The app builds it through ``create_group`` (see bots/core/adapters.py). How a community admin
connects a community is in the README ("Подключение сообщества ВКонтакте").
"""

from __future__ import annotations

import asyncio

from aiolimiter import AsyncLimiter

from bots.core.adapters import AccountSpec, Services
from bots.core.platform import EventHandler, Platform
from bots.vk.api import API_VERSION, make_limiter
from bots.vk.platform import VK_LIMITS, VkPlatform, random_id

__all__ = ["API_VERSION", "VK_LIMITS", "VkGroup", "VkPlatform", "create_group", "random_id"]


class VkGroup:
    """All VK communities of the app; each polls on its own."""

    def __init__(self, platforms: dict[str, VkPlatform]) -> None:
        self.vk: dict[str, VkPlatform] = platforms
        self.platforms: dict[str, Platform] = dict(platforms)

    async def start(self, on_event: EventHandler) -> None:
        await asyncio.gather(*(p.start(on_event) for p in self.vk.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.vk.values()), return_exceptions=True)


async def create_group(accounts: list[AccountSpec], services: Services) -> VkGroup:
    """One VkPlatform per configured community; communities sharing a token share its
    20 requests/s limiter, since VK counts the limit per token."""
    limiters: dict[str, AsyncLimiter] = {}
    owners: dict[int, str] = {}
    platforms: dict[str, VkPlatform] = {}
    for spec in accounts:
        account = spec.account
        group_id = int(account.group_id)
        if group_id in owners:
            raise ValueError(
                f"VK community {group_id} is configured for both {owners[group_id]!r} and"
                f" {spec.institution!r}; each community serves one institution"
            )
        owners[group_id] = spec.institution
        token = account.token.get_secret_value()
        limiter = limiters.setdefault(token, make_limiter())
        platforms[spec.institution] = VkPlatform(
            spec.institution,
            token=token,
            group_id=group_id,
            services=services,
            api_url=account.api_url,
            wait=account.wait,
            limiter=limiter,
        )
    return VkGroup(platforms)
