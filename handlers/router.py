"""Where an update goes (see the flow in docs/ARCHITECTURE.md):

staff chat -> staff (members only: staff commands, staff buttons, replies to cards); a
membership change -> reachability; in a shared bot's chat, /start and the place picker
(handlers/places/); a pressed button -> the feature that issued it (by
payload prefix); a command -> commands; any other text, in this order: urgent words and
follow-ups of a ticket (escalation), a number pressing a button of the bot's last message,
input that means nothing ("не понял" and the topics), the FAQ. Messages in other groups
the bot was added to are ignored.

Every citizen message gets a visible reaction: an answer, a question back, the topics, or a
notice that staff have it.
"""

from __future__ import annotations

import logging

from bots.core.model import ChatKind
from handlers import commands, escalation, ids, places, staff
from handlers.answers import ahead, answering
from handlers.conversation import Conversation
from handlers.faq.matcher import Decision, MatchResult
from handlers.feature import Features

log = logging.getLogger(__name__)


async def route(conv: Conversation, features: Features) -> None:
    """Send one update to the feature that handles it (the tables come from the app), and
    write what it logged (the citizen's message with its outcome and the replies: one
    statement where it can, see Conversation.log_question)."""
    await _route(conv, features)
    await conv.flush_log()


async def _route(conv: Conversation, features: Features) -> None:
    event = conv.event
    inst = conv.institution
    if event.membership == "blocked":
        await conv.storage.citizens.mark_unreachable(
            inst.id, event.platform, event.chat.chat_id, "blocked the bot", conv.now
        )
        return
    if await ids.intercept(conv):  # /id in any chat; a WARNING for a group nobody configured
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
    # a shared bot: /start and choosing the institution, before the chat counts as a
    # citizen of the institution it is not bound to yet (choosing records the chosen one)
    if await places.intercept(conv):
        return
    first_contact = conv.first_contact = await conv.storage.citizens.touch(
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
        # a sticker, a photo without a caption, a voice message: the topics instead
        await answering.show_categories(conv, "non_text")
        return
    text = event.text
    conv.log_question(text)
    if first_contact:
        await conv.reply(conv.render("first_contact"), log=False)
    parsed = commands.parse_command(text.strip())
    if parsed is not None:
        await set_outcome(conv, "command")
        await conv.flush_log()  # a command may read or erase the log (/forget)
        await commands.dispatch(conv, features.commands, *parsed)
        return
    await on_citizen_text(conv, features, text)


async def on_citizen_text(conv: Conversation, features: Features, text: str) -> None:
    """A citizen's words, understood on their own whether or not a ticket is open."""
    claimed = await escalation.claim_before_matching(conv, text)
    if claimed is not None:
        await set_outcome(conv, claimed)
        return
    if await press_by_number(conv, features, text):
        await set_outcome(conv, "button")
        return
    result = await ahead.match(conv, text)
    if result.decision is Decision.ESCALATE and means_nothing(result):
        await set_outcome(conv, "unclear")
        await answering.show_categories(conv, "unclear")
        return
    await answering.on_text(conv, text, result)


async def set_outcome(conv: Conversation, outcome: str) -> None:
    await conv.set_outcome(outcome)


def means_nothing(result: MatchResult) -> bool:
    """A lone number or symbol, or a single word the FAQ cannot place: asking staff about
    it would only make them ask back. A single word of complaint is not nothing."""
    if result.reason == "no content words":
        return True
    return len(result.normalized.split()) <= 1 and result.reason != "complaint"


async def press_by_number(conv: Conversation, features: Features, text: str) -> bool:
    """ "2" presses the second button of the bot's last message in this chat, when that
    message has buttons (VK and MAX users often answer a menu with its number). A number
    under a message without buttons presses nothing from earlier messages."""
    number = text.strip().rstrip(".)")
    if not number.isdigit() or len(number) > 2:
        return False
    last = await conv.storage.outbox.latest_to_chat(conv.institution.id, conv.event.chat)
    if last is None:
        return False
    buttons = [button for row in last.reply.buttons for button in row]
    index = int(number) - 1
    payload = buttons[index].callback if 0 <= index < len(buttons) else None
    if payload is None:
        return False
    handler = features.callbacks.get(payload.split(":", 1)[0])
    if handler is None:
        return False
    await conv.flush_log()  # a button's handler may read or erase the log
    await handler(conv, payload)
    if conv.callback_answer:  # no query to answer: what would be a snackbar is a message
        await conv.reply(conv.callback_answer)
    conv.callback_answer = None
    return True
