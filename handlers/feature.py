"""What a feature is, and the dispatch tables the router builds from a list of them.

Each feature (faq, escalation, announcements, privacy, ...) exports one :class:`Feature`
object: its citizen commands and buttons, its staff commands, buttons and message hooks, the
templates it renders (with the names each is given, for ``priemnaya check``), and an
``install`` hook that adds background work to the app's ``on_start`` / ``on_stop`` /
``on_reload`` lists. The runtime (runtime/features.py) lists the features and gives the list
to the app; nothing registers itself by being imported, so what runs is what the list says,
in a fresh interpreter as after any import.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bots.core.clock import Clock
from bots.core.model import ChatRef
from handlers.config import LoadedConfig
from handlers.conversation import Conversation, ForgetHook
from handlers.institution import Institution
from storage import Storage

#: a command (its arguments) or a button (its whole payload): both get one string
Handler = Callable[[Conversation, str], Awaitable[None]]
#: tried in order for a staff member's plain message; the first returning True claims it
MessageHook = Callable[[Conversation], Awaitable[bool]]
#: called with the app at start, stop or after a successful reload; may be a coroutine
Hook = Callable[[Any], Any]
UnreachableHook = Callable[[str, ChatRef, str], Awaitable[None]]
#: (institution, platform, outage began, outage ended): an account's sends work again
RecoveryHook = Callable[[str, str, datetime, datetime], Awaitable[None]]


class SenderPort(Protocol):
    """What features may do with the app's outbox sender."""

    unreachable_hooks: list[UnreachableHook]
    recovery_hooks: list[RecoveryHook]

    def wake(self) -> None: ...


class Host(Protocol):
    """What a feature's install hook may use of the app (runtime/app.py's App has it)."""

    #: swapped by a hot reload (runtime/reload.py), like the entries of ``institutions``
    loaded: LoadedConfig

    @property
    def clock(self) -> Clock: ...

    @property
    def storage(self) -> Storage | None: ...

    @property
    def sender(self) -> SenderPort | None: ...

    @property
    def institutions(self) -> dict[str, Institution]: ...

    @property
    def local(self) -> bool: ...

    def narrow(self, loaded: LoadedConfig) -> LoadedConfig:
        """``loaded`` with only the institutions this app runs (one storage cell's, see
        runtime/cells.py; all of them with one cell): a reload keeps to them."""
        ...

    @property
    def groups(self) -> Mapping[str, Any]:
        """The running adapter groups by platform name (an adapter's own hooks hang there)."""

    @property
    def on_start(self) -> list[Hook]: ...

    @property
    def on_stop(self) -> list[Hook]: ...

    @property
    def on_reload(self) -> list[Hook]: ...

    @property
    def database(self) -> str | None: ...

    @property
    def templates(self) -> Mapping[str, frozenset[str]]: ...

    async def settle(self, timeout: float = 30.0) -> None: ...


@dataclass(frozen=True, slots=True)
class Feature:
    """One feature as the app sees it. Every field is optional; names must not clash with
    another feature's (:class:`Features` refuses the list)."""

    name: str
    #: citizens' slash commands: name -> handler(conv, args)
    commands: Mapping[str, Handler] = field(default_factory=dict)
    #: citizens' buttons: payload prefix (before the first ':') -> handler(conv, payload)
    callbacks: Mapping[str, Handler] = field(default_factory=dict)
    #: staff chat commands (members only)
    staff_commands: Mapping[str, Handler] = field(default_factory=dict)
    #: staff chat buttons by payload prefix (members only)
    staff_callbacks: Mapping[str, Handler] = field(default_factory=dict)
    #: staff members' plain messages, tried in feature order
    message_hooks: tuple[MessageHook, ...] = ()
    #: template file -> the names it is rendered with (besides texts.COMMON_NAMES)
    templates: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: run inside /forget's transaction: anonymise what the feature keeps about the citizen
    forget_hooks: tuple[ForgetHook, ...] = ()
    #: called once when the app starts: appends to host.on_start / on_stop / on_reload
    install: Callable[[Host], None] | None = None


def _merge(features: Iterable[Feature], part: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for feature in features:
        for key, value in getattr(feature, part).items():
            if key in merged:
                raise ValueError(f"{part} {key!r} of {feature.name} is also {owner[key]}'s")
            merged[key] = value
            owner[key] = feature.name
    return merged


class Features:
    """The dispatch tables of a list of features, built once per app."""

    def __init__(self, features: Iterable[Feature]) -> None:
        self.features: tuple[Feature, ...] = tuple(features)
        self.commands: dict[str, Handler] = _merge(self.features, "commands")
        self.callbacks: dict[str, Handler] = _merge(self.features, "callbacks")
        self.staff_commands: dict[str, Handler] = _merge(self.features, "staff_commands")
        self.staff_callbacks: dict[str, Handler] = _merge(self.features, "staff_callbacks")
        self.templates: dict[str, frozenset[str]] = _merge(self.features, "templates")
        self.message_hooks: tuple[MessageHook, ...] = tuple(
            hook for feature in self.features for hook in feature.message_hooks
        )
        self.forget_hooks: tuple[ForgetHook, ...] = tuple(
            hook for feature in self.features for hook in feature.forget_hooks
        )

    def install(self, host: Host) -> None:
        for feature in self.features:
            if feature.install is not None:
                feature.install(host)
