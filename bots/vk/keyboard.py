"""Inline keyboards within VK's limits, and the payloads their buttons carry.

VK draws an inline keyboard of at most 6 rows of 5 buttons and 10 buttons in all, with
labels up to 40 characters and payloads (a JSON string) up to 255 characters. The app
knows nothing of this: rows wider than 5 are re-flowed, and a keyboard that still does
not fit is cut into pages joined by "Ещё ›" / "‹ Назад" buttons. Turning a page is the
adapter's own business (a platform limit), so those presses never reach the app.

Payloads are JSON objects with one short key:
``{"c": data}`` a callback for the app (``data`` through bots.core.payloads, so long ones are
stored and the button carries a key); ``{"p": key, "n": page}`` a page turn, where ``key``
names the stored pages of that message; ``{"command": "start"}`` is VK's own "Начать".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from bots.core.model import Button
from bots.core.payloads import PayloadStore, encode_payload

MAX_PER_ROW = 5
MAX_ROWS = 6
MAX_BUTTONS = 10
MAX_LABEL = 40
MAX_PAYLOAD = 255
#: callback data up to this many bytes rides in the button itself; longer is stored
INLINE_DATA_BYTES = 100
MORE_LABEL = "Ещё ›"
BACK_LABEL = "‹ Назад"

VkButton = dict[str, Any]
T = TypeVar("T")


def reflow(rows: Sequence[Sequence[T]]) -> list[list[T]]:
    """Rows wider than VK allows become several rows, order kept; empty rows dropped."""
    flowed: list[list[T]] = []
    for row in rows:
        items = list(row)
        for start in range(0, len(items), MAX_PER_ROW):
            flowed.append(items[start : start + MAX_PER_ROW])
    return flowed


def paginate(rows: list[list[T]]) -> list[list[list[T]]]:
    """One page when the rows fit an inline keyboard; else pages that leave room for a row
    of navigation buttons (two at most). A row is never cut across pages."""
    if len(rows) <= MAX_ROWS and sum(len(r) for r in rows) <= MAX_BUTTONS:
        return [rows]
    room_rows, room_buttons = MAX_ROWS - 1, MAX_BUTTONS - 2
    pages: list[list[list[T]]] = []
    page: list[list[T]] = []
    count = 0
    for row in rows:
        if page and (len(page) >= room_rows or count + len(row) > room_buttons):
            pages.append(page)
            page, count = [], 0
        page.append(row)
        count += len(row)
    if page:
        pages.append(page)
    return pages


def label(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def callback_payload(data: str, store: PayloadStore) -> str:
    """The JSON payload of a callback button; stored behind a key when long."""
    payload = dumps({"c": await encode_payload(data, INLINE_DATA_BYTES, store)})
    if len(payload.encode()) > MAX_PAYLOAD:  # JSON escaping made it too long: store it
        payload = dumps({"c": await encode_payload(data, 0, store)})
    return payload


async def vk_button(button: Button, store: PayloadStore) -> VkButton:
    if button.url is not None:
        return {"action": {"type": "open_link", "link": button.url, "label": label(button.text)}}
    assert button.callback is not None
    payload = await callback_payload(button.callback, store)
    return {"action": {"type": "callback", "label": label(button.text), "payload": payload}}


def nav_button(text: str, pages_key: str, page: int) -> VkButton:
    payload = dumps({"p": pages_key, "n": page})
    return {"action": {"type": "callback", "label": text, "payload": payload}, "color": "primary"}


def page_keyboard(pages: list[list[list[VkButton]]], page: int, pages_key: str | None) -> str:
    """The keyboard JSON of one page, with its navigation row when there are several."""
    rows = [list(r) for r in pages[page]]
    if len(pages) > 1 and pages_key is not None:
        nav: list[VkButton] = []
        if page > 0:
            nav.append(nav_button(BACK_LABEL, pages_key, page - 1))
        if page < len(pages) - 1:
            nav.append(nav_button(MORE_LABEL, pages_key, page + 1))
        rows.append(nav)
    return dumps({"inline": True, "buttons": rows})


def parse_payload(raw: object) -> dict[str, Any] | None:
    """A button payload as a dict: message_event carries an object, message_new a string."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw:
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None
