"""Every OK group of the installation, and their webhook route on the app's server.

OK signs nothing it POSTs [DOC], so each group's webhook lives at an unguessable path,
``{public_url}/ok/<hook>``, where ``<hook>`` is the account's ``webhook_secret`` or, by
default, derived from the token (stable across restarts, different per group; a new token
gives a new address, and the old one is removed at start as a stale one of ours). An
optional allow-list of source networks (``allow_from``; ``ok`` stands for the three ranges
OK documents) refuses other callers with 403.

OK wants HTTP 200 within 5 seconds or it delivers again [DOC]. The route answers 200 once
the app has stored and handled the update (milliseconds, normally). If that takes longer
than ``ANSWER_WITHIN`` the route answers 503 and lets handling go on: OK's redelivery then
finds the update in the inbox (or still being handled, and waits for it), so a slow moment
never loses an update and never handles one twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
from typing import Any

from aiohttp import web

from bots.core.adapters import AccountSpec, Services
from bots.core.http import SharedSession
from bots.core.platform import EventHandler, Platform
from bots.ok.client import OkClient
from bots.ok.platform import WEBHOOK_PATH, OkPlatform

log = logging.getLogger(__name__)

#: the sources of OK's webhook calls [DOC]
OK_NETWORKS = ("217.20.145.192/28", "217.20.151.160/28", "217.20.153.48/28")
#: answer well inside OK's 5 s
ANSWER_WITHIN = 4.0
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(allow_from: list[str]) -> list[Network]:
    """``allow_from`` entries as networks; ``ok`` is OK's documented ranges."""
    result: list[Network] = []
    for entry in allow_from:
        names = OK_NETWORKS if entry.strip().lower() == "ok" else (entry,)
        result.extend(ipaddress.ip_network(n.strip(), strict=False) for n in names)
    return result


def webhook_hook_for(token: str) -> str:
    """The default path segment: derived from the token without revealing it."""
    return hmac.new(token.encode(), b"priemnaya-ok-webhook", hashlib.sha256).hexdigest()[:32]


class OkGroup:
    """Owns every OK account; ``platforms`` maps institution id to its group bot."""

    def __init__(
        self,
        platforms: list[OkPlatform],
        *,
        allow: dict[str, list[Network]] | None = None,
        real_ip_header: dict[str, str | None] | None = None,
        answer_within: float = ANSWER_WITHIN,
        http: SharedSession | None = None,
    ) -> None:
        self.ok: dict[str, OkPlatform] = {p.institution: p for p in platforms}
        #: the HTTP session every group bot calls OK through, closed once by ``stop``
        self.http = http
        self.platforms: dict[str, Platform] = dict(self.ok)
        self._allow = allow or {}
        self._real_ip = real_ip_header or {}
        self.answer_within = answer_within
        #: (institution, reason) when a group's token is refused; the runtime adds a notice
        self.token_hooks = _Hooks(self.ok.values())

    async def start(self, on_event: EventHandler) -> None:
        for platform in self.ok.values():
            await platform.start(on_event)

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.ok.values()), return_exceptions=True)
        if self.http is not None:
            await self.http.close()

    def attach(self, app: web.Application) -> None:
        app.router.add_post(WEBHOOK_PATH, self._webhook)

    def by_hook(self, hook: str) -> OkPlatform | None:
        for platform in self.ok.values():
            if platform.mode == "webhook" and hmac.compare_digest(platform.hook, hook):
                return platform
        return None

    async def _webhook(self, request: web.Request) -> web.Response:
        platform = self.by_hook(request.match_info["hook"])
        if platform is None:
            return web.Response(status=404)
        if not self._allowed(platform, request):
            log.warning("ok group %s: webhook call from outside allow_from", platform.group_id)
            return web.Response(status=403)
        if platform.on_event is None:
            return web.Response(status=503)
        try:
            raw: Any = await request.json()
        except ValueError:
            return web.Response(status=400)
        if not isinstance(raw, dict):
            return web.Response(status=400)
        work = asyncio.ensure_future(platform.take_update(raw))
        try:
            ok = await asyncio.wait_for(asyncio.shield(work), self.answer_within)
        except TimeoutError:
            log.warning(
                "ok group %s: handling takes long; OK will deliver again", platform.group_id
            )
            return web.Response(status=503)
        return web.Response(status=200 if ok else 500)

    def _allowed(self, platform: OkPlatform, request: web.Request) -> bool:
        allowed = self._allow.get(platform.institution)
        if not allowed:
            return True
        header = self._real_ip.get(platform.institution)
        source = request.headers.get(header, "") if header else (request.remote or "")
        source = source.split(",")[0].strip()
        with contextlib.suppress(ValueError):
            address = ipaddress.ip_address(source)
            return any(address in network for network in allowed)
        return False


class _Hooks:
    """Appending a hook here adds it to every group's platform."""

    def __init__(self, platforms: Any) -> None:
        self._platforms = list(platforms)

    def append(self, hook: Any) -> None:
        for platform in self._platforms:
            platform.token_hooks.append(hook)


async def create_group(accounts: list[AccountSpec], services: Services) -> OkGroup:
    """One OkPlatform per configured group, all calling OK through one HTTP session. Test
    tuning comes from ``services.extra["ok"]``: ``poll_interval`` and ``answer_within``
    (seconds)."""
    options: dict[str, Any] = dict(services.extra.get("ok") or {})
    http = SharedSession(long_polls=sum(spec.account.mode == "polling" for spec in accounts))
    platforms: list[OkPlatform] = []
    allow: dict[str, list[Network]] = {}
    real_ip: dict[str, str | None] = {}
    seen: dict[str, str] = {}
    public_url = services.public_url.rstrip("/") if services.public_url else None
    for spec in accounts:
        account = spec.account
        token = account.token.get_secret_value()
        if token in seen:
            raise ValueError(
                f"institutions {seen[token]!r} and {spec.institution!r} use the same OK group"
            )
        seen[token] = spec.institution
        hook = (
            account.webhook_secret.get_secret_value()
            if account.webhook_secret is not None
            else webhook_hook_for(token)
        )
        client = OkClient(token, api_url=account.api_url, send_path=account.send_path, http=http)
        platform = OkPlatform(
            spec.institution,
            client,
            payloads=services.payloads,
            state=services.state,
            clock=services.clock,
            mode=account.mode,
            hook=hook,
            poll_interval=float(options.get("poll_interval", account.poll_interval)),
        )
        if public_url:
            platform.webhook_url = public_url + WEBHOOK_PATH.format(hook=hook)
        platforms.append(platform)
        allow[spec.institution] = networks(list(account.allow_from))
        real_ip[spec.institution] = account.real_ip_header
    group = OkGroup(
        platforms,
        allow=allow,
        real_ip_header=real_ip,
        answer_within=float(options.get("answer_within", ANSWER_WITHIN)),
        http=http,
    )
    if any(p.mode == "webhook" for p in platforms):
        if services.web_app is None or not public_url:
            raise ValueError(
                "an OK account in webhook mode needs the config's server with a public_url"
            )
        group.attach(services.web_app)
    return group
