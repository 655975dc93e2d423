"""A thin MAX Bot API client over aiohttp: about a dozen endpoints, nothing else.

Why our own and not a library: the adapter needs few calls, and the framework already owns
dispatching, retries and storage; a bot framework would bring its own of each. What this
client guarantees:

- The token travels in the ``Authorization`` header (the schema's ``access_token`` scheme),
  never in a URL, so it cannot leak into proxy or access logs.
- TLS trusts a configurable CA bundle *in addition to* the system roots: MAX serves a
  certificate chained to the Russian Ministry of Digital Development's root, which default
  trust stores lack.
- Every call waits for the bot's limiter (about 30 requests/s), so a busy bot queues instead
  of being refused.
- Every failure becomes a :class:`MaxApiError` with the HTTP status, MAX's error ``code`` and
  the server's ``Retry-After`` if it sent one; the adapter maps it onto the port's errors.
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, TypeVar

import aiohttp
from aiolimiter import AsyncLimiter
from pydantic import BaseModel, ValidationError

from bots.core.background import InFlight
from bots.core.http import SharedSession
from bots.max.models import (
    BotInfo,
    ErrorBody,
    GetSubscriptionsResult,
    SendMessageResult,
    SimpleQueryResult,
    UpdateList,
)

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://platform-api2.max.ru"
#: MAX's documented limit is 30 requests a second per bot
REQUESTS_PER_SECOND = 30
API_TIMEOUT = 30.0
#: what a long poll may take beyond its own ``timeout``
POLL_SLACK = 15.0

M = TypeVar("M", bound=BaseModel)


class MaxApiError(Exception):
    """A failed call: ``status`` is None for transport failures (no answer at all)."""

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        *,
        method: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message
        self.method = method
        self.retry_after = retry_after

    def __str__(self) -> str:
        if self.status is None:
            return f"MAX transport error on {self.method}: {self.message}"
        return f"MAX {self.method} → HTTP {self.status} {self.code}: {self.message}"


def make_limiter() -> AsyncLimiter:
    """30 requests/s without bursts: a full bucket of 30 plus its refill would allow 60 in a
    sliding second."""
    return AsyncLimiter(1, 1 / REQUESTS_PER_SECOND)


@lru_cache(maxsize=16)
def ssl_context(ca_bundle: str | None) -> ssl.SSLContext | None:
    """The system's roots plus ``ca_bundle`` (a PEM file), or None for aiohttp's default
    (itself one context for the process). One per bundle, shared by every bot naming it:
    each context costs ~28 ms and ~0.7 MB to build."""
    if not ca_bundle:
        return None
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca_bundle)
    return context


class MaxClient:
    """One bot token: its limiter, its TLS trust and a count of calls in flight, over the
    HTTP session of all the group's bots (``http``, closed by the group; without one the
    client opens its own and closes it in :meth:`close`). The token goes with each request,
    since the session is shared."""

    def __init__(
        self,
        token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        ca_bundle: str | None = None,
        limiter: AsyncLimiter | None = None,
        timeout: float = API_TIMEOUT,
        http: SharedSession | None = None,
    ) -> None:
        self._headers = {"Authorization": token}
        self.api_url = api_url.rstrip("/")
        #: the pool keys connections by SSL context, so bots with another CA bundle never
        #: reuse a connection verified against other roots
        self._ssl: ssl.SSLContext | bool = ssl_context(ca_bundle) or True
        self._limiter = limiter or make_limiter()
        self._timeout = timeout
        self._owns_http = http is None
        self.http = http or SharedSession()
        self._in_flight = InFlight()

    def __repr__(self) -> str:  # never show the token
        return f"MaxClient({self.api_url!r})"

    # -- endpoints ------------------------------------------------------------------------
    async def get_me(self) -> BotInfo:
        return await self._call("GET", "/me", BotInfo)

    async def get_updates(
        self, *, marker: int | None, timeout: int, types: Sequence[str], limit: int = 100
    ) -> UpdateList:
        params: dict[str, Any] = {"timeout": timeout, "limit": limit, "types": ",".join(types)}
        if marker is not None:
            params["marker"] = marker
        return await self._call(
            "GET", "/updates", UpdateList, params=params, timeout=timeout + POLL_SLACK
        )

    async def send_message(
        self,
        body: dict[str, Any],
        *,
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> SendMessageResult:
        if (chat_id is None) == (user_id is None):
            raise ValueError("send to exactly one of chat_id or user_id")
        params = {"chat_id": chat_id} if chat_id is not None else {"user_id": user_id}
        return await self._call("POST", "/messages", SendMessageResult, params=params, json=body)

    async def edit_message(self, message_id: str, body: dict[str, Any]) -> SimpleQueryResult:
        return await self._call(
            "PUT", "/messages", SimpleQueryResult, params={"message_id": message_id}, json=body
        )

    async def answer_callback(self, callback_id: str, body: dict[str, Any]) -> SimpleQueryResult:
        return await self._call(
            "POST", "/answers", SimpleQueryResult, params={"callback_id": callback_id}, json=body
        )

    async def subscriptions(self) -> GetSubscriptionsResult:
        return await self._call("GET", "/subscriptions", GetSubscriptionsResult)

    async def subscribe(
        self, url: str, secret: str, update_types: Sequence[str]
    ) -> SimpleQueryResult:
        body = {"url": url, "secret": secret, "update_types": list(update_types)}
        return await self._call("POST", "/subscriptions", SimpleQueryResult, json=body)

    async def unsubscribe(self, url: str) -> SimpleQueryResult:
        return await self._call("DELETE", "/subscriptions", SimpleQueryResult, params={"url": url})

    # -- lifecycle ------------------------------------------------------------------------
    async def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) for calls in flight to finish."""
        await self._in_flight.drain(timeout)

    async def close(self) -> None:
        """Close the session if it is this client's own; a shared one is the group's."""
        if self._owns_http:
            await self.http.close()

    # -- internals ------------------------------------------------------------------------
    def _counted(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._in_flight.track()

    async def _call(
        self,
        http_method: str,
        path: str,
        model: type[M],
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> M:
        name = f"{http_method} {path}"
        query = {k: _query_value(v) for k, v in (params or {}).items()}
        async with self._limiter, self._counted():
            session = self.http.get()
            try:
                async with session.request(
                    http_method,
                    self.api_url + path,
                    params=query,
                    json=json,
                    headers=self._headers,
                    ssl=self._ssl,
                    timeout=aiohttp.ClientTimeout(total=timeout or self._timeout),
                ) as response:
                    raw = await response.read()
                    status = response.status
                    retry_after = _retry_after(response.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise MaxApiError(None, "", type(exc).__name__, method=name) from None
        if status != 200:
            error = _error_body(raw)
            raise MaxApiError(
                status, error.code, error.message, method=name, retry_after=retry_after
            )
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            log.warning("MAX %s: unexpected answer (%d problems)", name, exc.error_count())
            raise MaxApiError(status, "bad.answer", "unreadable answer", method=name) from None


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _retry_after(header: str | None) -> float | None:
    if header is None:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:  # an HTTP date: rare, and the sender's backoff is a fine answer
        return None


def _error_body(raw: bytes) -> ErrorBody:
    try:
        data = json.loads(raw)
    except ValueError:
        return ErrorBody(code="", message="unreadable error body")
    if not isinstance(data, dict):
        return ErrorBody()
    try:
        return ErrorBody.model_validate(data)
    except ValidationError:
        return ErrorBody()
