"""The place picker of a shared bot: /start without a payload, /place, the buttons.

A citizen chooses an institution by a deep link (``/start school-17``), by a button of the
recently used ones, or by typing part of its name or kind ("школа 17", "поликлиника") and
pressing one of the results, a page at a time. Choosing stores the binding (storage/places.py)
and says where the citizen now is; everything after that is the chosen institution's."""

from __future__ import annotations

import re

from bots.core.model import Button
from handlers.answers.answering import show_categories
from handlers.conversation import Conversation
from handlers.places.shared import CHOOSE, PlaceSet

#: conv.extras key under which the app puts the PlaceSet of a shared account
EXTRA = "places"
#: a chat that asked for the picker: its next plain text is a search
_CHOOSING = "place-choosing"
PAGE = 6
RECENT = 5
_WORD = re.compile(r"[0-9a-zа-я]+")


def places_of(conv: Conversation) -> PlaceSet | None:
    """The PlaceSet when the update came through a shared account, else None."""
    found = conv.extras.get(EXTRA)
    return found if isinstance(found, PlaceSet) else None


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("ё", "е"))


def search(places: PlaceSet, query: str) -> list[str]:
    """Institutions whose name or id contains every word of ``query`` (as a word start:
    "школ 17" finds "Средняя школа № 17"), in config order."""
    wanted = words(query)
    found = []
    for inst_id in places.ids:
        have = words(places.name(inst_id) + " " + inst_id)
        if all(any(w.startswith(q) for w in have) for q in wanted):
            found.append(inst_id)
    return found


async def intercept(conv: Conversation) -> bool:
    """Before anything else in a citizen's chat with a shared bot: /start (with or without
    a deep-link payload), and plain text while the citizen is choosing. True if handled."""
    places = places_of(conv)
    event = conv.event
    if places is None or event.callback is not None or event.text is None:
        return False
    text = event.text.strip()
    key = event.chat.key
    current = await conv.storage.places.current(event.platform, event.chat.chat_id, places.ids)
    if event.start_payload is not None and event.start_payload in places.ids:
        await choose(conv, places, event.start_payload)
        return True
    if text == "/start" or text.startswith(("/start ", "/start@")):
        await show(conv, places, current, "")  # bare, or a payload naming no institution
        return True
    if text.startswith("/"):
        return False
    if current is None or await conv.storage.kv.get(_CHOOSING, key) is not None:
        await show(conv, places, current, text)
        return True
    return False


async def place_command(conv: Conversation, args: str) -> None:
    """/place [words]: the picker, or the search for ``words``."""
    places = places_of(conv)
    if places is None:
        await conv.reply(conv.render("place_single"))
        return
    event = conv.event
    current = await conv.storage.places.current(event.platform, event.chat.chat_id, places.ids)
    await show(conv, places, current, args)


async def on_callback(conv: Conversation, data: str) -> None:
    """``place:c:<id>`` chooses; ``place:p:<page>:<query>`` shows another page."""
    places = places_of(conv)
    conv.answer_callback()
    if places is None:
        return
    if data.startswith(CHOOSE):
        inst_id = data[len(CHOOSE) :]
        if inst_id in places.ids:  # payloads are never trusted
            await choose(conv, places, inst_id)
        return
    parts = data.split(":", 3)
    if len(parts) == 4 and parts[1] == "p" and parts[2].isdigit():
        await show(conv, places, None, parts[3], page=int(parts[2]))


async def choose(conv: Conversation, places: PlaceSet, inst_id: str) -> None:
    """Bind the chat and say, in one message, where the citizen now is, what the bot keeps
    (on their first contact with that institution, as the router does for a bot of its
    own) and that institution's greeting with its topics. One message, not three: a
    district's QR code brings many citizens at once, and a shared bot sends about 30
    messages a second in all. The app resolved this update to ``inst_id`` already, so
    ``conv`` speaks for it."""
    event = conv.event
    await conv.storage.places.choose(event.platform, event.chat.chat_id, inst_id, conv.now)
    await conv.storage.kv.delete(_CHOOSING, event.chat.key)
    touched = await conv.storage.citizens.touch(
        inst_id, event.platform, event.user, event.chat.chat_id, conv.now
    )
    lead = [conv.render("place_chosen", others=len(places.ids) > 1)]
    if touched or conv.first_contact:  # a picker's button: the router touched it first
        lead.append(conv.render("first_contact"))
    await show_categories(conv, "start", lead=lead)


async def show(
    conv: Conversation, places: PlaceSet, current: str | None, query: str, *, page: int = 0
) -> None:
    """The picker: recent choices (no query) or the search results, a page at a time."""
    event = conv.event
    await conv.storage.kv.set(_CHOOSING, event.chat.key, "1")
    if query.strip():
        found = search(places, query)
    else:
        found = await conv.storage.places.recent(
            event.platform, event.chat.chat_id, places.ids, limit=RECENT
        )
        if not found:
            found = list(places.ids)
    shown = found[page * PAGE : (page + 1) * PAGE]
    rows = [[Button(places.name(i), callback=CHOOSE + i)] for i in shown]
    if len(found) > (page + 1) * PAGE:
        rows.append([Button(conv.label("place_more"), callback=f"place:p:{page + 1}:{query}")])
    await conv.reply(
        conv.render(
            "place_choose",
            current=places.name(current) if current else None,
            query=query.strip(),
            found=len(found),
            total=len(places.ids),
        ),
        rows,
        log=False,
    )
