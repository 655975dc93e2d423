"""A thin client of OK's group Bot API (the Graph API under ``/graph/``) over aiohttp.

Why our own: no maintained Python client exists (shared/OK-NOTES.md §2) and the adapter
needs ten calls. What this client guarantees:

- The group token travels as the ``access_token`` query parameter, the only way OK accepts
  it [DOC]; the URL it is in is therefore never logged, and ``repr`` hides it.
- Every POST carries ``Content-Type: application/json;charset=utf-8``, which OK requires.
- An error is an :class:`OkApiError` whether OK said so with an HTTP status or with
  ``error_code``/``error_msg`` in a body that came with HTTP 200 (OK's traditional error
  format, which Bot API v2 adopted [DOC + CODE]); the ``invocation-error`` header some
  answers carry is read too [CODE].
- Every call waits for the group's limiter. OK publishes no rate limit [UNVERIFIED], so the
  pace is a conservative 10 calls a second per group.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, TypeVar

import aiohttp
from aiolimiter import AsyncLimiter
from pydantic import BaseModel, ValidationError

from bots.core.background import InFlight
from bots.core.http import SharedSession
from bots.ok.models import GroupInfo, SendResult, Subscriptions, Success, UpdateList

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.ok.ru/graph/"
#: no documented limit [UNVERIFIED]: stay well below anything plausible
REQUESTS_PER_SECOND = 10
API_TIMEOUT = 30.0
JSON_TYPE = "application/json;charset=utf-8"

M = TypeVar("M", bound=BaseModel)


class OkApiError(Exception):
    """A failed call. ``status`` is None when nothing came back (network, timeout);
    ``code`` is OK's ``error_code`` (None when the answer had none)."""

    def __init__(
        self,
        status: int | None,
        code: int | None,
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
            return f"OK transport error on {self.method}: {self.message}"
        code = f" error_code {self.code}" if self.code is not None else ""
        return f"OK {self.method} → HTTP {self.status}{code}: {self.message}"


class OkClient:
    """One group token: its limiter and a count of calls in flight, over the HTTP session
    of all the group bots (``http``, closed by the group; without one the client opens its
    own and closes it in :meth:`close`).

    ``send_path`` picks the documented spelling of the send endpoint: ``"me"`` for
    ``me/messages/chat:ID`` (older docs, used by most clients) or ``"chat"`` for
    ``chat:ID/messages`` (newer docs). Both are [DOC]; which one OK prefers today is not
    known, so it is a config option."""

    def __init__(
        self,
        token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        send_path: str = "me",
        limiter: AsyncLimiter | None = None,
        timeout: float = API_TIMEOUT,
        http: SharedSession | None = None,
    ) -> None:
        self._token = token
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.send_path = send_path
        self._limiter = limiter or AsyncLimiter(1, 1 / REQUESTS_PER_SECOND)
        self._timeout = timeout
        self._owns_http = http is None
        self.http = http or SharedSession()
        self._in_flight = InFlight()

    def __repr__(self) -> str:  # never show the token
        return f"OkClient({self.api_url!r})"

    # -- endpoints ------------------------------------------------------------------------
    async def info(self) -> GroupInfo:
        """``GET me/info``: the group the token belongs to; also renews the token's 30 days."""
        return await self._call("GET", "me/info", GroupInfo)

    async def subscriptions(self) -> Subscriptions:
        return await self._call("GET", "me/subscriptions", Subscriptions)

    async def subscribe_webhook(self, url: str, types: Sequence[str]) -> Success:
        """Event types are listed explicitly: whether a subscription with only ``url``
        receives button presses is [UNVERIFIED]."""
        return await self._call(
            "POST", "me/subscribe", Success, body={"url": url, "types": list(types)}
        )

    async def subscribe_polling(self, types: Sequence[str]) -> Success:
        body = {"types": list(types), "longPolling": True}
        return await self._call("POST", "me/subscribe", Success, body=body)

    async def unsubscribe(self, url: str) -> Success:
        return await self._call("POST", "me/unsubscribe", Success, body={"url": url})

    async def updates(self) -> UpdateList:
        """``GET me/updates`` after a long-polling subscription. Its parameters and whether
        it blocks are [UNVERIFIED]; one client calls it every 3 s without parameters."""
        return await self._call("GET", "me/updates", UpdateList)

    async def send(self, chat_id: str, message: dict[str, Any]) -> SendResult:
        body = {"recipient": {"chat_id": chat_id}, "message": message}
        return await self._call("POST", self._messages_path(chat_id), SendResult, body=body)

    async def typing(self, chat_id: str) -> Success:
        body = {"recipient": {"chat_id": chat_id}, "sender_action": "typing_on"}
        return await self._call("POST", self._messages_path(chat_id), Success, body=body)

    async def answer(self, chat_id: str, callback_id: str, message: dict[str, Any]) -> Success:
        """``POST chat:ID/answer?callbackId=…`` with a message, as the docs say; its answer
        and a callbackId's lifetime are [UNVERIFIED]."""
        return await self._call(
            "POST",
            f"{chat_id}/answer",
            Success,
            params={"callbackId": callback_id},
            body={"message": message},
        )

    # -- lifecycle ------------------------------------------------------------------------
    async def drain(self, timeout: float) -> None:
        await self._in_flight.drain(timeout)

    async def close(self) -> None:
        """Close the session if it is this client's own; a shared one is the group's."""
        if self._owns_http:
            await self.http.close()

    # -- internals ------------------------------------------------------------------------
    def _messages_path(self, chat_id: str) -> str:
        return f"{chat_id}/messages" if self.send_path == "chat" else f"me/messages/{chat_id}"

    async def _call(
        self,
        http_method: str,
        path: str,
        model: type[M],
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> M:
        name = f"{http_method} {path.split('/', 1)[0] if path.startswith('chat:') else path}"
        query = {**(params or {}), "access_token": self._token}
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        headers = {"Content-Type": JSON_TYPE} if data is not None else None
        async with self._limiter, self._in_flight.track():
            session = self.http.get()
            try:
                async with session.request(
                    http_method,
                    self.api_url + path,
                    params=query,
                    data=data,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self._timeout),
                ) as response:
                    raw = await response.read()
                    status = response.status
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    invocation_error = response.headers.get("invocation-error")
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise OkApiError(None, None, type(exc).__name__, method=name) from None
        parsed = _json(raw)
        code, message = _error_of(parsed, invocation_error)
        if status != 200 or code is not None:
            raise OkApiError(
                status,
                code,
                message or f"HTTP {status}",
                method=name,
                retry_after=retry_after,
            )
        try:
            return model.model_validate(parsed)
        except ValidationError as exc:
            log.warning("OK %s: unexpected answer (%d problems)", name, exc.error_count())
            raise OkApiError(status, None, "unreadable answer", method=name) from None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _error_of(parsed: Any, header: str | None) -> tuple[int | None, str]:
    """(error_code, error_msg) from a body or the ``invocation-error`` header, if any."""
    if isinstance(parsed, dict) and parsed.get("error_code") is not None:
        try:
            code = int(parsed["error_code"])
        except (TypeError, ValueError):
            code = 1  # UNKNOWN in OK's table
        return code, str(parsed.get("error_msg") or "")
    if header:
        try:
            return int(header), "invocation-error header"
        except ValueError:
            return 1, f"invocation-error header {header[:40]!r}"
    return None, ""


def _retry_after(header: str | None) -> float | None:
    if header is None:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        return None
