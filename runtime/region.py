"""A region: one process running one app per storage cell (runtime/cells.py).

With ``storage.cells: N`` (SQLite) the institutions' data is spread over N files so that
one institution's crawling writes hold up only its own cell. Each cell is a whole app
(runtime/app.py) over its own file and its own institutions, with its own sender, timers
and scheduler: what runs inside a cell is exactly what runs with one cell, and the code
that reads every institution's rows (the sender's look, SLA timers, purge) needs no notion
of cells. What the cells share is the process: the event loop, the FAQ shelf (each FAQ is
loaded once), the metrics, and one HTTP server.

The HTTP server is the region's. Each cell attaches its adapters' webhook routes to its
own ``web_app`` (never served), and the region serves one route per distinct method and
path pattern that asks the cells' handlers in turn: a webhook handler answers 404 for an
account that is not its own before it reads the request (bots/*/group.py), so the first
answer other than 404 is the owner's. /healthz and /metrics cover every cell.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from bots.local import LocalPlatform
from handlers.config import LoadedConfig
from runtime import cells, observability
from runtime.app import App

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Region:
    """The cells' apps of one config, started and stopped together."""

    def __init__(self, loaded: LoadedConfig, **options: Any) -> None:
        """``options`` go to each cell's App (clock, local, services_extra...)."""
        count = cells.cell_count(loaded)
        if count > 1 and options.get("database") is not None:  # e.g. a PostgreSQL URL
            raise ValueError("a database override names one file: it cannot hold cells")
        database = options.pop("database", None)
        self.loaded = loaded
        self.apps: list[App] = []
        #: institution -> its cell's app
        self.app_of: dict[str, App] = {}
        for index, ids in enumerate(cells.members(loaded)):
            if not ids:
                continue  # no institution hashed here (yet): no file, no app
            app = App(
                loaded,
                database=database if count == 1 else str(cells.cell_path(loaded, index)),
                cell=(index, count),
                serve_http=False,
                **options,
            )
            self.apps.append(app)
            self.app_of.update(dict.fromkeys(ids, app))
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Start every cell, then serve their routes, then let them receive. A cell that
        fails to start stops the ones started (the error propagates)."""
        await cells.check_files(self.loaded)  # also those no institution hashes to now
        started: list[App] = []
        try:
            for app in self.apps:
                started.append(app)
                await app.start(receive=False)
            await self._serve()
            await cells.record_files(self.loaded, (a.storage for a in self.apps if a.storage))
            for app in self.apps:
                await app.receive()
        except BaseException:
            await asyncio.gather(*(app.stop() for app in started), return_exceptions=True)
            await self._close_server()
            raise

    async def stop(self) -> None:
        """Stop the cells together (each within the config's shutdown_timeout), then the
        server."""
        await asyncio.gather(*(app.stop() for app in self.apps))
        await self._close_server()

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until every cell has handled what it accepted and sent what it queued."""
        await asyncio.gather(*(app.settle(timeout) for app in self.apps))

    def local_platform(self, institution: str) -> LocalPlatform:
        return self.app_of[institution].local_platform(institution)

    async def _serve(self) -> None:
        server = self.loaded.config.server
        cell_apps = [app.web_app for app in self.apps if app.web_app is not None]
        if server is None or not cell_apps:
            return
        web_app = web.Application()
        routes: dict[tuple[str, str], list[Handler]] = {}
        for cell_app in cell_apps:
            for route in cell_app.router.routes():
                if route.method == "HEAD":
                    continue  # aiohttp adds one beside each GET
                key = (route.method, route.resource.canonical if route.resource else "")
                routes.setdefault(key, []).append(route.handler)  # type: ignore[arg-type]
        for (method, path), handlers in routes.items():
            web_app.router.add_route(method, path, _first_owner(handlers))
        observability.add_routes(self.apps, web_app)  # /healthz, /metrics over every cell
        self._runner = web.AppRunner(web_app)
        await self._runner.setup()
        await web.TCPSite(self._runner, server.host, server.port).start()
        log.info(
            "HTTP server listening on %s:%s for %d storage cells",
            server.host,
            server.port,
            len(self.apps),
        )

    async def _close_server(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _first_owner(handlers: Sequence[Handler]) -> Handler:
    """One route's handler over the cells': the first answer other than 404 (a cell's
    webhook handler answers 404, before reading the request, for an account not its own)."""
    if len(handlers) == 1:
        return handlers[0]

    async def dispatch(request: web.Request) -> web.StreamResponse:
        response: web.StreamResponse = web.Response(status=404)
        for handler in handlers:
            response = await handler(request)
            if response.status != 404:
                return response
        return response

    return dispatch
