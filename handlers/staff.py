"""The staff chat: who may act there, and the staff commands.

Only configured staff members are heard; anyone else in the staff chat is ignored (their
messages are not relayed, their button presses are refused). Features register their staff
commands with :func:`staff_command` (/tickets, /close, /announce, ...), and may claim plain
messages (a reply to a ticket card, the text of an announcement being composed) with
:func:`staff_message_hook`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from handlers.commands import parse_command
from handlers.conversation import Conversation

log = logging.getLogger(__name__)

StaffHandler = Callable[[Conversation, str], Awaitable[None]]
MessageHook = Callable[[Conversation], Awaitable[bool]]

STAFF_COMMANDS: dict[str, StaffHandler] = {}
#: payload prefix -> handler for buttons pressed in the staff chat (by members only)
STAFF_CALLBACKS: dict[str, StaffHandler] = {}
#: tried in order for a staff member's plain message; the first returning True claims it
MESSAGE_HOOKS: list[MessageHook] = []


def staff_command(*names: str) -> Callable[[StaffHandler], StaffHandler]:
    def register(handler: StaffHandler) -> StaffHandler:
        for name in names:
            STAFF_COMMANDS[name] = handler
        return handler

    return register


def staff_callback(prefix: str) -> Callable[[StaffHandler], StaffHandler]:
    def register(handler: StaffHandler) -> StaffHandler:
        STAFF_CALLBACKS[prefix] = handler
        return handler

    return register


def staff_message_hook(hook: MessageHook) -> MessageHook:
    MESSAGE_HOOKS.append(hook)
    return hook


@staff_command("help", "помощь", "start")
async def help_command(conv: Conversation, args: str) -> None:
    """/help in the staff chat: what staff can do there."""
    await conv.reply(conv.render("staff_help"))


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


async def on_staff_event(conv: Conversation) -> None:
    """A message or button press in the staff chat."""
    event = conv.event
    if not is_member(conv):
        if event.callback is not None:
            conv.answer_callback(conv.render("staff_only"))
        log.info(
            "ignored non-member %s in the staff chat of %s", event.user.id, conv.institution.id
        )
        return
    if event.callback is not None:
        handler = STAFF_CALLBACKS.get(event.callback.data.split(":", 1)[0])
        if handler is None:
            conv.answer_callback()
            return
        await handler(conv, event.callback.data)
        return
    text = (event.text or "").strip()
    parsed = parse_command(text) if text else None
    if parsed is not None:
        name, args = parsed
        handler = STAFF_COMMANDS.get(name)
        if handler is None:
            await conv.reply(conv.render("staff_unknown_command", command="/" + name))
            return
        await handler(conv, args)
        return
    for hook in MESSAGE_HOOKS:
        if await hook(conv):
            return
