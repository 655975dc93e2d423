"""What every platform emulator shares: an aiohttp server on 127.0.0.1 with a free port,
waiting on changes instead of sleeping, and one client session for webhook deliveries.

An emulator subclass builds its ``web.Application`` (its routes are the platform's API),
serves it with :meth:`_serve`, and calls :meth:`_changed` whenever something a test or a
long poll may wait for happened (a message stored, an update queued, a call counted).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any, Self

import aiohttp
from aiohttp import web


def note_connection(connections: dict[Any, set[str]], request: web.Request, token: str) -> None:
    """Record that ``token``'s account called over the request's client connection (keyed
    by its address and port), so a test can see whether accounts share connections."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    connections.setdefault(peer, set()).add(token)


class EmulatorServer:
    """The plumbing; subclasses implement ``start`` (building their app) and may extend
    ``stop`` (cancelling their own tasks first)."""

    def __init__(self) -> None:
        #: the server's base URL, e.g. http://127.0.0.1:41234 (set by :meth:`_serve`)
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._change = asyncio.Event()  # replaced by a fresh one on every change
        self._closing = False
        self._client: aiohttp.ClientSession | None = None
        #: client connection (address, port) -> the tokens whose calls came over it
        self.connections: dict[Any, set[str]] = {}

    # -- lifecycle ---------------------------------------------------------------------
    async def _serve(
        self,
        app: web.Application,
        *,
        tls: ssl.SSLContext | None = None,
        shutdown_timeout: float = 60.0,
    ) -> str:
        """Serve ``app`` on a free port of 127.0.0.1; returns (and keeps) the base URL."""
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"{'https' if tls else 'http'}://{host}:{port}"
        return self.url

    async def start(self) -> Any:
        raise NotImplementedError

    async def stop(self) -> None:
        """Wake every waiter (long polls end), close the client session and the server."""
        self._closing = True
        self._changed()
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- waiting -----------------------------------------------------------------------
    def _changed(self) -> None:
        """Wake every waiter (long polls, ``wait_until``); each re-checks its condition."""
        event, self._change = self._change, asyncio.Event()
        event.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds; checked on every change the emulator sees."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._change.wait()

    # -- outgoing (webhooks) -----------------------------------------------------------
    def _session(self) -> aiohttp.ClientSession:
        if self._client is None:
            self._client = aiohttp.ClientSession()
        return self._client
