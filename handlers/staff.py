"""The staff chat: who may act there, and the staff commands.

Only configured staff members are heard; anyone else in the staff chat is ignored (their
messages are not relayed, their button presses are refused). Features bring their staff
commands (/tickets, /close, /announce, ...) and buttons in their Feature object
(handlers/feature.py), and may claim plain messages (a reply to a ticket card, the text of
an announcement being composed) with message hooks.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from handlers.commands import parse_command
from handlers.conversation import Conversation

log = logging.getLogger(__name__)


#: staff commands the staff chat itself answers: what staff can do there
HELP_COMMANDS = frozenset({"help", "помощь", "start"})


def is_member(conv: Conversation) -> bool:
    event = conv.event
    return conv.institution.is_staff_member(event.platform, event.user.id)


def member_name(conv: Conversation) -> str:
    """The configured name of the acting staff member (what citizens and cards show)."""
    event = conv.event
    for member in conv.institution.config.staff.members:
        if member.id == event.user.id:
            return member.name
    return event.user.display_name


StaffHandler = Callable[[Conversation, str], Awaitable[None]]
MessageHook = Callable[[Conversation], Awaitable[bool]]


async def on_staff_event(
    conv: Conversation,
    commands: Mapping[str, StaffHandler],
    callbacks: Mapping[str, StaffHandler],
    message_hooks: Sequence[MessageHook],
) -> None:
    """A message or button press in the staff chat: members' commands, buttons (by payload
    prefix) and plain messages go to the features' tables."""
    event = conv.event
    if not is_member(conv):
        if event.callback is not None:
            conv.answer_callback(conv.render("staff_only"))
        log.info(
            "ignored non-member %s in the staff chat of %s", event.user.id, conv.institution.id
        )
        return
    if event.callback is not None:
        handler = callbacks.get(event.callback.data.split(":", 1)[0])
        if handler is None:
            conv.answer_callback()
            return
        await handler(conv, event.callback.data)
        return
    text = (event.text or "").strip()
    parsed = parse_command(text) if text else None
    if parsed is not None:
        name, args = parsed
        handler = commands.get(name)
        if handler is not None:
            await handler(conv, args)
        elif name in HELP_COMMANDS:
            await conv.reply(conv.render("staff_help"))
        else:
            await conv.reply(conv.render("staff_unknown_command", command="/" + name))
        return
    for hook in message_hooks:
        if await hook(conv):
            return
    if event.reply_to and event.replied_bot_text:
        # a reply to the bot's own message is meant for the bot: a staff member who replied
        # to a list or a report believing it answers a citizen must learn that nobody got it
        await conv.reply(conv.render("staff_reply_unplaced"))
