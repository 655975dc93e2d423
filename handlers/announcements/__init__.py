"""Announcements: scheduled and ad-hoc broadcasts to subscribers and channels.

- schedule.py: triggers (cron / at / every), quiet hours, the misfire policy;
- feature.py: the running feature (APScheduler or the injected clock -> ``tick`` ->
  occurrences in storage), ``reschedule`` for a reloaded config;
- broadcast.py: the engine that delivers an occurrence once to every recipient (why it has
  its own table rather than the outbox is in its docstring);
- subscriptions.py: /subscribe, /unsubscribe and their buttons;
- compose.py: /announce in the staff chat.

The app runs it through ``FEATURES`` ("handlers.announcements:install"); the router imports
this package so that the commands register, and routes ``sub:`` buttons to
:func:`on_subscription_callback`.
"""

from __future__ import annotations

import weakref
from typing import Any

from handlers.announcements import compose, subscriptions
from handlers.announcements.feature import Announcements
from handlers.config import LoadedConfig
from handlers.texts import TEMPLATE_NAMES

__all__ = [
    "Announcements",
    "compose",
    "feature_of",
    "install",
    "on_subscription_callback",
    "reschedule",
    "wake",
]

TEMPLATE_NAMES.update(
    {
        "announce_labels.j2": frozenset(),
        "subscribe.j2": frozenset({"topics"}),
        "subscribed.j2": frozenset({"topics"}),
        "unsubscribed.j2": frozenset({"was_subscribed"}),
        "announce_ask.j2": frozenset(),
        "announce_preview.j2": frozenset({"text", "subscribers", "send_at"}),
        "announce_started.j2": frozenset({"send_at"}),
        "announce_cancelled.j2": frozenset(),
        "announce_expired.j2": frozenset(),
        "broadcast_progress.j2": frozenset(
            {"total", "finished", "delivered", "unreachable", "failed"}
        ),
        "broadcast_report.j2": frozenset(
            {"total", "finished", "delivered", "unreachable", "failed", "announcement"}
        ),
    }
)

on_subscription_callback = subscriptions.on_callback

_by_app: weakref.WeakKeyDictionary[Any, Announcements] = weakref.WeakKeyDictionary()
_by_storage: dict[int, Announcements] = {}


def install(app: Any) -> None:
    """Hook the feature into the app's start and stop (see runtime.app.FEATURES)."""
    if app in _by_app:
        return
    feature = Announcements(app)
    _by_app[app] = feature

    async def on_start(app: Any) -> None:
        _by_storage[id(app.storage)] = feature
        if app.sender is not None:
            app.sender.unreachable_hooks.append(feature.on_unreachable)
        await feature.start()

    async def on_stop(app: Any) -> None:
        await feature.stop()
        _by_storage.pop(id(app.storage), None)

    app.on_start.append(on_start)
    app.on_stop.append(on_stop)
    _hook_reload()


def _reload_hook(app: Any) -> None:
    reschedule(app, app.loaded)


def _hook_reload() -> None:
    """Rebuild the schedule after each successful hot reload (bots/reload.py)."""
    try:
        from runtime.reload import RELOAD_HOOKS
    except ImportError:  # a build without hot reload
        return
    if _reload_hook not in RELOAD_HOOKS:
        RELOAD_HOOKS.append(_reload_hook)


def feature_of(app: Any) -> Announcements:
    return _by_app[app]


def reschedule(app: Any, loaded: LoadedConfig) -> None:
    """For the reload code: rebuild the schedule from a new, valid config."""
    feature = _by_app.get(app)
    if feature is not None:
        feature.reschedule(loaded)


def wake(storage: Any) -> None:
    """Tell the broadcaster of the app using ``storage`` that a broadcast was queued."""
    feature = _by_storage.get(id(storage))
    if feature is not None:
        feature.broadcaster.wake()
