"""The whole app from a config file, as the end-to-end tests run it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from handlers.config import load_config
from runtime.app import App


@asynccontextmanager
async def running_app(config: Path, **options: Any) -> AsyncIterator[App]:
    """Load ``config``, start the app (``options`` go to App: clock, services_extra...),
    and stop it after the block, whatever happens inside."""
    app = App(load_config(config), **options)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()
