"""The VK adapter (vk_api, API 5.199, Bots Long Poll): one VkPlatform per community.

The app builds it through ``create_group`` (see bots/core/adapters.py). How a community admin
connects a community is in the README ("Подключение сообщества ВКонтакте").
"""

from __future__ import annotations

import asyncio

import requests
from aiolimiter import AsyncLimiter

from bots.core.adapters import AccountSpec, Services
from bots.core.platform import EventHandler, Platform
from bots.vk.api import API_TIMEOUT, API_VERSION, DEFAULT_API_URL, make_limiter
from bots.vk.platform import VK_LIMITS, VkPlatform, random_id
from bots.vk.sessions import make_api_session, make_poll_session

__all__ = ["API_VERSION", "VK_LIMITS", "VkGroup", "VkPlatform", "create_group", "random_id"]


class VkGroup:
    """All VK communities of the app; each polls on its own, all through the same HTTP
    sessions (``sessions``: one per API URL and one for the long polls)."""

    def __init__(
        self, platforms: dict[str, VkPlatform], sessions: list[requests.Session] | None = None
    ) -> None:
        self.vk: dict[str, VkPlatform] = platforms
        self.platforms: dict[str, Platform] = dict(platforms)
        self.sessions = sessions or []

    async def start(self, on_event: EventHandler) -> None:
        await asyncio.gather(*(p.start(on_event) for p in self.vk.values()))

    async def stop(self) -> None:
        """Stop every community, then close the shared sessions once. A long poll still
        waiting in its daemon thread (abandoned by ``stop``) ends with a connection error
        there, which nobody awaits any more."""
        await asyncio.gather(*(p.stop() for p in self.vk.values()), return_exceptions=True)
        for session in self.sessions:
            session.close()


async def create_group(accounts: list[AccountSpec], services: Services) -> VkGroup:
    """One VkPlatform per configured community; communities sharing a token share its
    20 requests/s limiter, since VK counts the limit per token. All of them call the API
    through one session per API URL and long-poll through one session."""
    limiters: dict[str, AsyncLimiter] = {}
    api_sessions: dict[str, requests.Session] = {}
    poll_session = make_poll_session(len(accounts))
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
        api_url = account.api_url or DEFAULT_API_URL
        if api_url not in api_sessions:
            api_sessions[api_url] = make_api_session(api_url, API_TIMEOUT)
        platforms[spec.institution] = VkPlatform(
            spec.institution,
            token=token,
            group_id=group_id,
            services=services,
            api_url=account.api_url,
            wait=account.wait,
            limiter=limiter,
            api_session=api_sessions[api_url],
            poll_session=poll_session,
        )
    return VkGroup(platforms, [*api_sessions.values(), poll_session])
