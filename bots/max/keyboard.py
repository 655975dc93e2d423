"""Inline keyboards within MAX's limits.

The schema (InlineKeyboardAttachmentRequest) gives the button shapes: ``callback`` with a
``payload`` string of at most 1024 characters, ``link`` with a ``url`` of at most 2048, and
a visible ``text`` of 1-128 characters. MAX's documentation adds the layout limits: at most
30 rows, 7 buttons a row, and 3 a row when the row holds link buttons (210 in all). The app
knows nothing of this: wide rows are re-flowed here, order kept. A keyboard that still
needs more than 30 rows is refused as a bug of the caller (PermanentSendError), because
cutting buttons off silently would hide choices from a citizen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bots.core import buttons
from bots.core.model import Button
from bots.core.payloads import PayloadStore, encode_payload
from bots.core.platform import PermanentSendError

MAX_PER_ROW = 7
MAX_LINKS_PER_ROW = 3
MAX_ROWS = 30
MAX_LABEL = 128
#: the schema's maxLength of a callback payload is 1024 characters; counting bytes is
#: stricter, so a Cyrillic payload can never overflow it
MAX_PAYLOAD_BYTES = 1024
MAX_URL = 2048


def reflow(rows: Sequence[Sequence[Button]]) -> list[list[Button]]:
    """Rows wider than MAX allows become several rows; empty rows are dropped."""
    return buttons.reflow(
        rows,
        lambda row: MAX_LINKS_PER_ROW if any(b.url is not None for b in row) else MAX_PER_ROW,
    )


def label(text: str) -> str:
    return buttons.fit_label(text, MAX_LABEL)


async def keyboard_attachment(
    rows: Sequence[Sequence[Button]], store: PayloadStore
) -> dict[str, Any] | None:
    """The ``inline_keyboard`` attachment for ``rows``, or None without buttons."""
    flowed = reflow(rows)
    if not flowed:
        return None
    if len(flowed) > MAX_ROWS:
        raise PermanentSendError(f"{len(flowed)} rows of buttons; MAX allows {MAX_ROWS}")
    rendered = [[await _button(b, store) for b in row] for row in flowed]
    return {"type": "inline_keyboard", "payload": {"buttons": rendered}}


async def _button(button: Button, store: PayloadStore) -> dict[str, Any]:
    if button.url is not None:
        if len(button.url) > MAX_URL:
            raise PermanentSendError(f"a link of {len(button.url)} characters; MAX allows 2048")
        return {"type": "link", "text": label(button.text), "url": button.url}
    assert button.callback is not None
    payload = await encode_payload(button.callback, MAX_PAYLOAD_BYTES, store)
    return {"type": "callback", "text": label(button.text), "payload": payload}
