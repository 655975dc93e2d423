"""The neutral Reply's buttons as OK's ``INLINE_KEYBOARD`` attachment.

Shape [CODE: three independent clients agree]: ``{"type": "INLINE_KEYBOARD", "payload":
{"keyboard": {"buttons": [[{type, text, intent, payload | url}]]}}}`` with CALLBACK and
LINK buttons. ``intent`` is sent on every button because nothing says whether OK requires
it [UNVERIFIED]. OK publishes no limits on rows, buttons, labels or payloads [UNVERIFIED],
so the limits here are conservative guesses: 3 buttons a row (wider rows re-flow, order
kept), 10 rows, labels cut at 64 characters, payloads up to 128 bytes (longer ones are
stored and the button carries a key).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bots.core import buttons
from bots.core.model import Button
from bots.core.payloads import PayloadStore, encode_payload
from bots.core.platform import PermanentSendError

MAX_PER_ROW = 3
MAX_ROWS = 10
MAX_LABEL = 64
MAX_PAYLOAD_BYTES = 128


def reflow(rows: Sequence[Sequence[Button]]) -> list[list[Button]]:
    return buttons.reflow(rows, lambda _: MAX_PER_ROW)


def label(text: str) -> str:
    return buttons.fit_label(text, MAX_LABEL)


async def keyboard_attachment(
    rows: Sequence[Sequence[Button]], store: PayloadStore
) -> dict[str, Any] | None:
    """The attachment for ``rows``, or None without buttons. Too many rows is a caller's
    bug (PermanentSendError): cutting buttons off would hide choices from a citizen."""
    flowed = reflow(rows)
    if not flowed:
        return None
    if len(flowed) > MAX_ROWS:
        raise PermanentSendError(f"{len(flowed)} rows of buttons; the OK adapter allows {MAX_ROWS}")
    rendered = [[await _button(b, store) for b in row] for row in flowed]
    return {"type": "INLINE_KEYBOARD", "payload": {"keyboard": {"buttons": rendered}}}


async def _button(button: Button, store: PayloadStore) -> dict[str, Any]:
    if button.url is not None:
        return {"type": "LINK", "text": label(button.text), "intent": "DEFAULT", "url": button.url}
    assert button.callback is not None
    payload = await encode_payload(button.callback, MAX_PAYLOAD_BYTES, store)
    return {"type": "CALLBACK", "text": label(button.text), "intent": "DEFAULT", "payload": payload}
