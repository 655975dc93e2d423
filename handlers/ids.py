"""Finding the numeric ids a config needs, without guessing.

A staff chat and its members are configured by platform ids (``-1001234567890``,
``2000000001``, ``1111``) that no messenger shows its users. ``/id`` answers in any chat the
bot can read, configured or not (a group no institution names, the staff chat before its
members are listed, a private chat): the chat's id, the sender's id and the platform, with
the lines to paste into the config. And the log says the same at WARNING (the default level)
when the bot sees a group no institution names, or someone not listed in a staff chat, so an
admin who added the bot to a group finds the id in the log too.

The router calls :func:`intercept` before anything else looks at the event: a group that is
not a staff chat is otherwise dropped, and a non-member in the staff chat is not heard.
"""

from __future__ import annotations

import logging

from bots.core.model import ChatKind
from handlers.commands import parse_command
from handlers.conversation import Conversation

log = logging.getLogger(__name__)


#: (institution, platform, chat, user) already reported in this process: one WARNING each,
#: not one per message of a busy group (forgotten wholesale past REPORTED_MAX entries)
_reported: set[tuple[str, str, str, str]] = set()
REPORTED_MAX = 10_000


def _first_time(key: tuple[str, str, str, str]) -> bool:
    if key in _reported:
        return False
    if len(_reported) >= REPORTED_MAX:
        _reported.clear()
    _reported.add(key)
    return True


async def intercept(conv: Conversation) -> bool:
    """Answer /id in any chat (True: the event is handled). For other events in a group no
    institution names, or from a non-member in the staff chat, log the WARNING once."""
    event = conv.event
    if event.chat_kind is not ChatKind.PRIVATE:
        _warn_once(conv)
    if event.membership is not None or event.callback is not None:
        return False
    parsed = parse_command((event.text or "").strip())
    if parsed is not None and parsed[0] == "id":
        await show_ids(conv)
        return True
    return False


def member_snippet(conv: Conversation) -> str:
    event = conv.event
    name = event.user.display_name if event.user.display_name != event.user.id else "Фамилия И. О."
    return f"- {{platform: {event.platform}, id: {event.user.id}, name: {name}}}"


def chat_snippet(conv: Conversation) -> str:
    event = conv.event
    return f"chat: {{platform: {event.platform}, id: {event.chat.chat_id}}}"


async def show_ids(conv: Conversation) -> None:
    event = conv.event
    inst = conv.institution
    group = event.chat_kind is not ChatKind.PRIVATE
    staff_chat = inst.is_staff_chat(event.chat)
    member = inst.is_staff_member(event.platform, event.user.id)
    snippet = ""
    if group and not staff_chat:
        snippet = f"staff:\n  {chat_snippet(conv)}\n  members:\n    {member_snippet(conv)}"
    elif group and not member:
        snippet = f"    {member_snippet(conv)}"
    await conv.reply(
        conv.render(
            "ids",
            platform=event.platform,
            chat_id=event.chat.chat_id,
            group=group,
            user_id=event.user.id,
            person=event.user.display_name,
            inst_id=inst.id,
            staff_chat=staff_chat,
            member=member,
            snippet=snippet,
        ),
        log=False,
    )
    log.info(
        "/id in %s chat %s (%s) of %s: sender id %s",
        event.platform,
        event.chat.chat_id,
        "staff chat" if staff_chat else ("group" if group else "private"),
        inst.id,
        event.user.id,
    )


def _warn_once(conv: Conversation) -> None:
    event = conv.event
    inst = conv.institution
    if inst.is_staff_chat(event.chat):
        if event.membership is not None or inst.is_staff_member(event.platform, event.user.id):
            return
        if not _first_time((inst.id, event.platform, event.chat.chat_id, event.user.id)):
            return
        log.warning(
            "%s: a message from %s id %s in the staff chat is ignored: only staff.members are"
            " heard. To let them answer tickets, add under institutions.%s.staff.members: %s",
            inst.id,
            event.platform,
            event.user.id,
            inst.id,
            member_snippet(conv),
        )
        return
    if not _first_time((inst.id, event.platform, event.chat.chat_id, "")):
        return
    log.warning(
        "%s: the bot is in %s group %s, which no institution names; its messages are ignored."
        " To make it this institution's staff chat, write under institutions.%s.staff: %s"
        " (and list the members; /id in that group shows each person's id)",
        inst.id,
        event.platform,
        event.chat.chat_id,
        inst.id,
        chat_snippet(conv),
    )
