"""Where an update goes (see the flow in docs/ARCHITECTURE.md):

staff chat -> staff (members only: staff commands, staff buttons, replies to cards); a
membership change -> reachability; a pressed button -> the feature that issued it (by payload
prefix); a command -> the feature that declares it; any other text -> the FAQ.
Messages in other groups the bot was added to are ignored.
"""

from __future__ import annotations

import logging

from bots.core.model import ChatKind
from handlers import commands, staff
from handlers.answers import answering
from handlers.conversation import Conversation
from handlers.feature import Features

log = logging.getLogger(__name__)


async def route(conv: Conversation, features: Features) -> None:
    """Send one update to the feature that handles it (the tables come from the app)."""
    event = conv.event
    inst = conv.institution
    if event.membership == "blocked":
        await conv.storage.citizens.mark_unreachable(
            inst.id, event.platform, event.chat.chat_id, "blocked the bot", conv.now
        )
        return
    if event.membership is not None:
        return
    if inst.is_staff_chat(event.chat):
        await staff.on_staff_event(
            conv, features.staff_commands, features.staff_callbacks, features.message_hooks
        )
        return
    if event.chat_kind is not ChatKind.PRIVATE:
        return
    first_contact = await conv.storage.citizens.touch(
        inst.id, event.platform, event.user, event.chat.chat_id, conv.now
    )
    if event.callback is not None:
        prefix = event.callback.data.split(":", 1)[0]
        handler = features.callbacks.get(prefix)
        if handler is None:
            conv.answer_callback()
            log.info("unknown callback prefix %r chat=%s", prefix[:16], event.chat.key)
            return
        await handler(conv, event.callback.data)
        return
    if event.text is None or not event.text.strip():
        await conv.reply(conv.render("non_text"))
        return
    text = event.text
    conv.logged_id = await conv.storage.log.add(
        institution=inst.id,
        platform=event.platform,
        chat_id=event.chat.chat_id,
        user_id=event.user.id,
        direction="in",
        text=text,
        now=conv.now,
    )
    if first_contact:
        await conv.reply(conv.render("first_contact"), log=False)
    parsed = commands.parse_command(text.strip())
    if parsed is not None:
        await conv.storage.log.set_outcome(conv.logged_id, "command", None, None)
        await commands.dispatch(conv, features.commands, *parsed)
        return
    await answering.on_text(conv, text)
