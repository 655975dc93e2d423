"""Translation between aiogram's types and the neutral model, with no I/O besides the
payload store. Kept apart from the transport so each rule is easy to read and test."""

from __future__ import annotations

from typing import Any

from aiogram.enums import ContentType
from aiogram.types import (
    CallbackQuery,
    ChatMemberUpdated,
    Message,
)
from aiogram.types import User as TgUser

from bots.core.model import Button, Callback, ChatKind, ChatRef, Event, User
from bots.core.payloads import PayloadStore, decode_payload, encode_payload

PLATFORM = "telegram"
_KINDS = {
    "private": ChatKind.PRIVATE,
    "group": ChatKind.GROUP,
    "supergroup": ChatKind.GROUP,
    "channel": ChatKind.CHANNEL,
}
#: membership statuses of the bot in a private chat after the user's action
_BLOCKED = {"kicked", "left"}
_UNBLOCKED = {"member"}


def person(user: TgUser | None, fallback_id: int) -> User:
    if user is None:  # an anonymous group admin or a channel posting in a group
        return User(id=str(fallback_id))
    return User(
        id=str(user.id),
        first_name=user.first_name,
        last_name=user.last_name or "",
        username=user.username,
    )


def topic_of(message: Message) -> str | None:
    """The forum topic a message is in; replies in ordinary groups also carry a
    message_thread_id, but only ``is_topic_message`` means a forum topic."""
    if message.is_topic_message and message.message_thread_id is not None:
        return str(message.message_thread_id)
    return None


def replied_to(message: Message) -> str | None:
    """The message this one answers. In a forum topic Telegram makes every message a reply
    to the topic's root (the "topic created" service message); that is not an answer."""
    original = message.reply_to_message
    if original is None:
        return None
    if original.forum_topic_created is not None and message.is_topic_message:
        return None
    return str(original.message_id)


def replied_bot_text(message: Message) -> str | None:
    """The text of the replied-to message when this bot wrote it (Telegram includes the
    original in a reply); None for replies to people or to other bots."""
    original = message.reply_to_message
    if original is None or original.from_user is None or not original.from_user.is_bot:
        return None
    bot = message.bot
    if bot is not None and original.from_user.id != bot.id:
        return None
    return original.text or original.caption


def start_payload(text: str | None) -> str | None:
    """``/start abc`` (a deep link t.me/bot?start=abc) gives ``abc``."""
    if not text or not text.startswith("/start"):
        return None
    command, _, rest = text.partition(" ")
    if command != "/start" and not command.startswith("/start@"):
        return None
    return rest.strip() or None


#: what a person sends (every kind gets an answer, if only "please write in words"), as
#: opposed to service messages (a member joined, a topic was created, a message pinned)
_PERSON_SENT = frozenset(
    {
        ContentType.TEXT,
        ContentType.ANIMATION,
        ContentType.AUDIO,
        ContentType.DOCUMENT,
        ContentType.LIVE_PHOTO,
        ContentType.PAID_MEDIA,
        ContentType.PHOTO,
        ContentType.STICKER,
        ContentType.STORY,
        ContentType.VIDEO,
        ContentType.VIDEO_NOTE,
        ContentType.VOICE,
        ContentType.CHECKLIST,
        ContentType.CONTACT,
        ContentType.DICE,
        ContentType.GAME,
        ContentType.POLL,
        ContentType.VENUE,
        ContentType.LOCATION,
        ContentType.INVOICE,
        ContentType.GIVEAWAY,
        ContentType.WEB_APP_DATA,
        ContentType.RICH_MESSAGE,
    }
)


def is_content(message: Message) -> bool:
    """Something a person wrote or sent, as opposed to a service message that nobody
    should answer. A kind newer than this code knows is answered in a private chat (the
    citizen sent something and waits) and ignored in groups."""
    kind = message.content_type
    if kind == ContentType.UNKNOWN:
        return message.chat.type == "private"
    return kind in _PERSON_SENT


def message_event(institution: str, update_id: int, message: Message) -> Event | None:
    if not is_content(message):
        return None
    text = message.text if message.text is not None else (message.caption or "")
    return Event(
        institution=institution,
        platform=PLATFORM,
        chat=ChatRef(PLATFORM, str(message.chat.id), topic_of(message)),
        user=person(message.from_user, message.chat.id),
        update_key=str(update_id),
        chat_kind=_KINDS.get(message.chat.type, ChatKind.GROUP),
        text=text,
        message_id=str(message.message_id),
        reply_to=replied_to(message),
        replied_bot_text=replied_bot_text(message) if replied_to(message) else None,
        start_payload=start_payload(message.text),
    )


