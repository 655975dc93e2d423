"""All MAX bots of the process, and the webhook route they share on the app's server.

Each bot receives on its own (polling task or webhook); the group starts and stops them
together, and in webhook mode subscribes every bot to ``{public_url}/max/{bot_id}`` once it
knows its id (from ``GET /me``). The route checks the ``X-Max-Bot-Api-Secret`` header MAX
sends with every delivery against the bot's secret and answers 200 only after the app took
the update; any other answer makes MAX deliver it again (for up to 8 hours).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from typing import Any

from aiohttp import web

from bots.core.adapters import AccountSpec, Services
from bots.core.http import SharedSession
from bots.core.platform import EventHandler, Platform
from bots.max.client import MaxClient
from bots.max.platform import MaxPlatform

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Max-Bot-Api-Secret"
WEBHOOK_PATH = "/max/{bot_id}"


class MaxGroup:
    """Owns every MAX account; ``platforms`` maps institution id to its bot."""

    def __init__(
        self,
        platforms: list[MaxPlatform],
        *,
        public_url: str | None = None,
        http: SharedSession | None = None,
    ) -> None:
        self.max: dict[str, MaxPlatform] = {p.institution: p for p in platforms}
        #: the HTTP session every bot calls MAX through, closed once by ``stop``
        self.http = http
        self.platforms: dict[str, Platform] = dict(self.max)
        self.public_url = public_url.rstrip("/") if public_url else None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, on_event: EventHandler) -> None:
        for platform in self.max.values():
            await platform.start(on_event)
            if platform.mode == "webhook":
                self._tasks.append(
                    asyncio.create_task(self._subscribe(platform), name="max-subscribe")
                )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await asyncio.gather(*(p.stop() for p in self.max.values()), return_exceptions=True)
        if self.http is not None:
            await self.http.close()

    def attach(self, app: web.Application) -> None:
        """Add the webhook route; must happen before the web server starts."""
        app.router.add_post(WEBHOOK_PATH, self._webhook)

    def by_bot_id(self, bot_id: str) -> MaxPlatform | None:
        return next((p for p in self.max.values() if str(p.bot_id) == bot_id), None)

    async def _subscribe(self, platform: MaxPlatform) -> None:
        await platform.ready.wait()
        assert self.public_url is not None
        await platform.subscribe(self.public_url + WEBHOOK_PATH.format(bot_id=platform.bot_id))

    async def _webhook(self, request: web.Request) -> web.Response:
        platform = self.by_bot_id(request.match_info["bot_id"])
        if platform is None or platform.mode != "webhook" or not platform.webhook_secret:
            return web.Response(status=404)
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            log.warning("max bot %s: webhook call without a secret", platform.bot_id)
            return web.Response(status=401)
        if not hmac.compare_digest(given.encode(), platform.webhook_secret.encode()):
            log.warning("max bot %s: webhook call with a wrong secret", platform.bot_id)
            return web.Response(status=403)
        if platform.on_event is None:
            return web.Response(status=503)
        try:
            raw: Any = await request.json()
        except ValueError:
            return web.Response(status=400)
        if not isinstance(raw, dict):
            return web.Response(status=400)
        ok = await platform.take_update(raw)
        return web.Response(status=200 if ok else 500)


def webhook_secret_for(token: str) -> str:
    """A stable secret when the config names none: derived from the token (so it survives
    restarts and differs per bot) without being the token; hex fits MAX's [A-Za-z0-9_-]."""
    return hmac.new(token.encode(), b"priemnaya-max-webhook", hashlib.sha256).hexdigest()


async def create_group(accounts: list[AccountSpec], services: Services) -> MaxGroup:
    """One MaxPlatform per configured bot, all calling MAX through one HTTP session (one
    connection pool; a bot's CA bundle picks its SSL context per request). Tuning for tests
    comes from ``services.extra["max"]``: ``poll_timeout`` (seconds)."""
    options: dict[str, Any] = dict(services.extra.get("max") or {})
    polling = {s.account.token.get_secret_value() for s in accounts if s.account.mode == "polling"}
    http = SharedSession(long_polls=len(polling))
    platforms: list[MaxPlatform] = []
    #: token -> the platform of the first institution naming that bot (config order)
    first: dict[str, MaxPlatform] = {}
    shared: dict[str, MaxPlatform] = {}
    for spec in accounts:
        account = spec.account
        token = account.token.get_secret_value()
        if token in first:
            # one bot for several institutions: run it once; the app finds which institution
            # each update is for (handlers/places/: the bot_started payload, the binding)
            shared[spec.institution] = first[token]
            continue
        secret = (
            account.webhook_secret.get_secret_value()
            if account.webhook_secret is not None
            else webhook_secret_for(token)
        )
        client = MaxClient(token, api_url=account.api_url, ca_bundle=account.ca_bundle, http=http)
        platform = MaxPlatform(
            spec.institution,
            client,
            payloads=services.payloads,
            state=services.state,
            mode=account.mode,
            webhook_secret=secret,
            poll_timeout=int(options.get("poll_timeout", 30)),
        )
        first[token] = platform
        platforms.append(platform)
    group = MaxGroup(platforms, public_url=services.public_url, http=http)
    group.platforms.update(shared)  # every institution of a shared bot sends through it
    if any(p.mode == "webhook" for p in platforms):
        if services.web_app is None or not services.public_url:
            raise ValueError(
                "a MAX account in webhook mode needs the config's server with a public_url"
            )
        group.attach(services.web_app)
    return group
