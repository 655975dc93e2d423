"""How the app creates messenger accounts from the config.

Each adapter package (bots/telegram/, bots/vk/, ...) exposes, and bots/platforms.py lists,
``async def create_group(accounts: list[AccountSpec], services: Services) -> AdapterGroup``.
A group owns all accounts of one platform kind, because some platforms serve many accounts
best from one HTTP session (Telegram's bots share one connection pool and SSL context) or
one web server (webhooks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from bots.core.clock import Clock
from bots.core.payloads import PayloadStore
from bots.core.platform import EventHandler, Platform


class StateStore(Protocol):
    """Durable small state (a long-poll ts, an offset); storage.state.KeyValue implements it."""

    async def get(self, scope: str, key: str) -> str | None: ...

    async def set(self, scope: str, key: str, value: str) -> None: ...


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """One configured account: the institution it serves and its config section (a pydantic
    model from bots/<platform>/account.py: TelegramAccount, VkAccount, ...)."""

    institution: str
    account: Any


@dataclass(slots=True)
class Services:
    """What adapters may use from the app: no handlers, no business logic."""

    payloads: PayloadStore
    state: StateStore
    clock: Clock
    #: the app's shared aiohttp application for webhooks (None when no server is configured)
    web_app: web.Application | None = None
    #: public base URL of that server, for setWebhook / subscriptions
    public_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class AdapterGroup(Protocol):
    """All accounts of one platform kind. ``platforms`` maps institution id to its account."""

    platforms: dict[str, Platform]

    async def start(self, on_event: EventHandler) -> None:
        """Start receiving for every account; returns once receiving has started."""
        ...

    async def stop(self) -> None:
        """Stop receiving, finish in-flight sends, close sessions."""
        ...


GroupFactory = Callable[[list[AccountSpec], Services], Awaitable[AdapterGroup]]


@runtime_checkable
class HealthReporting(Protocol):
    """An adapter group or platform that can tell whether it is connected (/healthz asks
    every group and platform that has it)."""

    def healthy(self) -> bool | Awaitable[bool]: ...