def plain_text_event(institution: str, update: Any) -> Event | None:
    """The Event of the most common update, a text message that replies to nothing, read
    straight from the webhook's JSON; None for any other update (or one not shaped as the
    Bot API documents it), which goes through aiogram's Update and message_event.

    Validating the whole Update into aiogram's models for a text message cost ~50 µs of
    the webhook's ~60 µs before the app (microbench). The Event is the one message_event
    gives (tests compare the two); a reply is left to the general way, as reading it needs
    the replied-to message and the bot."""
    if type(update) is not dict or len(update) != 2:
        return None
    message = update.get("message")
    update_id = update.get("update_id")
    if type(message) is not dict or type(update_id) is not int or "reply_to_message" in message:
        return None
    text = message.get("text")
    chat = message.get("chat")
    message_id = message.get("message_id")
    if type(text) is not str or not text or type(chat) is not dict or type(message_id) is not int:
        return None
    chat_id = chat.get("id")
    kind = chat.get("type")
    if type(chat_id) is not int or type(kind) is not str:
        return None
    thread = message.get("message_thread_id") if message.get("is_topic_message") else None
    if thread is not None and type(thread) is not int:
        return None
    sender = message.get("from")
    user = User(id=str(chat_id)) if sender is None else _plain_person(sender)
    if user is None:
        return None
    return Event(
        institution=institution,
        platform=PLATFORM,
        chat=ChatRef(PLATFORM, str(chat_id), None if thread is None else str(thread)),
        user=user,
        update_key=str(update_id),
        chat_kind=_KINDS.get(kind, ChatKind.GROUP),
        text=text,
        message_id=str(message_id),
        start_payload=start_payload(text),
    )


def _plain_person(sender: Any) -> User | None:
    """``person`` for a user given as the Bot API's JSON; None when it is not shaped so."""
    if type(sender) is not dict:
        return None
    user_id = sender.get("id")
    first = sender.get("first_name")
    last = sender.get("last_name")
    username = sender.get("username")
    if type(user_id) is not int or type(first) is not str:
        return None
    if (last is not None and type(last) is not str) or (
        username is not None and type(username) is not str
    ):
        return None
    return User(id=str(user_id), first_name=first, last_name=last or "", username=username)


async def callback_event(
    institution: str, update_id: int, query: CallbackQuery, store: PayloadStore
) -> Event | None:
    """A pressed button of a message the bot sent; None for inline-mode messages, which
    the bot never sends."""
    message = query.message
    if message is None:
        return None
    thread = topic_of(message) if isinstance(message, Message) else None
    data = await decode_payload(query.data or "", store)
    return Event(
        institution=institution,
        platform=PLATFORM,
        chat=ChatRef(PLATFORM, str(message.chat.id), thread),
        user=person(query.from_user, message.chat.id),
        update_key=str(update_id),
        chat_kind=_KINDS.get(message.chat.type, ChatKind.GROUP),
        callback=Callback(id=query.id, data=data or ""),
        message_id=str(message.message_id),
    )


def membership_event(institution: str, update_id: int, change: ChatMemberUpdated) -> Event | None:
    """A citizen blocking (or unblocking) the bot in their private chat, or the bot being
    added to a group ("added": the router logs the group's id for the admin's config)."""
    status = change.new_chat_member.status
    if change.chat.type != "private":
        membership = "added" if status in ("member", "administrator") else None
    elif status in _BLOCKED:
        membership = "blocked"
    elif status in _UNBLOCKED:
        membership = "unblocked"
    else:
        membership = None
    if membership is None:
        return None
    return Event(
        institution=institution,
        platform=PLATFORM,
        chat=ChatRef(PLATFORM, str(change.chat.id)),
        user=person(change.from_user, change.chat.id),
        update_key=str(update_id),
        chat_kind=_KINDS.get(change.chat.type, ChatKind.GROUP),
        membership=membership,
    )


async def keyboard_rows(
    rows: tuple[tuple[Button, ...], ...],
    *,
    per_row: int,
    max_callback_bytes: int,
    store: PayloadStore,
) -> list[list[dict[str, str]]] | None:
    """The rows of an inline keyboard for ``rows`` as Bot API JSON objects; a row wider
    than Telegram allows wraps onto the next, a callback payload over the byte limit is
    stored and replaced by its key."""
    if not rows:
        return None
    out: list[list[dict[str, str]]] = []
    for row in rows:
        built: list[dict[str, str]] = []
        for button in row:
            if button.url is not None:
                built.append({"text": button.text, "url": button.url})
            else:
                assert button.callback is not None
                data = await encode_payload(button.callback, max_callback_bytes, store)
                built.append({"text": button.text, "callback_data": data})
        out.extend(built[i : i + per_row] for i in range(0, len(built), per_row))
    return out
