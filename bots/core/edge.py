"""What an update may carry into the app, enforced once where it enters (``App.on_event``).

- U+0000 and lone surrogates are taken out of every text field: PostgreSQL refuses U+0000
  in text and neither backend can encode a lone surrogate, so one such character in a
  message or a name would make storing the update fail and the citizen's message be lost.
- Callback data is parsed with bounds: a number in it that no id can be (beyond a signed
  64-bit integer) or an absurdly long payload means a forged or stale button. It is
  replaced by an empty payload, which the router answers like any unknown button, instead
  of reaching a handler whose database lookup would raise OverflowError.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, TypeVar

from bots.core.model import Callback, Event

T = TypeVar("T")

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_NUMBER = re.compile(r"\d+")
#: the largest id a database integer column holds
MAX_ID = 2**63 - 1
#: longer than any payload the bot issues (stored payloads come back decoded, ~1 KB at most)
MAX_CALLBACK_CHARS = 4096


def clean_text(text: str) -> str:
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def _clean(value: T) -> T:
    if isinstance(value, str):
        return clean_text(value)  # type: ignore[return-value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            old = getattr(value, f.name)
            new = _clean(old)
            if new is not old:
                changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value


def bounded_callback(data: str) -> bool:
    """Whether callback data is within what the bot ever issues."""
    if len(data) > MAX_CALLBACK_CHARS:
        return False
    return all(len(m) < 19 or int(m) <= MAX_ID for m in _NUMBER.findall(data))


def clean_event(event: Event) -> Event:
    """The event with unstorable characters removed and out-of-bounds callback data
    emptied (see the module docstring)."""
    cleaned = _clean(event)
    callback = cleaned.callback
    if callback is not None and not bounded_callback(callback.data):
        cleaned = dataclasses.replace(cleaned, callback=Callback(id=callback.id, data=""))
    return cleaned
