"""Every institution on the local platform: the shell and tests play all sides."""

from __future__ import annotations

from bots.core.adapters import Services
from bots.core.platform import EventHandler, Platform
from bots.local.platform import LocalPlatform


class LocalGroup:
    """One LocalPlatform per institution; the app uses it instead of the configured accounts
    when started with ``local=True``."""

    def __init__(self, institutions: list[str], services: Services) -> None:
        self.platforms: dict[str, Platform] = {
            inst: LocalPlatform(inst, payload_store=services.payloads) for inst in institutions
        }

    async def start(self, on_event: EventHandler) -> None:
        for platform in self.platforms.values():
            await platform.start(on_event)

    async def stop(self) -> None:
        for platform in self.platforms.values():
            await platform.stop()
