"""What the Platform contract suite needs from each platform under test.

A harness owns one Platform (wired to an emulator for Telegram and VK, or the in-memory
local platform) and plays the people on the other side: it makes a user write or press a
button, and it shows what a user sees in a chat. Adding a platform to the contract suite
means adding a module ``harness_<name>.py`` here with a ``make_harness`` async context
manager; tests/contract/conftest.py finds it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bots.core.model import Event
from bots.core.platform import Platform


@dataclass(slots=True)
class Seen:
    """A bot message as the user sees it: plain text and button labels."""

    id: str
    text: str
    buttons: list[list[str]] = field(default_factory=list)
    thread_id: str | None = None


class Harness:
    platform: Platform
    #: chat ids the harness can write from: two private chats and a group (None on a
    #: platform without group chats, such as OK)
    private_chat: str
    other_private_chat: str
    group_chat: str | None
    #: False where answering a press without a notice leaves nothing to see (OK)
    silent_answers_visible = True

    def __init__(self) -> None:
        self.events: asyncio.Queue[Event] = asyncio.Queue()

    async def on_event(self, event: Event) -> None:
        await self.events.put(event)

    async def next_event(self, within: float = 10.0) -> Event:
        return await asyncio.wait_for(self.events.get(), within)

    # Implemented per platform ------------------------------------------------------------
    async def user_says(
        self, chat_id: str, text: str, *, reply_to: str | None = None, user_id: str | None = None
    ) -> None:
        raise NotImplementedError

    async def user_presses(self, chat_id: str, message_id: str, label: str) -> None:
        raise NotImplementedError

    async def seen(self, chat_id: str) -> list[Seen]:
        """Every bot message in the chat, oldest first, as it looks now (edits applied)."""
        raise NotImplementedError

    async def block(self, chat_id: str) -> None:
        """The user blocks the bot: sends to this chat must fail as unreachable."""
        raise NotImplementedError

    async def callback_answers(self) -> list[str | None]:
        """Texts of the answered callback queries so far (None for a silent answer)."""
        raise NotImplementedError
