"""Which institutions share one messenger account (a district's one Telegram bot).

Several institutions may name the same account in the config (the same token). The adapter
then runs that account once and stamps its updates with the first of them in config order;
the app asks :func:`resolve` which of them the update is really for. Telegram and MAX run a
shared account (their deep links carry a ``start`` payload); VK ties one community to one
institution (docs/admin-guide.ru.md says why)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import SecretBytes, SecretStr

from bots.core.model import ChatKind, Event
from handlers.config import LoadedConfig
from handlers.institution import Institution
from storage.places import PlaceRepo

#: platforms whose adapters run one account for several institutions
SHARING_PLATFORMS = frozenset({"telegram", "max"})
#: the button payload that picks an institution: ``place:c:<institution id>``
CHOOSE = "place:c:"
#: buttons that name their institution without choosing it (an announcement's
#: "unsubscribe" is the announcing institution's, wherever the chat is bound now)
ADDRESSED = ("sub:off:",)


@dataclass(frozen=True, slots=True)
class PlaceSet:
    """The institutions behind the account that received an update, in config order."""

    ids: tuple[str, ...]
    institutions: Mapping[str, Institution]

    def name(self, institution: str) -> str:
        return self.institutions[institution].config.name


def shared_accounts(loaded: LoadedConfig) -> dict[tuple[str, str], tuple[str, ...]]:
    """(platform, first institution) -> every institution on that account, for accounts
    that two or more institutions name (equal account sections: the same token). Grouped
    by a key of the section's values, not by comparing every pair: a region's thousand
    institutions took ~0.5 s of pairwise pydantic comparisons per call."""
    shared: dict[tuple[str, str], tuple[str, ...]] = {}
    for platform in SHARING_PLATFORMS:
        groups: dict[object, list[str]] = {}
        for spec in loaded.accounts(platform):
            groups.setdefault(_key(spec.account.model_dump()), []).append(spec.institution)
        for members in groups.values():
            if len(members) > 1:
                shared[(platform, members[0])] = tuple(members)
    return shared


def _key(value: object) -> object:
    """A hashable form of an account section's values, secrets included (the token is
    what makes two sections one account)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _key(v)) for k, v in value.items()))
    if isinstance(value, set | frozenset):
        return frozenset(_key(v) for v in value)
    if isinstance(value, list | tuple):
        return tuple(_key(v) for v in value)
    if isinstance(value, SecretStr | SecretBytes):
        return ("secret", value.get_secret_value())
    return value


def chosen_by(event: Event, ids: Sequence[str]) -> str | None:
    """The institution this very update chooses: ``/start <id>`` (a deep link or QR code)
    or a pressed picker button; None when it chooses nothing."""
    if event.callback is not None:
        data = event.callback.data
        if data.startswith(CHOOSE) and data[len(CHOOSE) :] in ids:
            return data[len(CHOOSE) :]
        return None
    if event.start_payload is not None and event.start_payload in ids:
        return event.start_payload
    return None


async def resolve(event: Event, places: PlaceSet, repo: PlaceRepo) -> str:
    """Which institution of a shared account an update is for: a staff chat belongs to the
    institution that names it; a citizen's update to what it chooses (deep link, picker
    button), else to the institution whose message it answers (a button under it, a reply
    to it), else to the chat's stored binding, else (not chosen yet) to the first, whose
    picker the citizen then sees."""
    if event.chat_kind is not ChatKind.PRIVATE:
        for inst_id in places.ids:
            if places.institutions[inst_id].is_staff_chat(event.chat):
                return inst_id
        return places.ids[0]
    chosen = chosen_by(event, places.ids)
    if chosen is not None:
        return chosen
    if event.callback is not None:
        for prefix in ADDRESSED:
            named = event.callback.data.removeprefix(prefix)
            if event.callback.data.startswith(prefix) and named in places.ids:
                return named
    # a button under, or a reply to, a message of one institution is that institution's
    answered = event.message_id if event.callback is not None else event.reply_to
    if answered is not None:
        sender = await repo.sender_of(event.platform, event.chat.chat_id, answered, places.ids)
        if sender is not None:
            return sender
    current = await repo.current(event.platform, event.chat.chat_id, places.ids)
    return current or places.ids[0]
