"""The VK API client: vk_api's VkApi behind an asyncio face.

vk_api is synchronous (requests, a threading.Lock, time.sleep), so every call runs in a
worker thread and never on the event loop: a blocking call on the loop would stall every
other institution, and deadlock against an emulator that shares the loop in tests.

What we change in VkApi, and why:

- ``api_version`` is always 5.199: the library's default (5.92) has another event shape.
- vk_api hard-codes ``https://api.vk.ru/method/``; a requests adapter mounted on that
  prefix rewrites it to the configured ``api_url`` (a proxy, or an emulator in tests) and
  gives every request a timeout (vk_api sets none, so a stalled connection would hang).
  That session is shared by every community with the same ``api_url`` (sessions.py).
- Pacing is ours: an aiolimiter limiter per token (community tokens allow 20 requests/s)
  makes callers wait on the loop. VkApi's own pacing (``RPS_DELAY`` slept under a global
  lock) would serialise all calls of a community and sleep in threads, so it is switched
  off, and so is its silent retry of error 6: retries live in the app's outbox sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from aiolimiter import AsyncLimiter
from jconfig.memory import MemoryConfig
from vk_api import VkApi
from vk_api.exceptions import ApiError, ApiHttpError, VkApiError

from bots.core.background import InFlight
from bots.vk.sessions import LIBRARY_PREFIX, make_api_session

log = logging.getLogger(__name__)

API_VERSION = "5.199"
DEFAULT_API_URL = LIBRARY_PREFIX
#: community tokens allow 20 requests a second
REQUESTS_PER_SECOND = 20
API_TIMEOUT = 30.0

T = TypeVar("T")


class VkCallError(Exception):
    """A failed VK call, reduced to what the adapter decides on: the VK error code (None for
    transport failures), the HTTP status if any, and a message without secrets."""

    def __init__(self, code: int | None, message: str, status: int | None = None) -> None:
        super().__init__(code, message, status)
        self.code = code
        self.message = message
        self.status = status

    def __str__(self) -> str:
        if self.code is not None:
            return f"VK error {self.code}: {self.message}"
        return f"VK transport error: {self.message}"


def make_limiter() -> AsyncLimiter:
    """20 requests/s without bursts: a bucket of 20 would allow 40 in a sliding second
    (the burst plus the refill), and VK answers error 6 to that."""
    return AsyncLimiter(1, 1 / REQUESTS_PER_SECOND)


class VkClient:
    """One community token: its VkApi, its limiter and a count of calls in flight, over
    ``session`` (the API session of every community, closed by the group; without one the
    client makes its own and closes it in :meth:`close`)."""

    def __init__(
        self,
        token: str,
        *,
        api_url: str | None = None,
        limiter: AsyncLimiter | None = None,
        timeout: float = API_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self._owns_session = session is None
        self.session = session or make_api_session(api_url or DEFAULT_API_URL, timeout)
        self._vk = VkApi(
            token=token, api_version=API_VERSION, session=self.session, config=MemoryConfig
        )
        self._vk.RPS_DELAY = 0.0  # pacing is the limiter's job, on the loop
        self._vk.lock = contextlib.nullcontext()  # let calls of one community overlap
        self._vk.error_handlers.pop(6, None)  # no silent sleep-and-retry inside a thread
        self._limiter = limiter or make_limiter()
        self._in_flight = InFlight()

    async def call(self, method: str, **params: Any) -> Any:
        """Call an API method; raises VkCallError for any failure."""
        async with self._limiter:
            async with self._in_flight.track():
                return await asyncio.to_thread(self._call_blocking, method, params)

    async def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) for calls in flight to finish."""
        await self._in_flight.drain(timeout)

    def close(self) -> None:
        """Close the session if it is this client's own; a shared one is the group's."""
        if self._owns_session:
            self.session.close()

    def _call_blocking(self, method: str, params: dict[str, Any]) -> Any:
        try:
            return self._vk.method(method, {k: v for k, v in params.items() if v is not None})
        except ApiError as exc:
            raise VkCallError(exc.code, str(exc.error.get("error_msg", ""))) from None
        except ApiHttpError as exc:
            status = exc.response.status_code
            raise VkCallError(None, f"HTTP {status} from {method}", status) from None
        except VkApiError as exc:  # captcha, auth and other library-level errors
            raise VkCallError(None, f"{type(exc).__name__} from {method}") from None
        except requests.RequestException as exc:
            raise VkCallError(None, f"{type(exc).__name__} calling {method}") from None
        except ValueError:  # the body was not JSON (a proxy's error page)
            raise VkCallError(None, f"unreadable answer from {method}") from None


def get_json(session: requests.Session, url: str, params: dict[str, Any], timeout: float) -> Any:
    """A plain GET returning parsed JSON (the long-poll check); VkCallError on failure."""
    try:
        response = session.get(url, params=params, timeout=timeout)
    except requests.RequestException as exc:
        raise VkCallError(None, f"{type(exc).__name__} polling") from None
    if response.status_code >= 400:
        raise VkCallError(None, f"HTTP {response.status_code} polling", response.status_code)
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        raise VkCallError(None, "unreadable long-poll answer") from None


def in_daemon_thread(func: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run ``func`` in a daemon thread; the returned future can be abandoned (cancelled).

    A long-poll request cannot be interrupted. Run in the default executor it would hold
    up both ``stop()`` and the interpreter's exit for up to ``wait`` seconds; in a daemon
    thread it is simply dropped, and its answer (events not yet acknowledged) comes back
    on the next start because the stored ``ts`` was not advanced.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(apply: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            loop.call_soon_threadsafe(apply)

    def run() -> None:
        try:
            result = func(*args)
        except BaseException as exc:
            error = exc
            settle(lambda: None if future.done() else future.set_exception(error))
        else:
            settle(lambda: None if future.done() else future.set_result(result))

    threading.Thread(
        target=run, name=f"vk-{getattr(func, '__name__', 'call')}", daemon=True
    ).start()
    return future
