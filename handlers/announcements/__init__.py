"""Announcements: scheduled and ad-hoc broadcasts to subscribers and channels.

- schedule.py: triggers (cron / at / every), quiet hours, the misfire policy;
- feature.py: the running feature (APScheduler or the injected clock -> ``tick`` ->
  occurrences in storage), ``reschedule`` for a reloaded config;
- broadcast.py: the engine that delivers an occurrence once to every recipient (why it has
  its own table rather than the outbox is in its docstring);
- subscriptions.py: /subscribe, /unsubscribe and their buttons;
- compose.py: /announce in the staff chat.

:data:`FEATURE` is what the app is given (runtime/features.py).
"""

from __future__ import annotations

import weakref
from typing import Any

from handlers.announcements import compose, subscriptions, wakeup
from handlers.announcements.feature import Announcements
from handlers.config import LoadedConfig
from handlers.feature import Feature, Host

__all__ = ["FEATURE", "Announcements", "feature_of", "install", "reschedule"]

_by_app: weakref.WeakKeyDictionary[Any, Announcements] = weakref.WeakKeyDictionary()


def install(app: Host) -> None:
    """Run the scheduler and the broadcaster while the app runs; rebuild the schedule after
    each successful hot reload."""
    if app in _by_app:
        return
    feature = Announcements(app)
    _by_app[app] = feature

    async def on_start(app: Host) -> None:
        wakeup.enter(app.storage, feature.broadcaster)
        if app.sender is not None:
            app.sender.unreachable_hooks.append(feature.on_unreachable)
        await feature.start()

    async def on_stop(app: Host) -> None:
        await feature.stop()
        wakeup.leave(app.storage)

    def on_reload(app: Host) -> None:
        feature.reschedule(app.loaded)

    app.on_start.append(on_start)
    app.on_stop.append(on_stop)
    app.on_reload.append(on_reload)


def feature_of(app: Any) -> Announcements:
    return _by_app[app]


def reschedule(app: Any, loaded: LoadedConfig) -> None:
    """For the reload code: rebuild the schedule from a new, valid config."""
    feature = _by_app.get(app)
    if feature is not None:
        feature.reschedule(loaded)


FEATURE = Feature(
    name="announcements",
    commands={
        "subscribe": subscriptions.subscribe,
        "unsubscribe": subscriptions.unsubscribe,
        "stop_announcements": subscriptions.unsubscribe,
    },
    callbacks={"sub": subscriptions.on_callback},
    staff_commands={"announce": compose.announce},
    staff_callbacks={"ann": compose.on_button},
    message_hooks=(compose.take_text,),
    templates={
        "announce_labels.j2": frozenset(),
        "subscribe.j2": frozenset({"topics"}),
        "subscribed.j2": frozenset({"topics"}),
        "unsubscribed.j2": frozenset({"was_subscribed"}),
        "announce_from.j2": frozenset({"text"}),
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
    },
    install=install,
)
