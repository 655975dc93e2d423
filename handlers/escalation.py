"""Escalation to staff. Placeholder until tickets exist (issue 6): tells the citizen how to
reach the institution instead of answering something wrong."""

from __future__ import annotations

from handlers.conversation import Conversation


async def escalate(conv: Conversation, *, reason: str) -> None:
    await conv.reply(conv.render("not_understood"))


async def on_callback(conv: Conversation, data: str) -> None:
    conv.answer_callback()
    if data.startswith("esc:ask"):
        await escalate(conv, reason="asked")
