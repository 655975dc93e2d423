"""The link that opens a VK community's messages: ``https://vk.me/club<group id>``.

Every institution has its own community on VK, so the community's link is the
institution's; the ``?ref=`` parameter (which VK passes on with the citizen's first message)
is not needed for that and is not read by the adapter yet (docs/admin-guide.ru.md)."""

from __future__ import annotations

from typing import Any


async def deep_link(account: Any, payload: str, online: bool) -> str | None:
    return f"https://vk.me/club{account.group_id}"
