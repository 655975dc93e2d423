"""One bot for many institutions: a shared account's chats choose their institution by
deep link, QR code or the picker (shared.py resolves an update, picker.py talks).

:data:`FEATURE` brings /place (and /учреждение) and the ``place:`` buttons; the router
calls :func:`intercept` first in a citizen's chat, for /start and the picker's search."""

from __future__ import annotations

from handlers.feature import Feature
from handlers.places.picker import EXTRA, intercept, on_callback, place_command
from handlers.places.shared import PlaceSet, resolve, shared_accounts

__all__ = ["EXTRA", "FEATURE", "PlaceSet", "intercept", "resolve", "shared_accounts"]

FEATURE = Feature(
    name="places",
    commands={"place": place_command, "учреждение": place_command},
    callbacks={"place": on_callback},
    templates={
        "place_choose.j2": frozenset({"current", "query", "found", "total"}),
        "place_chosen.j2": frozenset({"others"}),
        "place_single.j2": frozenset(),
    },
)
