"""Waking the broadcaster of the app that uses a given storage, for /announce: the staff
chat handler (compose.py) queues a broadcast and only has the update's storage at hand.
The running feature (``__init__.install``) enters its broadcaster here at start and leaves
at stop; this module imports nothing of the package, so compose and the package do not
import each other."""

from __future__ import annotations

from typing import Any, Protocol


class Wakeable(Protocol):
    def wake(self) -> None: ...


_by_storage: dict[int, Wakeable] = {}


def enter(storage: Any, broadcaster: Wakeable) -> None:
    _by_storage[id(storage)] = broadcaster


def leave(storage: Any) -> None:
    _by_storage.pop(id(storage), None)


def wake(storage: Any) -> None:
    """Tell the broadcaster of the app using ``storage`` that a broadcast was queued."""
    broadcaster = _by_storage.get(id(storage))
    if broadcaster is not None:
        broadcaster.wake()
